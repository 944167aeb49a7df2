package caserver_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/caclient"
	"github.com/anchorage-pki/anchorage/problem"
)

// stepHTTP is a plain HTTPS client trusting the CA's root, presenting cert.
func (tc *testCA) stepHTTP(t *testing.T, cert *tls.Certificate) *http.Client {
	t.Helper()
	cfg := &tls.Config{RootCAs: pool(t, mustRead(t, tc.Dir+"/root.crt"))}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

type stepAnswer struct {
	status int
	ctype  string
	body   map[string]any
}

func stepDo(t *testing.T, c *http.Client, method, url string, body any) stepAnswer {
	t.Helper()
	var rd io.Reader = http.NoBody
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s: %d, body is not JSON: %q", method, url, resp.StatusCode, raw)
	}
	return stepAnswer{resp.StatusCode, resp.Header.Get("Content-Type"), m}
}

func csrPEM(t *testing.T, name string, sans []string) string {
	t.Helper()
	csr, err := caclient.NewCSR(mustKey(), name, sans)
	if err != nil {
		t.Fatal(err)
	}
	return string(csr)
}

// The step-ca wire shapes take the same refusals as /v1: a CSR beyond the
// grant, a replayed token, a revoked certificate's renewal; errors are
// problem documents that also carry step's "message".
func TestStepEndpoints(t *testing.T) {
	tc := startCA(t)
	anon := tc.stepHTTP(t, nil)
	tok := tc.token(t, "s.example.com", []string{"DNS:s.example.com"}, 10*time.Minute, time.Now())

	ok := stepDo(t, anon, "POST", tc.URL+"/1.0/sign", map[string]any{"csr": csrPEM(t, "s.example.com", []string{"DNS:s.example.com"}), "ott": tok, "notAfter": "2h"})
	if ok.status != http.StatusCreated {
		t.Fatalf("/1.0/sign: %d %v", ok.status, ok.body)
	}
	blk, _ := pem.Decode([]byte(ok.body["crt"].(string)))
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got < 2*time.Hour-time.Minute || got > 2*time.Hour+2*time.Minute {
		t.Errorf("notAfter 2h gave a lifetime of %v", got)
	}
	if chain := ok.body["certChain"].([]any); len(chain) != 2 || ok.body["ca"] != chain[1] {
		t.Errorf("certChain/ca: %v", ok.body)
	}

	other := tc.token(t, "t.example.com", nil, 10*time.Minute, time.Now())
	root := mustRead(t, tc.Dir+"/root.crt")
	rb, _ := pem.Decode(root)
	sum := sha256.Sum256(rb.Bytes)

	cases := []struct {
		name, method, path string
		body               any
		status             int
		typ, detail        string
	}{
		{"replayed token", "POST", "/sign", map[string]any{"csr": csrPEM(t, "s.example.com", []string{"DNS:s.example.com"}), "ott": tok},
			http.StatusForbidden, problem.TokenReplayed, "already been used"},
		{"CSR beyond the grant", "POST", "/1.0/sign", map[string]any{"csr": csrPEM(t, "t.example.com", []string{"DNS:evil.example.com"}), "ott": other},
			http.StatusForbidden, problem.NameNotAllowed, "evil.example.com"},
		{"later start", "POST", "/sign", map[string]any{"csr": csrPEM(t, "t.example.com", nil), "ott": other, "notBefore": "1h"},
			http.StatusBadRequest, problem.Malformed, "start now"},
		{"template data", "POST", "/sign", map[string]any{"csr": csrPEM(t, "t.example.com", nil), "ott": other, "templateData": map[string]any{"x": 1}},
			http.StatusBadRequest, problem.Malformed, "templateData"},
		{"bad token", "POST", "/sign", map[string]any{"csr": csrPEM(t, "t.example.com", nil), "ott": "x.y.z"},
			http.StatusUnauthorized, problem.TokenInvalid, ""},
		{"renew without a client certificate", "POST", "/renew", nil, http.StatusUnauthorized, problem.Unauthenticated, "client certificate"},
		{"sign by GET", "GET", "/sign", nil, http.StatusMethodNotAllowed, problem.MethodNotAllowed, ""},
		{"root by a bad fingerprint", "GET", "/root/zz", nil, http.StatusBadRequest, problem.Malformed, ""},
		{"root not ours", "GET", "/1.0/root/" + strings.Repeat("ab", 32), nil, http.StatusNotFound, problem.NotFound, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := stepDo(t, anon, c.method, tc.URL+c.path, c.body)
			if a.status != c.status || a.ctype != problem.ContentType || a.body["type"] != c.typ {
				t.Fatalf("%d %s %v, want %d %s", a.status, a.ctype, a.body, c.status, c.typ)
			}
			msg, _ := a.body["message"].(string)
			if msg == "" || msg != a.body["detail"] || !strings.Contains(msg, c.detail) {
				t.Errorf("message %q (detail %v), want it to say %q", msg, a.body["detail"], c.detail)
			}
		})
	}
	// None of the refusals above spent the other token: it enrolls once.
	if a := stepDo(t, anon, "POST", tc.URL+"/sign", map[string]any{"csr": csrPEM(t, "t.example.com", nil), "ott": other}); a.status != http.StatusCreated {
		t.Fatalf("the refused requests spent the token: %d %v", a.status, a.body)
	}

	r := stepDo(t, anon, "GET", tc.URL+"/root/"+hex.EncodeToString(sum[:]), nil)
	if r.status != 200 || r.body["ca"] != string(root) {
		t.Errorf("/root/sha: %d %v", r.status, r.body)
	}
	rs := stepDo(t, anon, "GET", tc.URL+"/1.0/roots", nil)
	if crts, _ := rs.body["crts"].([]any); rs.status != 200 || len(crts) != 1 || crts[0] != string(root) {
		t.Errorf("/roots: %d %v", rs.status, rs.body)
	}

	// Renew over mTLS with no body: same key, successor in the lineage.
	pair, res := tc.enroll(t, "r.example.com")
	mtls := tc.stepHTTP(t, &pair)
	rn := stepDo(t, mtls, "POST", tc.URL+"/renew", nil)
	if rn.status != http.StatusCreated {
		t.Fatalf("/renew: %d %v", rn.status, rn.body)
	}
	nb, _ := pem.Decode([]byte(rn.body["crt"].(string)))
	next, _ := x509.ParseCertificate(nb.Bytes)
	if !bytes.Equal(next.RawSubjectPublicKeyInfo, pair.Leaf.RawSubjectPublicKeyInfo) {
		t.Error("step renew changed the key")
	}
	// Asked again (a lost answer): the same successor, not a second one.
	again := stepDo(t, mtls, "POST", tc.URL+"/1.0/renew", nil)
	if again.status != http.StatusCreated || again.body["crt"] != rn.body["crt"] {
		t.Errorf("retried renew: %d, same successor %v", again.status, again.body["crt"] == rn.body["crt"])
	}
	// A body is not step's renew.
	if a := stepDo(t, mtls, "POST", tc.URL+"/renew", map[string]any{"csr": "x"}); a.status != http.StatusBadRequest {
		t.Errorf("renew with a body: %d %v", a.status, a.body)
	}
	// Revoked: the lineage cannot renew.
	if _, err := tc.Admin(t).Revoke(t.Context(), apiv1.RevokeRequest{Serial: res.Serial, Reason: "keyCompromise"}); err != nil {
		t.Fatal(err)
	}
	if a := stepDo(t, mtls, "POST", tc.URL+"/renew", nil); a.status != http.StatusForbidden || a.body["type"] != problem.CertRevoked {
		t.Errorf("renew after revoke: %d %v", a.status, a.body)
	}
}

