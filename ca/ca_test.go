package ca_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/anchorage-pki/anchorage/ca"
)

func TestParseSANs(t *testing.T) {
	cases := []struct {
		in   []string
		want string
		ok   bool
	}{
		{[]string{"DNS:Web.Example.com"}, "DNS:web.example.com", true},
		{[]string{"web.example.com", "10.0.0.1"}, "DNS:web.example.com,IP:10.0.0.1", true},
		{[]string{"URI:spiffe://example.com/ns/a"}, "URI:spiffe://example.com/ns/a", true},
		{[]string{"IP:::1"}, "IP:::1", true},
		{[]string{"DNS:*.example.com"}, "DNS:*.example.com", true},
		{[]string{"DNS:a..b"}, "", false},
		{[]string{"DNS:-a.b"}, "", false},
		{[]string{"DNS:a b"}, "", false},
		{[]string{"IP:999.1.1.1"}, "", false},
		{[]string{"URI:relative/path"}, "", false},
	}
	for _, c := range cases {
		n, err := ca.ParseSANs(c.in)
		if (err == nil) != c.ok {
			t.Errorf("ParseSANs(%v) err = %v", c.in, err)
			continue
		}
		if c.ok && strings.Join(n.Strings(), ",") != c.want {
			t.Errorf("ParseSANs(%v) = %v, want %s", c.in, n.Strings(), c.want)
		}
	}
}

func TestParseReason(t *testing.T) {
	cases := []struct {
		in   string
		want int
		ok   bool
	}{
		{"", 0, true}, {"keyCompromise", 1, true}, {"KEYCOMPROMISE", 1, true}, {"superseded", 4, true},
		{"cessationOfOperation", 5, true}, {"4", 4, true}, {"7", 0, false}, {"8", 0, false},
		{"removeFromCRL", 0, false}, {"11", 0, false}, {"nope", 0, false},
	}
	for _, c := range cases {
		got, err := ca.ParseReason(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseReason(%q) = %d, %v", c.in, got, err)
		}
	}
}

func TestSerials(t *testing.T) {
	prev := ""
	random := map[string]bool{}
	for range 200 {
		s, err := ca.NewSerial()
		if err != nil {
			t.Fatal(err)
		}
		if s.Sign() <= 0 || len(s.Bytes()) != 20 {
			t.Fatalf("serial %x: want a positive 20-octet number", s)
		}
		h := ca.SerialHex(s)
		if len(h)%2 != 0 {
			t.Fatalf("serial hex %q has odd length", h)
		}
		// Storage keys are the hex: each must sort after the one before.
		if h <= prev {
			t.Fatalf("serial %s does not sort after %s", h, prev)
		}
		prev = h
		random[h[16:]] = true
	}
	if len(random) != 200 {
		t.Errorf("%d distinct random parts in 200 serials", len(random))
	}
	for in, want := range map[string]string{"0A:0b": "0a0b", "00ff": "ff", "ABC": "0abc"} {
		if got, err := ca.NormalizeSerial(in); err != nil || got != want {
			t.Errorf("NormalizeSerial(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "xyz", "0", "-1"} {
		if _, err := ca.NormalizeSerial(bad); err == nil {
			t.Errorf("NormalizeSerial(%q) accepted", bad)
		}
	}
	if ca.SerialHex(big.NewInt(0x0abc)) != "0abc" {
		t.Error("SerialHex pads to even length")
	}
}

func TestCheckCSR(t *testing.T) {
	mk := func(key any) *x509.CertificateRequest {
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, key)
		if err != nil {
			t.Fatal(err)
		}
		csr, _ := x509.ParseCertificateRequest(der)
		return csr
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	r1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	r2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	tampered := mk(p256)
	tampered.Signature[len(tampered.Signature)-3] ^= 0xff
	cases := []struct {
		name string
		csr  *x509.CertificateRequest
		ok   bool
	}{
		{"P-256", mk(p256), true}, {"P-384", mk(p384), true}, {"RSA 2048", mk(r2048), true},
		{"P-224", mk(p224), false}, {"RSA 1024", mk(r1024), false}, {"bad signature", tampered, false}, {"nil", nil, false},
	}
	for _, c := range cases {
		err := ca.CheckCSR(c.csr)
		if (err == nil) != c.ok {
			t.Errorf("%s: err = %v", c.name, err)
		}
		if err != nil && !errors.Is(err, ca.ErrBadCSR) {
			t.Errorf("%s: error is not ErrBadCSR: %v", c.name, err)
		}
	}
}
