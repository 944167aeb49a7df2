package ha_test

import (
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
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/caclient"
	"github.com/anchorage-pki/anchorage/enroll"
	"github.com/anchorage-pki/anchorage/problem"
	"github.com/anchorage-pki/anchorage/signer"
)

// reqTimeout bounds one request; a request past it is a hang. A revoke
// waits up to 10 s for its CRL before it answers.
const reqTimeout = 20 * time.Second

// held is a certificate a client received, with its key.
type held struct {
	serial string
	pair   tls.Certificate
}

// ledger is what the clients of a load saw: the certificates they
// received, the revocations acknowledged, and every answer that should
// not have been given.
type ledger struct {
	mu       sync.Mutex
	received map[string]string // serial -> enroll or renew
	revoked  []string          // acknowledged, with the lineage members each revoked
	pool     []*held           // newest certificate of each unrevoked lineage
	answers  map[string]int    // "enroll 201", "renew 503", "revoke transport" ...
	bad      []string          // answers the test fails on
	seq      atomic.Int64
}

func newLedger() *ledger {
	return &ledger{received: map[string]string{}, answers: map[string]int{}}
}

func (l *ledger) count(op, what string) {
	l.mu.Lock()
	l.answers[op+" "+what]++
	l.mu.Unlock()
}

