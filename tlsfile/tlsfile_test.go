package tlsfile

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/atomicfile"
	"github.com/anchorage-pki/anchorage/signer"
)

func selfSigned(t *testing.T, cn string) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, k
}

// TestFailedReplaceKeepsOldPair: a write that dies before its rename (a
// crash, a full disk) leaves the previous pair, still matching, in place.
func TestFailedReplaceKeepsOldPair(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tls.pem")
	oldCert, oldKey := selfSigned(t, "old")
	if err := Write(path, oldKey, oldCert); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	newCert, newKey := selfSigned(t, "new")
	crash := errors.New("crash before rename")
	write = func(string, []byte, os.FileMode) error { return crash }
	t.Cleanup(func() { write = atomicfile.Write })
	if err := Write(path, newKey, newCert); !errors.Is(err, crash) {
		t.Fatalf("Write = %v, want the injected failure", err)
	}
	got, err := Load(path, "", "")
	if err != nil {
		t.Fatalf("pair after failed replace does not load: %v", err)
	}
	if got.Leaf.Subject.CommonName != "old" {
		t.Errorf("loaded %q, want the old pair", got.Leaf.Subject.CommonName)
	}
	write = atomicfile.Write
	if err := Write(path, newKey, newCert); err != nil {
		t.Fatal(err)
	}
	if got, err := Load(path, "", ""); err != nil || got.Leaf.Subject.CommonName != "new" {
		t.Errorf("after replace: %v %v", got, err)
	}
}

// TestLoadLayouts: the older two-file layout loads while there is no
// combined file; once one exists it wins over stale separate files (a
// crash after the rename, before they were removed).
func TestLoadLayouts(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	oldCert, oldKey := selfSigned(t, "two-files")
	if err := signer.WriteFile(p("tls.key"), oldKey); err != nil {
		t.Fatal(err)
	}
	b, _ := Encode(oldKey, oldCert)
	certOnly := b[:len(b)-len(mustEncodeKey(t, oldKey))]
	if err := os.WriteFile(p("tls.crt"), certOnly, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Load(p("tls.pem"), p("tls.crt"), p("tls.key"))
	if err != nil || got.Leaf.Subject.CommonName != "two-files" {
		t.Fatalf("old layout: %v %v", got, err)
	}
	newCert, newKey := selfSigned(t, "combined")
	if err := Write(p("tls.pem"), newKey, newCert); err != nil {
		t.Fatal(err)
	}
	got, err = Load(p("tls.pem"), p("tls.crt"), p("tls.key"))
	if err != nil || got.Leaf.Subject.CommonName != "combined" {
		t.Fatalf("combined should win: %v %v", got, err)
	}
	if _, err := Load(p("none.pem"), "", ""); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	// A key that does not match is refused before anything is written.
	if err := Write(p("x.pem"), oldKey, newCert); err == nil {
		t.Error("mismatched pair written")
	}
	if _, err := os.Stat(p("x.pem")); err == nil {
		t.Error("mismatched pair left a file")
	}
}

func mustEncodeKey(t *testing.T, k crypto.Signer) []byte {
	b, err := signer.Encode(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
