package enroll_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/enroll"
)

type usedSet map[string]bool

func (u usedSet) TokenUsed(_ context.Context, jti string) (bool, error) { return u[jti], nil }

const aud = "https://ca.example.com:8443"

func TestVerify(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	mint := func(k *ecdsa.PrivateKey, audience, name string, ttl time.Duration, at time.Time) string {
		tok, err := enroll.Mint(k, audience, name, []string{"DNS:h.example.com", "URI:spiffe://x/y"}, ttl, at)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := mint(key, aud, "h.example.com", 10*time.Minute, now)
	g, err := (&enroll.Verifier{Key: key.Public(), Audience: aud, MaxTTL: 24 * time.Hour, Used: usedSet{}, Now: time.Now}).Verify(context.Background(), good)
	if err != nil {
		t.Fatal(err)
	}
	used := usedSet{g.ID: true}
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"valid", mint(key, aud, "h.example.com", 10*time.Minute, now), nil},
		{"replayed", good, enroll.ErrReplayed},
		{"expired", mint(key, aud, "h.example.com", time.Minute, now.Add(-2*time.Hour)), enroll.ErrExpired},
		{"not yet valid", mint(key, aud, "h.example.com", time.Hour, now.Add(time.Hour)), enroll.ErrMalformed},
		{"wrong audience", mint(key, "https://evil.example.com", "h.example.com", time.Minute, now), enroll.ErrAudience},
		{"other key", mint(other, aud, "h.example.com", time.Minute, now), enroll.ErrSignature},
		{"too long", mint(key, aud, "h.example.com", 48*time.Hour, now), enroll.ErrMalformed},
		{"garbage", "a.b.c", enroll.ErrMalformed},
		{"empty", "", enroll.ErrMalformed},
		{"tampered payload", tamper(good), enroll.ErrSignature},
	}
	v := &enroll.Verifier{Key: key.Public(), Audience: aud, MaxTTL: 24 * time.Hour, Used: used, Now: time.Now}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, err := v.Verify(context.Background(), c.token)
			if c.want == nil {
				if err != nil || g.Subject != "h.example.com" || len(g.Names.DNS) != 1 || len(g.Names.URIs) != 1 {
					t.Errorf("grant %+v, err %v", g, err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Errorf("err = %v, want %v", err, c.want)
			}
		})
	}
}

// tamper swaps the payload for another one with the same header and
// signature, which must not verify.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	p := []byte(parts[1])
	if p[5] == 'A' {
		p[5] = 'B'
	} else {
		p[5] = 'A'
	}
	return parts[0] + "." + string(p) + "." + parts[2]
}

func TestMintRefusesBadNames(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, c := range []struct {
		name string
		sans []string
	}{
		{"", nil},
		{strings.Repeat("a", 65), nil},
		{"ok", []string{"DNS:bad name"}},
		{"ok", []string{"IP:300.1.1.1"}},
		{"ok", []string{"URI:not a uri"}},
	} {
		if _, err := enroll.Mint(key, aud, c.name, c.sans, time.Minute, time.Now()); err == nil {
			t.Errorf("Mint(%q, %v) succeeded", c.name, c.sans)
		}
	}
}

func TestGrantCheckCSR(t *testing.T) {
	names, _ := ca.ParseSANs([]string{"DNS:a.example.com", "IP:10.0.0.1", "URI:spiffe://example.com/a"})
	g := &enroll.Grant{Subject: "a-host", Names: names}
	u, _ := url.Parse("spiffe://example.com/a")
	bad, _ := url.Parse("spiffe://example.com/b")
	cases := []struct {
		name string
		csr  x509.CertificateRequest
		ok   bool
	}{
		{"exact", x509.CertificateRequest{DNSNames: []string{"a.example.com"}, IPAddresses: []net.IP{net.ParseIP("10.0.0.1")}, URIs: []*url.URL{u}}, true},
		{"subset, empty subject", x509.CertificateRequest{DNSNames: []string{"A.EXAMPLE.COM"}}, true},
		{"CN as DNS", x509.CertificateRequest{DNSNames: []string{"a-host"}}, true},
		{"other DNS", x509.CertificateRequest{DNSNames: []string{"b.example.com"}}, false},
		{"other IP", x509.CertificateRequest{IPAddresses: []net.IP{net.ParseIP("10.0.0.2")}}, false},
		{"other URI", x509.CertificateRequest{URIs: []*url.URL{bad}}, false},
		{"email", x509.CertificateRequest{EmailAddresses: []string{"x@example.com"}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := g.CheckCSR(&c.csr)
			if (err == nil) != c.ok {
				t.Errorf("err = %v", err)
			}
			if err != nil && !errors.Is(err, enroll.ErrNameNotGranted) {
				t.Errorf("wrong error kind: %v", err)
			}
		})
	}
	c := x509.CertificateRequest{}
	c.Subject.CommonName = "other"
	if err := g.CheckCSR(&c); !errors.Is(err, enroll.ErrNameNotGranted) {
		t.Errorf("other CN: %v", err)
	}
}

// FuzzVerify feeds arbitrary tokens to the verifier: it must never panic and
// never accept anything not signed by the key.
func FuzzVerify(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tok, _ := enroll.Mint(key, aud, "h", nil, time.Minute, time.Now())
	f.Add(tok)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("")
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v := &enroll.Verifier{Key: other.Public(), Audience: aud, Used: usedSet{}, Now: time.Now}
	f.Fuzz(func(t *testing.T, s string) {
		if g, err := v.Verify(context.Background(), s); err == nil {
			t.Fatalf("accepted %q: %+v", s, g)
		}
	})
}

// TestMintVerifyKeepsNameTypes: the grant a token verifies to carries the
// names it was minted with, each with its type. Untyped sans used to turn
// DNS:10.0.0.1 into an IP SAN and make a token with URI:urn:... unusable.
func TestMintVerifyKeepsNameTypes(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v := &enroll.Verifier{Key: key.Public(), Audience: aud, MaxTTL: time.Hour, Used: usedSet{}, Now: time.Now}
	for _, sans := range [][]string{
		{"DNS:10.0.0.1"},
		{"URI:urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"},
		{"DNS:h.example.com", "IP:10.0.0.1", "IP:fd00::1", "URI:spiffe://x/y"},
	} {
		t.Run(strings.Join(sans, ","), func(t *testing.T) {
			tok, err := enroll.Mint(key, aud, "h.example.com", sans, time.Minute, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			g, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want, _ := ca.ParseSANs(sans)
			if got := strings.Join(g.Names.Strings(), ","); got != strings.Join(want.Strings(), ",") {
				t.Fatalf("grant names %s, minted with %s", got, strings.Join(want.Strings(), ","))
			}
		})
	}
}
