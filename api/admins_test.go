package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/problem"
	"github.com/anchorage-pki/anchorage/storage"
)

type testKey = *ecdsa.PrivateKey

func mkCert(t *testing.T, cn string, parent *x509.Certificate, parentKey testKey, isCA bool, notAfter time.Time) (*x509.Certificate, testKey) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := ca.NewSerial()
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: notAfter, BasicConstraintsValid: true, IsCA: isCA}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		tmpl.MaxPathLenZero = parent != nil
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
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

type fakeAdminCA struct{ cert *x509.Certificate }

func (f fakeAdminCA) Issuer() *x509.Certificate { return f.cert }
func (f fakeAdminCA) IssueAdmin(context.Context, ca.AdminRequest) (*ca.Issued, error) {
	return nil, errors.New("not in this test")
}

type fakeCerts map[string]*storage.Cert

func (f fakeCerts) Cert(_ context.Context, serial string) (*storage.Cert, error) {
	if c, ok := f[serial]; ok {
		return c, nil
	}
	return nil, storage.ErrNotFound
}

func record(c *x509.Certificate, method storage.Method, status storage.Status) *storage.Cert {
	return &storage.Cert{Serial: ca.SerialHex(c.SerialNumber), Subject: c.Subject.CommonName, NotBefore: c.NotBefore,
		NotAfter: c.NotAfter, Method: method, Status: status, DER: c.Raw}
}

// TestAdminAndWorkloadAuthentication: which certificate passes as an
// admin and which as a workload, and the problem each refusal returns.
func TestAdminAndWorkloadAuthentication(t *testing.T) {
	year := time.Now().Add(365 * 24 * time.Hour)
	root, rootKey := mkCert(t, "Root", nil, nil, true, year)
	issuer, issuerKey := mkCert(t, "Issuing CA", root, rootKey, true, year)
	adminCA, adminKey := mkCert(t, "Admin CA", root, rootKey, true, year)
	otherRoot, otherKey := mkCert(t, "Other Root", nil, nil, true, year)

	admin, _ := mkCert(t, "alice", adminCA, adminKey, false, year)
	revoked, _ := mkCert(t, "bob", adminCA, adminKey, false, year)
	unrecorded, _ := mkCert(t, "carol", adminCA, adminKey, false, year)
	wrongMethod, _ := mkCert(t, "dave", adminCA, adminKey, false, year)
	recordExpired, _ := mkCert(t, "erin", adminCA, adminKey, false, year)
	expired, _ := mkCert(t, "frank", adminCA, adminKey, false, time.Now().Add(-time.Hour))
	workload, _ := mkCert(t, "web-01", issuer, issuerKey, false, year)
	legacy, _ := mkCert(t, "anchorage-admin", root, rootKey, false, year)
	legacyUnlisted, _ := mkCert(t, "old-admin", root, rootKey, false, year)
	foreign, _ := mkCert(t, "stranger", otherRoot, otherKey, false, year)
	// A workload presenting the admin intermediate in its chain does not
	// become an admin: only the CA's own intermediates are used.
	workloadViaAdmin, _ := mkCert(t, "sneaky", issuer, issuerKey, false, year)

	expiredRec := record(recordExpired, storage.MethodAdmin, storage.StatusValid)
	expiredRec.NotAfter = time.Now().Add(-time.Minute)
	certs := fakeCerts{}
	for _, r := range []*storage.Cert{
		record(admin, storage.MethodAdmin, storage.StatusValid),
		record(revoked, storage.MethodAdmin, storage.StatusRevoked),
		record(wrongMethod, "token", storage.StatusValid),
		expiredRec,
		record(expired, storage.MethodAdmin, storage.StatusValid),
		record(workload, "token", storage.StatusValid),
		record(legacy, storage.MethodAdmin, storage.StatusValid),
		record(legacyUnlisted, storage.MethodAdmin, storage.StatusValid),
	} {
		certs[r.Serial] = r
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	s := New(Options{Enroll: http.NotFoundHandler(), Roots: roots, Issuers: []*x509.Certificate{issuer}, AdminCA: fakeAdminCA{adminCA}, Certs: certs,
		Admins: []string{ca.Fingerprint(legacy)}})

	cases := []struct {
		name        string
		chain       []*x509.Certificate
		asAdmin     string // problem type, "" = accepted
		asWorkload  string
		adminStatus int
	}{
		{"admin", []*x509.Certificate{admin, adminCA}, "", problem.CertUnknown, 0},
		{"admin without chain", []*x509.Certificate{admin}, "", problem.CertUnknown, 0},
		{"revoked admin", []*x509.Certificate{revoked}, problem.CertRevoked, problem.CertUnknown, 403},
		{"unrecorded admin", []*x509.Certificate{unrecorded}, problem.CertUnknown, problem.CertUnknown, 403},
		{"recorded as a workload", []*x509.Certificate{wrongMethod}, problem.Forbidden, problem.CertUnknown, 403},
		{"record expired", []*x509.Certificate{recordExpired}, problem.CertExpired, problem.CertUnknown, 401},
		{"expired admin", []*x509.Certificate{expired}, problem.CertExpired, problem.CertUnknown, 401},
		{"workload", []*x509.Certificate{workload, issuer}, problem.Forbidden, "", 403},
		{"workload sending the admin CA", []*x509.Certificate{workloadViaAdmin, adminCA, issuer}, problem.Forbidden, "", 403},
		{"legacy listed admin", []*x509.Certificate{legacy}, "", problem.CertUnknown, 0},
		{"legacy unlisted", []*x509.Certificate{legacyUnlisted}, problem.Unauthenticated, problem.Unauthenticated, 401},
		{"foreign", []*x509.Certificate{foreign, otherRoot}, problem.Unauthenticated, problem.Unauthenticated, 401},
		{"no certificate", nil, problem.Unauthenticated, problem.Unauthenticated, 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/v1/admins", nil)
			r.TLS = &tls.ConnectionState{PeerCertificates: tc.chain}
			_, err := s.admin(r)
			checkProblem(t, "as admin", err, tc.asAdmin, tc.adminStatus)
			_, err = s.clientCert(r)
			checkProblem(t, "as workload", err, tc.asWorkload, 0)
		})
	}

	// The legacy list is replaced on reload.
	s.SetAdmins(nil)
	r := httptest.NewRequest(http.MethodGet, "/v1/admins", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{legacy}}
	if _, err := s.admin(r); err == nil {
		t.Error("legacy admin accepted after its fingerprint was removed")
	}
}

