package ca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/internal/pkitest"
	"github.com/anchorage-pki/anchorage/storage"
)

// testCA is a root with three intermediates under it, as init makes them.
type testCA struct {
	root, issuer, admin, service             *x509.Certificate
	issuerKey, adminKey, serviceKey, rootKey *ecdsa.PrivateKey
	store                                    *storage.DB
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	mk := func(cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, pathlen int) (*x509.Certificate, *ecdsa.PrivateKey) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		serial, _ := ca.NewSerial()
		tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn, Organization: []string{"Test"}},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(3 * 365 * 24 * time.Hour),
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
			MaxPathLen: pathlen, MaxPathLenZero: pathlen == 0}
		if parent == nil {
			parent, parentKey = tmpl, k
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, k.Public(), parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c, k
	}
	c := &testCA{}
	c.root, c.rootKey = mk("Test Root CA", nil, nil, 1)
	c.issuer, c.issuerKey = mk("Test Issuing CA", c.root, c.rootKey, 0)
	c.admin, c.adminKey = mk("Test Admin CA", c.root, c.rootKey, 0)
	c.service, c.serviceKey = mk("Test Service CA", c.root, c.rootKey, 0)
	db, err := storage.Create(filepath.Join(t.TempDir(), "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c.store = db
	return c
}

func pemOf(certs ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

// TestIssueTLS: the API's own certificate is a serverAuth leaf of the
// issuing CA, lints clean, is recorded and counted.
func TestIssueTLS(t *testing.T) {
	c := newTestCA(t)
	auth, err := ca.New(ca.Options{Issuer: c.issuer, Signer: c.issuerKey, Store: c.store})
	if err != nil {
		t.Fatal(err)
	}
	names, _ := ca.ParseSANs([]string{"ca.example.com", "10.1.2.3"})
	cases := []struct {
		name     string
		req      ca.TLSRequest
		lifetime time.Duration
		ok       bool
	}{
		{"default lifetime", ca.TLSRequest{CommonName: "ca.example.com", Names: names}, ca.TLSLifetime, true},
		{"short", ca.TLSRequest{CommonName: "ca.example.com", Names: names, Lifetime: 48 * time.Hour}, 48 * time.Hour, true},
		{"no names", ca.TLSRequest{CommonName: "ca.example.com"}, 0, false},
		{"bad CN", ca.TLSRequest{CommonName: "", Names: names}, 0, false},
	}
	issued := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := auth.IssueTLS(context.Background(), tc.req)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				return
			}
			issued++
			if !slices.Equal(got.Cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || got.Cert.IsCA {
				t.Errorf("profile: EKU %v CA %v", got.Cert.ExtKeyUsage, got.Cert.IsCA)
			}
			if d := got.Cert.NotAfter.Sub(got.Cert.NotBefore); d < tc.lifetime || d > tc.lifetime+2*time.Minute {
				t.Errorf("lifetime %s, want about %s", d, tc.lifetime)
			}
			pkitest.LintPEM(t, pemOf(got.Chain...))
			pkitest.MustVerify(t, pemOf(c.root), pemOf(got.Chain...))
			rec, err := c.store.Cert(context.Background(), ca.SerialHex(got.Cert.SerialNumber))
			if err != nil || rec.Method != "tls" || rec.Status != storage.StatusValid {
				t.Errorf("stored record %+v, %v", rec, err)
			}
			if !got.Key.Public().(*ecdsa.PublicKey).Equal(got.Cert.PublicKey) {
				t.Error("key does not match certificate")
			}
		})
	}
	if n := auth.Counts().Issued["tls"]; n != uint64(issued) {
		t.Errorf("counted %d tls certificates, issued %d", n, issued)
	}
}