// step's /renew records and counts what /v1/renew does: the renewing
// certificate as the actor, and a certificate that cannot renew (an admin
// certificate) as a refused renewal. /renew used to leave the actor empty
// and record no refusal at all.
func TestStepRenewObservedLikeV1(t *testing.T) {
	for _, c := range []struct {
		path string
		body func(key *ecdsa.PrivateKey) any // the request body renewing with key
	}{
		{"/v1/renew", func(key *ecdsa.PrivateKey) any {
			csr, _ := caclient.NewCSR(key, "x", nil)
			return map[string]any{"csr": string(csr)}
		}},
		{"/renew", func(*ecdsa.PrivateKey) any { return nil }},
		{"/1.0/renew", func(*ecdsa.PrivateKey) any { return nil }},
	} {
		t.Run(c.path, func(t *testing.T) {
			tc, file := startObservedCA(t)
			tok := tc.token(t, "r.example.com", nil, 10*time.Minute, time.Now())
			key := mustKey()
			csr, _ := caclient.NewCSR(key, "r.example.com", nil)
			res, err := tc.Client(t, nil).Enroll(context.Background(), tok, csr)
			if err != nil {
				t.Fatal(err)
			}
			pair := tlsPair(t, res.Chain, key)
			if a := stepDo(t, tc.stepHTTP(t, &pair), "POST", tc.URL+c.path, c.body(key)); a.status != http.StatusCreated {
				t.Fatalf("renew: %d %v", a.status, a.body)
			}
			adm, err := tls.LoadX509KeyPair(filepath.Join(tc.Dir, "admin.crt"), filepath.Join(tc.Dir, "admin.key"))
			if err != nil {
				t.Fatal(err)
			}
			if a := stepDo(t, tc.stepHTTP(t, &adm), "POST", tc.URL+c.path, c.body(mustKey())); a.status != http.StatusForbidden {
				t.Fatalf("renew with an admin certificate: %d %v", a.status, a.body)
			}
			if v, _ := tc.Scrape(t).Value("anchorage_renewal_requests_total", "method", "mtls", "result", "bad_client_cert"); v != 1 {
				t.Errorf("anchorage_renewal_requests_total{bad_client_cert} = %v, want 1", v)
			}
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var renews []map[string]any
			for _, l := range bytes.Split(bytes.TrimSpace(raw), []byte{'\n'}) {
				var e map[string]any
				if err := json.Unmarshal(l, &e); err != nil {
					t.Fatal(err)
				}
				if e["event"] == "renew" {
					renews = append(renews, e)
				}
			}
			if len(renews) != 2 {
				t.Fatalf("%d renew events, want 2:\n%s", len(renews), raw)
			}
			if renews[0]["result"] != "ok" || renews[0]["actor"] != "cert:"+res.Serial {
				t.Errorf("renewal event %v: want result ok, actor cert:%s", renews[0], res.Serial)
			}
			if renews[1]["result"] != "refused" || renews[1]["reason"] != "bad_client_cert" {
				t.Errorf("admin certificate's renewal event %v: want refused, bad_client_cert", renews[1])
			}
		})
	}
}

