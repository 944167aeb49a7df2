package agent_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/agent"
	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/enroll"
	"github.com/anchorage-pki/anchorage/internal/testenv"
	"github.com/anchorage-pki/anchorage/signer"
)

// shortCA starts a CA whose certificates live lifetime.
func shortCA(t *testing.T, lifetime time.Duration) *testenv.CA {
	t.Helper()
	c := testenv.InitCA(t)
	c.Cfg.Leaf.DefaultLifetime = config.Duration(lifetime)
	if err := c.Cfg.Save(); err != nil {
		t.Fatal(err)
	}
	c.Start(t)
	return c
}

// mintToken writes a one-time token for name into dir/token.
func mintToken(t *testing.T, c *testenv.CA, dir, name string) string {
	t.Helper()
	pk, err := signer.Open(context.Background(), filepath.Join(c.Dir, "provisioner.key"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := enroll.Mint(pk, c.URL, name, []string{"DNS:" + name}, 10*time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "token")
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// logBuffer collects the agent's log for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// imdsCreds fetches credentials from the agent's IMDSv2 endpoint.
func imdsCreds(addr string) (int, string) {
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/latest/api/token", nil)
	req.Header.Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "60")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	tok, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return resp.StatusCode, string(tok)
	}
	req, _ = http.NewRequest(http.MethodGet, "http://"+addr+"/latest/meta-data/iam/security-credentials/anchorage-e2e", nil)
	req.Header.Set("X-Aws-Ec2-Metadata-Token", string(tok))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func scrapeAgent(t *testing.T, addr string) testenv.Families {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return testenv.ParseMetrics(t, string(b))
}

func health(addr string) (int, agent.Status) {
	var st agent.Status
	resp, err := http.Get("http://" + addr + "/health")
	if err != nil {
		return 0, st
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(&st)
	return resp.StatusCode, st
}

// TestAgentLifecycle runs the agent against a CA issuing 6-second
// certificates: it enrolls from the token, renews repeatedly while a
// reader checks that every read of the two files is a matching pair,
// serves AWS credentials from the renewed certificate, survives the CA
// being down (unhealthy, then recovered), and reports a revocation loudly
// and stops serving credentials.
func TestAgentLifecycle(t *testing.T) {
	c := shortCA(t, 6*time.Second)
	aws := testenv.StartAWS(t)
	anchorARN, profileARN := aws.Setup(t, c.CACert(t))

	dir := t.TempDir()
	hookLog := filepath.Join(dir, "hook.log")
	cfg := agent.Config{
		CA: c.URL, Root: filepath.Join(c.Dir, "root.crt"),
		Cert: filepath.Join(dir, "host.crt"), Key: filepath.Join(dir, "host.key"),
		TokenFile:     mintToken(t, c, dir, "agent-host"),
		RetryMin:      agent.Duration(100 * time.Millisecond),
		ReloadHook:    `echo "$ANCHORAGE_SERIAL" >> ` + hookLog,
		HealthListen:  "127.0.0.1:0",
		MetricsListen: "127.0.0.1:0",
		StatusFile:    filepath.Join(dir, "status.json"),
		Credentials: &agent.CredentialsConfig{Mode: "serve", TrustAnchorARN: anchorARN, ProfileARN: profileARN,
			RoleARN: testenv.RoleARN, Endpoint: aws.URL, Address: "127.0.0.1:0", SessionDuration: 900},
	}
	logs := &logBuffer{}
	a, err := agent.New(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	addrs := map[string]string{}
	var addrMu sync.Mutex
	a.Listening = func(name string, addr net.Addr) {
		addrMu.Lock()
		addrs[name] = addr.String()
		addrMu.Unlock()
	}
	addr := func(name string) string {
		addrMu.Lock()
		defer addrMu.Unlock()
		return addrs[name]
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(ctx) }()

	waitFor(t, "enrollment", 10*time.Second, func() bool { return a.Status().State == agent.StateOK })
	if fi, err := os.Stat(cfg.Key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}

	// The reader: every read of cert + key must be a matching pair.
	var reads, mismatches atomic.Int64
	stopReader := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stopReader:
				return
			default:
			}
			certPEM, err1 := os.ReadFile(cfg.Cert)
			keyPEM, err2 := os.ReadFile(cfg.Key)
			if err1 != nil || err2 != nil {
				mismatches.Add(1)
				continue
			}
			if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
				mismatches.Add(1)
			}
			reads.Add(1)
		}
	}()

	waitFor(t, "two renewals", 20*time.Second, func() bool { return a.Status().Renewals >= 2 })
	close(stopReader)
	<-readerDone
	if mismatches.Load() != 0 || reads.Load() < 100 {
		t.Fatalf("reader: %d reads, %d mismatched or unreadable", reads.Load(), mismatches.Load())
	}
	t.Logf("reader made %d reads across renewals, all matching", reads.Load())
	// The hook runs after the renewal is counted: give the last one its
	// moment (a loaded machine starts /bin/sh slowly).
	hookRuns := func() int {
		hooks, _ := os.ReadFile(hookLog)
		return strings.Count(string(hooks), "\n")
	}
	deadline := time.Now().Add(10 * time.Second)
	for hookRuns() < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := hookRuns(); n < 3 {
		hooks, _ := os.ReadFile(hookLog)
		t.Fatalf("reload hook ran %d times, want enrollment + 2 renewals:\n%s", n, hooks)
	}

	// Credentials come from the renewed certificate, without a restart.
	if code, body := imdsCreds(addr("credentials")); code != 200 || !strings.Contains(body, `"AccessKeyId"`) {
		t.Fatalf("IMDS credentials: %d %s", code, body)
	}
	if code, st := health(addr("health")); code != 200 || !st.Healthy {
		t.Fatalf("health %d %+v", code, st)
	}
	// /metrics says the same, in Prometheus's format.
	m := scrapeAgent(t, addr("metrics"))
	for _, f := range []struct {
		name   string
		labels []string
		ok     func(float64) bool
	}{
		{"anchorage_agent_renewals_total", nil, func(v float64) bool { return v >= 2 }},
		{"anchorage_agent_certificate_expires_in_seconds", nil, func(v float64) bool { return v > 0 && v <= 6 }},
		{"anchorage_agent_certificate_not_after_timestamp_seconds", nil, func(v float64) bool { return v > float64(time.Now().Unix()) }},
		{"anchorage_agent_state", []string{"state", "ok"}, func(v float64) bool { return v == 1 }},
		{"anchorage_agent_state", []string{"state", "revoked"}, func(v float64) bool { return v == 0 }},
		{"anchorage_agent_healthy", nil, func(v float64) bool { return v == 1 }},
		{"anchorage_agent_renewal_failures", nil, func(v float64) bool { return v == 0 }},
		{"anchorage_agent_last_renewal_timestamp_seconds", nil, func(v float64) bool { return v > 0 }},
		{"anchorage_agent_next_renewal_timestamp_seconds", nil, func(v float64) bool { return v > 0 }},
		{"anchorage_agent_credentials_serving", nil, func(v float64) bool { return v == 1 }},
		{"anchorage_agent_credential_refreshes_total", []string{"result", "ok"}, func(v float64) bool { return v >= 1 }},
		{"anchorage_agent_credentials_expiry_timestamp_seconds", nil, func(v float64) bool { return v > float64(time.Now().Unix()) }},
		{"go_goroutines", nil, func(v float64) bool { return v > 0 }},
		{"process_open_fds", nil, func(v float64) bool { return v > 0 }},
	} {
		if v, found := m.Value(f.name, f.labels...); !found || !f.ok(v) {
			t.Errorf("agent /metrics: %s%v = %v (present %v)", f.name, f.labels, v, found)
		}
	}
	var fileSt agent.Status
	b, _ := os.ReadFile(cfg.StatusFile)
	if err := json.Unmarshal(b, &fileSt); err != nil || fileSt.Serial == "" {
		t.Fatalf("status file: %v %s", err, b)
	}

	// The CA goes down: renewal fails, then the agent turns unhealthy
	// before the certificate expires; it recovers when the CA is back.
	c.Stop()
	waitFor(t, "renewal failures", 10*time.Second, func() bool { return a.Status().Failures >= 2 })
	waitFor(t, "unhealthy", 10*time.Second, func() bool {
		code, st := health(addr("health"))
		return code == http.StatusServiceUnavailable && st.State == agent.StateUnhealthy
	})
	if st := a.Status(); !time.Now().Before(st.NotAfter) {
		t.Fatalf("turned unhealthy only after expiry: %+v", st)
	}
	before := a.Status().Renewals
	c.Start(t)
	waitFor(t, "recovery", 15*time.Second, func() bool {
		st := a.Status()
		return st.Renewals > before && st.State == agent.StateOK
	})
	if !strings.Contains(logs.String(), "renewal failed; retrying") || !strings.Contains(logs.String(), "UNHEALTHY") {
		t.Fatalf("outage not logged:\n%s", logs.String())
	}

	// Revocation: reported loudly, credentials stop.
	if _, err := c.Admin(t).Revoke(context.Background(), apiv1.RevokeRequest{Subject: "agent-host", Reason: "keyCompromise"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "revoked state", 15*time.Second, func() bool { return a.Status().State == agent.StateRevoked })
	if v, _ := scrapeAgent(t, addr("metrics")).Value("anchorage_agent_state", "state", "revoked"); v != 1 {
		t.Errorf("agent /metrics: revoked state %v, want 1", v)
	}
	select {
	case <-a.Revoked():
	default:
		t.Fatal("Revoked() not closed")
	}
	if code, _ := health(addr("health")); code != http.StatusServiceUnavailable {
		t.Fatalf("health after revocation: %d", code)
	}
	waitFor(t, "credentials stopped", 5*time.Second, func() bool {
		code, _ := imdsCreds(addr("credentials"))
		return code != 200
	})
	if !strings.Contains(logs.String(), "CERTIFICATE REVOKED") {
		t.Fatalf("revocation not logged:\n%s", logs.String())
	}
	cancel()
	select {
	case err := <-runErr:
		if !errors.Is(err, agent.ErrRevoked) {
			t.Fatalf("Run returned %v, want ErrRevoked", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of its context ending")
	}
}

// TestAgentRekey: with rekey both files change at each renewal; a reader
// that re-reads once on a mismatch (as documented) always gets a pair.
func TestAgentRekey(t *testing.T) {
	// 8 s leaves: two renewals take about 11 s, and a renewal delayed by a
	// loaded machine still finds its certificate valid.
	c := shortCA(t, 8*time.Second)
	dir := t.TempDir()
	cfg := agent.Config{
		CA: c.URL, Root: filepath.Join(c.Dir, "root.crt"),
		Cert: filepath.Join(dir, "host.crt"), Key: filepath.Join(dir, "host.key"),
		TokenFile: mintToken(t, c, dir, "rekey-host"), Rekey: true,
		RetryMin: agent.Duration(100 * time.Millisecond),
	}
	a, err := agent.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.Run(ctx)
	waitFor(t, "enrollment", 10*time.Second, func() bool { return a.Status().State == agent.StateOK })
	first, _ := os.ReadFile(cfg.Key)
	var failed atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for a.Status().Renewals < 2 {
			ok := false
			for try := 0; try < 5 && !ok; try++ {
				if try > 0 {
					time.Sleep(10 * time.Millisecond)
				}
				certPEM, _ := os.ReadFile(cfg.Cert)
				keyPEM, _ := os.ReadFile(cfg.Key)
				_, err := tls.X509KeyPair(certPEM, keyPEM)
				ok = err == nil
			}
			if !ok {
				failed.Add(1)
			}
			// Read often, but leave the CPU to the agent under test.
			time.Sleep(2 * time.Millisecond)
		}
	}()
	waitFor(t, "two renewals", 60*time.Second, func() bool { return a.Status().Renewals >= 2 })
	<-done
	if failed.Load() != 0 {
		t.Fatalf("%d reads failed even after re-reading", failed.Load())
	}
	last, _ := os.ReadFile(cfg.Key)
	if bytes.Equal(first, last) {
		t.Fatal("rekey did not change the key")
	}
}

// TestAgentRefusals: problems a retry cannot fix end Run with one line.
func TestAgentRefusals(t *testing.T) {
	c := shortCA(t, time.Hour)
	dir := t.TempDir()
	base := agent.Config{CA: c.URL, Root: filepath.Join(c.Dir, "root.crt"), Cert: filepath.Join(dir, "h.crt"), Key: filepath.Join(dir, "h.key")}

	cfg := base
	a, _ := agent.New(cfg, slog.New(slog.DiscardHandler))
	if err := a.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "no tokenFile to enroll with") {
		t.Fatalf("no token: %v", err)
	}

	cfg = base
	cfg.TokenFile = mintToken(t, c, dir, "p521-host")
	cfg.KeyType = "p521"
	a, _ = agent.New(cfg, slog.New(slog.DiscardHandler))
	err := a.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "P-521 not accepted") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("refused key type: %v", err)
	}
	for _, p := range []string{cfg.Cert, cfg.Key} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s written although the CA refused", p)
		}
	}
}

