package api

import (
	"context"
	"encoding/json"
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