func checkProblem(t *testing.T, what string, err error, want string, status int) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Errorf("%s: refused: %v", what, err)
		}
		return
	}
	var pe *problem.Error
	if !errors.As(err, &pe) {
		t.Errorf("%s: err = %v, want problem %s", what, err, want)
		return
	}
	if pe.Type != want || (status != 0 && pe.Status != status) {
		t.Errorf("%s: problem %s %d (%s), want %s %d", what, pe.Type, pe.Status, pe.Detail, want, status)
	}
}

// TestRevokedIssuer: the walk up IssuedBy finds the nearest admin the
// predicate names, through other admins, and stops at "init", "local:…",
// unknown serials and loops.
func TestRevokedIssuer(t *testing.T) {
	recs := map[string]*storage.Cert{}
	add := func(serial, by string, st storage.Status) *storage.Cert {
		c := &storage.Cert{Serial: serial, IssuedBy: by, Status: st, Method: storage.MethodAdmin}
		recs[serial] = c
		return c
	}
	add("00", "init", storage.StatusValid)
	add("01", "00", storage.StatusRevoked)
	add("02", "01", storage.StatusValid)
	c := add("03", "02", storage.StatusValid)
	local := add("04", "local:ca-host", storage.StatusValid)
	orphan := add("05", "ffff", storage.StatusValid)
	add("06", "07", storage.StatusValid)
	loop := add("07", "06", storage.StatusValid)
	revoked := func(p *storage.Cert) bool { return p.Status == storage.StatusRevoked }
	for _, tc := range []struct {
		c    *storage.Cert
		want string
	}{{c, "01"}, {recs["02"], "01"}, {recs["01"], ""}, {local, ""}, {orphan, ""}, {loop, ""}} {
		if got := revokedIssuer(tc.c, recs, revoked); got != tc.want {
			t.Errorf("revokedIssuer(%s) = %q, want %q", tc.c.Serial, got, tc.want)
		}
	}
	if got := revokedIssuer(c, recs, func(p *storage.Cert) bool { return p.Serial == "00" }); got != "00" {
		t.Errorf("revokedIssuer(03) naming 00 = %q", got)
	}
}
