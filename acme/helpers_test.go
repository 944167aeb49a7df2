package acme_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.step.sm/crypto/jose"
	xacme "golang.org/x/crypto/acme"

	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/caserver"
	"github.com/anchorage-pki/anchorage/ceremony"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/internal/pkitest"
	"github.com/anchorage-pki/anchorage/storage"
)

// Names under example.com: a real TLD, so zlint has nothing to say about
// them; the test DNS server resolves every one to 127.0.0.1.
const testDomain = "acme.example.com"

// testCA is a real CA (caserver.Open, bbolt files, HTTPS on 127.0.0.1)
// with one ACME provisioner "test" whose validator resolves through a
// test DNS server and connects to loopback ports chosen per test.
type testCA struct {
	dir      string
	url      string
	dirURL   string // ACME directory
	srv      *caserver.Server
	root     []byte
	dns      *testDNS
	httpPort int // where the validator looks for http-01
	tlsPort  int // and for tls-alpn-01
	http     *http.Client
	cfg      *config.CA
	stop     func() // stops srv and closes it (restart, cleanup)
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startCA(t testing.TB, mod func(*config.ACMEProvisioner)) *testCA {
	t.Helper()
	return startCAWith(t, mod)
}

// startCAWith is startCA with more provisioners after "test".
func startCAWith(t testing.TB, mod func(*config.ACMEProvisioner), extra ...config.ACMEProvisioner) *testCA {
	t.Helper()
	return startCAConfig(t, nil, mod, extra...)
}

// startCAConfig is startCAWith that also lets the test change the whole
// "acme" config (its limits).
func startCAConfig(t testing.TB, acmeMod func(*config.ACME), mod func(*config.ACMEProvisioner), extra ...config.ACMEProvisioner) *testCA {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tc := &testCA{dir: dir, dns: startDNS(t), httpPort: freePort(t), tlsPort: freePort(t)}
	cfg := config.Default()
	cfg.Name = "ACME Test"
	cfg.SetDir(dir)
	cfg.Listen = ln.Addr().String()
	cfg.URL = "https://" + ln.Addr().String()
	prov := config.ACMEProvisioner{
		Name:  "test",
		Allow: []string{testDomain, "*." + testDomain, "127.0.0.1"},
		Validation: config.ACMEValidation{HTTP01Port: tc.httpPort, TLSALPN01Port: tc.tlsPort,
			Resolver: tc.dns.addr, Timeout: config.Duration(5 * time.Second)},
	}
	if mod != nil {
		mod(&prov)
	}
	cfg.ACME = &config.ACME{Provisioners: append([]config.ACMEProvisioner{prov}, extra...)}
	if acmeMod != nil {
		acmeMod(cfg.ACME)
	}
	store, err := storage.Create(cfg.Path(cfg.Paths.DB))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ceremony.Init(context.Background(), ceremony.Options{Name: "ACME Test", Store: store,
		TLSNames: []string{"127.0.0.1", "localhost"}, Files: ceremony.FilesFor(cfg)})
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	if err := cfg.Save(); err != nil {
		t.Fatal(err)
	}
	if cfg, err = config.Load(dir); err != nil { // what `serve` does: strict decode + validate
		t.Fatal(err)
	}
	tc.cfg = cfg
	tc.start(t, ln)
	t.Cleanup(func() { tc.stop() })
	tc.url = cfg.URL
	tc.dirURL = cfg.URL + "/acme/test/directory"
	tc.root, _ = os.ReadFile(cfg.Path("root.crt"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(tc.root)
	tc.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	tc.waitUp(t)
	return tc
}

// start opens the CA from tc.cfg (caserver.Open, as `serve` does) and
// serves it on ln.
func (tc *testCA) start(t testing.TB, ln net.Listener) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("ACME_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := caserver.Open(ctx, tc.cfg, log)
	if err != nil {
		cancel()
		ln.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	tc.srv = srv
	tc.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		srv.Close()
		tc.stop = func() {}
	}
}

// restart stops the CA, closing its storage, and opens it again on the
// same address, so account URLs stay valid.
func (tc *testCA) restart(t testing.TB) {
	t.Helper()
	tc.stop()
	ln, err := net.Listen("tcp", tc.cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	tc.start(t, ln)
	tc.waitUp(t)
}

func (tc *testCA) waitUp(t testing.TB) {
	t.Helper()
	for i := 0; ; i++ {
		resp, err := tc.http.Get(tc.dirURL)
		if err == nil {
			resp.Body.Close()
			return
		} else if i > 100 {
			t.Fatalf("CA did not come up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// client registers a fresh account with x/crypto/acme.
func (tc *testCA) client(t testing.TB) *xacme.Client {
	t.Helper()
	c := &xacme.Client{Key: newKey(t), DirectoryURL: tc.dirURL, HTTPClient: tc.http}
	if _, err := c.Register(context.Background(), &xacme.Account{}, xacme.AcceptTOS); err != nil {
		t.Fatalf("register: %v", err)
	}
	return c
}

// http01 is an http-01 responder on the validator's port.
type http01 struct {
	mu   sync.Mutex
	resp map[string]string
}

func (tc *testCA) serveHTTP01(t testing.TB) *http01 {
	t.Helper()
	h := &http01{resp: map[string]string{}}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", itoa(tc.httpPort)))
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		v, ok := h.resp[r.URL.Path]
		h.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, v)
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return h
}

func (h *http01) set(c *xacme.Client, token string, wrong bool) {
	v, _ := c.HTTP01ChallengeResponse(token)
	if wrong {
		v = "not-the-key-authorization"
	}
	h.mu.Lock()
	h.resp[c.HTTP01ChallengePath(token)] = v
	h.mu.Unlock()
}

// obtain runs one order through http-01 (or dns-01 for wildcards) and
// returns the chain and the leaf key. It is lego's message flow.
func (tc *testCA) obtain(t testing.TB, c *xacme.Client, h *http01, names ...string) ([]byte, crypto.Signer) {
	t.Helper()
	ctx := context.Background()
	o, err := c.AuthorizeOrder(ctx, ids(names...))
	if err != nil {
		t.Fatalf("newOrder %v: %v", names, err)
	}
	for _, u := range o.AuthzURLs {
		z, err := c.GetAuthorization(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		ch := pick(z, "http-01")
		if ch == nil {
			ch = pick(z, "dns-01")
			rec, _ := c.DNS01ChallengeRecord(ch.Token)
			tc.dns.SetTXT("_acme-challenge."+z.Identifier.Value, rec)
		} else {
			h.set(c, ch.Token, false)
		}
		if _, err := c.Accept(ctx, ch); err != nil {
			t.Fatalf("accept %s: %v", ch.Type, err)
		}
		if _, err := c.WaitAuthorization(ctx, u); err != nil {
			t.Fatalf("authorization %s: %v", z.Identifier.Value, err)
		}
	}
	key := newKey(t)
	ders, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csrFor(t, key, names[0], names...), true)
	if err != nil {
		t.Fatalf("finalize: %v", err)
	}
	var chain []byte
	for _, d := range ders {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	return chain, key
}

func pick(z *xacme.Authorization, typ string) *xacme.Challenge {
	for _, ch := range z.Challenges {
		if ch.Type == typ {
			return ch
		}
	}
	return nil
}

func csrFor(t testing.TB, key crypto.Signer, cn string, names ...string) []byte {
	t.Helper()
	tmpl := &x509.CertificateRequest{}
	tmpl.Subject.CommonName = cn
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// checkIssued is what every ACME-issued chain must pass: zlint, openssl
// verify to the root, and a record in the CA's storage with method "acme".
func (tc *testCA) checkIssued(t testing.TB, chainPEM []byte, names ...string) *x509.Certificate {
	t.Helper()
	chain := pkitest.ParseChain(t, chainPEM)
	if len(chain) != 2 {
		t.Fatalf("chain has %d certificates, want leaf + issuing CA", len(chain))
	}
	leaf := chain[0]
	pkitest.LintPEM(t, chainPEM)
	pkitest.MustVerify(t, tc.root, chainPEM)
	rec, err := tc.srv.Store.Cert(context.Background(), ca.SerialHex(leaf.SerialNumber))
	if err != nil {
		t.Fatalf("issued certificate not in storage: %v", err)
	}
	if rec.Method != "acme" || rec.Status != storage.StatusValid {
		t.Errorf("stored record: method %q status %q, want acme/valid", rec.Method, rec.Status)
	}
	var got []string
	got = append(got, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		got = append(got, ip.String())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("leaf names %v, want %v", got, names)
	}
	return leaf
}

// crlSerials fetches /crl and returns the revoked serials (hex).
func (tc *testCA) crlSerials(t testing.TB) map[string]bool {
	t.Helper()
	resp, err := tc.http.Get(tc.url + "/crl")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	der, _ := io.ReadAll(resp.Body)
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("parse CRL: %v", err)
	}
	out := map[string]bool{}
	for _, e := range crl.RevokedCertificateEntries {
		out[ca.SerialHex(e.SerialNumber)] = true
	}
	pkitest.LintCRL(t, der)
	return out
}

func (tc *testCA) mustBeRevoked(t testing.TB, serial *big.Int) {
	t.Helper()
	hex := ca.SerialHex(serial)
	if !tc.crlSerials(t)[hex] {
		t.Errorf("serial %s is not on /crl", hex)
	}
	rec, err := tc.srv.Store.Cert(context.Background(), hex)
	if err != nil || rec.Status != storage.StatusRevoked {
		t.Errorf("storage: %v %v, want revoked", rec, err)
	}
}

func problemType(err error) string {
	var e *xacme.Error
	if errors.As(err, &e) {
		return e.ProblemType
	}
	if err == nil {
		return "no error"
	}
	return "not an ACME error: " + err.Error()
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

// raw is a hand-made ACME request, for what no well-behaved client sends.
type raw struct {
	key   crypto.Signer
	kid   string // "" = embed the jwk
	url   string
	nonce string // "" = fetch a fresh one
	body  []byte // nil = sign payload
}

// post signs payload as rw says and returns the status and parsed body
// (the problem type on errors).
func (tc *testCA) post(t testing.TB, rw raw, payload string) (int, string) {
	t.Helper()
	st, typ, _ := tc.postH(t, rw, payload)
	return st, typ
}

// postH is post that also returns the response header.
func (tc *testCA) postH(t testing.TB, rw raw, payload string) (int, string, http.Header) {
	t.Helper()
	body := rw.body
	if body == nil {
		if rw.nonce == "" {
			rw.nonce = tc.nonce(t)
		}
		opts := (&jose.SignerOptions{}).WithHeader("nonce", rw.nonce).WithHeader("url", rw.url)
		if rw.kid == "" {
			opts.EmbedJWK = true
		} else {
			opts = opts.WithHeader("kid", rw.kid)
		}
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: rw.key}, opts)
		if err != nil {
			t.Fatal(err)
		}
		jws, err := sig.Sign([]byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		body = []byte(jws.FullSerialize())
	}
	resp, err := tc.http.Post(rw.url, "application/jose+json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var pr struct{ Type string }
	if resp.StatusCode >= 400 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("error response with Content-Type %q", ct)
		}
		json.NewDecoder(resp.Body).Decode(&pr)
	}
	if resp.Header.Get("Replay-Nonce") == "" {
		t.Errorf("POST %s: no Replay-Nonce", rw.url)
	}
	return resp.StatusCode, pr.Type, resp.Header
}

func (tc *testCA) nonce(t testing.TB) string {
	t.Helper()
	resp, err := tc.http.Head(tc.url + "/acme/test/new-nonce")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("Replay-Nonce")
}

func ids(names ...string) []xacme.AuthzID {
	var out []xacme.AuthzID
	for _, n := range names {
		if net.ParseIP(n) != nil {
			out = append(out, xacme.IPIDs(n)...)
		} else {
			out = append(out, xacme.DomainIDs(n)...)
		}
	}
	return out
}

func (tc *testCA) crlPEM(t testing.TB) []byte {
	t.Helper()
	resp, err := tc.http.Get(tc.url + "/crl.pem")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}

func serialOf(c *x509.Certificate) string { return ca.SerialHex(c.SerialNumber) }
