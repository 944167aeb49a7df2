package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"reflect"
	"testing"
	"time"

	"go.step.sm/crypto/x509util"

	"github.com/anchorage-pki/anchorage/lint"
)

func testIssuer(t *testing.T, curve elliptic.Curve, cn string, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn, Organization: []string{"Anchorage"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

// TestFastTBSMatchesStdlib holds buildTBS to crypto/x509: for every shape
// of the leaf profile, the TBSCertificate it assembles is byte for byte the
// one x509.CreateCertificate encodes from the same template, so the
// certificates differ only in their (random) ECDSA signatures.
func TestFastTBSMatchesStdlib(t *testing.T) {
	now := time.Now()
	far := time.Date(2070, 1, 1, 0, 0, 0, 0, time.UTC)
	type issuerCase struct {
		name  string
		curve elliptic.Curve
		cn    string
		after time.Time
		noKID bool
	}
	issuers := []issuerCase{
		{"p256", elliptic.P256(), "Issuing", now.Add(24 * 365 * time.Hour), false},
		{"p384-far", elliptic.P384(), "Issuing 384", far, false},
		{"no-skid", elliptic.P256(), "Plain", now.Add(24 * 365 * time.Hour), true},
	}
	sans := [][]string{
		nil,
		{"DNS:web.example.com"},
		{"DNS:a.example.com", "DNS:*.b.example.com", "IP:10.0.0.1", "IP:2001:db8::1", "URI:spiffe://example.com/ns/a"},
		{"URI:spiffe://example.com/x?y=1#z"},
	}
	subjects := []string{"workload", "Issuing", "web.example.com", "über-workload", "a*b&c"}
	leafKeys := []any{}
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384()} {
		k, _ := ecdsa.GenerateKey(c, rand.Reader)
		leafKeys = append(leafKeys, k.Public())
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	leafKeys = append(leafKeys, rk.Public())
	n := 0
	for _, ic := range issuers {
		iss, key := testIssuer(t, ic.curve, ic.cn, ic.after)
		if ic.noKID {
			iss.SubjectKeyId = nil
		}
		for _, crl := range []string{"", "http://crl.example.com/ca.crl"} {
			for _, serverAuth := range []bool{false, true} {
				for _, lifetime := range []time.Duration{time.Hour, 60 * 365 * 24 * time.Hour} {
					a := &Authority{issuer: iss, signer: key, profile: Profile{CRLURL: crl}}
					for _, s := range sans {
						names, err := ParseSANs(s)
						if err != nil {
							t.Fatal(err)
						}
						for _, subj := range subjects {
							for _, pub := range leafKeys {
								tmpl, err := a.template(subj, names, pub, now, lifetime, serverAuth)
								if err != nil {
									t.Fatal(err)
								}
								der, err := x509.CreateCertificate(rand.Reader, tmpl, iss, pub, key)
								if err != nil {
									t.Fatal(err)
								}
								want, _ := x509.ParseCertificate(der)
								alg := algECDSAWithSHA256
								if ic.curve == elliptic.P384() {
									alg = algECDSAWithSHA384
								}
								got, ok := buildTBS(tmpl, iss, pub, alg)
								if !ok {
									t.Fatalf("%s %v %q: fast path refused the profile", ic.name, s, subj)
								}
								if !bytes.Equal(got, want.RawTBSCertificate) {
									t.Fatalf("%s crl=%q server=%v %v %q: TBS differs\n got %s\nwant %s", ic.name, crl, serverAuth, s, subj,
										hex.EncodeToString(got), hex.EncodeToString(want.RawTBSCertificate))
								}
								signed, err := a.createCertificate(tmpl, pub)
								if err != nil {
									t.Fatal(err)
								}
								if !bytes.Equal(signed.RawTBSCertificate, want.RawTBSCertificate) {
									t.Fatal("createCertificate's TBS differs")
								}
								if err := signed.CheckSignatureFrom(iss); err != nil {
									t.Fatalf("signature: %v", err)
								}
								// What createCertificate hands out is the parse of its DER.
								parsed, err := x509.ParseCertificate(signed.Raw)
								if err != nil {
									t.Fatal(err)
								}
								if f := differentField(signed, parsed); f != "" {
									t.Fatalf("%s %v %q %T: certificate field %s is not crypto/x509's parse", ic.name, s, subj, pub, f)
								}
								n++
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%d certificates compared", n)
}

// differentField names the first field in which a and b differ, "" if none.
func differentField(a, b *x509.Certificate) string {
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	for i := range va.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			return fmt.Sprintf("%s (%v, want %v)", va.Type().Field(i).Name, va.Field(i).Interface(), vb.Field(i).Interface())
		}
	}
	return ""
}

// TestFastTBSRefuses: what the fast path does not encode goes to crypto/x509.
func TestFastTBSRefuses(t *testing.T) {
	iss, key := testIssuer(t, elliptic.P256(), "Issuing", time.Now().Add(time.Hour*24))
	a := &Authority{issuer: iss, signer: key}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	base := func() *x509.Certificate {
		tmpl, err := a.template("w", Names{DNS: []string{"w.example.com"}}, k.Public(), time.Now(), time.Hour, true)
		if err != nil {
			t.Fatal(err)
		}
		return tmpl
	}
	for name, mod := range map[string]func(*x509.Certificate){
		"email":      func(c *x509.Certificate) { c.EmailAddresses = []string{"a@b"} },
		"extra":      func(c *x509.Certificate) { c.ExtraExtensions = []pkix.Extension{{Id: []int{1, 2, 3}}} },
		"org":        func(c *x509.Certificate) { c.Subject.Organization = []string{"x"} },
		"ca":         func(c *x509.Certificate) { c.IsCA = true },
		"eku":        func(c *x509.Certificate) { c.ExtKeyUsage = append(c.ExtKeyUsage, x509.ExtKeyUsageCodeSigning) },
		"non-ia5":    func(c *x509.Certificate) { c.DNSNames = []string{"ü.example.com"} },
		"ocsp":       func(c *x509.Certificate) { c.OCSPServer = []string{"http://o"} },
		"no-skid":    func(c *x509.Certificate) { c.SubjectKeyId = nil },
		"sig-alg":    func(c *x509.Certificate) { c.SignatureAlgorithm = x509.ECDSAWithSHA384 },
		"no-keyuse":  func(c *x509.Certificate) { c.KeyUsage = 0 },
		"no-basic":   func(c *x509.Certificate) { c.BasicConstraintsValid = false },
		"raw-subjct": func(c *x509.Certificate) { c.RawSubject = []byte{0x30, 0} },
	} {
		c := base()
		mod(c)
		if _, ok := buildTBS(c, iss, k.Public(), algECDSAWithSHA256); ok {
			t.Errorf("%s: fast path took a template it does not encode", name)
		}
	}
	// The leaf a fast-path Authority signs passes zlint.
	names, _ := ParseSANs([]string{"DNS:w.example.com", "IP:10.1.2.3"})
	a.profile.CRLURL = "http://crl.example.com/ca.crl"
	tmpl, err := a.template("w", names, k.Public(), time.Now(), time.Hour, true)
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.createCertificate(tmpl, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := lint.Certificate(c.Raw); err != nil {
		t.Fatal(err)
	}
}

// TestMarshalSPKI: the reflection-free key encoding and key id are the
// standard library's and x509util's.
func TestMarshalSPKI(t *testing.T) {
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384()} {
		for range 20 {
			k, _ := ecdsa.GenerateKey(c, rand.Reader)
			got, _, err := marshalSPKI(k.Public())
			if err != nil {
				t.Fatal(err)
			}
			want, _ := x509.MarshalPKIXPublicKey(k.Public())
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: SPKI\n got %x\nwant %x", c.Params().Name, got, want)
			}
			id, _ := subjectKeyID(k.Public())
			wantID, _ := x509util.GenerateSubjectKeyID(k.Public())
			if !bytes.Equal(id, wantID) {
				t.Fatalf("key id %x, want %x", id, wantID)
			}
		}
	}
	if _, _, err := marshalSPKI(&ecdsa.PublicKey{Curve: elliptic.P521()}); err == nil {
		t.Fatal("P-521 took the fast encoding")
	}
}

// BenchmarkSignFast is the fast path's own work per certificate (template,
// TBS, ECDSA signature, the certificate handed out), without the CSR.
func BenchmarkSignFast(b *testing.B) {
	iss, key := testIssuer(&testing.T{}, elliptic.P256(), "Issuing", time.Now().Add(24*time.Hour))
	a := &Authority{issuer: iss, signer: key, profile: Profile{CRLURL: "http://crl.example.com/ca.crl"}}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	names, _ := ParseSANs([]string{"DNS:w.example.com"})
	b.ReportAllocs()
	for b.Loop() {
		tmpl, err := a.template("w.example.com", names, k.Public(), time.Now(), time.Hour, true)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := a.createCertificate(tmpl, k.Public()); err != nil {
			b.Fatal(err)
		}
	}
}

// buildTBS is encodeTBS's TBSCertificate alone, for the tests that compare
// it with crypto/x509's.
func buildTBS(tmpl, issuer *x509.Certificate, pub crypto.PublicKey, alg []byte) ([]byte, bool) {
	p, ok := encodeTBS(tmpl, issuer, pub, alg)
	return p.raw, ok
}
