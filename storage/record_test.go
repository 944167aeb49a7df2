package storage

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"testing"
	"time"
)

func selfSigned(t *testing.T, cn string) *x509.Certificate {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now().Truncate(time.Second)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(10), Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn},
		NotBefore: now, NotAfter: now.Add(time.Hour),
	}, &x509.Certificate{Subject: pkix.Name{CommonName: "issuer"}}, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	x, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// A record written with the issuing core's parsed certificate is the one
// written without it, and a Parsed that is not the parse of DER is ignored.
func TestEncodeCertParsed(t *testing.T) {
	x, other := selfSigned(t, "a.example.com"), selfSigned(t, "b.example.com")
	sum := sha256.Sum256(x.RawSubjectPublicKeyInfo)
	c := &Cert{Serial: "0a", Subject: "a.example.com", SANs: []string{"a.example.com"}, NotBefore: x.NotBefore, NotAfter: x.NotAfter,
		Method: MethodToken, Status: StatusValid, KeyID: hex.EncodeToString(sum[:]), DER: x.Raw}
	want := encodeCert(c)
	for _, p := range []*x509.Certificate{x, other} {
		d := *c
		d.Parsed = p
		if got := encodeCert(&d); !bytes.Equal(got, want) {
			t.Errorf("Parsed %s: record %x, want %x", p.Subject.CommonName, got, want)
		}
	}
	const fromDER = flagSubjectFromDER | flagSANsFromDER | flagValidityFromDER | flagKeyIDFromDER
	if want[1]&fromDER != fromDER {
		t.Errorf("flags %#x: fields not taken from the DER", want[1])
	}
}
