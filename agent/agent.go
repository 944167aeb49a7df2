package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/atomicfile"
	"github.com/anchorage-pki/anchorage/signer"
)

// States of the agent, as reported by Status.
const (
	StateStarting       = "starting"        // no certificate loaded yet
	StateOK             = "ok"              // certificate valid, next renewal scheduled
	StateRenewalFailing = "renewal-failing" // renewal failed, retrying; still healthy
	StateUnhealthy      = "unhealthy"       // past unhealthyAt of the lifetime and not renewed
	StateExpired        = "expired"         // the certificate has expired
	StateRevoked        = "revoked"         // the CA says the certificate is revoked
)

// Status is what /health and the status file report.
type Status struct {
	State          string    `json:"state"`
	Healthy        bool      `json:"healthy"`
	Subject        string    `json:"subject,omitempty"`
	Serial         string    `json:"serial,omitempty"`
	NotBefore      time.Time `json:"notBefore,omitzero"`
	NotAfter       time.Time `json:"notAfter,omitzero"`
	NextAttempt    time.Time `json:"nextAttempt,omitzero"`
	UnhealthyAfter time.Time `json:"unhealthyAfter,omitzero"`
	LastRenewal    time.Time `json:"lastRenewal,omitzero"`
	Renewals       int       `json:"renewals"`
	Failures       int       `json:"failures"` // consecutive failed attempts
	LastError      string    `json:"lastError,omitempty"`
	Credentials    string    `json:"credentials,omitempty"` // "serving", "stopped: …"
	// CredentialsExpire is when the AWS credentials last fetched expire.
	CredentialsExpire   time.Time `json:"credentialsExpire,omitzero"`
	CredentialRefreshes int       `json:"credentialRefreshes"` // CreateSession calls that succeeded
	CredentialFailures  int       `json:"credentialFailures"`  // CreateSession calls that failed, in all
	Updated             time.Time `json:"updated"`
}

// Agent keeps one workload certificate fresh. Create it with New and call
// Run; Status and Handler may be used concurrently.
type Agent struct {
	cfg  Config
	log  *slog.Logger
	opts []signer.Option

	// Listening, if set before Run, is told the address of each server
	// the agent starts ("health", "credentials").
	Listening func(name string, addr net.Addr)
	// Now and Rand replace the clock and the jitter source in tests.
	Now  func() time.Time
	Rand func() float64

	mu      sync.Mutex
	st      Status
	revoked bool
	revokeC chan struct{}
	changed chan struct{} // poked when the status changes
}

// New checks cfg and returns an agent.
func New(cfg Config, log *slog.Logger) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Agent{cfg: cfg, log: log, opts: cfg.signerOptions(), Now: time.Now, Rand: rand.Float64,
		st: Status{State: StateStarting}, revokeC: make(chan struct{}), changed: make(chan struct{}, 1)}, nil
}

// Status returns the current status, with the state worked out for now.
func (a *Agent) Status() Status {
	a.mu.Lock()
	st := a.st
	revoked := a.revoked
	a.mu.Unlock()
	now := a.Now()
	st.Updated = now.UTC()
	switch {
	case revoked:
		st.State = StateRevoked
	case st.NotAfter.IsZero():
		st.State = StateStarting
	case !now.Before(st.NotAfter):
		st.State = StateExpired
	case !now.Before(st.UnhealthyAfter):
		st.State = StateUnhealthy
	case st.Failures > 0:
		st.State = StateRenewalFailing
	default:
		st.State = StateOK
	}
	st.Healthy = st.State == StateOK || st.State == StateRenewalFailing
	return st
}

func (a *Agent) update(f func(*Status)) {
	a.mu.Lock()
	f(&a.st)
	a.mu.Unlock()
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// Revoked is closed when the CA reports the certificate revoked.
func (a *Agent) Revoked() <-chan struct{} { return a.revokeC }

func (a *Agent) markRevoked(err error) {
	a.mu.Lock()
	already := a.revoked
	a.revoked = true
	a.mu.Unlock()
	if already {
		return
	}
	st := a.Status()
	a.log.Error("CERTIFICATE REVOKED: the CA refuses to renew it; credentials are no longer served. Enroll this host again with a new token.",
		"subject", st.Subject, "serial", st.Serial, "err", err)
	a.update(func(s *Status) { s.LastError = err.Error(); s.NextAttempt = time.Time{} })
	close(a.revokeC)
}

// Handler serves GET /health: the status JSON, 200 when healthy, 503 not.
func (a *Agent) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path != "/health" && r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		st := a.Status()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !st.Healthy {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(st)
	})
}