func (l *ledger) fail(format string, args ...any) {
	l.mu.Lock()
	l.bad = append(l.bad, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

// since returns how many answers of the kind were counted.
func (l *ledger) get(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.answers[key]
}

func (l *ledger) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("%d certificates received, %d revocations acknowledged, answers %v", len(l.received), len(l.revoked), l.answers)
}

// load is a client population that enrolls, renews and revokes against
// random running replicas until stopped. allow503 is for a database
// outage: a 503 problem of type unavailable is accepted, a request without
// an answer is not. Without it a request without an answer (a replica
// killed under it) is accepted. Anything else but success is a failure.
type load struct {
	w        *world
	l        *ledger
	allow503 bool
	prov     crypto.Signer
	aud      string
	admin    tls.Certificate
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startLoad(t testing.TB, w *world, l *ledger, workers int, allow503 bool) *load {
	t.Helper()
	dir := w.reps[0].ca.Dir
	prov, err := signer.Open(context.Background(), filepath.Join(dir, "provisioner.key"))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := tls.LoadX509KeyPair(filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	// Tokens are for the CA's one name (cfg.URL), which every replica
	// shares, as behind a load balancer.
	ld := &load{w: w, l: l, allow503: allow503, prov: prov, aud: w.reps[0].ca.Cfg.URL, admin: admin, stop: make(chan struct{})}
	for range workers {
		ld.wg.Add(1)
		go ld.run()
	}
	t.Cleanup(ld.halt)
	return ld
}

// halt stops the load and waits for requests in flight (each bounded by
// reqTimeout).
func (ld *load) halt() {
	select {
	case <-ld.stop:
	default:
		close(ld.stop)
	}
	ld.wg.Wait()
}

func (ld *load) run() {
	defer ld.wg.Done()
	for {
		select {
		case <-ld.stop:
			return
		default:
		}
		r := ld.w.pick()
		if r == nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		ld.l.mu.Lock()
		n := len(ld.l.pool)
		var h *held
		if n > 0 {
			i := mrand.N(n)
			h = ld.l.pool[i]
		}
		ld.l.mu.Unlock()
		switch x := mrand.Float64(); {
		case h == nil || x < 0.45:
			ld.enroll(r)
		case x < 0.75:
			ld.renew(r, h)
		default:
			ld.revoke(r, h)
		}
		time.Sleep(time.Duration(20+mrand.N(40)) * time.Millisecond)
	}
}

// takeOut removes h from the pool: after a renewal or revocation, or one
// whose answer was lost, it is no longer the newest unrevoked member.
func (ld *load) takeOut(h *held) bool {
	ld.l.mu.Lock()
	defer ld.l.mu.Unlock()
	for i, x := range ld.l.pool {
		if x == h {
			ld.l.pool = append(ld.l.pool[:i], ld.l.pool[i+1:]...)
			return true
		}
	}
	return false
}

// exchange sends one request and judges a failed answer; it returns the
// answer on success (want).
func (ld *load) exchange(r *replica, op, method, path string, in any, cert *tls.Certificate, want int) *answer {
	ctx, cancel := context.WithTimeout(context.Background(), reqTimeout)
	defer cancel()
	start := time.Now()
	a, err := r.do(ctx, method, path, in, cert)
	switch {
	case err != nil && (errors.Is(err, context.DeadlineExceeded) || time.Since(start) >= reqTimeout-time.Second):
		ld.l.fail("%s on replica %d hung %v: %v", op, r.i, time.Since(start).Round(time.Millisecond), err)
		ld.l.count(op, "hang")
		return nil
	case err != nil:
		// A replica killed under the request: no answer, nothing
		// promised. In an outage of the database no replica is killed,
		// and every request must get an answer.
		ld.l.count(op, "transport")
		if ld.allow503 {
			ld.l.fail("%s on replica %d: no answer: %v", op, r.i, err)
		}
		return nil
	case a.status == want:
		ld.l.count(op, fmt.Sprint(a.status))
		return a
	}
	ld.l.count(op, fmt.Sprint(a.status))
	if a.status == http.StatusServiceUnavailable && ld.allow503 {
		var d problem.Details
		if !strings.HasPrefix(a.ctype, problem.ContentType) || json.Unmarshal(a.body, &d) != nil || d.Type != problem.Unavailable || d.Status != 503 || d.Detail == "" {
			ld.l.fail("%s on replica %d: 503 that is not an RFC 7807 unavailable problem: %s %q", op, r.i, a.ctype, a.body)
		}
		return nil
	}
	ld.l.fail("%s on replica %d: %d %s %q", op, r.i, a.status, a.ctype, a.body)
	return nil
}

func newKey() (*ecdsa.PrivateKey, []byte) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(k)
	return k, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func (ld *load) keep(a *answer, how string, keyPEM []byte) *held {
	var res apiv1.CertResponse
	if err := json.Unmarshal(a.body, &res); err != nil {
		ld.l.fail("%s answer: %v", how, err)
		return nil
	}
	pair, err := tls.X509KeyPair([]byte(res.Chain), keyPEM)
	if err != nil {
		ld.l.fail("%s answer %s: %v", how, res.Serial, err)
		return nil
	}
	h := &held{serial: res.Serial, pair: pair}
	ld.l.mu.Lock()
	ld.l.received[res.Serial] = how
	ld.l.pool = append(ld.l.pool, h)
	ld.l.mu.Unlock()
	return h
}

func (ld *load) enroll(r *replica) {
	name := fmt.Sprintf("load-%d.example.com", ld.l.seq.Add(1))
	tok, err := enroll.Mint(ld.prov, ld.aud, name, nil, 10*time.Minute, time.Now())
	if err != nil {
		ld.l.fail("mint: %v", err)
		return
	}
	key, keyPEM := newKey()
	csr, _ := caclient.NewCSR(key, name, nil)
	if a := ld.exchange(r, "enroll", http.MethodPost, apiv1.PathEnroll, apiv1.EnrollRequest{Token: tok, CSR: string(csr)}, nil, http.StatusCreated); a != nil {
		ld.keep(a, "enroll", keyPEM)
	}
}

func (ld *load) renew(r *replica, h *held) {
	if !ld.takeOut(h) {
		return // another worker took it
	}
	leaf, _ := x509.ParseCertificate(h.pair.Certificate[0])
	key, keyPEM := newKey()
	csr, _ := caclient.NewCSR(key, leaf.Subject.CommonName, nil)
	if a := ld.exchange(r, "renew", http.MethodPost, apiv1.PathRenew, apiv1.RenewRequest{CSR: string(csr)}, &h.pair, http.StatusCreated); a != nil {
		ld.keep(a, "renew", keyPEM)
	}
}

func (ld *load) revoke(r *replica, h *held) {
	if !ld.takeOut(h) {
		return
	}
	a := ld.exchange(r, "revoke", http.MethodPost, apiv1.PathRevoke, apiv1.RevokeRequest{Serial: h.serial, Reason: "keyCompromise"}, &ld.admin, http.StatusOK)
	if a == nil {
		return
	}
	var res apiv1.RevokeResponse
	if err := json.Unmarshal(a.body, &res); err != nil {
		ld.l.fail("revoke answer: %v", err)
		return
	}
	ld.l.mu.Lock()
	defer ld.l.mu.Unlock()
	ld.l.revoked = append(ld.l.revoked, h.serial)
	for _, c := range res.Revoked {
		if c.Serial != h.serial {
			ld.l.revoked = append(ld.l.revoked, c.Serial)
		}
	}
}

// verify checks, once the load has stopped and the replicas run, that
// nothing a client was given is missing: every certificate received is
// stored, every revocation acknowledged is on every replica's /crl and at
// the anchor.
func (ld *load) verify(t testing.TB) {
	t.Helper()
	l := ld.l
	l.mu.Lock()
	bad := append([]string(nil), l.bad...)
	received := map[string]string{}
	for k, v := range l.received {
		received[k] = v
	}
	revoked := append([]string(nil), l.revoked...)
	l.mu.Unlock()
	for _, b := range bad {
		t.Error(b)
	}
	stored := ld.w.stored(t)
	for s, how := range received {
		if !stored[s] {
			t.Errorf("certificate %s was received (%s) but is not stored", s, how)
		}
	}
	if len(revoked) > 0 {
		ld.w.everyCRLHas(t, wait, revoked)
		ld.w.anchorHas(t, wait, revoked...)
	}
	ld.w.checkAnchor(t)
	ld.w.noPanics(t)
}

// enrollOne enrolls name on r outside the load and fails the test if it
// does not get a certificate.
func (ld *load) enrollOne(t testing.TB, r *replica, name string) *held {
	t.Helper()
	tok, err := enroll.Mint(ld.prov, ld.aud, name, nil, 10*time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, keyPEM := newKey()
	csr, _ := caclient.NewCSR(key, name, nil)
	ctx, cancel := context.WithTimeout(context.Background(), reqTimeout)
	defer cancel()
	a, err := r.do(ctx, http.MethodPost, apiv1.PathEnroll, apiv1.EnrollRequest{Token: tok, CSR: string(csr)}, nil)
	if err != nil || a.status != http.StatusCreated {
		t.Fatalf("enroll %s on replica %d: %v %+v", name, r.i, err, a)
	}
	h := ld.keep(a, "enroll", keyPEM)
	if h == nil {
		t.Fatalf("enroll %s: unreadable answer %q", name, a.body)
	}
	ld.takeOut(h)
	return h
}

// revokeOne revokes h through r and fails the test unless acknowledged.
func (ld *load) revokeOne(t testing.TB, r *replica, h *held) apiv1.RevokeResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), reqTimeout)
	defer cancel()
	a, err := r.do(ctx, http.MethodPost, apiv1.PathRevoke, apiv1.RevokeRequest{Serial: h.serial, Reason: "keyCompromise"}, &ld.admin)
	if err != nil || a.status != http.StatusOK {
		t.Fatalf("revoke %s on replica %d: %v %+v", h.serial, r.i, err, a)
	}
	var res apiv1.RevokeResponse
	if err := json.Unmarshal(a.body, &res); err != nil {
		t.Fatal(err)
	}
	ld.l.mu.Lock()
	ld.l.revoked = append(ld.l.revoked, h.serial)
	ld.l.mu.Unlock()
	return res
}
