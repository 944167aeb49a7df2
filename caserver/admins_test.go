package caserver_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/caclient"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/internal/pkitest"
	"github.com/anchorage-pki/anchorage/internal/testenv"
	"github.com/anchorage-pki/anchorage/problem"
	"github.com/anchorage-pki/anchorage/signer"
	"github.com/anchorage-pki/anchorage/storage"
)

// issueAdmin asks the CA, as admin, for an admin certificate for name.
func issueAdmin(t *testing.T, admin *caclient.Client, name, lifetime string) (tls.Certificate, *apiv1.CertResponse, error) {
	t.Helper()
	key := mustKey()
	csr, err := caclient.NewCSR(key, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := admin.IssueAdmin(context.Background(), apiv1.AdminRequest{Name: name, CSR: string(csr), Lifetime: lifetime})
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pair, err := tls.X509KeyPair([]byte(res.Chain), mustPEMKey(t, key))
	if err != nil {
		t.Fatal(err)
	}
	return pair, res, nil
}

func mustPEMKey(t *testing.T, k crypto.Signer) []byte {
	b, err := signer.Encode(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAdminLifecycle: an admin issues a second admin, who works at once;
// revoking it by serial refuses its very next call, without a restart.
// Workload and admin certificates never stand in for each other.
func TestAdminLifecycle(t *testing.T) {
	tc := startCA(t)
	ctx := context.Background()
	adminCA := pkitest.ParseChain(t, mustRead(t, filepath.Join(tc.Dir, "admin-ca.crt")))[0]
	first := pkitest.ParseChain(t, mustRead(t, filepath.Join(tc.Dir, "admin.crt")))
	if len(first) != 2 || !first[1].Equal(adminCA) {
		t.Fatalf("init's admin.crt is not leaf + admin intermediate")
	}

	alicePair, alice, err := issueAdmin(t, tc.Admin(t), "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	aliceCert := pkitest.ParseChain(t, []byte(alice.Chain))
	if d := alice.NotAfter.Sub(alice.NotBefore); d < ca.AdminLifetime || d > ca.AdminLifetime+2*time.Minute {
		t.Errorf("alice's lifetime %s, want 30 days", d)
	}
	if len(aliceCert) != 2 || aliceCert[0].CheckSignatureFrom(adminCA) != nil {
		t.Errorf("alice's certificate is not from the admin intermediate")
	}
	pkitest.LintPEM(t, []byte(alice.Chain))
	aliceClient := tc.Client(t, &alicePair)
	if _, err := aliceClient.Certs(ctx, "", "", 0, ""); err != nil {
		t.Fatalf("alice cannot use her certificate: %v", err)
	}
	list, err := aliceClient.Admins(ctx)
	if err != nil || len(list.Certs) != 2 {
		t.Fatalf("admin list: %+v %v", list, err)
	}
	for _, c := range list.Certs {
		if c.Method != "admin" || c.Status != "valid" {
			t.Errorf("admin list entry %+v", c)
		}
	}

	// A workload is not an admin, and an admin is not a workload.
	workload, _ := tc.enroll(t, "worker.example.com")
	if _, _, err := issueAdmin(t, tc.Client(t, &workload), "mallory", ""); problemType(err) != problem.Forbidden {
		t.Errorf("workload issuing an admin: %v", err)
	}
	if _, err := tc.Client(t, &workload).Admins(ctx); problemType(err) != problem.Forbidden {
		t.Errorf("workload listing admins: %v", err)
	}
	csr, _ := caclient.NewCSR(mustKey(), "alice", nil)
	if _, err := aliceClient.Renew(ctx, csr); problemType(err) != problem.CertUnknown {
		t.Errorf("admin renewing as a workload: %v", err)
	}
	// Signed by the admin intermediate but never recorded: refused.
	adminKey, err := signer.Open(ctx, filepath.Join(tc.Dir, "admin-ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	k := mustKey()
	serial, _ := ca.NewSerial()
	der, _ := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "forged"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, adminCA, k.Public(), adminKey)
	unrecorded := tls.Certificate{Certificate: [][]byte{der, adminCA.Raw}, PrivateKey: k}
	if _, err := tc.Client(t, &unrecorded).Certs(ctx, "", "", 0, ""); problemType(err) != problem.CertUnknown {
		t.Errorf("unrecorded admin certificate: %v", err)
	}
	// Bad requests name what is wrong.
	if _, _, err := issueAdmin(t, tc.Admin(t), "bob", "8760h"); problemType(err) != problem.Malformed {
		t.Errorf("a year-long admin: %v", err)
	}

	res, err := tc.Admin(t).Revoke(ctx, apiv1.RevokeRequest{Serial: alice.Serial, Reason: "keyCompromise"})
	if err != nil || len(res.Revoked) != 1 {
		t.Fatalf("revoke alice: %+v %v", res, err)
	}
	_, err = aliceClient.Certs(ctx, "", "", 0, "")
	var d *problem.Details
	if !errors.As(err, &d) || d.Type != problem.CertRevoked || d.Status != 403 {
		t.Errorf("revoked admin's next call: %v", err)
	}
	if _, err := tc.Admin(t).Certs(ctx, "", "", 0, ""); err != nil {
		t.Errorf("the other admin is still an admin: %v", err)
	}
	list, _ = tc.Admin(t).Admins(ctx)
	for _, c := range list.Certs {
		if c.Serial == alice.Serial && c.Status != "revoked" {
			t.Errorf("alice listed as %s", c.Status)
		}
	}
	// The issuing CA's CRL is for what the issuing CA signed: an admin
	// certificate (admin intermediate) never appears on it.
	der, err = tc.Client(t, nil).CRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rl.RevokedCertificateEntries {
		if ca.SerialHex(e.SerialNumber) == alice.Serial {
			t.Errorf("revoked admin certificate %s is on the issuing CA's CRL %d", alice.Serial, rl.Number)
		}
	}
}

// TestAdminsOfAnOlderCA: a CA made before the admin intermediate has a
// root-signed admin certificate listed in "admins". It still works; the
// first admin issue makes the admin intermediate, but only with the root
// key at hand; removing the fingerprint and reloading (SIGHUP) cuts it.
func TestAdminsOfAnOlderCA(t *testing.T) {
	c := testenv.InitCA(t)
	ctx := context.Background()
	os.Remove(filepath.Join(c.Dir, "admin-ca.crt"))
	os.Remove(filepath.Join(c.Dir, "admin-ca.key"))
	root := pkitest.ParseChain(t, c.Root)[0]
	rootKey, err := signer.Open(ctx, filepath.Join(c.Dir, "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	k := mustKey()
	serial, _ := ca.NewSerial()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "anchorage-admin"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(365 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, root, k.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	legacy, _ := x509.ParseCertificate(der)
	db, err := storage.Open(c.Cfg.Path(c.Cfg.Paths.DB))
	if err != nil {
		t.Fatal(err)
	}
	err = db.PutCert(ctx, &storage.Cert{Serial: ca.SerialHex(serial), Subject: "anchorage-admin", NotBefore: legacy.NotBefore,
		NotAfter: legacy.NotAfter, Method: "admin", Status: storage.StatusValid, DER: der})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	c.Cfg.Admins = []string{ca.Fingerprint(legacy)}
	if err := c.Cfg.Save(); err != nil {
		t.Fatal(err)
	}
	c.Start(t)
	old := c.Client(t, &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k})
	if _, err := old.Certs(ctx, "", "", 0, ""); err != nil {
		t.Fatalf("legacy admin refused: %v", err)
	}

	// Root key offline: a clear refusal, nothing made.
	rootKeyPath := filepath.Join(c.Dir, "root.key")
	if err := os.Rename(rootKeyPath, rootKeyPath+".offline"); err != nil {
		t.Fatal(err)
	}
	_, _, err = issueAdmin(t, old, "alice", "")
	var d *problem.Details
	if !errors.As(err, &d) || d.Status != 409 || !strings.Contains(d.Detail, "root key") {
		t.Errorf("admin issue without admin intermediate or root key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(c.Dir, "admin-ca.crt")); err == nil {
		t.Error("an admin intermediate appeared without the root key")
	}
	// Root key back: the admin intermediate is made once, and used.
	if err := os.Rename(rootKeyPath+".offline", rootKeyPath); err != nil {
		t.Fatal(err)
	}
	alicePair, alice, err := issueAdmin(t, old, "alice", "1h")
	if err != nil {
		t.Fatal(err)
	}
	adminCA := pkitest.ParseChain(t, mustRead(t, filepath.Join(c.Dir, "admin-ca.crt")))[0]
	if pkitest.ParseChain(t, []byte(alice.Chain))[0].CheckSignatureFrom(adminCA) != nil {
		t.Error("alice's certificate is not from the new admin intermediate")
	}
	if _, err := c.Client(t, &alicePair).Certs(ctx, "", "", 0, ""); err != nil {
		t.Errorf("alice: %v", err)
	}

	// Dropping the legacy fingerprint takes effect on reload.
	cfg, _ := config.Load(c.Dir)
	cfg.Admins = nil
	if err := cfg.Save(); err != nil {
		t.Fatal(err)
	}
	if err := c.Srv.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Certs(ctx, "", "", 0, ""); problemType(err) != problem.Unauthenticated {
		t.Errorf("legacy admin after its fingerprint was removed: %v", err)
	}
	if _, err := c.Client(t, &alicePair).Certs(ctx, "", "", 0, ""); err != nil {
		t.Errorf("alice after reload: %v", err)
	}
}

// TestAdminIssuedBy: every admin record says which admin asked for it, so
// what a leaked admin minted before it was revoked is found: the revoke
// answer names the admins it issued that are still valid (also through
// another admin), and the admin list marks them.
func TestAdminIssuedBy(t *testing.T) {
	tc := startCA(t)
	ctx := context.Background()
	initSerial := ca.SerialHex(pkitest.ParseChain(t, mustRead(t, filepath.Join(tc.Dir, "admin.crt")))[0].SerialNumber)

	malloryPair, mallory, err := issueAdmin(t, tc.Admin(t), "mallory", "")
	if err != nil {
		t.Fatal(err)
	}
	malloryClient := tc.Client(t, &malloryPair)
	// Before anyone notices, mallory mints a backdoor admin, which mints another.
	backdoorPair, backdoor, err := issueAdmin(t, malloryClient, "backup-job", "2160h")
	if err != nil {
		t.Fatal(err)
	}
	_, second, err := issueAdmin(t, tc.Client(t, &backdoorPair), "backup-job-2", "1h")
	if err != nil {
		t.Fatal(err)
	}
	byOf := func(list *apiv1.CertList) map[string]apiv1.CertInfo {
		m := map[string]apiv1.CertInfo{}
		for _, c := range list.Certs {
			m[c.Serial] = c
		}
		return m
	}
	list, err := tc.Admin(t).Admins(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := byOf(list)
	for serial, want := range map[string]string{initSerial: "init", mallory.Serial: initSerial, backdoor.Serial: mallory.Serial, second.Serial: backdoor.Serial} {
		if c := m[serial]; c.IssuedBy != want || c.IssuerRevoked != "" {
			t.Errorf("admin %s (%s): issuedBy %q issuerRevoked %q, want issuedBy %q", serial, c.Subject, c.IssuedBy, c.IssuerRevoked, want)
		}
	}

	// A workload revocation names no admins.
	_, wl := tc.enroll(t, "worker.example.com")
	res, err := tc.Admin(t).Revoke(ctx, apiv1.RevokeRequest{Serial: wl.Serial})
	if err != nil || len(res.IssuedByRevoked) != 0 {
		t.Errorf("workload revoke: %+v %v", res, err)
	}

	wantNamed := func(what string, res *apiv1.RevokeResponse, want map[string]string) {
		t.Helper()
		got := map[string]string{}
		for _, c := range res.IssuedByRevoked {
			got[c.Serial] = c.IssuerRevoked
			if c.Status != "valid" || c.Method != "admin" {
				t.Errorf("%s: named %+v", what, c)
			}
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: issuedByRevoked %v, want %v", what, got, want)
		}
	}
	res, err = tc.Admin(t).Revoke(ctx, apiv1.RevokeRequest{Serial: mallory.Serial, Reason: "keyCompromise"})
	if err != nil || len(res.Revoked) != 1 {
		t.Fatalf("revoke mallory: %+v %v", res, err)
	}
	wantNamed("revoke mallory", res, map[string]string{backdoor.Serial: mallory.Serial, second.Serial: mallory.Serial})

	list, err = tc.Admin(t).Admins(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m = byOf(list)
	if c := m[backdoor.Serial]; c.Status != "valid" || c.IssuerRevoked != mallory.Serial {
		t.Errorf("backup-job after mallory's revoke: %+v", c)
	}
	if c := m[second.Serial]; c.IssuerRevoked != mallory.Serial {
		t.Errorf("backup-job-2 after mallory's revoke: %+v", c)
	}
	if c := m[mallory.Serial]; c.Status != "revoked" || c.IssuerRevoked != "" || c.IssuedBy != initSerial {
		t.Errorf("mallory after her revoke: %+v", c)
	}

	// Revoking the backdoor names what it made; asking again about
	// mallory (already revoked) still names what is left of hers.
	res, err = tc.Admin(t).Revoke(ctx, apiv1.RevokeRequest{Serial: backdoor.Serial})
	if err != nil {
		t.Fatal(err)
	}
	wantNamed("revoke backup-job", res, map[string]string{second.Serial: backdoor.Serial})
	res, err = tc.Admin(t).Revoke(ctx, apiv1.RevokeRequest{Serial: mallory.Serial})
	if err != nil || len(res.AlreadyRevoked) != 1 {
		t.Fatalf("revoke mallory again: %+v %v", res, err)
	}
	wantNamed("revoke mallory again", res, map[string]string{second.Serial: mallory.Serial})
	if _, err := tc.Admin(t).Revoke(ctx, apiv1.RevokeRequest{Serial: second.Serial}); err != nil {
		t.Fatal(err)
	}
	res, err = tc.Admin(t).Revoke(ctx, apiv1.RevokeRequest{Serial: mallory.Serial})
	if err != nil {
		t.Fatal(err)
	}
	wantNamed("revoke mallory once all are revoked", res, map[string]string{})
}
