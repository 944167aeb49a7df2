package caserver_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/caclient"
	"github.com/anchorage-pki/anchorage/enroll"
	"github.com/anchorage-pki/anchorage/internal/pkitest"
	"github.com/anchorage-pki/anchorage/internal/testenv"
	"github.com/anchorage-pki/anchorage/problem"
	"github.com/anchorage-pki/anchorage/signer"
)

// testCA is a real CA serving HTTPS on 127.0.0.1 with a real bbolt file.
type testCA struct{ *testenv.CA }

func startCA(t testing.TB) *testCA {
	t.Helper()
	c := testenv.InitCA(t)
	c.Start(t)
	return &testCA{c}
}

func (tc *testCA) token(t testing.TB, name string, sans []string, ttl time.Duration, now time.Time) string {
	key, err := signer.Open(context.Background(), filepath.Join(tc.Dir, "provisioner.key"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := enroll.Mint(key, tc.URL, name, sans, ttl, now)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// workload enrolls a fresh key and returns its TLS pair and chain PEM.
func (tc *testCA) enroll(t testing.TB, name string, sans ...string) (tls.Certificate, *apiv1.CertResponse) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := caclient.NewCSR(key, name, sans)
	if err != nil {
		t.Fatal(err)
	}
	res, err := tc.Client(t, nil).Enroll(context.Background(), tc.token(t, name, sans, 10*time.Minute, time.Now()), csr)
	if err != nil {
		t.Fatalf("enroll %s: %v", name, err)
	}
	keyPEM, _ := signer.Encode(key)
	pair, err := tls.X509KeyPair([]byte(res.Chain), keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair, res
}

func problemType(err error) string {
	var d *problem.Details
	if errors.As(err, &d) {
		return d.Type
	}
	return "not a problem: " + err.Error()
}

func TestEnrollRenewRevoke(t *testing.T) {
	tc := startCA(t)
	ctx := context.Background()
	pair, res := tc.enroll(t, "web-01.example.com", "DNS:web-01.example.com", "URI:spiffe://example.com/web")

	chain := pkitest.ParseChain(t, []byte(res.Chain))
	if len(chain) != 2 {
		t.Fatalf("chain has %d certificates, want leaf + issuing CA", len(chain))
	}
	leaf := chain[0]
	if leaf.Subject.CommonName != "web-01.example.com" || len(leaf.URIs) != 1 || leaf.IsCA ||
		leaf.KeyUsage != x509.KeyUsageDigitalSignature || len(leaf.SerialNumber.Bytes()) != 20 {
		t.Errorf("leaf profile wrong: CN=%q URIs=%v CA=%v KU=%v serial bytes=%d", leaf.Subject.CommonName, leaf.URIs, leaf.IsCA, leaf.KeyUsage, len(leaf.SerialNumber.Bytes()))
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got < 24*time.Hour || got > 24*time.Hour+2*time.Minute {
		t.Errorf("lifetime %s, want 24h", got)
	}
	pkitest.LintPEM(t, []byte(res.Chain))
	pkitest.MustVerify(t, tc.Root, []byte(res.Chain))

	// Renew over mTLS: same subject and names, new serial.
	key2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := caclient.NewCSR(key2, "ignored-by-ca", nil)
	ren, err := tc.Client(t, &pair).Renew(ctx, csr)
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	nl := pkitest.ParseChain(t, []byte(ren.Chain))[0]
	if nl.Subject.CommonName != leaf.Subject.CommonName || strings.Join(nl.DNSNames, ",") != strings.Join(leaf.DNSNames, ",") ||
		nl.URIs[0].String() != leaf.URIs[0].String() || ren.Serial == res.Serial {
		t.Errorf("renewed cert: CN=%q DNS=%v URIs=%v serial=%s", nl.Subject.CommonName, nl.DNSNames, nl.URIs, ren.Serial)
	}
	pkitest.LintPEM(t, []byte(ren.Chain))

	// A retry whose answer was lost (same predecessor, same key) gets the
	// successor it already has; another key is refused: only the newest
	// certificate of a lineage renews.
	again, err := tc.Client(t, &pair).Renew(ctx, csr)
	if err != nil || again.Serial != ren.Serial {
		t.Errorf("retried renewal: %+v %v, want the successor %s again", again, err, ren.Serial)
	}
	key3, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr3, _ := caclient.NewCSR(key3, "x", nil)
	if _, err := tc.Client(t, &pair).Renew(ctx, csr3); problemType(err) != problem.CertSuperseded {
		t.Errorf("second renewal of a superseded certificate with a new key: %v", err)
	}

	// Revoke the original by serial (openssl's colon form): its successor
	// goes with it, in the same commit.
	rr, err := tc.Admin(t).Revoke(ctx, apiv1.RevokeRequest{Serial: strings.ToUpper(res.Serial), Reason: "keyCompromise"})
	if err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if len(rr.Revoked) != 2 || rr.Revoked[0].Serial != res.Serial || rr.Revoked[1].Serial != ren.Serial ||
		rr.Revoked[1].RevokedWith != res.Serial || rr.CRLNumber < 2 {
		t.Fatalf("revoke result %+v", rr)
	}
	der, err := tc.Client(t, nil).CRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	onCRL := map[string]int{}
	for _, e := range rl.RevokedCertificateEntries {
		onCRL[ca.SerialHex(e.SerialNumber)] = e.ReasonCode
	}
	if rl.Number.Uint64() != rr.CRLNumber || len(onCRL) != 2 || onCRL[res.Serial] != 1 || onCRL[ren.Serial] != 1 {
		t.Errorf("CRL %d entries %+v", rl.Number, rl.RevokedCertificateEntries)
	}
	pkitest.LintCRL(t, der)
	crlPEM := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
	if err := pkitest.OpenSSLVerify(t, tc.Root, []byte(res.Chain), crlPEM); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("openssl verify of the revoked leaf with the CRL: %v", err)
	}
	if err := pkitest.OpenSSLVerify(t, tc.Root, []byte(ren.Chain), crlPEM); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("openssl verify of the renewed leaf with the CRL: %v", err)
	}

	// The revoked certificate can no longer renew.
	if _, err := tc.Client(t, &pair).Renew(ctx, csr); problemType(err) != problem.CertRevoked {
		t.Errorf("renew with revoked cert: %v", err)
	}
	// Revoke by subject finds nothing new: both are reported as already revoked.
	rr2, err := tc.Admin(t).Revoke(ctx, apiv1.RevokeRequest{Subject: "web-01.example.com"})
	if err != nil || len(rr2.Revoked) != 0 || len(rr2.AlreadyRevoked) != 2 || rr2.CRLNumber != rr.CRLNumber {
		t.Errorf("revoke by subject: %+v %v", rr2, err)
	}
	list, err := tc.Admin(t).Certs(ctx, "web-01.example.com", "revoked", 0, "")
	if err != nil || len(list.Certs) != 2 {
		t.Errorf("list revoked: %+v %v", list, err)
	}

	// /metrics counts what happened.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool(t, tc.Root)}}}
	resp, err := hc.Get(tc.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`anchorage_certificates_issued_total{method="token"} 1`,
		`anchorage_certificates_issued_total{method="renew"} 1`,
		"anchorage_certificates_revoked_total 2",
		fmt.Sprintf("anchorage_crl_number %d", rr2.CRLNumber),
		"anchorage_crl_entries 2",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

func TestEnrollRefusals(t *testing.T) {
	tc := startCA(t)
	ctx := context.Background()
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	used := tc.token(t, "used.example.com", nil, time.Minute, time.Now())
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	okCSR, _ := caclient.NewCSR(key, "used.example.com", nil)
	if _, err := tc.Client(t, nil).Enroll(ctx, used, okCSR); err != nil {
		t.Fatal(err)
	}
	forged, _ := enroll.Mint(otherKey, tc.URL, "h.example.com", nil, time.Minute, time.Now())
	csrFor := func(cn string, sans ...string) []byte {
		b, err := caclient.NewCSR(key, cn, sans)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rsaSmall := func() []byte {
		// A P-224 key is a key type the CA refuses.
		k, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
		b, _ := caclient.NewCSR(k, "h.example.com", nil)
		return b
	}
	wrongAud := func() string {
		k, _ := signer.Open(ctx, filepath.Join(tc.Dir, "provisioner.key"))
		tok, _ := enroll.Mint(k, "https://other-ca.example.com", "h.example.com", nil, time.Minute, time.Now())
		return tok
	}
	cases := []struct {
		name  string
		token string
		csr   []byte
		want  string
	}{
		{"replayed token", used, okCSR, problem.TokenReplayed},
		{"expired token", tc.token(t, "h.example.com", nil, time.Minute, time.Now().Add(-time.Hour)), csrFor("h.example.com"), problem.TokenExpired},
		{"wrong audience", wrongAud(), csrFor("h.example.com"), problem.TokenAudience},
		{"bad signature", forged, csrFor("h.example.com"), problem.TokenInvalid},
		{"garbage token", "not.a.jwt", csrFor("h.example.com"), problem.TokenInvalid},
		{"CN not granted", tc.token(t, "h.example.com", nil, time.Minute, time.Now()), csrFor("other.example.com"), problem.NameNotAllowed},
		{"SAN not granted", tc.token(t, "h.example.com", []string{"DNS:a.example.com"}, time.Minute, time.Now()), csrFor("h.example.com", "DNS:b.example.com"), problem.NameNotAllowed},
		{"bad CSR", tc.token(t, "h.example.com", nil, time.Minute, time.Now()), []byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"), problem.BadCSR},
		{"refused key type", tc.token(t, "h.example.com", nil, time.Minute, time.Now()), rsaSmall(), problem.BadCSR},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := tc.Client(t, nil).Enroll(ctx, c.token, c.csr)
			if err == nil {
				t.Fatal("enrollment succeeded")
			}
			if got := problemType(err); got != c.want {
				t.Errorf("problem type %s (%v), want %s", got, err, c.want)
			}
		})
	}
	// A refused token that was never consumed still works afterwards.
	tok := tc.token(t, "later.example.com", nil, time.Minute, time.Now())
	if _, err := tc.Client(t, nil).Enroll(ctx, tok, csrFor("other.example.com")); err == nil {
		t.Fatal("want refusal")
	}
	if _, err := tc.Client(t, nil).Enroll(ctx, tok, csrFor("later.example.com")); err != nil {
		t.Errorf("token refused for a bad CSR must stay usable: %v", err)
	}
}

func TestMalformedRequests(t *testing.T) {
	tc := startCA(t)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool(t, tc.Root)}}}
	cases := []struct {
		name, method, path, ctype, body string
		status                          int
		want                            string
	}{
		{"unknown field", "POST", "/v1/enroll", "application/json", `{"token":"x","csr":"y","extra":1}`, 400, problem.Malformed},
		{"not json", "POST", "/v1/enroll", "application/json", `{`, 400, problem.Malformed},
		{"oversize", "POST", "/v1/enroll", "application/json", `{"token":"` + strings.Repeat("a", 70000) + `"}`, 413, problem.TooLarge},
		{"wrong method", "GET", "/v1/enroll", "", ``, 405, problem.MethodNotAllowed},
		{"unknown path", "GET", "/v2/nothing", "", ``, 404, problem.NotFound},
		{"renew without client cert", "POST", "/v1/renew", "application/json", `{"csr":""}`, 401, problem.Unauthenticated},
		{"list without client cert", "GET", "/v1/certs", "", ``, 401, problem.Unauthenticated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, tc.URL+c.path, strings.NewReader(c.body))
			if c.ctype != "" {
				req.Header.Set("Content-Type", c.ctype)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != c.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), problem.ContentType) {
				t.Errorf("status %d type %q, want %d problem+json", resp.StatusCode, resp.Header.Get("Content-Type"), c.status)
			}
			if got := problemType(problem.Read(resp)); got != c.want {
				t.Errorf("problem %s, want %s", got, c.want)
			}
		})
	}
}

