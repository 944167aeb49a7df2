package ha_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/internal/pgtest"
	"github.com/anchorage-pki/anchorage/internal/testenv"
	"github.com/anchorage-pki/anchorage/storage"
	"github.com/anchorage-pki/anchorage/storage/postgres"
)

// wait bounds every wait for a process, a lease or a CRL here.
const wait = 30 * time.Second

// world is three anchorage-ca processes on one PostgreSQL database, with
// one trust anchor at an in-process localaws configured on all of them.
type world struct {
	aws     *testenv.AWS
	pg      *pgtest.Cluster // nil: the shared cluster, never stopped
	db      string
	anchor  string
	profile string
	reps    []*replica
}

// replica is one anchorage-ca serve process; ca is the client side of its
// directory (root, admin certificate, provisioner key, config).
type replica struct {
	i   int
	ca  *testenv.CA
	url string // its own address
	db  string // "" or the --db flag it is started with

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// newWorld starts the world; with private the database is on a cluster of
// the test's own, which it may stop. The last replica's config names a
// database that does not exist and it is started with --db naming the
// real one: the flag wins over the config.
func newWorld(t testing.TB, private bool) *world {
	t.Helper()
	w := &world{aws: testenv.StartAWS(t)}
	if private {
		w.pg = pgtest.Private(t)
		w.db = w.pg.URL(t)
	} else {
		w.db = pgtest.URL(t)
	}
	a := testenv.InitCAOnPostgres(t, w.db)
	w.anchor, w.profile = w.aws.Setup(t, a.CACert(t))
	a.AddAnchor(t, w.anchor, w.aws.URL)
	cas := []*testenv.CA{a, a.Replica(t), a.Replica(t)}
	for i, c := range cas {
		r := &replica{i: i, ca: c, url: c.URL}
		if i == len(cas)-1 {
			cfg, err := config.Load(c.Dir)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Storage.Postgres.URL = strings.Replace(w.db, "/t", "/no_such_db_t", 1)
			if err := cfg.Save(); err != nil {
				t.Fatal(err)
			}
			r.db = w.db
		}
		w.reps = append(w.reps, r)
	}
	for _, r := range w.reps {
		r.start(t)
	}
	w.anchorHas(t, wait)
	return w
}

// start runs the replica's process and waits until it answers /health.
// The process is killed when the test ends.
func (r *replica) start(t testing.TB) {
	t.Helper()
	ready := filepath.Join(r.ca.Dir, "ready")
	os.Remove(ready)
	logf, err := os.OpenFile(filepath.Join(r.ca.Dir, "serve.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"serve", "--dir", r.ca.Dir, "--ready-file", ready}
	if r.db != "" {
		args = append(args, "--db", r.db)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(),
		"AWS_ACCESS_KEY_ID="+testenv.AdminKeyID, "AWS_SECRET_ACCESS_KEY="+testenv.AdminSecret, "AWS_REGION="+testenv.Region,
		"AWS_CONFIG_FILE="+filepath.Join(r.ca.Dir, "no-aws-config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(r.ca.Dir, "no-aws-credentials"))
	cmd.Stdout, cmd.Stderr = logf, logf
	// Should the test binary die first, the replica dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	logf.Close()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()
	t.Cleanup(func() { r.kill(t) })
	deadline := time.Now().Add(wait)
	for {
		select {
		case <-done:
			t.Fatalf("replica %d exited at start: %s\n%s", r.i, cmd.ProcessState, r.logTail())
		default:
		}
		// Any answer, 503 included (the database may be down): it serves.
		err := r.healthAnswers()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %d did not answer within %v: %v\n%s", r.i, wait, err, r.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// healthAnswers reports whether /health answers at all (any status).
func (r *replica) healthAnswers() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := r.do(ctx, http.MethodGet, apiv1.PathHealth, nil, nil)
	return err
}

// kill sends SIGKILL and waits for the process to be gone; a replica
// that is not running is left alone.
func (r *replica) kill(t testing.TB) {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(wait):
		t.Errorf("replica %d (pid %d) still runs %v after SIGKILL", r.i, cmd.Process.Pid, wait)
	}
}

func (r *replica) running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cmd != nil
}

func (r *replica) pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

func (r *replica) logTail() string {
	b, _ := os.ReadFile(filepath.Join(r.ca.Dir, "serve.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// answer is one HTTP exchange with a replica.
type answer struct {
	status int
	ctype  string
	body   []byte
}

// do sends one API request with a deadline; cert, when set, is the TLS
// client certificate.
func (r *replica) do(ctx context.Context, method, path string, in any, cert *tls.Certificate) (*answer, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(r.ca.Root)
	tc := &tls.Config{RootCAs: pool}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.url+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &answer{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: b}, nil
}

// health reads a replica's /health; ok is a 200 answer.
func (r *replica) health(t testing.TB) (h apiv1.Health, ok bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := r.do(ctx, http.MethodGet, apiv1.PathHealth, nil, nil)
	if err != nil {
		return h, false, err
	}
	if err := json.Unmarshal(a.body, &h); err != nil {
		return h, false, fmt.Errorf("/health %d: %q", a.status, a.body)
	}
	return h, a.status == http.StatusOK, nil
}

// live returns the running replicas.
func (w *world) live() []*replica {
	var out []*replica
	for _, r := range w.reps {
		if r.running() {
			out = append(out, r)
		}
	}
	return out
}

// pick returns a random running replica, nil if none.
func (w *world) pick() *replica {
	l := w.live()
	if len(l) == 0 {
		return nil
	}
	return l[rand.N(len(l))]
}

// holder returns the running replica that /health (read through any
// running replica) names as the holder of lease name.
func (w *world) holder(t testing.TB, name string) (*replica, apiv1.Lease) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		for _, via := range w.live() {
			h, _, err := via.health(t)
			if err != nil {
				continue
			}
			for _, l := range h.Leases {
				if l.Name != name {
					continue
				}
				for _, x := range w.live() {
					if strings.HasSuffix(l.Holder, " listen "+x.ca.Cfg.Listen) && strings.Contains(l.Holder, fmt.Sprintf(" pid %d ", x.pid())) {
						return x, l
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no running replica holds lease %q after %v", name, wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// healthy waits until every running replica answers /health 200 naming a
// running holder of both leases.
func (w *world) healthy(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, r := range w.live() {
		for {
			h, ok, err := r.health(t)
			held := map[string]bool{}
			for _, l := range h.Leases {
				for _, x := range w.live() {
					if strings.Contains(l.Holder, fmt.Sprintf(" pid %d listen %s", x.pid(), x.ca.Cfg.Listen)) {
						held[l.Name] = true
					}
				}
			}
			if ok && held[storage.LeaseCRL] && held[storage.LeasePush] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %d not healthy with both leases held after %v: %+v ok=%v %v", r.i, timeout, h, ok, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// pushed is one CRL the anchor accepted.
type pushed struct {
	method  string
	number  uint64
	serials map[string]bool
	at      time.Time
}

// anchorCRLs parses every CRL the anchor accepted, in order.
func (w *world) anchorCRLs(t testing.TB) []pushed {
	t.Helper()
	var out []pushed
	for _, cw := range w.aws.CRLWrites() {
		if cw.Status/100 != 2 {
			continue
		}
		der := cw.CRL
		if b, _ := pem.Decode(cw.CRL); b != nil {
			der = b.Bytes
		}
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatalf("the anchor accepted a CRL that does not parse: %v", err)
		}
		p := pushed{method: cw.Method, number: rl.Number.Uint64(), serials: map[string]bool{}, at: cw.At}
		for _, e := range rl.RevokedCertificateEntries {
			p.serials[ca.SerialHex(e.SerialNumber)] = true
		}
		out = append(out, p)
	}
	return out
}

// anchorHas waits until the anchor accepted a CRL carrying serials and
// returns when it did.
func (w *world) anchorHas(t testing.TB, timeout time.Duration, serials ...string) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, p := range w.anchorCRLs(t) {
			all := true
			for _, s := range serials {
				all = all && p.serials[s]
			}
			if all {
				return p.at
			}
		}
		if time.Now().After(deadline) {
			crls := w.anchorCRLs(t)
			t.Fatalf("the anchor accepted no CRL carrying %d serials within %v (%d CRLs accepted)", len(serials), timeout, len(crls))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkAnchor checks what the anchor was sent over the whole test: one
// ImportCrl, and CRL numbers that strictly increase.
func (w *world) checkAnchor(t testing.TB) {
	t.Helper()
	if n := w.aws.Count(http.MethodPost, "/crls"); n != 1 {
		t.Errorf("%d ImportCrl calls at the anchor, want 1", n)
	}
	var last uint64
	for i, p := range w.anchorCRLs(t) {
		if p.number <= last {
			t.Errorf("CRL write %d (%s) at the anchor carries number %d after %d", i, p.method, p.number, last)
		}
		last = p.number
	}
}

// crlOf reads a replica's /crl.
func (r *replica) crlOf(t testing.TB) (*x509.RevocationList, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := r.do(ctx, http.MethodGet, apiv1.PathCRL, nil, nil)
	if err != nil {
		return nil, err
	}
	if a.status != http.StatusOK {
		return nil, fmt.Errorf("/crl %d: %s", a.status, a.body)
	}
	return x509.ParseRevocationList(a.body)
}

// everyCRLHas waits until every running replica's /crl carries serials.
func (w *world) everyCRLHas(t testing.TB, timeout time.Duration, serials []string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, r := range w.live() {
		for {
			rl, err := r.crlOf(t)
			missing := ""
			if err == nil {
				on := map[string]bool{}
				for _, e := range rl.RevokedCertificateEntries {
					on[ca.SerialHex(e.SerialNumber)] = true
				}
				for _, s := range serials {
					if !on[s] {
						missing = s
						break
					}
				}
				if missing == "" {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %d's /crl lacks acknowledged revocation %s after %v (%v)", r.i, missing, timeout, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// stored returns the serials of every certificate in the database.
func (w *world) stored(t testing.TB) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	db, err := postgres.Open(ctx, w.db, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	list, err := db.ListCerts(ctx, storage.Filter{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, c := range list {
		out[c.Serial] = true
	}
	return out
}

// noPanics fails the test if any replica's log shows a panic.
func (w *world) noPanics(t testing.TB) {
	t.Helper()
	for _, r := range w.reps {
		b, _ := os.ReadFile(filepath.Join(r.ca.Dir, "serve.log"))
		if i := bytes.Index(b, []byte("panic:")); i >= 0 {
			t.Errorf("replica %d panicked:\n%s", r.i, b[i:min(len(b), i+3000)])
		}
	}
}
