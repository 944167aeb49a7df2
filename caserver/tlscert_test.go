package caserver_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/internal/pkitest"
	"github.com/anchorage-pki/anchorage/internal/testenv"
	"github.com/anchorage-pki/anchorage/signer"
)

// TestAPICertificateRenewedBeforeExpiry: a CA whose API certificate has
// less than 30 days left replaces it at start, for the same names, on disk
// and on the wire, and records it.
func TestAPICertificateRenewedBeforeExpiry(t *testing.T) {
	c := testenv.InitCA(t)
	caKey, err := signer.Open(context.Background(), filepath.Join(c.Dir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	issuer := pkitest.ParseChain(t, mustRead(t, filepath.Join(c.Dir, "ca.crt")))[0]
	oldTLS := pkitest.ParseChain(t, mustRead(t, filepath.Join(c.Dir, "tls.crt")))[0]
	names := ca.Names{DNS: oldTLS.DNSNames, IPs: oldTLS.IPAddresses}
	short, key, err := ca.ServiceCert(issuer, caKey, oldTLS.Subject.CommonName, names, x509.ExtKeyUsageServerAuth, 10*24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := signer.WriteFile(filepath.Join(c.Dir, "tls.key"), key); err != nil {
		t.Fatal(err)
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: short.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuer.Raw})...)
	if err := os.WriteFile(filepath.Join(c.Dir, "tls.crt"), chain, 0o644); err != nil {
		t.Fatal(err)
	}

	c.Start(t)
	conn, err := tls.Dial("tcp", c.Cfg.Listen, &tls.Config{RootCAs: pool(t, c.Root), ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	served := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	if served.NotAfter.Before(time.Now().Add(300 * 24 * time.Hour)) {
		t.Errorf("served certificate expires %s; want it renewed for a year", served.NotAfter)
	}
	onDisk := pkitest.ParseChain(t, mustRead(t, filepath.Join(c.Dir, "tls.crt")))[0]
	if !onDisk.Equal(served) || onDisk.Subject.CommonName != oldTLS.Subject.CommonName || len(onDisk.IPAddresses) != len(oldTLS.IPAddresses) {
		t.Errorf("tls.crt on disk is not the served, same-named certificate")
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(c.Dir, "tls.crt"), filepath.Join(c.Dir, "tls.key")); err != nil {
		t.Errorf("renewed pair on disk: %v", err)
	}
	if st, _ := os.Stat(filepath.Join(c.Dir, "tls.key")); st.Mode().Perm() != 0o600 {
		t.Errorf("tls.key mode %v", st.Mode())
	}
	pkitest.LintPEM(t, mustRead(t, filepath.Join(c.Dir, "tls.crt")))
	list, err := c.Admin(t).Certs(context.Background(), oldTLS.Subject.CommonName, "valid", 0)
	if err != nil || len(list.Certs) != 2 {
		t.Errorf("storage should hold the init and the renewed TLS certificate: %+v %v", list, err)
	}
}
