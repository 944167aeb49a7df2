package acme_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"go.step.sm/crypto/jose"
	xacme "golang.org/x/crypto/acme"
)

const errNS = "urn:ietf:params:acme:error:"

func TestRefusals(t *testing.T) {
	tc := startCA(t, nil)
	h := tc.serveHTTP01(t)
	ctx := context.Background()
	c := tc.client(t)
	acct, err := c.GetReg(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	newOrder := tc.url + "/acme/test/new-order"
	order := `{"identifiers":[{"type":"dns","value":"r.` + testDomain + `"}]}`

	t.Run("rejectedIdentifier", func(t *testing.T) {
		for _, id := range [][]xacme.AuthzID{
			xacme.DomainIDs("web.example.org"), xacme.DomainIDs("evil" + testDomain), xacme.IPIDs("10.1.2.3"),
			xacme.DomainIDs("ok."+testDomain, "not.allowed.test"),
		} {
			if _, err := c.AuthorizeOrder(ctx, id); problemType(err) != errNS+"rejectedIdentifier" {
				t.Errorf("order %v: %v", id, err)
			}
		}
	})
	t.Run("badNonce", func(t *testing.T) {
		if st, typ := tc.post(t, raw{key: c.Key, kid: acct.URI, url: newOrder, nonce: "bm90LWEtbm9uY2U"}, order); st != 400 || typ != errNS+"badNonce" {
			t.Errorf("made-up nonce: %d %s", st, typ)
		}
		n := tc.nonce(t)
		if st, _ := tc.post(t, raw{key: c.Key, kid: acct.URI, url: newOrder, nonce: n}, order); st != 201 {
			t.Fatalf("fresh nonce: %d", st)
		}
		if st, typ := tc.post(t, raw{key: c.Key, kid: acct.URI, url: newOrder, nonce: n}, order); st != 400 || typ != errNS+"badNonce" {
			t.Errorf("replayed nonce: %d %s", st, typ)
		}
	})
	t.Run("wrongKey", func(t *testing.T) {
		if st, typ := tc.post(t, raw{key: newKey(t), kid: acct.URI, url: newOrder}, order); st != 400 || typ != errNS+"malformed" {
			t.Errorf("kid of one account, signed by another key: %d %s", st, typ)
		}
		if st, typ := tc.post(t, raw{key: c.Key, url: newOrder}, order); st != 400 || typ != errNS+"malformed" {
			t.Errorf("newOrder signed with jwk: %d %s", st, typ)
		}
		if st, typ := tc.post(t, raw{key: newKey(t), kid: tc.url + "/acme/test/account/nobody", url: newOrder}, order); st != 400 || typ != errNS+"accountDoesNotExist" {
			t.Errorf("unknown kid: %d %s", st, typ)
		}
		if st, typ := tc.post(t, raw{key: c.Key, kid: acct.URI, url: tc.url + "/acme/test/new-account"}, order); st != 400 || typ != errNS+"malformed" {
			t.Errorf("newAccount with kid: %d %s", st, typ)
		}
		if st, typ := tc.post(t, raw{key: newKey(t), url: tc.url + "/acme/test/new-account"}, `{"onlyReturnExisting":true}`); st != 400 || typ != errNS+"accountDoesNotExist" {
			t.Errorf("onlyReturnExisting for a new key: %d %s", st, typ)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		big := []byte(`{"protected":"` + strings.Repeat("A", 100<<10) + `","payload":"","signature":""}`)
		if st, typ := tc.post(t, raw{url: newOrder, body: big}, ""); st != http.StatusRequestEntityTooLarge || typ != errNS+"malformed" {
			t.Errorf("oversize body: %d %s", st, typ)
		}
		for _, body := range []string{"not json", `{"payload":""}`, `{"protected":"e30","payload":"","signature":"","header":{"kid":"x"}}`} {
			if st, typ := tc.post(t, raw{url: newOrder, body: []byte(body)}, ""); st != 400 || typ != errNS+"malformed" {
				t.Errorf("body %q: %d %s", body, st, typ)
			}
		}
		if st, typ := tc.post(t, raw{key: c.Key, kid: acct.URI, url: newOrder}, `{"identifiers":"nope"}`); st != 400 || typ != errNS+"malformed" {
			t.Errorf("bad newOrder payload: %d %s", st, typ)
		}
		resp, err := tc.http.Post(newOrder, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, resp); resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(body, errNS+"malformed") {
			t.Errorf("wrong content type: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("urlMismatch", func(t *testing.T) {
		// A JWS made for one endpoint does not work at another.
		rw := raw{key: c.Key, kid: acct.URI, url: tc.url + "/acme/test/revoke-cert"}
		rw.nonce = tc.nonce(t)
		if st, typ := tc.post(t, raw{key: c.Key, kid: acct.URI, url: tc.url + "/acme/test/revoke-cert", body: signed(t, tc, rw, order, newOrder)}, ""); st != 403 || typ != errNS+"unauthorized" {
			t.Errorf("url of another endpoint: %d %s", st, typ)
		}
	})
	t.Run("failedChallenge", func(t *testing.T) {
		for _, tt := range []struct{ name, typ, want string }{
			{"wrong." + testDomain, "http-01", "incorrectResponse"},
			{"alpn." + testDomain, "tls-alpn-01", "connection"},  // nothing listens there
			{"txt." + testDomain, "dns-01", "incorrectResponse"}, // no TXT record
		} {
			o, err := c.AuthorizeOrder(ctx, xacme.DomainIDs(tt.name))
			if err != nil {
				t.Fatal(err)
			}
			z, _ := c.GetAuthorization(ctx, o.AuthzURLs[0])
			ch := pick(z, tt.typ)
			h.set(c, ch.Token, true)
			if _, err := c.Accept(ctx, ch); err != nil {
				t.Fatal(err)
			}
			_, err = c.WaitAuthorization(ctx, z.URI)
			var ae *xacme.AuthorizationError
			if !errors.As(err, &ae) {
				t.Fatalf("%s: want an invalid authorization, got %v", tt.typ, err)
			}
			got, _ := c.GetChallenge(ctx, ch.URI)
			if got.Status != "invalid" || problemType(got.Error) != errNS+tt.want {
				t.Errorf("%s challenge: %s %v, want invalid %s", tt.typ, got.Status, got.Error, tt.want)
			}
			if o, _ := c.GetOrder(ctx, o.URI); o.Status != "invalid" {
				t.Errorf("order after failed %s: %s", tt.typ, o.Status)
			}
		}
	})
	t.Run("badCSR", func(t *testing.T) {
		name := "csr." + testDomain
		o, err := c.AuthorizeOrder(ctx, xacme.DomainIDs(name))
		if err != nil {
			t.Fatal(err)
		}
		k := newKey(t)
		if _, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csrFor(t, k, name, name), true); problemType(err) != errNS+"orderNotReady" {
			t.Errorf("finalize before validation: %v", err)
		}
		z, _ := c.GetAuthorization(ctx, o.AuthzURLs[0])
		ch := pick(z, "http-01")
		h.set(c, ch.Token, false)
		c.Accept(ctx, ch)
		if _, err := c.WaitAuthorization(ctx, z.URI); err != nil {
			t.Fatal(err)
		}
		for _, csr := range [][]byte{
			csrFor(t, k, "other."+testDomain, "other."+testDomain), // another name
			csrFor(t, k, name, name, "extra."+testDomain),          // one more name
			csrFor(t, k, "", "127.0.0.1"),                          // an IP instead
			[]byte("definitely not DER"),
		} {
			if _, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr, true); problemType(err) != errNS+"badCSR" {
				t.Errorf("finalize with a CSR for other names: %v", err)
			}
		}
		// A bad CSR leaves the order ready: the right one still succeeds.
		ders, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csrFor(t, k, "", name), true)
		if err != nil {
			t.Fatalf("finalize with the right CSR (empty subject, as certbot sends): %v", err)
		}
		if _, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csrFor(t, k, "", name), true); problemType(err) != errNS+"orderNotReady" {
			t.Errorf("second finalize: %v", err)
		}
		_ = ders
	})
}

// signed returns a JWS for url, to be posted elsewhere.
func signed(t *testing.T, tc *testCA, rw raw, payload, url string) []byte {
	t.Helper()
	rw.url = url
	opts := (&jose.SignerOptions{}).WithHeader("nonce", rw.nonce).WithHeader("url", rw.url).WithHeader("kid", rw.kid)
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: rw.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := sig.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(jws.FullSerialize())
}
