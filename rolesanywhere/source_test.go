package rolesanywhere

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/atomicfile"
)

func TestFileSourceKeyFormats(t *testing.T) {
	ecCert, rsaCert := vec("certs", "ec-leaf-cert.pem"), vec("certs", "rsa-leaf-cert.pem")
	tests := []struct {
		name     string
		cert     string
		key      string
		password string
		wantErr  string
	}{
		{"SEC1 EC", ecCert, vec("certs", "ec-leaf-key.pem"), "", ""},
		{"PKCS#1 RSA", rsaCert, vec("certs", "rsa-leaf-key.pem"), "", ""},
		{"PKCS#8 EC", ecCert, "testdata/ec-leaf-key.pkcs8.pem", "", ""},
		{"PKCS#8 RSA", rsaCert, "testdata/rsa-leaf-key.pkcs8.pem", "", ""},
		{"encrypted PBKDF2-SHA256 AES-256", ecCert, "testdata/ec-leaf-key.enc-pbkdf2-sha256.pem", "vector-pass", ""},
		{"encrypted PBKDF2-SHA512 AES-128", rsaCert, "testdata/rsa-leaf-key.enc-pbkdf2-sha512.pem", "vector-pass", ""},
		{"encrypted scrypt AES-192", ecCert, "testdata/ec-leaf-key.enc-scrypt.pem", "vector-pass", ""},
		{"encrypted without password", ecCert, "testdata/ec-leaf-key.enc-scrypt.pem", "", "--pkcs8-password"},
		{"encrypted wrong password", ecCert, "testdata/ec-leaf-key.enc-pbkdf2-sha256.pem", "nope", "wrong password"},
		{"key of another cert", ecCert, vec("certs", "rsa-leaf-key.pem"), "", "does not match"},
		{"pkcs11 key", ecCert, "pkcs11:token=vectors;object=vector-host?pin-value=1234", "", "PKCS#11 keys"},
		{"tpm handle", ecCert, "handle:0x81000001", "", "TPM keys"},
		{"pkcs11 certificate", "pkcs11:token=vectors;object=vector-host", "", "", "PKCS#11 token"},
		{"PEM cert without key", ecCert, "", "", "--private-key is required"},
		{"missing file", "testdata/nope.pem", vec("certs", "ec-leaf-key.pem"), "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := NewFileSource(context.Background(), SourceConfig{
				Certificate: tt.cert, PrivateKey: tt.key, PKCS8Password: []byte(tt.password),
			})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "1234") {
					t.Errorf("error leaks the PIN: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			id, err := src.Identity(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			// The loaded key must really be the certificate's: sign and verify.
			sig, err := SignString(id.Signer, "probe")
			if err != nil {
				t.Fatal(err)
			}
			if err := verifyWith(id.Certificate.PublicKey, "probe", sig); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestFileSourceUnsupportedIsTyped(t *testing.T) {
	_, err := NewFileSource(context.Background(), SourceConfig{Certificate: vec("certs", "ec-leaf-cert.pem"), PrivateKey: "handle:0x81000001"})
	if !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("error %v, want ErrUnsupportedKey", err)
	}
}

// TestOpenKeySeam: a pkcs11: or TSS2 reference goes to OpenKey, and the
// signer it returns is used as is.
func TestOpenKeySeam(t *testing.T) {
	fileKey := vectorIdentity(t, "ec", false).Signer
	dir := t.TempDir()
	tss2 := filepath.Join(dir, "tpm.key")
	os.WriteFile(tss2, pem.EncodeToMemory(&pem.Block{Type: "TSS2 PRIVATE KEY", Bytes: []byte{1}}), 0o600)
	for _, ref := range []string{"pkcs11:token=vectors;object=vector-host", "handle:0x81000001", tss2} {
		var got string
		src, err := NewFileSource(context.Background(), SourceConfig{
			Certificate: vec("certs", "ec-leaf-cert.pem"),
			PrivateKey:  ref,
			OpenKey: func(_ context.Context, r string) (crypto.Signer, error) {
				got = r
				return fileKey, nil
			},
		})
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if got != ref {
			t.Errorf("OpenKey got %q, want %q", got, ref)
		}
		id, _ := src.Identity(context.Background())
		if id.Signer != fileKey {
			t.Errorf("%s: signer not the opener's", ref)
		}
	}
}

func TestIntermediates(t *testing.T) {
	dir := t.TempDir()
	root := readFile(t, vec("certs", "ec-root-ca.pem"))
	inter := readFile(t, vec("certs", "ec-int-ca.pem"))
	bundle := filepath.Join(dir, "bundle.pem")
	os.WriteFile(bundle, append(append([]byte{}, inter...), root...), 0o644)
	withKey := filepath.Join(dir, "withkey.pem")
	os.WriteFile(withKey, append(append([]byte{}, inter...), readFile(t, vec("certs", "ec-leaf-key.pem"))...), 0o644)

	src, err := NewFileSource(context.Background(), SourceConfig{
		Certificate: vec("certs", "ec-leaf-cert.pem"), PrivateKey: vec("certs", "ec-leaf-key.pem"), Intermediates: bundle,
	})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := src.Identity(context.Background())
	if len(id.Chain) != 2 || id.Chain[0].Subject.CommonName != "anchorage-test EC Issuing CA" || id.Chain[1].Subject.CommonName != "anchorage-test EC Root CA" {
		t.Errorf("chain order not kept: %v", id.Chain)
	}
	_, err = NewFileSource(context.Background(), SourceConfig{
		Certificate: vec("certs", "ec-leaf-cert.pem"), PrivateKey: vec("certs", "ec-leaf-key.pem"), Intermediates: withKey,
	})
	if err == nil || !strings.Contains(err.Error(), "invalid certificate chain") {
		t.Errorf("error %v, want invalid certificate chain", err)
	}
}

// TestPKCS12 reads the vector .p12 and checks the chain header matches the
// capture: leaf first, then the issuing CA.
func TestPKCS12(t *testing.T) {
	src, err := NewFileSource(context.Background(), SourceConfig{Certificate: vec("certs", "ec-leaf.p12")})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := src.Identity(context.Background())
	c := readCapture(t, "ec-pkcs12", 1)
	req := resign(t, c, id, "us-east-1")
	for _, h := range []string{HeaderX509, HeaderChain} {
		if got, want := req.Header.Get(h), c.req.Header.Get(h); got != want {
			t.Errorf("%s differs from the capture", h)
		}
	}
	if _, _, err := verifyAWS4X509(req, c.body); err != nil {
		t.Error(err)
	}
	_, err = NewFileSource(context.Background(), SourceConfig{Certificate: vec("certs", "ec-leaf.p12"), Intermediates: vec("certs", "ec-int-ca.pem")})
	if err == nil {
		t.Error("PKCS#12 with --intermediates accepted")
	}
}

// TestFileSourceReloads: a rotated certificate and key are picked up
// without a new source.
func TestFileSourceReloads(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	serial1 := writeSelfSigned(t, certPath, keyPath, 1)
	src, err := NewFileSource(context.Background(), SourceConfig{Certificate: certPath, PrivateKey: keyPath})
	if err != nil {
		t.Fatal(err)
	}
	id1, _ := src.Identity(context.Background())
	if id1.Certificate.SerialNumber.Int64() != serial1 {
		t.Fatal("wrong first serial")
	}
	again, _ := src.Identity(context.Background())
	if again.Certificate != id1.Certificate {
		t.Error("unchanged files were parsed again")
	}
	writeSelfSigned(t, certPath, keyPath, 2)
	id2, err := src.Identity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if id2.Certificate.SerialNumber.Int64() != 2 {
		t.Errorf("serial %v after rotation, want 2", id2.Certificate.SerialNumber)
	}
	if err := checkKeyMatches(id2.Signer, id2.Certificate); err != nil {
		t.Error(err)
	}
}

// writeSelfSigned writes a fresh P-256 key and certificate (via rename, as
// a renewal agent would) and returns the serial.
func writeSelfSigned(t *testing.T, certPath, keyPath string, serial int64) int64 {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "rotating-host"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	for path, block := range map[string]*pem.Block{
		certPath: {Type: "CERTIFICATE", Bytes: der},
		keyPath:  {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := atomicfile.Write(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return serial
}

func TestUnsupportedKeyType(t *testing.T) {
	_, priv, _ := ed25519Key()
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	_, err := parsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil)
	if err == nil || !strings.Contains(err.Error(), "need an EC or RSA key") {
		t.Errorf("error %v", err)
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	if alg, _ := AlgorithmFor(rsaKey.Public()); alg != AlgorithmRSA {
		t.Errorf("alg %s", alg)
	}
}

func ed25519Key() (crypto.PublicKey, crypto.PrivateKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	return pub, priv, err
}
