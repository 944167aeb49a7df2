package acme_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	xacme "golang.org/x/crypto/acme"

	"github.com/anchorage-pki/anchorage/config"
)

func TestDirectoryAndNonce(t *testing.T) {
	tc := startCA(t, nil)
	resp, err := tc.http.Get(tc.dirURL)
	if err != nil {
		t.Fatal(err)
	}
	var dir map[string]any
	json.NewDecoder(resp.Body).Decode(&dir)
	resp.Body.Close()
	if resp.StatusCode != 200 || dir["newNonce"] != tc.url+"/acme/test/new-nonce" || dir["keyChange"] == nil {
		t.Fatalf("directory: %d %v", resp.StatusCode, dir)
	}
	for method, want := range map[string]int{http.MethodHead: 200, http.MethodGet: 204} {
		req, _ := http.NewRequest(method, tc.url+"/acme/test/new-nonce", nil)
		resp, err := tc.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		n := resp.Header.Get("Replay-Nonce")
		if _, err := base64.RawURLEncoding.DecodeString(n); resp.StatusCode != want || n == "" || err != nil {
			t.Errorf("%s new-nonce: %d nonce %q", method, resp.StatusCode, n)
		}
	}
	// Resources are POST-as-GET only; unknown provisioners are problems.
	for url, want := range map[string]int{tc.url + "/acme/test/new-order": 405, tc.url + "/acme/nope/directory": 404} {
		resp, err := tc.http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}

// The Go client does what lego does over http-01 and dns-01 (wildcards),
// for DNS names and an IP; every certificate is linted, verified and stored.
func TestIssueHTTP01DNS01AndIP(t *testing.T) {
	tc := startCA(t, nil)
	h := tc.serveHTTP01(t)
	c := tc.client(t)
	names := []string{"web." + testDomain, testDomain}
	chain, _ := tc.obtain(t, c, h, names...)
	leaf := tc.checkIssued(t, chain, names...)
	if leaf.Subject.CommonName != names[0] || !hasEKU(leaf, x509.ExtKeyUsageServerAuth) || !hasEKU(leaf, x509.ExtKeyUsageClientAuth) {
		t.Errorf("leaf CN %q EKU %v", leaf.Subject.CommonName, leaf.ExtKeyUsage)
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d < 24*time.Hour || d > 24*time.Hour+2*time.Minute {
		t.Errorf("lifetime %s, want the profile's 24h", d)
	}
	wild := []string{"*.wild." + testDomain} // "*." + testDomain alone is refused: see TestBareWildcard
	tc.checkIssued(t, must(tc.obtain(t, c, h, wild...)), wild...)
	tc.checkIssued(t, must(tc.obtain(t, c, h, "127.0.0.1")), "127.0.0.1")
}

func must(b []byte, _ any) []byte { return b }

func hasEKU(c *x509.Certificate, u x509.ExtKeyUsage) bool {
	for _, e := range c.ExtKeyUsage {
		if e == u {
			return true
		}
	}
	return false
}

// Policy knobs: lifetime, client-only, offered challenges.
func TestProvisionerPolicy(t *testing.T) {
	no := false
	tc := startCA(t, func(p *config.ACMEProvisioner) {
		p.Lifetime = config.Duration(2 * time.Hour)
		p.ServerAuth = &no
		p.Challenges = []string{"http-01"}
	})
	h := tc.serveHTTP01(t)
	c := tc.client(t)
	leaf := tc.checkIssued(t, must(tc.obtain(t, c, h, "a."+testDomain)), "a."+testDomain)
	if hasEKU(leaf, x509.ExtKeyUsageServerAuth) || leaf.NotAfter.Sub(leaf.NotBefore) > 2*time.Hour+2*time.Minute {
		t.Errorf("EKU %v lifetime %s, want clientAuth only and 2h", leaf.ExtKeyUsage, leaf.NotAfter.Sub(leaf.NotBefore))
	}
	// Wildcards need dns-01, which this provisioner does not offer.
	_, err := c.AuthorizeOrder(context.Background(), xacme.DomainIDs("*.w."+testDomain))
	if problemType(err) != "urn:ietf:params:acme:error:rejectedIdentifier" {
		t.Errorf("wildcard without dns-01: %v", err)
	}
}

func TestRevokeByCertificateKeyAndAccount(t *testing.T) {
	tc := startCA(t, nil)
	h := tc.serveHTTP01(t)
	c := tc.client(t)
	ctx := context.Background()
	chain, key := tc.obtain(t, c, h, "k."+testDomain)
	leaf := tc.checkIssued(t, chain, "k."+testDomain)

	// Another account may not revoke it.
	other := tc.client(t)
	if err := other.RevokeCert(ctx, nil, leaf.Raw, xacme.CRLReasonKeyCompromise); problemType(err) != "urn:ietf:params:acme:error:unauthorized" {
		t.Errorf("revoke by a stranger: %v", err)
	}
	// The certificate's own key may (jwk-signed request).
	if err := other.RevokeCert(ctx, key, leaf.Raw, xacme.CRLReasonKeyCompromise); err != nil {
		t.Fatalf("revoke by certificate key: %v", err)
	}
	tc.mustBeRevoked(t, leaf.SerialNumber)
	// x/crypto/acme hides alreadyRevoked; ask by hand.
	payload := `{"certificate":"` + base64.RawURLEncoding.EncodeToString(leaf.Raw) + `"}`
	if st, typ := tc.post(t, raw{key: key, url: tc.url + "/acme/test/revoke-cert"}, payload); typ != "urn:ietf:params:acme:error:alreadyRevoked" {
		t.Errorf("second revocation: %d %s", st, typ)
	}

	// The ordering account may too; a reason ACME subscribers may not give is refused.
	leaf2 := tc.checkIssued(t, must(tc.obtain(t, c, h, "k2."+testDomain)), "k2."+testDomain)
	if err := c.RevokeCert(ctx, nil, leaf2.Raw, xacme.CRLReasonCACompromise); problemType(err) != "urn:ietf:params:acme:error:badRevocationReason" {
		t.Errorf("reason cACompromise: %v", err)
	}
	if err := c.RevokeCert(ctx, nil, leaf2.Raw, xacme.CRLReasonCessationOfOperation); err != nil {
		t.Fatalf("revoke by account: %v", err)
	}
	tc.mustBeRevoked(t, leaf2.SerialNumber)
}

func TestAccountKeyRolloverAndDeactivation(t *testing.T) {
	tc := startCA(t, nil)
	h := tc.serveHTTP01(t)
	ctx := context.Background()
	c := tc.client(t)
	oldKey := c.Key
	newK := newKey(t)
	if err := c.AccountKeyRollover(ctx, newK); err != nil {
		t.Fatalf("key rollover: %v", err)
	}
	// The new key works, the old one no longer finds the account.
	tc.checkIssued(t, must(tc.obtain(t, c, h, "roll."+testDomain)), "roll."+testDomain)
	old := &xacme.Client{Key: oldKey, DirectoryURL: tc.dirURL, HTTPClient: tc.http}
	if _, err := old.GetReg(ctx, ""); !errors.Is(err, xacme.ErrNoAccount) {
		t.Errorf("old key after rollover: %v", err)
	}
	// Rolling over to a key another account holds is a conflict.
	other := tc.client(t)
	if err := c.AccountKeyRollover(ctx, other.Key); err == nil || !strings.Contains(err.Error(), "409") {
		t.Errorf("rollover to a taken key: %v", err)
	}
	if err := c.DeactivateReg(ctx); err != nil {
		t.Fatalf("deactivate: %v", err)
	}
	if _, err := c.AuthorizeOrder(ctx, xacme.DomainIDs("x."+testDomain)); problemType(err) != "urn:ietf:params:acme:error:unauthorized" {
		t.Errorf("order after deactivation: %v", err)
	}
}

func TestExternalAccountBinding(t *testing.T) {
	hmacKey := []byte("0123456789abcdef0123456789abcdef")
	keys := filepath.Join(t.TempDir(), "eab.json")
	os.WriteFile(keys, []byte(`{"team-a": "`+base64.RawURLEncoding.EncodeToString(hmacKey)+`"}`), 0o600)
	tc := startCA(t, func(p *config.ACMEProvisioner) { p.EAB = &config.ACMEEAB{KeysFile: keys} })
	ctx := context.Background()
	reg := func(eab *xacme.ExternalAccountBinding) error {
		c := &xacme.Client{Key: newKey(t), DirectoryURL: tc.dirURL, HTTPClient: tc.http}
		_, err := c.Register(ctx, &xacme.Account{ExternalAccountBinding: eab}, xacme.AcceptTOS)
		return err
	}
	if err := reg(nil); problemType(err) != "urn:ietf:params:acme:error:externalAccountRequired" {
		t.Errorf("no EAB: %v", err)
	}
	if err := reg(&xacme.ExternalAccountBinding{KID: "team-a", Key: []byte("wrong key, wrong key, wrong key!")}); problemType(err) != "urn:ietf:params:acme:error:unauthorized" {
		t.Errorf("bad HMAC: %v", err)
	}
	if err := reg(&xacme.ExternalAccountBinding{KID: "team-a", Key: hmacKey}); err != nil {
		t.Fatalf("EAB register: %v", err)
	}
	// Each key binds one account.
	if err := reg(&xacme.ExternalAccountBinding{KID: "team-a", Key: hmacKey}); problemType(err) != "urn:ietf:params:acme:error:unauthorized" {
		t.Errorf("EAB key reused: %v", err)
	}
}

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(b)
}
