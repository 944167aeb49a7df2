package e2e

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/agent"
	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/internal/testenv"
)

const rulesDir = "../dist/prometheus"

// TestAlertRules checks the example rules with promtool, as Prometheus
// would load them, and runs their unit tests. promtool comes with Debian's
// prometheus package (.ci/install-deps); without it the test fails.
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (%v): install Debian's prometheus package, as .ci/install-deps does", err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"check", []string{"check", "rules", "anchorage-rules.yml"}, "SUCCESS"},
		{"unit tests", []string{"test", "rules", "anchorage-rules.test.yml"}, "SUCCESS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, promtool, tt.args...)
			cmd.Dir = rulesDir
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), tt.want) {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(tt.args, " "), err, out)
			}
		})
	}
}

// ruleMetrics are the metric names the rules file uses.
func ruleMetrics(t *testing.T) []string {
	b, err := os.ReadFile(filepath.Join(rulesDir, "anchorage-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`\banchorage_[a-z0-9_]+`).FindAllString(string(b), -1) {
		if !slices.Contains(names, m) {
			names = append(names, m)
		}
	}
	if len(names) < 10 {
		t.Fatalf("only %d metric names in the rules: %v", len(names), names)
	}
	return names
}

// TestAlertRuleMetricsExist: every metric a rule names is in a real
// scrape, of a CA pushing to a trust anchor (with an audit stream) after
// enroll, renew and revoke, or of an agent serving credentials.
func TestAlertRuleMetricsExist(t *testing.T) {
	w := newWorld(t, func(c *testenv.CA) { c.Cfg.Events = &config.Events{File: "events.jsonl"} })
	_, certA, keyA := w.ca.Enroll(t, w.workDir, "rules-host-a")
	res, _, _ := w.ca.Enroll(t, w.workDir, "rules-host-b")
	rr, err := w.ca.Admin(t).Revoke(context.Background(), apiv1.RevokeRequest{Serial: res.Serial})
	if err != nil {
		t.Fatal(err)
	}
	w.ca.WaitAnchors(t, rr.CRLNumber, 15*time.Second)
	caFams := w.ca.Scrape(t)

	// An agent for host A, writing credentials.
	cfg := agent.Config{
		CA: w.ca.URL, Root: filepath.Join(w.ca.Dir, "root.crt"), Cert: certA, Key: keyA,
		MetricsListen: "127.0.0.1:0",
		Credentials: &agent.CredentialsConfig{Mode: "update", TrustAnchorARN: w.anchor, ProfileARN: w.profile,
			RoleARN: testenv.RoleARN, Endpoint: w.aws.URL, SessionDuration: 900,
			CredentialsFile: filepath.Join(w.workDir, "aws-credentials"), Profile: "default"},
	}
	a, err := agent.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	a.Listening = func(name string, ad net.Addr) {
		if name == "metrics" {
			addr <- ad.String()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("agent did not stop")
		}
	}()
	var metricsAddr string
	select {
	case metricsAddr = <-addr:
	case <-time.After(30 * time.Second):
		t.Fatal("agent metrics endpoint did not start")
	}
	deadline := time.Now().Add(30 * time.Second)
	for a.Status().CredentialRefreshes == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("agent fetched no credentials: %+v", a.Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
	agentFams := scrape(t, "http://"+metricsAddr+"/metrics")

	for _, name := range ruleMetrics(t) {
		found := false
		for _, fams := range []testenv.Families{caFams, agentFams} {
			for _, n := range []string{name, strings.TrimSuffix(name, "_bucket"), strings.TrimSuffix(name, "_count"), strings.TrimSuffix(name, "_sum")} {
				if fam := fams[n]; fam != nil && len(fam.GetMetric()) > 0 {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("the rules use %s, which no scrape has", name)
		}
	}
}

func scrape(t *testing.T, url string) testenv.Families {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return testenv.ParseMetrics(t, string(b))
}