// TestIssueTLSFromServiceCA: with the service intermediate the API's
// certificate chains leaf, service CA, root — never through the issuing CA
// (the trust anchor) — and is still recorded and counted by the core.
func TestIssueTLSFromServiceCA(t *testing.T) {
	c := newTestCA(t)
	auth, err := ca.New(ca.Options{Issuer: c.issuer, Signer: c.issuerKey, Store: c.store})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.NewServiceCA(c.service, c.issuerKey); err == nil {
		t.Error("service CA accepted a key that is not its certificate's")
	}
	svc, err := ca.NewServiceCA(c.service, c.serviceKey)
	if err != nil {
		t.Fatal(err)
	}
	names, _ := ca.ParseSANs([]string{"ca.example.com", "10.1.2.3"})
	got, err := auth.IssueTLS(context.Background(), ca.TLSRequest{CommonName: "ca.example.com", Names: names, Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Chain) != 2 || !got.Chain[1].Equal(c.service) {
		t.Fatalf("chain does not end in the service CA")
	}
	if err := got.Cert.CheckSignatureFrom(c.service); err != nil {
		t.Errorf("not signed by the service CA: %v", err)
	}
	if got.Cert.CheckSignatureFrom(c.issuer) == nil {
		t.Error("signed by the issuing CA")
	}
	pkitest.LintPEM(t, pemOf(got.Chain...))
	pkitest.MustVerify(t, pemOf(c.root), pemOf(got.Chain...))
	if rec, err := c.store.Cert(context.Background(), ca.SerialHex(got.Cert.SerialNumber)); err != nil || rec.Method != storage.MethodTLS {
		t.Errorf("stored record %+v, %v", rec, err)
	}
	if n := auth.Counts().Issued["tls"]; n != 1 {
		t.Errorf("counted %d tls certificates, want 1", n)
	}
}

// TestAdminIssuer: admin certificates come from the admin intermediate,
// clientAuth only, recorded with method admin, lifetime bounded.
func TestAdminIssuer(t *testing.T) {
	c := newTestCA(t)
	if _, err := ca.NewAdminIssuer(ca.AdminOptions{Issuer: c.admin, Signer: c.issuerKey, Store: c.store}); err == nil {
		t.Error("admin issuer accepted a key that is not its certificate's")
	}
	adm, err := ca.NewAdminIssuer(ca.AdminOptions{Issuer: c.admin, Signer: c.adminKey, Store: c.store})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ignored"}}, key)
	csr, _ := x509.ParseCertificateRequest(der)
	cases := []struct {
		name     string
		req      ca.AdminRequest
		lifetime time.Duration
		err      error
	}{
		{"default 30 days", ca.AdminRequest{Name: "alice", CSR: csr, IssuedBy: "init"}, 30 * 24 * time.Hour, nil},
		{"an hour", ca.AdminRequest{Name: "bob", CSR: csr, Lifetime: time.Hour, IssuedBy: "0a1b"}, time.Hour, nil},
		{"too long", ca.AdminRequest{Name: "carol", CSR: csr, Lifetime: 365 * 24 * time.Hour, IssuedBy: "0a1b"}, 0, ca.ErrAdminRequest},
		{"empty name", ca.AdminRequest{CSR: csr}, 0, ca.ErrAdminRequest},
		{"no CSR", ca.AdminRequest{Name: "dave"}, 0, ca.ErrBadCSR},
		{"no issuer recorded", ca.AdminRequest{Name: "erin", CSR: csr}, 0, ca.ErrAdminRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := adm.Issue(context.Background(), tc.req)
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if got.Cert.Subject.CommonName != tc.req.Name || !slices.Equal(got.Cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
				t.Errorf("subject %q EKU %v", got.Cert.Subject.CommonName, got.Cert.ExtKeyUsage)
			}
			if err := got.Cert.CheckSignatureFrom(c.admin); err != nil {
				t.Errorf("not signed by the admin intermediate: %v", err)
			}
			if d := got.Cert.NotAfter.Sub(got.Cert.NotBefore); d < tc.lifetime || d > tc.lifetime+2*time.Minute {
				t.Errorf("lifetime %s, want about %s", d, tc.lifetime)
			}
			pkitest.LintPEM(t, pemOf(got.Chain...))
			pkitest.MustVerify(t, pemOf(c.root), pemOf(got.Chain...))
			// It does not chain through the issuing CA, so no trust anchor
			// on the issuing CA accepts it.
			pool := x509.NewCertPool()
			pool.AddCert(c.root)
			inter := x509.NewCertPool()
			inter.AddCert(c.issuer)
			if _, err := got.Cert.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
				t.Error("admin certificate verifies through the issuing CA")
			}
			rec, err := c.store.Cert(context.Background(), got.Record.Serial)
			if err != nil || rec.Method != storage.MethodAdmin || rec.Subject != tc.req.Name || rec.IssuedBy != tc.req.IssuedBy {
				t.Errorf("stored record %+v, %v", rec, err)
			}
		})
	}
}