func pool(t testing.TB, rootPEM []byte) *x509.CertPool {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(rootPEM) {
		t.Fatal("bad root")
	}
	return p
}

func TestAdminAuthorization(t *testing.T) {
	tc := startCA(t)
	ctx := context.Background()
	pair, res := tc.enroll(t, "worker.example.com")
	if _, err := tc.Client(t, &pair).Revoke(ctx, apiv1.RevokeRequest{Serial: res.Serial}); problemType(err) != problem.Forbidden {
		t.Errorf("workload revoking: %v", err)
	}
	if _, err := tc.Client(t, nil).Revoke(ctx, apiv1.RevokeRequest{Serial: res.Serial}); problemType(err) != problem.Unauthenticated {
		t.Errorf("anonymous revoking: %v", err)
	}
	if _, err := tc.Admin(t).Revoke(ctx, apiv1.RevokeRequest{Serial: "abcdef"}); problemType(err) != problem.NotFound {
		t.Errorf("unknown serial: %v", err)
	}
	if _, err := tc.Admin(t).Revoke(ctx, apiv1.RevokeRequest{Serial: res.Serial, Reason: "bogus"}); problemType(err) != problem.Malformed {
		t.Errorf("bad reason: %v", err)
	}
	list, err := tc.Admin(t).Certs(ctx, "worker.example.com", "valid", 0, "")
	if err != nil || len(list.Certs) != 1 || list.Certs[0].Serial != res.Serial || list.Certs[0].Method != "token" {
		t.Errorf("list: %+v %v", list, err)
	}
}

