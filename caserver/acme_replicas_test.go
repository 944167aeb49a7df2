package caserver_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.step.sm/crypto/jose"

	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/internal/pgtest"
	"github.com/anchorage-pki/anchorage/internal/pkitest"
	"github.com/anchorage-pki/anchorage/internal/testenv"
)

const badNonce = "urn:ietf:params:acme:error:badNonce"

// acmeReplicas is two CA replicas on one PostgreSQL database, each serving
// the ACME provisioner "test" for 127.0.0.1, whose validator looks for
// http-01 answers on httpPort.
type acmeReplicas struct {
	db       string
	reps     []*testenv.CA
	httpPort int
	http     *http.Client // trusts the CA's root
}

func startACMEReplicas(t *testing.T) *acmeReplicas {
	t.Helper()
	ar := &acmeReplicas{db: pgtest.URL(t), httpPort: freePort(t)}
	a := testenv.InitCAOnPostgres(t, ar.db)
	a.Cfg.ACME = &config.ACME{Provisioners: []config.ACMEProvisioner{{
		Name: "test", Allow: []string{"127.0.0.1"}, Challenges: []string{"http-01"},
		Validation: config.ACMEValidation{HTTP01Port: ar.httpPort, Timeout: config.Duration(5 * time.Second)},
	}}}
	if err := a.Cfg.Save(); err != nil {
		t.Fatal(err)
	}
	b := a.Replica(t)
	for _, r := range []*testenv.CA{a, b} {
		r.Start(t)
	}
	ar.reps = []*testenv.CA{a, b}
	ar.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool(t, a.Root)}}}
	return ar
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (ar *acmeReplicas) nonce(t *testing.T, r *testenv.CA) string {
	t.Helper()
	resp, err := ar.http.Head(r.URL + "/acme/test/new-nonce")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	n := resp.Header.Get("Replay-Nonce")
	if resp.StatusCode != http.StatusOK || n == "" {
		t.Fatalf("new-nonce at %s: %d, nonce %q", r.URL, resp.StatusCode, n)
	}
	return n
}

// newAccount posts a newAccount signed by key (jwk) with nonce to replica
// r and returns the status and problem type.
func (ar *acmeReplicas) newAccount(t *testing.T, r *testenv.CA, key crypto.Signer, nonce, payload string) (int, string) {
	t.Helper()
	u := r.URL + "/acme/test/new-account"
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithHeader("nonce", nonce).WithHeader("url", u)
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := sig.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ar.http.Post(u, "application/jose+json", strings.NewReader(jws.FullSerialize()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Replay-Nonce") == "" {
		t.Errorf("newAccount at %s: no Replay-Nonce", r.URL)
	}
	var pr struct{ Type string }
	if resp.StatusCode >= 400 {
		json.NewDecoder(resp.Body).Decode(&pr)
	}
	return resp.StatusCode, pr.Type
}

// rows counts a table's rows in the replicas' database.
func (ar *acmeReplicas) rows(t *testing.T, table string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, ar.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A nonce from replica A is good at replica B, once: replayed at A or at
// B it is badNonce, and of concurrent uses of one nonce on both replicas
// exactly one gets through. Minting nonces writes nothing; consumed ids
// are pruned once expired.
func TestACMENonceAcrossReplicas(t *testing.T) {
	ar := startACMEReplicas(t)
	a, b := ar.reps[0], ar.reps[1]
	key := mustKey()
	const create, existing = `{"termsOfServiceAgreed":true}`, `{"onlyReturnExisting":true}`

	fromA := ar.nonce(t, a)
	for _, step := range []struct {
		name     string
		at       *testenv.CA
		payload  string
		status   int
		probType string
	}{
		{"A's nonce used at B", b, create, http.StatusCreated, ""},
		{"replayed at A", a, existing, http.StatusBadRequest, badNonce},
		{"replayed at B", b, existing, http.StatusBadRequest, badNonce},
	} {
		if st, typ := ar.newAccount(t, step.at, key, fromA, step.payload); st != step.status || typ != step.probType {
			t.Fatalf("%s: %d %q, want %d %q", step.name, st, typ, step.status, step.probType)
		}
	}

	one := ar.nonce(t, b)
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch st, typ := ar.newAccount(t, ar.reps[i%2], key, one, existing); {
			case st == http.StatusOK:
				ok.Add(1)
			case typ == badNonce:
				refused.Add(1)
			default:
				t.Errorf("use %d: %d %s", i, st, typ)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || refused.Load() != 19 {
		t.Errorf("20 concurrent uses of one nonce on two replicas: %d accepted, %d badNonce; want 1 and 19", ok.Load(), refused.Load())
	}

	used := ar.rows(t, "acme_nonces")
	if used != 2 {
		t.Errorf("%d used nonce ids stored, want 2", used)
	}
	const n = 200
	for i := range n {
		ar.nonce(t, ar.reps[i%2])
	}
	if got := ar.rows(t, "acme_nonces"); got != used {
		t.Errorf("%d newNonce calls stored %d nonce ids", n, got-used)
	}
	if k := ar.rows(t, "acme_nonce_key"); k != 1 {
		t.Errorf("%d nonce keys stored, want the one both replicas share", k)
	}
	// Consumed ids go once expired (each replica prunes every minute; here
	// at a time past every nonce's lifetime), and not before.
	ctx := context.Background()
	if k, err := b.Srv.Store.PruneNonces(ctx, time.Now()); k != 0 || err != nil {
		t.Errorf("pruning at once removed %d ids (%v), want 0", k, err)
	}
	if k, err := b.Srv.Store.PruneNonces(ctx, time.Now().Add(time.Hour)); k != used || err != nil {
		t.Errorf("pruning an hour on removed %d ids (%v), want %d", k, err, used)
	}
	if got := ar.rows(t, "acme_nonces"); got != 0 {
		t.Errorf("%d ids left after the prune", got)
	}
}

// roundRobin is a reverse proxy that sends each request to the next
// replica in turn, as a load balancer without affinity would, keeping the
// client's Host so that the replicas' links point back at it. It counts
// the ACME POSTs each replica answered and the badNonce refusals.
type roundRobin struct {
	next      atomic.Int64
	backends  []*url.URL
	mu        sync.Mutex
	posts     map[string]int // backend host -> POSTs answered
	badNonces []string
}

func newRoundRobin(t *testing.T, reps []*testenv.CA, root []byte) (*roundRobin, *httptest.Server) {
	rr := &roundRobin{posts: map[string]int{}}
	for _, r := range reps {
		u, err := url.Parse(r.URL)
		if err != nil {
			t.Fatal(err)
		}
		rr.backends = append(rr.backends, u)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(rr.backends[int(rr.next.Add(1))%len(rr.backends)])
			pr.Out.Host = pr.In.Host
		},
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool(t, root)}},
		ModifyResponse: func(resp *http.Response) error {
			if resp.Request.Method != http.MethodPost {
				return nil
			}
			rr.mu.Lock()
			defer rr.mu.Unlock()
			rr.posts[resp.Request.URL.Host]++
			if resp.StatusCode == http.StatusBadRequest {
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					return err
				}
				resp.Body = io.NopCloser(bytes.NewReader(body))
				if bytes.Contains(body, []byte(badNonce)) {
					rr.badNonces = append(rr.badNonces, resp.Request.URL.String())
				}
			}
			return nil
		},
	}
	ps := httptest.NewTLSServer(rp)
	t.Cleanup(ps.Close)
	return rr, ps
}

