package lint_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/lint"
)

// The linter must be able to fail: keyCertSign on a non-CA certificate
// breaks an RFC 5280 lint.
func TestLintCatchesBadCertificate(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := &x509.Certificate{SerialNumber: big.NewInt(12345), Subject: pkix.Name{CommonName: "ok"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, good, good, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	if err := lint.Certificate(der); err != nil {
		t.Errorf("clean CA certificate: %v", err)
	}
	bad := *good
	bad.IsCA = false // keyCertSign on a certificate that is not a CA
	der, err = x509.CreateCertificate(rand.Reader, &bad, &bad, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	err = lint.Certificate(der)
	if err == nil || !strings.Contains(err.Error(), "e_ext_key_usage_cert_sign_without_ca") {
		t.Errorf("bad certificate passed lint: %v", err)
	}
}