// Run enrolls if there is no certificate yet (and a token), then renews
// until ctx ends. A revoked certificate stops credential serving and makes
// Run return ErrRevoked once ctx ends; the health endpoint says so in the
// meantime. Run returns early only for a configuration or key problem
// that a retry cannot fix.
func (a *Agent) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	if a.cfg.HealthListen != "" {
		ln, err := net.Listen("tcp", a.cfg.HealthListen)
		if err != nil {
			return fmt.Errorf("health endpoint: %w", err)
		}
		if a.Listening != nil {
			a.Listening("health", ln.Addr())
		}
		srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second}
		wg.Add(2)
		go func() { defer wg.Done(); srv.Serve(ln) }()
		go func() { defer wg.Done(); <-ctx.Done(); srv.Close() }()
	}
	if a.cfg.MetricsListen != "" {
		ln, err := net.Listen("tcp", a.cfg.MetricsListen)
		if err != nil {
			return fmt.Errorf("metrics endpoint: %w", err)
		}
		if a.Listening != nil {
			a.Listening("metrics", ln.Addr())
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", a.MetricsHandler())
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		wg.Add(2)
		go func() { defer wg.Done(); srv.Serve(ln) }()
		go func() { defer wg.Done(); <-ctx.Done(); srv.Close() }()
	}
	if a.cfg.StatusFile != "" {
		wg.Add(1)
		go func() { defer wg.Done(); a.statusWriter(ctx) }()
	}

	id, err := a.start(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		a.update(func(s *Status) { s.LastError = err.Error() })
		return err
	}
	a.loaded(id, nil)

	if a.cfg.Credentials != nil {
		wg.Add(1)
		go func() { defer wg.Done(); a.credentials(ctx) }()
	}

	failures := 0
	next := a.renewTime(id)
	warned := false // the UNHEALTHY line for the current certificate
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		a.update(func(s *Status) { s.NextAttempt = next })
		// Wake at the unhealthy threshold too, so crossing it is logged
		// even when the next attempt is later.
		wake := next
		if ua := a.Status().UnhealthyAfter; !warned && ua.Before(wake) {
			wake = ua
		}
		timer.Reset(max(wake.Sub(a.Now()), 0))
		select {
		case <-ctx.Done():
			a.log.Info("agent stopping", "serial", serialOf(id))
			return a.exitErr()
		case <-timer.C:
		}
		if st := a.Status(); !warned && !st.Healthy {
			warned = true
			a.log.Error("certificate not renewed in time: the agent is UNHEALTHY", "state", st.State, "serial", st.Serial,
				"expires_in", st.NotAfter.Sub(a.Now()).Round(time.Millisecond), "failures", st.Failures, "err", st.LastError)
		}
		if a.Now().Before(next) {
			continue
		}
		// A renewal in flight finishes even on SIGTERM (bounded), so the
		// CA never issues a certificate that is then not written.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		nid, res, err := renewWith(rctx, a.renewOptions(), id)
		rcancel()
		if err == nil {
			failures, warned = 0, false
			id = nid
			a.loaded(id, res)
			a.runHook(ctx, res)
			next = a.renewTime(id)
			continue
		}
		if IsRevoked(err) {
			a.markRevoked(err)
			<-ctx.Done()
			return ErrRevoked
		}
		failures++
		wait := a.backoff(failures, id)
		next = a.Now().Add(wait)
		a.update(func(s *Status) { s.Failures, s.LastError = failures, err.Error() })
		st := a.Status()
		left := time.Until(id.Chain[0].NotAfter).Round(time.Second)
		if st.Healthy {
			a.log.Warn("renewal failed; retrying", "serial", serialOf(id), "failures", failures, "retry_in", wait.Round(time.Millisecond), "expires_in", left, "err", err)
		} else {
			a.log.Error("renewal failing and the certificate is close to expiry or expired: the agent is UNHEALTHY",
				"state", st.State, "serial", serialOf(id), "failures", failures, "expires_in", left, "err", err)
		}
	}
}

func (a *Agent) exitErr() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.revoked {
		return ErrRevoked
	}
	return nil
}

func (a *Agent) renewOptions() RenewOptions {
	kt, _ := signer.ParseKeyType(a.cfg.KeyType)
	return RenewOptions{CA: a.cfg.CA, Root: a.cfg.Root, Cert: a.cfg.Cert, Key: a.cfg.Key, Rekey: a.cfg.Rekey, KeyType: kt, Signer: a.opts}
}

// start loads the current identity, enrolling first when there is no
// certificate and a token is configured. CA outages are retried; anything
// else (bad token, wrong PIN, refused key type) is returned.
func (a *Agent) start(ctx context.Context) (*Identity, error) {
	_, err := os.Stat(a.cfg.Cert)
	if errors.Is(err, os.ErrNotExist) {
		if a.cfg.TokenFile == "" {
			return nil, fmt.Errorf("no certificate at %s and no tokenFile to enroll with", a.cfg.Cert)
		}
		b, err := os.ReadFile(a.cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("no certificate at %s, and the token cannot be read: %w", a.cfg.Cert, err)
		}
		kt, _ := signer.ParseKeyType(a.cfg.KeyType)
		o := EnrollOptions{CA: a.cfg.CA, Root: a.cfg.Root, Token: strings.TrimSpace(string(b)), Cert: a.cfg.Cert, Key: a.cfg.Key, KeyType: kt, Signer: a.opts}
		for attempt := 1; ; attempt++ {
			res, err := Enroll(ctx, o)
			if err == nil {
				a.log.Info("enrolled", "subject", res.Subject, "serial", res.Serial, "not_after", res.NotAfter, "cert", a.cfg.Cert, "key", signer.Redact(a.cfg.Key))
				a.runHook(ctx, res)
				break
			}
			if !isTransient(err) {
				return nil, err
			}
			wait := a.cfg.RetryMin.D() << min(attempt-1, 16)
			wait = min(wait, a.cfg.RetryMax.D())
			a.log.Warn("enrollment failed; retrying", "attempt", attempt, "retry_in", wait, "err", err)
			a.update(func(s *Status) { s.Failures, s.LastError = attempt, err.Error() })
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
		}
	} else if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	return LoadIdentity(ctx, a.cfg.Cert, a.cfg.Key, a.opts...)
}

