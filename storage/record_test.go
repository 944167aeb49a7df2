package storage

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"slices"
	"strings"
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

// The names are left out of the record when the DER holds them, in either
// form a record may carry them (the CA's DNS:/IP:/URI: form, or the older
// untyped one), and read back exactly; any other list is stored.
func TestRecordSANForms(t *testing.T) {
	x := selfSigned(t, "a.example.com")
	sum := sha256.Sum256(x.RawSubjectPublicKeyInfo)
	base := Cert{Serial: "0a", Subject: "a.example.com", NotBefore: x.NotBefore, NotAfter: x.NotAfter,
		Method: MethodToken, Status: StatusValid, KeyID: hex.EncodeToString(sum[:]), DER: x.Raw}
	explicit := base
	explicit.SANs = []string{"DNS:other.example.com"}
	explicitLen := len(encodeCert(&explicit))
	for _, tt := range []struct {
		name    string
		sans    []string
		flag    uint64
		fromDER bool
	}{
		{"typed", []string{"DNS:a.example.com"}, flagTypedSANsFromDER, true},
		{"untyped", []string{"a.example.com"}, flagSANsFromDER, true},
		{"different", []string{"DNS:other.example.com"}, 0, false},
		{"extra", []string{"DNS:a.example.com", "DNS:b.example.com"}, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			c.SANs = tt.sans
			rec := encodeCert(&c)
			flags := uint64(rec[1])
			if tt.fromDER != (flags&(flagSANsFromDER|flagTypedSANsFromDER) != 0) || (tt.flag != 0 && flags&tt.flag == 0) {
				t.Errorf("flags %#x", flags)
			}
			if tt.fromDER && len(rec) >= explicitLen {
				t.Errorf("record %d bytes, not smaller than one storing its names (%d)", len(rec), explicitLen)
			}
			got, err := decodeCert("0a", rec)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.SANs, tt.sans) {
				t.Errorf("SANs read back %q, want %q", got.SANs, tt.sans)
			}
		})
	}
}

// A record with a flag this release does not know is refused, not misread.
func TestRecordUnknownFlag(t *testing.T) {
	x := selfSigned(t, "a.example.com")
	rec := encodeCert(&Cert{Serial: "0a", Subject: "a.example.com", Method: MethodToken, Status: StatusValid, DER: x.Raw})
	if _, err := decodeCert("0a", rec); err != nil {
		t.Fatal(err)
	}
	// rec[1] is the one-byte uvarint of the flags: write them with the
	// next bit set.
	newer := append(binary.AppendUvarint([]byte{rec[0]}, uint64(rec[1])|(knownFlags+1)), rec[2:]...)
	if _, err := decodeCert("0a", newer); err == nil || !strings.Contains(err.Error(), "newer anchorage") {
		t.Errorf("unknown flag: %v", err)
	}
}
