package ceremony_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/ceremony"
	"github.com/anchorage-pki/anchorage/internal/pkitest"
	"github.com/anchorage-pki/anchorage/signer"
	"github.com/anchorage-pki/anchorage/storage"
)

func files(dir string) ceremony.Files {
	p := func(n string) string { return filepath.Join(dir, n) }
	return ceremony.Files{Root: p("root.crt"), RootKey: p("root.key"), CACert: p("ca.crt"), CAKey: p("ca.key"),
		AdminCACert: p("admin-ca.crt"), AdminCAKey: p("admin-ca.key"),
		ServiceCACert: p("service-ca.crt"), ServiceCAKey: p("service-ca.key"), TLS: p("tls.pem"),
		AdminCert: p("admin.crt"), AdminKey: p("admin.key"), ProvisionerKey: p("prov.key")}
}

func openStore(t *testing.T) *storage.DB {
	t.Helper()
	db, err := storage.Create(filepath.Join(t.TempDir(), "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestInitMaterial checks every certificate init writes: zlint clean, the
// chains verify with openssl, keys are 0600, the admin certificate chains
// through the admin intermediate and not the issuing CA, the leaves are
// recorded, tls.pem chains through the service intermediate (never the
// issuing CA, the trust anchor), and a second init refuses.
func TestInitMaterial(t *testing.T) {
	f := files(t.TempDir())
	store := openStore(t)
	res, err := ceremony.Init(context.Background(), ceremony.Options{Name: "Example Corp", TLSNames: []string{"ca.example.com", "10.1.2.3"}, Files: f, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*x509.Certificate{res.Issuer, res.AdminCA, res.ServiceCA} {
		if !c.IsCA || !c.MaxPathLenZero || c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
			t.Errorf("%s profile: CA=%v pathlen0=%v KU=%v", c.Subject.CommonName, c.IsCA, c.MaxPathLenZero, c.KeyUsage)
		}
	}
	if res.AdminCA.Subject.CommonName != "Example Corp Admin CA" {
		t.Errorf("admin intermediate CN %q", res.AdminCA.Subject.CommonName)
	}
	if res.ServiceCA.Subject.CommonName != "Example Corp Service CA" || res.ServiceCA.CheckSignatureFrom(res.Root) != nil {
		t.Errorf("service intermediate CN %q, or not under the root", res.ServiceCA.Subject.CommonName)
	}
	if d := res.ServiceCA.NotAfter.Sub(res.ServiceCA.NotBefore); d > ceremony.ServiceCALifetime+2*60e9 || d < ceremony.ServiceCALifetime {
		t.Errorf("service intermediate lives %s, want %s", d, ceremony.ServiceCALifetime)
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	root := read(f.Root)
	for _, p := range []string{f.Root, f.CACert, f.AdminCACert, f.ServiceCACert, f.TLS, f.AdminCert} {
		pkitest.LintPEM(t, read(p))
	}
	for _, p := range []string{f.CACert, f.AdminCACert, f.ServiceCACert, f.TLS, f.AdminCert} {
		pkitest.MustVerify(t, root, read(p))
	}
	pair, err := tls.LoadX509KeyPair(f.TLS, f.TLS)
	if err != nil {
		t.Fatalf("tls.pem is not a matching key pair: %v", err)
	}
	var tlsChain []*x509.Certificate
	for _, der := range pair.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		tlsChain = append(tlsChain, c)
	}
	if len(tlsChain) != 2 || !tlsChain[1].Equal(res.ServiceCA) || tlsChain[0].CheckSignatureFrom(res.ServiceCA) != nil {
		t.Errorf("tls.pem is not leaf + service intermediate")
	}
	if tlsChain[0].CheckSignatureFrom(res.Issuer) == nil {
		t.Error("the TLS certificate is signed by the issuing CA: its key would be an AWS identity")
	}
	adminChain := pkitest.ParseChain(t, read(f.AdminCert))
	if len(adminChain) != 2 || !adminChain[1].Equal(res.AdminCA) || adminChain[0].CheckSignatureFrom(res.AdminCA) != nil {
		t.Errorf("admin.crt is not leaf + admin intermediate")
	}
	if d := res.Admin.NotAfter.Sub(res.Admin.NotBefore); d > ca.AdminLifetime+2*60e9 {
		t.Errorf("first admin certificate lives %s, want %s", d, ca.AdminLifetime)
	}
	for _, k := range []string{f.RootKey, f.CAKey, f.AdminCAKey, f.ServiceCAKey, f.TLS, f.AdminKey, f.ProvisionerKey} {
		st, err := os.Stat(k)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", k, st.Mode(), err)
		}
	}
	for c, method := range map[*x509.Certificate]storage.Method{res.TLS: storage.MethodTLS, res.Admin: storage.MethodAdmin} {
		rec, err := store.Cert(context.Background(), ca.SerialHex(c.SerialNumber))
		if err != nil || rec.Method != method {
			t.Errorf("%s certificate not recorded: %+v %v", method, rec, err)
		}
	}
	if _, err := ceremony.Init(context.Background(), ceremony.Options{Name: "Again", Files: f, Store: store}); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Errorf("second init: %v", err)
	}
	if b := read(f.Root); string(b) != string(root) {
		t.Error("second init changed the root")
	}
}

// TestInitRollsBack: a write that fails part way (here: the TLS file's
// directory is missing) leaves none of the files written before it.
func TestInitRollsBack(t *testing.T) {
	dir := t.TempDir()
	f := files(dir)
	f.TLS = filepath.Join(dir, "missing", "tls.pem")
	if _, err := ceremony.Init(context.Background(), ceremony.Options{Name: "Broken", Files: f, Store: openStore(t)}); err == nil {
		t.Fatal("init succeeded with an unwritable TLS path")
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 0 {
		t.Errorf("init left files behind: %v", left)
	}
}

// TestAdminCAForExistingCA: a CA made before the admin intermediate gets
// one from its root key, once.
func TestAdminCAForExistingCA(t *testing.T) {
	dir := t.TempDir()
	f := files(dir)
	if _, err := ceremony.Init(context.Background(), ceremony.Options{Name: "Old", Files: f, Store: openStore(t)}); err != nil {
		t.Fatal(err)
	}
	os.Remove(f.AdminCACert)
	os.Remove(f.AdminCAKey)
	root := pkitest.ParseChain(t, mustRead(t, f.Root))[0]
	rootKey, err := signer.Open(context.Background(), f.RootKey)
	if err != nil {
		t.Fatal(err)
	}
	o := ceremony.AdminCAOptions{Root: root, RootKey: rootKey, Cert: f.AdminCACert, Key: f.AdminCAKey}
	cert, key, err := ceremony.AdminCA(o)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "Old Admin CA" || cert.CheckSignatureFrom(root) != nil || !cert.MaxPathLenZero {
		t.Errorf("admin intermediate %q", cert.Subject.CommonName)
	}
	if _, err := ca.NewAdminIssuer(ca.AdminOptions{Issuer: cert, Signer: key, Store: openStore(t)}); err != nil {
		t.Error(err)
	}
	pkitest.LintPEM(t, mustRead(t, f.AdminCACert))
	if _, _, err := ceremony.AdminCA(o); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Errorf("second admin intermediate: %v", err)
	}
}

// TestServiceCAForExistingCA: a CA made before the service intermediate
// gets one from its root key, once, and the TLS profile lints under it.
func TestServiceCAForExistingCA(t *testing.T) {
	dir := t.TempDir()
	f := files(dir)
	if _, err := ceremony.Init(context.Background(), ceremony.Options{Name: "Old", Files: f, Store: openStore(t)}); err != nil {
		t.Fatal(err)
	}
	os.Remove(f.ServiceCACert)
	os.Remove(f.ServiceCAKey)
	root := pkitest.ParseChain(t, mustRead(t, f.Root))[0]
	rootKey, err := signer.Open(context.Background(), f.RootKey)
	if err != nil {
		t.Fatal(err)
	}
	o := ceremony.IntermediateOptions{Root: root, RootKey: rootKey, Cert: f.ServiceCACert, Key: f.ServiceCAKey}
	cert, key, err := ceremony.ServiceCA(o)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "Old Service CA" || cert.CheckSignatureFrom(root) != nil || !cert.MaxPathLenZero {
		t.Errorf("service intermediate %q", cert.Subject.CommonName)
	}
	if _, err := ca.NewServiceCA(cert, key); err != nil {
		t.Error(err)
	}
	pkitest.LintPEM(t, mustRead(t, f.ServiceCACert))
	if st, err := os.Stat(f.ServiceCAKey); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("service-ca.key: %v %v", st, err)
	}
	if _, _, err := ceremony.ServiceCA(o); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Errorf("second service intermediate: %v", err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