// loaded records a (new) current certificate.
func (a *Agent) loaded(id *Identity, res *apiv1.CertResponse) {
	leaf := id.Chain[0]
	lifetime := leaf.NotAfter.Sub(id.Start())
	a.update(func(s *Status) {
		s.Subject, s.Serial = leaf.Subject.CommonName, serialOf(id)
		s.NotBefore, s.NotAfter = leaf.NotBefore, leaf.NotAfter
		s.UnhealthyAfter = id.Start().Add(time.Duration(float64(lifetime) * a.cfg.UnhealthyAt))
		s.Failures, s.LastError = 0, ""
		if res != nil {
			s.Renewals++
			s.LastRenewal = a.Now().UTC()
		}
	})
	if res != nil {
		a.log.Info("renewed", "subject", leaf.Subject.CommonName, "serial", serialOf(id), "not_after", leaf.NotAfter, "next_renewal", a.renewTime(id))
	} else {
		a.log.Info("certificate loaded", "subject", leaf.Subject.CommonName, "serial", serialOf(id), "not_after", leaf.NotAfter, "next_renewal", a.renewTime(id))
	}
}

func serialOf(id *Identity) string {
	if id == nil {
		return ""
	}
	return fmt.Sprintf("%X", id.Chain[0].SerialNumber)
}

// renewTime is renewAt of the lifetime, ± jitter, counted from when the
// certificate was received (the CA backdates notBefore by a minute, which
// would make short lifetimes renew at once).
func (a *Agent) renewTime(id *Identity) time.Time {
	start := id.Start()
	lifetime := float64(id.Chain[0].NotAfter.Sub(start))
	frac := a.cfg.RenewAt + a.cfg.Jitter*(2*a.Rand()-1)
	return start.Add(time.Duration(lifetime * frac))
}

// backoff doubles from retryMin up to retryMax, but never beyond a tenth
// of the lifetime (short-lived certificates retry faster), ±20 %.
func (a *Agent) backoff(n int, id *Identity) time.Duration {
	limit := min(a.cfg.RetryMax.D(), id.Chain[0].NotAfter.Sub(id.Start())/10)
	d := time.Duration(float64(a.cfg.RetryMin.D()) * math.Pow(2, float64(min(n-1, 30))))
	d = min(d, limit)
	d = time.Duration(float64(d) * (0.8 + 0.4*a.Rand()))
	return max(d, 50*time.Millisecond)
}

// runHook runs the reload hook; a failure is logged, not fatal: the new
// certificate is on disk and will be picked up at the next reload.
func (a *Agent) runHook(ctx context.Context, res *apiv1.CertResponse) {
	if a.cfg.ReloadHook == "" {
		return
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.HookTimeout.D())
	defer cancel()
	cmd := exec.CommandContext(hctx, "/bin/sh", "-c", a.cfg.ReloadHook)
	keyPath, _ := signer.FilePath(a.cfg.Key)
	if keyPath == "" {
		keyPath = signer.Redact(a.cfg.Key)
	}
	cmd.Env = append(os.Environ(),
		"ANCHORAGE_CERT="+a.cfg.Cert, "ANCHORAGE_KEY="+keyPath,
		"ANCHORAGE_SERIAL="+res.Serial, "ANCHORAGE_NOT_AFTER="+res.NotAfter.UTC().Format(time.RFC3339))
	out, err := cmd.CombinedOutput()
	if len(out) > 2048 {
		out = out[:2048]
	}
	if err != nil {
		a.log.Error("reload hook failed", "hook", a.cfg.ReloadHook, "err", err, "output", strings.TrimSpace(string(out)))
		return
	}
	a.log.Info("reload hook ran", "hook", a.cfg.ReloadHook, "output", strings.TrimSpace(string(out)))
}

// statusWriter rewrites the status file on every change and often enough
// that a reader can trust its "updated" time.
func (a *Agent) statusWriter(ctx context.Context) {
	write := func() {
		b, _ := json.MarshalIndent(a.Status(), "", "  ")
		if err := atomicfile.Write(a.cfg.StatusFile, append(b, '\n'), 0o644); err != nil {
			a.log.Error("status file", "err", err)
		}
	}
	for {
		write()
		st := a.Status()
		every := time.Minute
		if !st.NotAfter.IsZero() {
			every = min(every, max(st.NotAfter.Sub(st.NotBefore)/20, 100*time.Millisecond))
		}
		select {
		case <-ctx.Done():
			write()
			return
		case <-a.changed:
		case <-time.After(every):
		}
	}
}
