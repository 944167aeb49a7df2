// Package pkitest holds test helpers that check what the CA produced the way
// relying parties will: zlint with the private-PKI sources and `openssl
// verify` against the root.
package pkitest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/lint"
)

// LintPEM zlints every CERTIFICATE and X509 CRL block in data and fails the
// test on any error or fatal result.
func LintPEM(t testing.TB, data []byte) {
	t.Helper()
	n := 0
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			break
		}
		switch blk.Type {
		case "CERTIFICATE":
			if err := lint.Certificate(blk.Bytes); err != nil {
				t.Errorf("zlint: %v", err)
			}
		case "X509 CRL":
			if err := lint.CRL(blk.Bytes); err != nil {
				t.Errorf("zlint: %v", err)
			}
		default:
			continue
		}
		n++
	}
	if n == 0 {
		t.Errorf("zlint: no certificate or CRL in input")
	}
}

// LintCRL zlints a DER CRL.
func LintCRL(t testing.TB, der []byte) {
	t.Helper()
	LintPEM(t, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
}

// OpenSSLVerify runs `openssl verify` on the leaf of chainPEM with the
// issuing CA(s) that follow it as untrusted intermediates and rootPEM as the
// trust anchor; with crlPEM it also checks revocation (-crl_check) and
// returns openssl's verdict instead of failing the test.
func OpenSSLVerify(t testing.TB, rootPEM, chainPEM, crlPEM []byte) error {
	t.Helper()
	dir := t.TempDir()
	var leaf, rest []byte
	data := chainPEM
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			break
		}
		enc := pem.EncodeToMemory(blk)
		if leaf == nil {
			leaf = enc
		} else {
			rest = append(rest, enc...)
		}
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	args := []string{"verify", "-CAfile", write("root.pem", rootPEM)}
	if len(rest) > 0 {
		args = append(args, "-untrusted", write("chain.pem", rest))
	}
	if crlPEM != nil {
		args = append(args, "-crl_check", "-CRLfile", write("crl.pem", crlPEM))
	}
	args = append(args, write("leaf.pem", leaf))
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil {
		return &VerifyError{Output: string(out)}
	}
	return nil
}

// VerifyError carries openssl's output.
type VerifyError struct{ Output string }

func (e *VerifyError) Error() string { return "openssl verify: " + e.Output }

// MustVerify fails the test unless the chain verifies.
func MustVerify(t testing.TB, rootPEM, chainPEM []byte) {
	t.Helper()
	if err := OpenSSLVerify(t, rootPEM, chainPEM, nil); err != nil {
		t.Error(err)
	}
}

// ParseChain decodes PEM certificates.
func ParseChain(t testing.TB, chainPEM []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for data := chainPEM; ; {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// NewCA makes a throwaway self-signed CA (P-256, keyCertSign+cRLSign) for
// tests that need a signer other than the CA under test.
func NewCA(t testing.TB, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), SubjectKeyId: []byte{1, 2, 3, 4},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}
