package crl_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/crl"
	"github.com/anchorage-pki/anchorage/internal/pkitest"
	"github.com/anchorage-pki/anchorage/storage"
)

func issuer(t testing.TB) (*x509.Certificate, *ecdsa.PrivateKey) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Issuing CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * 365 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, k
}

func newPublisher(t testing.TB) (*crl.Publisher, *storage.DB, *x509.Certificate) {
	p, db, iss, _ := newPublisherKey(t)
	return p, db, iss
}

func newPublisherKey(t testing.TB) (*crl.Publisher, *storage.DB, *x509.Certificate, *ecdsa.PrivateKey) {
	iss, key := issuer(t)
	db, err := storage.Create(filepath.Join(t.TempDir(), "crl.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p, err := crl.New(context.Background(), crl.Options{Issuer: iss, Signer: key, Store: db,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return p, db, iss, key
}

func TestPublisherUpdate(t *testing.T) {
	ctx := context.Background()
	p, db, iss, key := newPublisherKey(t)
	now := time.Now()
	put := func(serial string, notAfter time.Time) {
		if err := db.PutCert(ctx, &storage.Cert{Serial: serial, Subject: "s", NotAfter: notAfter, Status: storage.StatusValid}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.RevokeSerial(ctx, serial, 1, now.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	n1, err := p.Update(ctx)
	if err != nil || n1 != 1 || p.Current().Entries != 0 {
		t.Fatalf("first CRL: %d %v", n1, err)
	}
	put("0a0b", now.Add(time.Hour))
	put("0c0d", now.Add(-time.Minute)) // expired: must not appear
	n2, err := p.Update(ctx)
	if err != nil || n2 != 2 {
		t.Fatalf("second CRL: %d %v", n2, err)
	}
	c := p.Current()
	rl, err := x509.ParseRevocationList(c.DER)
	if err != nil {
		t.Fatal(err)
	}
	if err := rl.CheckSignatureFrom(iss); err != nil {
		t.Error(err)
	}
	if len(rl.RevokedCertificateEntries) != 1 || rl.RevokedCertificateEntries[0].SerialNumber.Text(16) != "a0b" {
		t.Errorf("entries %+v", rl.RevokedCertificateEntries)
	}
	if d := rl.NextUpdate.Sub(rl.ThisUpdate); d != 24*time.Hour {
		t.Errorf("validity %s", d)
	}
	pkitest.LintCRL(t, c.DER)

	// A new publisher on the same store continues the numbering.
	p2, err := crl.New(ctx, crl.Options{Issuer: iss, Signer: key, Store: db})
	if err != nil {
		t.Fatal(err)
	}
	if p2.Current().Number != 2 {
		t.Errorf("reloaded CRL number %d", p2.Current().Number)
	}
}

func TestConcurrentUpdatesShareBuilds(t *testing.T) {
	ctx := context.Background()
	p, _, _ := newPublisher(t)
	sub := p.Subscribe()
	var wg sync.WaitGroup
	nums := make(chan uint64, 30)
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := p.Update(ctx)
			if err != nil {
				t.Error(err)
			}
			nums <- n
		}()
	}
	wg.Wait()
	close(nums)
	maxN := uint64(0)
	for n := range nums {
		maxN = max(maxN, n)
	}
	if maxN >= 30 {
		t.Errorf("30 concurrent updates built %d CRLs; builds should be shared", maxN)
	}
	select {
	case <-sub:
	default:
		t.Error("subscriber was not signalled")
	}
}

func TestCheckRejects(t *testing.T) {
	iss, key := issuer(t)
	other, _ := issuer(t)
	now := time.Now().Truncate(time.Second)
	der, err := crl.Build(iss, key, 5, nil, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		issuer *x509.Certificate
		prev   uint64
		now    time.Time
		want   int
	}{
		{"ok", iss, 4, now, 0},
		{"number not above previous", iss, 5, now, 0},
		{"wrong issuer", other, 4, now, 0},
		{"already stale", iss, 4, now.Add(2 * time.Hour), 0},
		{"entry count", iss, 4, now, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := crl.Check(der, c.issuer, c.prev, c.now, c.want)
			if (err == nil) != (c.name == "ok") {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func revocations(n int) []storage.Revocation {
	out := make([]storage.Revocation, n)
	now := time.Now()
	for i := range out {
		b := make([]byte, 20)
		rand.Read(b)
		b[0] &= 0x7f
		b[0] |= 0x10
		out[i] = storage.Revocation{Serial: fmt.Sprintf("%x", b), RevokedAt: now.Add(-time.Hour), Reason: 1, NotAfter: now.Add(time.Hour)}
	}
	return out
}

// BenchmarkBuild measures signing and checking a CRL of 10k and 100k
// entries (the storage read is measured by BenchmarkPublisherUpdate).
func BenchmarkBuild(b *testing.B) {
	iss, key := issuer(b)
	for _, n := range []int{10_000, 100_000} {
		revs := revocations(n)
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			var size int
			for i := 0; b.Loop(); i++ {
				now := time.Now().Truncate(time.Second)
				der, err := crl.Build(iss, key, uint64(i+1), revs, now, 24*time.Hour)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := crl.Check(der, iss, uint64(i), now, n); err != nil {
					b.Fatal(err)
				}
				size = len(der)
			}
			b.ReportMetric(float64(size), "der-bytes")
		})
	}
}

// BenchmarkPublisherUpdate is a whole re-sign: bbolt read, build, check,
// fsynced save.
func BenchmarkPublisherUpdate(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			ctx := context.Background()
			p, db, _ := newPublisher(b)
			var certs []*storage.Cert
			for _, r := range revocations(n) {
				certs = append(certs, &storage.Cert{Serial: r.Serial, Subject: "s", NotAfter: r.NotAfter, Status: storage.StatusValid})
			}
			if err := db.PutCerts(ctx, certs); err != nil {
				b.Fatal(err)
			}
			if _, _, err := db.RevokeSubject(ctx, "s", 1, time.Now()); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := p.Update(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(p.Current().PEM)), "pem-bytes")
		})
	}
}