func TestConfigStrict(t *testing.T) {
	c, err := agent.LoadConfig("../dist/agent.json")
	if err != nil {
		t.Fatalf("dist/agent.json: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("dist/agent.json: %v", err)
	}
	for _, tc := range []struct{ in, want string }{
		{`{"ca":"https://x","rootz":"r"}`, `key "rootz": unknown`},
		{`{"credentials":{"mode":"serve","portt":1}}`, `key "portt": unknown`},
		{`{"retryMin":5}`, `want a duration string`},
		{`{"ca":"https://x"} {}`, "trailing data"},
	} {
		_, err := agent.ParseConfig([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.in, err, tc.want)
		}
	}
	for _, tc := range []struct {
		mod  func(*agent.Config)
		want string
	}{
		{func(c *agent.Config) { c.CA = "" }, `key "ca": required`},
		{func(c *agent.Config) { c.HealthListen = "0.0.0.0:9912" }, `key "healthListen"`},
		{func(c *agent.Config) { c.Key = "pkcs11:token=a;object=b"; c.Rekey = true }, `key "rekey"`},
		{func(c *agent.Config) { c.RenewAt = 0.95 }, `key "unhealthyAt"`},
		{func(c *agent.Config) { c.Credentials.Mode = "both" }, `key "credentials.mode": want "serve", "ecs" or "update"`},
		{func(c *agent.Config) { c.Credentials.Address = "0.0.0.0:9911" }, `key "credentials.address": 0.0.0.0:9911 is not a loopback address: anyone who can reach it gets the role's credentials; pass "allowNonLoopback": true if you mean it`},
		{func(c *agent.Config) { c.Credentials.Address = "9911" }, `key "credentials.address": invalid address`},
	} {
		cfg, _ := agent.LoadConfig("../dist/agent.json")
		tc.mod(cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
	// The opt-in makes an off-host address valid; loopback needs none.
	for _, mod := range []func(*agent.CredentialsConfig){
		func(cc *agent.CredentialsConfig) { cc.Address, cc.AllowNonLoopback = "0.0.0.0:9911", true },
		func(cc *agent.CredentialsConfig) { cc.Address = "127.0.0.1:9913" },
	} {
		cfg, _ := agent.LoadConfig("../dist/agent.json")
		mod(cfg.Credentials)
		if err := cfg.Validate(); err != nil {
			t.Errorf("%+v: %v", cfg.Credentials, err)
		}
	}
	_ = fmt.Sprint
}

// TestConfigECS: mode "ecs" checks its token file at start as serve --ecs
// does, and every message names the key.
func TestConfigECS(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	good := file("good", "s3cr3t-token", 0o600)
	tests := []struct {
		name string
		mod  func(*agent.CredentialsConfig)
		want string // "" valid
	}{
		{"ecs with a token file", func(cc *agent.CredentialsConfig) { cc.Mode, cc.AuthTokenFile = "ecs", good }, ""},
		{"ecs on another loopback address", func(cc *agent.CredentialsConfig) {
			cc.Mode, cc.AuthTokenFile, cc.Address = "ecs", good, "127.0.0.1:9914"
		}, ""},
		{"ecs off host with the opt-in", func(cc *agent.CredentialsConfig) {
			cc.Mode, cc.AuthTokenFile, cc.Address, cc.AllowNonLoopback = "ecs", good, "0.0.0.0:9911", true
		}, ""},
		{"ecs off host without it", func(cc *agent.CredentialsConfig) {
			cc.Mode, cc.AuthTokenFile, cc.Address = "ecs", good, "0.0.0.0:9911"
		}, `key "credentials.address": 0.0.0.0:9911 is not a loopback address`},
		{"ecs without a token file", func(cc *agent.CredentialsConfig) { cc.Mode = "ecs" }, `key "credentials.authTokenFile": required with "mode": "ecs"`},
		{"token file with serve", func(cc *agent.CredentialsConfig) { cc.AuthTokenFile = good }, `key "credentials.authTokenFile": works with "mode": "ecs" only`},
		{"missing", func(cc *agent.CredentialsConfig) { cc.Mode, cc.AuthTokenFile = "ecs", filepath.Join(dir, "nope") }, `key "credentials.authTokenFile": auth token file: open`},
		{"readable by others", func(cc *agent.CredentialsConfig) {
			cc.Mode, cc.AuthTokenFile = "ecs", file("shared", "s3cr3t-token", 0o644)
		}, `key "credentials.authTokenFile": auth token file ` + dir + `/shared: mode 0644 lets others read it`},
		{"trailing newline", func(cc *agent.CredentialsConfig) {
			cc.Mode, cc.AuthTokenFile = "ecs", file("echoed", "s3cr3t-token\n", 0o600)
		}, `contains a newline`},
		{"empty", func(cc *agent.CredentialsConfig) { cc.Mode, cc.AuthTokenFile = "ecs", file("empty", "", 0o600) }, `is empty`},
		{"a directory", func(cc *agent.CredentialsConfig) { cc.Mode, cc.AuthTokenFile = "ecs", dir }, `not a regular file`},
		{"noSocket with ecs", func(cc *agent.CredentialsConfig) { cc.Mode, cc.AuthTokenFile, cc.NoSocket = "ecs", good, true }, ""},
		{"noSocket with update", func(cc *agent.CredentialsConfig) { cc.Mode, cc.NoSocket = "update", true }, `key "credentials.noSocket": works with`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := agent.LoadConfig("../dist/agent.json")
			if err != nil {
				t.Fatal(err)
			}
			tt.mod(cfg.Credentials)
			err = cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatal(err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want %q", err, tt.want)
			case err != nil && strings.Contains(err.Error(), "s3cr3t"):
				t.Fatalf("the error shows the token: %v", err)
			}
		})
	}
	// dist/agent-ecs.json is valid once its token file exists.
	c, err := agent.LoadConfig("../dist/agent-ecs.json")
	if err != nil {
		t.Fatalf("dist/agent-ecs.json: %v", err)
	}
	if c.Credentials.Mode != "ecs" || c.Credentials.AuthTokenFile == "" {
		t.Fatalf("dist/agent-ecs.json: %+v", c.Credentials)
	}
	c.Credentials.AuthTokenFile = good
	if err := c.Validate(); err != nil {
		t.Fatalf("dist/agent-ecs.json: %v", err)
	}
	// The JSON keys, decoded strictly.
	c, err = agent.ParseConfig([]byte(`{"credentials":{"mode":"ecs","authTokenFile":"/run/t","address":"127.0.0.1:9911","allowNonLoopback":false}}`))
	if err != nil || c.Credentials.AuthTokenFile != "/run/t" || c.Credentials.Mode != "ecs" {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := agent.ParseConfig([]byte(`{"credentials":{"mode":"ecs","authToken":"/run/t"}}`)); err == nil || !strings.Contains(err.Error(), `key "authToken": unknown`) {
		t.Fatalf("misspelt key: %v", err)
	}
}
