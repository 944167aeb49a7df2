package crl_test

import (
	"context"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/crl"
	"github.com/anchorage-pki/anchorage/storage"
)

func TestFileNumber(t *testing.T) {
	iss, key := issuer(t)
	der, err := crl.Build(iss, key, 41, nil, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		content []byte // nil: no file
		n       uint64
		ok      bool
		wantErr bool
	}{
		{"missing", nil, 0, false, false},
		{"der", der, 41, true, false},
		{"pem", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 41, true, false},
		{"empty", []byte{}, 0, false, true},
		{"half", der[:len(der)/2], 0, false, true},
		{"certificate pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: iss.Raw}), 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name+".der")
			if tc.content != nil {
				if err := os.WriteFile(p, tc.content, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			n, ok, err := crl.FileNumber(p)
			if n != tc.n || ok != tc.ok || (err != nil) != tc.wantErr {
				t.Errorf("FileNumber = %d, %v, %v; want %d, %v, error %v", n, ok, err, tc.n, tc.ok, tc.wantErr)
			}
		})
	}
}

func TestWriteFileReplaces(t *testing.T) {
	iss, key := issuer(t)
	p := filepath.Join(t.TempDir(), "crl.der")
	for _, n := range []uint64{1, 2} {
		der, err := crl.Build(iss, key, n, nil, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := crl.WriteFile(p, der); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := crl.FileNumber(p); got != n || !ok || err != nil {
			t.Fatalf("after writing %d: %d, %v, %v", n, got, ok, err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
}

// Every CRL the publisher saves is in the file by the time Update returns.
func TestPublisherWritesFile(t *testing.T) {
	ctx := context.Background()
	iss, key := issuer(t)
	dir := t.TempDir()
	db, err := storage.Create(filepath.Join(dir, "crl.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	file := filepath.Join(dir, "crl.der")
	p, err := crl.New(ctx, crl.Options{Issuer: iss, Signer: key, Store: db, File: file,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for want := uint64(1); want <= 3; want++ {
		if _, err := p.Update(ctx); err != nil {
			t.Fatal(err)
		}
		if n, ok, err := crl.FileNumber(file); n != want || !ok || err != nil {
			t.Fatalf("file after CRL %d: %d, %v, %v", want, n, ok, err)
		}
	}
}

// A failed write of the CRL file does not fail the build (the CRL is
// stored and must be published) but is kept in FileError until a write
// succeeds.
func TestFileErrorUntilNextWrite(t *testing.T) {
	ctx := context.Background()
	iss, key := issuer(t)
	dir := t.TempDir()
	db, err := storage.Create(filepath.Join(dir, "crl.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// The file's parent is a regular file: the write fails, for root too.
	parent := filepath.Join(dir, "notadir")
	if err := os.WriteFile(parent, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(parent, "crl.der")
	p, err := crl.New(ctx, crl.Options{Issuer: iss, Signer: key, Store: db, File: file,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.FileError(); err != nil {
		t.Fatalf("FileError before any write: %v", err)
	}
	c, err := p.Update(ctx)
	if err != nil || c.Number != 1 {
		t.Fatalf("a failed file write must not fail the build: %+v, %v", c, err)
	}
	if err := p.FileError(); err == nil {
		t.Fatal("FileError is nil after a failed write")
	}
	if _, err := p.Update(ctx); err != nil || p.FileError() == nil {
		t.Fatalf("second build, still unwritable: %v, FileError %v", err, p.FileError())
	}
	if err := os.Remove(parent); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Update(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.FileError(); err != nil {
		t.Errorf("FileError after a successful write: %v", err)
	}
	if n, ok, err := crl.FileNumber(file); n != 3 || !ok || err != nil {
		t.Errorf("file after the fix: %d, %v, %v", n, ok, err)
	}
}

// Run rewrites the file on its poll while the last write failed, without
// waiting for the next CRL.
func TestRunRetriesFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iss, key := issuer(t)
	dir := t.TempDir()
	db, err := storage.Create(filepath.Join(dir, "crl.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	parent := filepath.Join(dir, "notadir")
	if err := os.WriteFile(parent, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(parent, "crl.der")
	p, err := crl.New(ctx, crl.Options{Issuer: iss, Signer: key, Store: db, File: file, Poll: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Update(ctx); err != nil || p.FileError() == nil {
		t.Fatalf("build with an unwritable file: %v, FileError %v", err, p.FileError())
	}
	os.Remove(parent)
	if err := os.Mkdir(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	go p.Run(ctx)
	for p.FileError() != nil {
		if ctx.Err() != nil {
			t.Fatal("Run did not rewrite the file")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n, ok, err := crl.FileNumber(file); n != 1 || !ok || err != nil {
		t.Errorf("file after the retry: %d, %v, %v", n, ok, err)
	}
}