func TestRenewRefusesExpiredAndForeign(t *testing.T) {
	tc := startCA(t)
	ctx := context.Background()
	caKey, err := signer.Open(ctx, filepath.Join(tc.Dir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	issuer := pkitest.ParseChain(t, mustRead(t, filepath.Join(tc.Dir, "ca.crt")))[0]
	mk := func(parent *x509.Certificate, parentKey any, notAfter time.Time) tls.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(77), Subject: pkix.Name{CommonName: "old.example.com"},
			NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, k.Public(), parentKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der, parent.Raw}, PrivateKey: k}
	}
	csr, _ := caclient.NewCSR(mustKey(), "old.example.com", nil)

	expired := mk(issuer, caKey, time.Now().Add(-time.Hour))
	if _, err := tc.Client(t, &expired).Renew(ctx, csr); problemType(err) != problem.CertExpired {
		t.Errorf("expired: %v", err)
	}
	// Signed by the CA but never recorded: refused as unknown.
	unrecorded := mk(issuer, caKey, time.Now().Add(time.Hour))
	if _, err := tc.Client(t, &unrecorded).Renew(ctx, csr); problemType(err) != problem.CertUnknown {
		t.Errorf("unrecorded: %v", err)
	}
	// From another CA entirely.
	otherKey := mustKey()
	other := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Other CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	otherDER, _ := x509.CreateCertificate(rand.Reader, other, other, otherKey.Public(), otherKey)
	otherCA, _ := x509.ParseCertificate(otherDER)
	foreign := mk(otherCA, otherKey, time.Now().Add(time.Hour))
	if _, err := tc.Client(t, &foreign).Renew(ctx, csr); problemType(err) != problem.Unauthenticated {
		t.Errorf("foreign: %v", err)
	}
}

