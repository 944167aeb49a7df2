package api

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/crl"
	"github.com/anchorage-pki/anchorage/storage"
)

// A CRL that could not be written to the CRL file (paths.crl) makes /health
// degraded and anchorage_crl_file_ok 0 until a write succeeds.
func TestHealthShowsCRLFileError(t *testing.T) {
	ctx := context.Background()
	year := time.Now().Add(365 * 24 * time.Hour)
	root, rootKey := mkCert(t, "Root", nil, nil, true, year)
	issuer, issuerKey := mkCert(t, "Issuing CA", root, rootKey, true, year)
	dir := t.TempDir()
	db, err := storage.Create(filepath.Join(dir, "anchorage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// The file's parent is a regular file: the write fails, for root too.
	parent := filepath.Join(dir, "notadir")
	if err := os.WriteFile(parent, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	u, err := crl.New(ctx, crl.Options{Issuer: issuer, Signer: issuerKey, Store: db, File: filepath.Join(parent, "crl.der"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Enroll: http.NotFoundHandler(), CRL: u, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	health := func() (int, apiv1.Health) {
		t.Helper()
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, apiv1.PathHealth, nil))
		var h apiv1.Health
		if err := json.Unmarshal(w.Body.Bytes(), &h); err != nil {
			t.Fatalf("health body %q: %v", w.Body, err)
		}
		return w.Code, h
	}
	metric := func() string {
		t.Helper()
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, apiv1.PathMetrics, nil))
		for _, l := range strings.Split(w.Body.String(), "\n") {
			if strings.HasPrefix(l, "anchorage_crl_file_ok ") {
				return l
			}
		}
		t.Fatalf("no anchorage_crl_file_ok in\n%s", w.Body)
		return ""
	}

	if _, err := u.Update(ctx); err != nil {
		t.Fatal(err)
	}
	if u.FileError() == nil {
		t.Fatal("FileError is nil after a failed write")
	}
	code, h := health()
	if code != http.StatusServiceUnavailable || h.Status != "degraded" || len(h.Warnings) != 1 || !strings.Contains(h.Warnings[0], "CRL file") {
		t.Errorf("health with the CRL file unwritable: %d %+v", code, h)
	}
	if m := metric(); m != "anchorage_crl_file_ok 0" {
		t.Errorf("metric %q", m)
	}

	// Fix the path: the next build writes the file and clears the error.
	if err := os.Remove(parent); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Update(ctx); err != nil {
		t.Fatal(err)
	}
	if code, h := health(); code != http.StatusOK || h.Status != "ok" || len(h.Warnings) != 0 {
		t.Errorf("health after the file was written: %d %+v", code, h)
	}
	if m := metric(); m != "anchorage_crl_file_ok 1" {
		t.Errorf("metric %q", m)
	}
}

// Near the Roles Anywhere cap /health warns (still 200); over it it is
// degraded (503), and the CRL is
// still built whole and served (no entry dropped), and /health says that
// trust anchors keep an older one.
func TestHealthCRLSize(t *testing.T) {
	ctx := context.Background()
	year := time.Now().Add(365 * 24 * time.Hour)
	root, rootKey := mkCert(t, "Root", nil, nil, true, year)
	issuer, issuerKey := mkCert(t, "Issuing CA", root, rootKey, true, year)
	db, err := storage.Create(filepath.Join(t.TempDir(), "anchorage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	u, err := crl.New(ctx, crl.Options{Issuer: issuer, Signer: issuerKey, Store: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Enroll: http.NotFoundHandler(), CRL: u, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	revoke := func(subject string, n int) {
		t.Helper()
		var certs []*storage.Cert
		for i := range n {
			certs = append(certs, &storage.Cert{Serial: fmt.Sprintf("4%s%09x", subject, i), Subject: subject, NotAfter: year, Status: storage.StatusValid})
		}
		if err := db.PutCerts(ctx, certs); err != nil {
			t.Fatal(err)
		}
		if _, err := db.RevokeSubject(ctx, subject, 1, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	check := func(wantEntries int, near, over bool, warning string) {
		t.Helper()
		c, err := u.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c.Entries != wantEntries || c.NearCap() != near || c.OverCap() != over {
			t.Fatalf("CRL %d: %d entries, %d bytes of PEM; want %d entries, near %v over %v", c.Number, c.Entries, len(c.PEM), wantEntries, near, over)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, apiv1.PathHealth, nil))
		var h apiv1.Health
		if err := json.Unmarshal(w.Body.Bytes(), &h); err != nil {
			t.Fatal(err)
		}
		wantCode, wantStatus := http.StatusOK, "ok"
		if over {
			wantCode, wantStatus = http.StatusServiceUnavailable, "degraded"
		}
		if w.Code != wantCode || h.Status != wantStatus || h.CRL.NearCap != near || h.CRL.OverCap != over ||
			(warning == "") != (len(h.Warnings) == 0) || warning != "" && !strings.Contains(h.Warnings[0], warning) {
			t.Errorf("%d entries: /health %d %+v", wantEntries, w.Code, h)
		}
	}
	// 20-octet serials (31 hex digits of subject and counter, padded).
	revoke("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 3000)
	check(3000, false, false, "")
	revoke("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 500)
	check(3500, true, false, "near the Roles Anywhere import cap")
	revoke("cccccccccccccccccccccccccccccc", 1000)
	check(4500, true, true, "over the Roles Anywhere import cap")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/crl", nil))
	if rl, err := x509.ParseRevocationList(w.Body.Bytes()); err != nil || len(rl.RevokedCertificateEntries) != 4500 {
		t.Errorf("/crl over the cap: %v", err)
	}
}
