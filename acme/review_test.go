package acme_test

import (
	"context"
	"strings"
	"testing"

	"github.com/anchorage-pki/anchorage/config"
	xacme "golang.org/x/crypto/acme"
)

// A deactivated authorization must not back an issuance (RFC 8555 §7.5.2):
// deactivating one of a ready order's authorizations makes the order
// invalid, and finalize refuses it.
func TestDeactivatedAuthzBlocksFinalize(t *testing.T) {
	tc := startCA(t, nil)
	h := tc.serveHTTP01(t)
	c := tc.client(t)
	ctx := context.Background()
	name := "deact." + testDomain
	o, err := c.AuthorizeOrder(ctx, xacme.DomainIDs(name))
	if err != nil {
		t.Fatal(err)
	}
	z, err := c.GetAuthorization(ctx, o.AuthzURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	ch := pick(z, "http-01")
	h.set(c, ch.Token, false)
	if _, err := c.Accept(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitAuthorization(ctx, z.URI); err != nil {
		t.Fatal(err)
	}
	if o, err := c.WaitOrder(ctx, o.URI); err != nil || o.Status != xacme.StatusReady {
		t.Fatalf("order before deactivation: %v %v", o, err)
	}
	if err := c.RevokeAuthorization(ctx, z.URI); err != nil {
		t.Fatalf("deactivate authorization: %v", err)
	}
	if got, _ := c.GetOrder(ctx, o.URI); got == nil || got.Status != xacme.StatusInvalid {
		t.Errorf("order after its authorization was deactivated: %+v, want invalid", got)
	}
	if _, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csrFor(t, newKey(t), name, name), true); problemType(err) != errNS+"orderNotReady" {
		t.Fatalf("finalize with a deactivated authorization: %v, want orderNotReady", err)
	}
}

// TestSameKeyOnTwoProvisioners: one account key gets an account of its own
// on each provisioner, each usable there, and newAccount on one never
// answers with the other's account.
func TestSameKeyOnTwoProvisioners(t *testing.T) {
	second := config.ACMEProvisioner{Name: "second", Allow: []string{testDomain, "*." + testDomain}}
	tc := startCAWith(t, nil, second)
	key := newKey(t)
	ctx := context.Background()
	var urls []string
	for _, dir := range []string{tc.dirURL, tc.url + "/acme/second/directory"} {
		c := &xacme.Client{Key: key, DirectoryURL: dir, HTTPClient: tc.http}
		acct, err := c.Register(ctx, &xacme.Account{}, xacme.AcceptTOS)
		if err != nil {
			t.Fatalf("register at %s: %v", dir, err)
		}
		if !strings.Contains(acct.URI, strings.TrimSuffix(dir, "/directory")) {
			t.Errorf("account %s is not under %s", acct.URI, dir)
		}
		if _, err := c.AuthorizeOrder(ctx, ids("k."+testDomain)); err != nil {
			t.Errorf("new order at %s: %v", dir, err)
		}
		urls = append(urls, acct.URI)
	}
	if urls[0] == urls[1] {
		t.Errorf("both provisioners answered with the same account %s", urls[0])
	}
}