// lego, unmodified, completes an order through a proxy that alternates
// between two replicas on every request: each nonce it got from one
// replica is spent at the other, and none is refused.
func TestLegoAcrossReplicas(t *testing.T) {
	if _, err := exec.LookPath("lego"); err != nil {
		t.Fatal("lego is not installed (make deps, or apt-get install lego)")
	}
	ar := startACMEReplicas(t)
	rr, proxy := newRoundRobin(t, ar.reps, ar.reps[0].Root)
	dir := t.TempDir()
	bundle := filepath.Join(dir, "proxy.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: proxy.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "lego", "--server", proxy.URL+"/acme/test/directory", "--accept-tos",
		"--path", filepath.Join(dir, "lego"), "--email", "ops@example.org", "--domains", "127.0.0.1",
		"--key-type", "ec256", "--http", "--http.port", fmt.Sprintf("127.0.0.1:%d", ar.httpPort), "run")
	cmd.Env = append(os.Environ(), "LEGO_CA_CERTIFICATES="+bundle)
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("lego through the round-robin proxy: %v\n%s", err, tail(out, 3000))
	}
	chain, err := os.ReadFile(filepath.Join(dir, "lego", "certificates", "127.0.0.1.crt"))
	if err != nil {
		t.Fatal(err)
	}
	leaf := pkitest.ParseChain(t, chain)[0]
	pkitest.MustVerify(t, ar.reps[0].Root, chain)
	for _, r := range ar.reps {
		if rec, err := r.Srv.Store.Cert(context.Background(), ca.SerialHex(leaf.SerialNumber)); err != nil || rec.Method != "acme" {
			t.Errorf("the certificate as %s's storage has it: %+v %v", r.URL, rec, err)
		}
	}
	rr.mu.Lock()
	defer rr.mu.Unlock()
	t.Logf("POSTs answered per replica: %v", rr.posts)
	if len(rr.posts) != 2 {
		t.Errorf("POSTs went to %d replicas, want both: %v", len(rr.posts), rr.posts)
	}
	if len(rr.badNonces) > 0 {
		t.Errorf("badNonce on %d POSTs: %v", len(rr.badNonces), rr.badNonces)
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