func TestSameTokenRace(t *testing.T) {
	tc := startCA(t)
	tok := tc.token(t, "race.example.com", nil, time.Minute, time.Now())
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, replayed := 0, 0
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			csr, _ := caclient.NewCSR(mustKey(), "race.example.com", nil)
			_, err := tc.Client(t, nil).Enroll(context.Background(), tok, csr)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case problemType(err) == problem.TokenReplayed:
				replayed++
			default:
				t.Errorf("unexpected: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok != 1 || replayed != 11 {
		t.Errorf("one token gave %d certificates and %d replay refusals; want 1 and 11", ok, replayed)
	}
	list, _ := tc.Admin(t).Certs(context.Background(), "race.example.com", "", 0, "")
	if len(list.Certs) != 1 {
		t.Errorf("storage holds %d certificates for the token, want 1", len(list.Certs))
	}
}

func TestConcurrentEnrollmentsAllRecorded(t *testing.T) {
	tc := startCA(t)
	var wg sync.WaitGroup
	serials := make(chan string, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, res := tc.enroll(t, "host-"+string(rune('a'+i%26))+".example.com")
			serials <- res.Serial
		}()
	}
	wg.Wait()
	close(serials)
	list, err := tc.Admin(t).Certs(context.Background(), "", "valid", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, c := range list.Certs {
		have[c.Serial] = true
	}
	n := 0
	for s := range serials {
		n++
		if !have[s] {
			t.Errorf("issued serial %s is not in /v1/certs", s)
		}
	}
	if n != 40 {
		t.Errorf("%d enrollments finished", n)
	}
}

func mustKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func mustRead(t testing.TB, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// GET /v1/certs pages: the limit is always honoured (1..1000), next leads
// through every certificate exactly once, and a cursor no listing made is
// a 400, not a listing from the start.
func TestCertsPaging(t *testing.T) {
	tc := startCA(t)
	for i := range 7 {
		tc.enroll(t, fmt.Sprintf("page-%d.example.com", i))
	}
	ctx := context.Background()
	all, err := tc.Admin(t).Certs(ctx, "", "", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	cursor, pages := "", 0
	for {
		list, err := tc.Admin(t).Certs(ctx, "", "", 2, cursor)
		if err != nil {
			t.Fatal(err)
		}
		if pages++; len(list.Certs) > 2 || pages > 20 {
			t.Fatalf("page %d: %d certificates, limit 2", pages, len(list.Certs))
		}
		for _, c := range list.Certs {
			seen[c.Serial]++
		}
		if list.Next == "" {
			break
		}
		cursor = list.Next
	}
	if len(seen) != len(all.Certs) || len(all.Certs) < 7 {
		t.Fatalf("paged %d distinct, one listing %d", len(seen), len(all.Certs))
	}
	for s, n := range seen {
		if n != 1 {
			t.Errorf("%s listed %d times", s, n)
		}
	}
	for _, bad := range []struct {
		limit  int
		cursor string
	}{{1001, ""}, {10, "bm90IGEgY3Vyc29y"}, {10, "%%%"}} {
		if _, err := tc.Admin(t).Certs(ctx, "", "", bad.limit, bad.cursor); problemType(err) != problem.Malformed {
			t.Errorf("limit %d cursor %q: %v, want malformed", bad.limit, bad.cursor, err)
		}
	}
}
