package caserver

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/crl"
	"github.com/anchorage-pki/anchorage/storage"
)

type fakeCRLStore struct {
	n   uint64
	der []byte
}

func (f fakeCRLStore) CRL(context.Context) (storage.CRL, error) {
	return storage.CRL{Number: f.n, DER: f.der}, nil
}

func TestCheckCRLFile(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	raw, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	iss, _ := x509.ParseCertificate(raw)
	built := func(n uint64) []byte {
		der, err := crl.Build(iss, k, n, nil, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	for _, tc := range []struct {
		name     string
		file     []byte // nil: no file
		db       fakeCRLStore
		wantErr  string // "" for a start
		wantFile uint64 // CRL number in the file afterwards; 0: no file
	}{
		{"new CA", nil, fakeCRLStore{}, "", 0},
		{"in step", built(3), fakeCRLStore{3, built(3)}, "", 3},
		{"file missing", nil, fakeCRLStore{3, built(3)}, "", 3},
		{"file behind", built(2), fakeCRLStore{3, built(3)}, "", 3},
		{"database restored from an older backup", built(5), fakeCRLStore{3, built(3)}, "is older than the CRL published at 5", 5},
		{"database made again", built(5), fakeCRLStore{}, "is older than the CRL published at 5", 5},
		{"file damaged", []byte("junk"), fakeCRLStore{3, built(3)}, "does not parse", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "crl.der")
			if tc.file != nil {
				if err := os.WriteFile(file, tc.file, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := checkCRLFile(context.Background(), tc.db, filepath.Join(dir, "anchorage.db"), file, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if err != nil {
				if got, _ := os.ReadFile(file); !bytes.Equal(got, tc.file) {
					t.Error("a refused start changed the CRL file")
				}
				if !strings.Contains(err.Error(), file) || strings.Contains(err.Error(), "\n") {
					t.Errorf("error %q: want one line naming %s", err, file)
				}
				return
			}
			n, ok, err := crl.FileNumber(file)
			if err != nil || n != tc.wantFile || ok != (tc.wantFile != 0) {
				t.Errorf("file afterwards: %d, %v, %v; want %d", n, ok, err, tc.wantFile)
			}
		})
	}
}
