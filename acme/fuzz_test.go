package acme

import (
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/config"
)

// Parsers of untrusted input: the JWS envelope, nonces, CSRs at finalize and order
// identifiers must never panic.

func FuzzParseJWS(f *testing.F) {
	f.Add([]byte(`{"protected":"eyJhbGciOiJFUzI1NiJ9","payload":"","signature":"AA"}`))
	f.Add([]byte(`{"protected":"e30","payload":"e30","signature":"","header":{}}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if jws, pr := parseJWS(body, accountAlgs); (jws == nil) == (pr == nil) {
			t.Fatalf("parseJWS returned %v and %v", jws, pr)
		}
	})
}

func FuzzNonceCheck(f *testing.F) {
	n := &nonces{key: make([]byte, 32), now: time.Now}
	f.Add(n.issue())
	f.Add("")
	f.Add("bm90LWEtbm9uY2U")
	f.Fuzz(func(t *testing.T, v string) {
		id, _, pr := n.check(v)
		if (id == "") == (pr == nil) {
			t.Fatalf("check(%q) returned id %q and %v", v, id, pr)
		}
	})
}

func FuzzParseCSR(f *testing.F) {
	f.Add("MIIBDjCBtQIBADAAMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE", "a.example.com")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, csr, name string) {
		parseCSR(csr, []ident{{Type: "dns", Value: name}, {Type: "ip", Value: "127.0.0.1"}})
	})
}

func FuzzIdentifier(f *testing.F) {
	p, err := newProvisioner(&config.ACMEProvisioner{Name: "f", Allow: []string{"*.internal", "a.example.com", "10.0.0.0/8", "::1"}}, "")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"dns a.internal", "dns *.x.internal", "ip 10.1.2.3", "ip ::ffff:10.0.0.1", "dns ..", "uri x"} {
		f.Add(s[:3], s[4:])
	}
	f.Fuzz(func(t *testing.T, typ, value string) {
		id, pr := normalize(ident{Type: typ, Value: value})
		if pr == nil {
			p.allows(id)
			p.challengesFor(id)
		}
	})
}

func TestPolicy(t *testing.T) {
	p, err := newProvisioner(&config.ACMEProvisioner{Name: "p", Allow: []string{"*.internal", "a.example.com", "10.0.0.0/8"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[ident]bool{
		{Type: "dns", Value: "web.internal"}: true, {Type: "dns", Value: "WEB.b.Internal"}: true, {Type: "dns", Value: "*.b.internal"}: true,
		{Type: "dns", Value: "internal"}: false, {Type: "dns", Value: "evilinternal"}: false, {Type: "dns", Value: "a.example.com"}: true,
		{Type: "dns", Value: "b.a.example.com"}: false, {Type: "dns", Value: "*.a.example.com"}: false,
		{Type: "ip", Value: "10.9.8.7"}: true, {Type: "ip", Value: "::ffff:10.0.0.1"}: true, {Type: "ip", Value: "11.0.0.1"}: false,
	} {
		id, pr := normalize(in)
		if got := pr == nil && p.allows(id); got != want {
			t.Errorf("%v: allowed=%v (%v), want %v", in, got, pr, want)
		}
	}
	for v, want := range map[string]bool{"*.internal": true, "*.b.internal": false, "*.a.example.com": false, "web.internal": false} {
		if _, bare := p.bareWildcard(ident{Type: "dns", Value: v}); bare != want {
			t.Errorf("%s: bare wildcard of an allowed zone = %v, want %v", v, bare, want)
		}
	}
	if got := p.challengesFor(ident{Type: "dns", Value: "*.x.internal"}); len(got) != 1 || got[0] != "dns-01" {
		t.Errorf("wildcard challenges %v", got)
	}
	if got := p.challengesFor(ident{Type: "ip", Value: "10.0.0.1"}); len(got) != 2 {
		t.Errorf("IP challenges %v", got)
	}
}
