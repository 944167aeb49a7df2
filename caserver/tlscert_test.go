package caserver_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/caserver"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/internal/pkitest"
	"github.com/anchorage-pki/anchorage/internal/testenv"
	"github.com/anchorage-pki/anchorage/signer"
	"github.com/anchorage-pki/anchorage/storage"
	"github.com/anchorage-pki/anchorage/tlsfile"
)

// shortTLS issues, through the CA's own core, a TLS certificate for the
// same names as init's that has only 10 days left, as the CA would hold
// after a year.
func shortTLS(t *testing.T, c *testenv.CA) *ca.ServiceIssued {
	t.Helper()
	ctx := context.Background()
	caKey, err := signer.Open(ctx, c.Cfg.Path(c.Cfg.Paths.CAKey))
	if err != nil {
		t.Fatal(err)
	}
	issuer := pkitest.ParseChain(t, mustRead(t, c.Cfg.Path(c.Cfg.Paths.CACert)))[0]
	cur, err := tls.LoadX509KeyPair(filepath.Join(c.Dir, "tls.pem"), filepath.Join(c.Dir, "tls.pem"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(c.Cfg.Path(c.Cfg.Paths.DB))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	auth, err := ca.New(ca.Options{Issuer: issuer, Signer: caKey, Store: db})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := auth.IssueTLS(ctx, ca.TLSRequest{CommonName: cur.Leaf.Subject.CommonName,
		Names: ca.Names{DNS: cur.Leaf.DNSNames, IPs: cur.Leaf.IPAddresses}, Lifetime: 10 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func servedCert(t *testing.T, c *testenv.CA) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", c.Cfg.Listen, &tls.Config{RootCAs: pool(t, c.Root), ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// TestAPICertificateRenewedBeforeExpiry: a CA directory in the older
// two-file layout (tls.crt + tls.key) whose API certificate has less than
// 30 days left replaces it at start through the issuing core, for the same
// names: one combined tls.pem (0600) on disk and on the wire, lint clean,
// recorded and counted; the replaced pair is gone.
func TestAPICertificateRenewedBeforeExpiry(t *testing.T) {
	c := testenv.InitCA(t)
	short := shortTLS(t, c)
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: short.Cert.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: short.Chain[1].Raw})...)
	if err := os.WriteFile(filepath.Join(c.Dir, "tls.crt"), chain, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := signer.WriteFile(filepath.Join(c.Dir, "tls.key"), short.Key); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(c.Dir, "tls.pem"))
	setOldLayout(t, c)

	c.Start(t)
	served := servedCert(t, c)
	if served.NotAfter.Before(time.Now().Add(300 * 24 * time.Hour)) {
		t.Errorf("served certificate expires %s; want it renewed for a year", served.NotAfter)
	}
	onDisk, err := tlsfile.Load(filepath.Join(c.Dir, "tls.pem"), "", "")
	if err != nil {
		t.Fatalf("renewed tls.pem: %v", err)
	}
	if !onDisk.Leaf.Equal(served) || onDisk.Leaf.Subject.CommonName != short.Cert.Subject.CommonName || len(onDisk.Leaf.IPAddresses) != len(short.Cert.IPAddresses) {
		t.Errorf("tls.pem on disk is not the served, same-named certificate")
	}
	if st, _ := os.Stat(filepath.Join(c.Dir, "tls.pem")); st.Mode().Perm() != 0o600 {
		t.Errorf("tls.pem mode %v", st.Mode())
	}
	for _, old := range []string{"tls.crt", "tls.key"} {
		if _, err := os.Stat(filepath.Join(c.Dir, old)); err == nil {
			t.Errorf("replaced %s is still there", old)
		}
	}
	pkitest.LintPEM(t, mustRead(t, filepath.Join(c.Dir, "tls.pem")))
	list, err := c.Admin(t).Certs(context.Background(), short.Cert.Subject.CommonName, "valid", 0, "")
	if err != nil || len(list.Certs) != 3 { // init's, the short one, the renewed one
		t.Errorf("storage should hold init's, the short and the renewed TLS certificate: %+v %v", list, err)
	}
	if n := c.Srv.Authority.Counts().Issued["tls"]; n != 1 {
		t.Errorf("tls issued count %d, want 1", n)
	}
}

// TestAPICertificateCrashAfterRename: a crash after the combined file was
// renamed into place but before the older pair was removed leaves a stale
// tls.crt/tls.key that is not the new key's; the CA starts on the combined
// file, never on a mixed pair.
func TestAPICertificateCrashAfterRename(t *testing.T) {
	c := testenv.InitCA(t)
	stale := shortTLS(t, c)
	if err := os.WriteFile(filepath.Join(c.Dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: stale.Cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := signer.WriteFile(filepath.Join(c.Dir, "tls.key"), stale.Key); err != nil {
		t.Fatal(err)
	}
	want, err := tlsfile.Load(filepath.Join(c.Dir, "tls.pem"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	setOldLayout(t, c)
	c.Start(t)
	if served := servedCert(t, c); !served.Equal(want.Leaf) {
		t.Errorf("served %s, want the combined file's certificate", ca.SerialHex(served.SerialNumber))
	}
}

// setOldLayout rewrites the config as CAs made before tls.pem have it.
func setOldLayout(t *testing.T, c *testenv.CA) {
	t.Helper()
	cfg, err := config.Load(c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Paths.TLS, cfg.Paths.TLSCert, cfg.Paths.TLSKey = "", "tls.crt", "tls.key"
	if err := cfg.Save(); err != nil {
		t.Fatal(err)
	}
}

// legacyTLS makes c look like a CA from before the service intermediate:
// no service-ca.*, and a tls.pem from the issuing CA with 10 days left.
func legacyTLS(t *testing.T, c *testenv.CA) *ca.ServiceIssued {
	t.Helper()
	short := shortTLS(t, c)
	os.Remove(filepath.Join(c.Dir, "service-ca.crt"))
	os.Remove(filepath.Join(c.Dir, "service-ca.key"))
	if err := tlsfile.Write(filepath.Join(c.Dir, "tls.pem"), short.Key, short.Chain...); err != nil {
		t.Fatal(err)
	}
	return short
}

func healthWarnings(t *testing.T, c *testenv.CA) (string, []string) {
	t.Helper()
	h, err := c.Client(t, nil).Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h.Status, h.Warnings
}

// TestLegacyTLSRenewalMakesServiceCA: a legacy CA with root.key in its
// directory makes the service intermediate at renewal and the renewed
// certificate chains through it, not through the issuing CA.
func TestLegacyTLSRenewalMakesServiceCA(t *testing.T) {
	c := testenv.InitCA(t)
	legacyTLS(t, c)
	c.Start(t)
	served := servedCert(t, c)
	svc := pkitest.ParseChain(t, mustRead(t, filepath.Join(c.Dir, "service-ca.crt")))[0]
	if err := served.CheckSignatureFrom(svc); err != nil {
		t.Errorf("renewed certificate is not from the new service intermediate: %v", err)
	}
	if served.NotAfter.Before(time.Now().Add(300 * 24 * time.Hour)) {
		t.Errorf("served certificate expires %s; want it renewed", served.NotAfter)
	}
	if st, _ := os.Stat(filepath.Join(c.Dir, "service-ca.key")); st == nil || st.Mode().Perm() != 0o600 {
		t.Errorf("service-ca.key: %v", st)
	}
	pkitest.LintPEM(t, mustRead(t, filepath.Join(c.Dir, "service-ca.crt")))
	if status, w := healthWarnings(t, c); status != "ok" || strings.Contains(strings.Join(w, "\n"), "TLS") {
		t.Errorf("health %s %v", status, w)
	}
}

// TestLegacyTLSRenewalRootOffline: without root.key the CA keeps renewing
// from the issuing CA (never breaking), warns on /health without going
// unhealthy, and `anchorage-ca service-ca` + SIGHUP moves it over at once.
func TestLegacyTLSRenewalRootOffline(t *testing.T) {
	c := testenv.InitCA(t)
	legacyTLS(t, c)
	rootKey := filepath.Join(c.Dir, "root.key")
	offline := filepath.Join(t.TempDir(), "root.key")
	if err := os.Rename(rootKey, offline); err != nil {
		t.Fatal(err)
	}
	c.Start(t)
	issuer := pkitest.ParseChain(t, mustRead(t, filepath.Join(c.Dir, "ca.crt")))[0]
	served := servedCert(t, c)
	if served.NotAfter.Before(time.Now().Add(300*24*time.Hour)) || served.CheckSignatureFrom(issuer) != nil {
		t.Fatalf("want a renewed certificate from the issuing CA, got %s until %s", served.Issuer, served.NotAfter)
	}
	if _, err := os.Stat(filepath.Join(c.Dir, "service-ca.crt")); err == nil {
		t.Error("service-ca.crt made without the root key")
	}
	status, w := healthWarnings(t, c)
	if status != "ok" || !strings.Contains(strings.Join(w, "\n"), "anchorage-ca service-ca --dir") {
		t.Errorf("health %s %v; want ok with the service-ca warning", status, w)
	}

	if err := os.Rename(offline, rootKey); err != nil {
		t.Fatal(err)
	}
	if _, made, err := caserver.MakeServiceCA(context.Background(), c.Cfg, nil); err != nil || !made {
		t.Fatalf("MakeServiceCA: %v %v", made, err)
	}
	if err := c.Srv.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	svc := pkitest.ParseChain(t, mustRead(t, filepath.Join(c.Dir, "service-ca.crt")))[0]
	if err := servedCert(t, c).CheckSignatureFrom(svc); err != nil {
		t.Errorf("after service-ca and SIGHUP the served certificate is not from it: %v", err)
	}
	if _, w := healthWarnings(t, c); strings.Contains(strings.Join(w, "\n"), "service-ca") {
		t.Errorf("warning left after the move: %v", w)
	}
}