// /v1/enroll and step's /sign issue the same names for the same token, and
// those are the names the token was minted with, each with its type. The
// CSR is built from the token's own sans, as `anchorage enroll` does. A DNS
// name shaped like an IP used to come out as an IP SAN, and a token with an
// opaque URI (urn:...) was refused as malformed.
func TestSignAndEnrollIssueTheMintedNames(t *testing.T) {
	tc := startCA(t)
	anon := tc.stepHTTP(t, nil)
	for i, sans := range [][]string{
		{"DNS:w.example.com", "IP:10.0.0.7", "IP:fd00::7", "URI:spiffe://example.com/w"},
		{"DNS:10.0.0.8"},
		{"URI:urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"},
		{"DNS:*.w.example.com"},
	} {
		want, err := ca.ParseSANs(sans)
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{apiv1.PathEnroll, "/1.0/sign"} {
			t.Run(path+" "+strings.Join(sans, ","), func(t *testing.T) {
				name := fmt.Sprintf("n%d.example.com", i)
				tok := tc.token(t, name, sans, 10*time.Minute, time.Now())
				claims, err := caclient.InspectToken(tok)
				if err != nil {
					t.Fatal(err)
				}
				csr := csrPEM(t, name, claims.SANs)
				var chain string
				if path == apiv1.PathEnroll {
					res, err := tc.Client(t, nil).Enroll(context.Background(), tok, []byte(csr))
					if err != nil {
						t.Fatalf("enroll: %v", err)
					}
					chain = res.Chain
				} else {
					a := stepDo(t, anon, "POST", tc.URL+path, map[string]any{"csr": csr, "ott": tok})
					if a.status != http.StatusCreated {
						t.Fatalf("sign: %d %v", a.status, a.body)
					}
					chain = a.body["crt"].(string)
				}
				blk, _ := pem.Decode([]byte(chain))
				leaf, err := x509.ParseCertificate(blk.Bytes)
				if err != nil {
					t.Fatal(err)
				}
				got := ca.Names{DNS: leaf.DNSNames, IPs: leaf.IPAddresses, URIs: leaf.URIs}
				if g, w := strings.Join(got.Strings(), ","), strings.Join(want.Strings(), ","); g != w {
					t.Errorf("certificate names %s, token minted with %s", g, w)
				}
			})
		}
	}
}
