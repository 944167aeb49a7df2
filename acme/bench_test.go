package acme_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/config"
)

// BenchmarkIssueHTTP01 measures whole ACME issuances on loopback with
// lego's http-01 message flow (newOrder, authorization, challenge, poll,
// finalize with a fresh P-256 key, certificate download), one account,
// real bbolt files with fsync. Parallel runs 8 clients at once.
//
//	go test ./acme -run '^$' -bench IssueHTTP01 -benchtime 200x
func BenchmarkIssueHTTP01(b *testing.B) {
	tc := startCAConfig(b, benchLimits, nil)
	h := tc.serveHTTP01(b)
	c := tc.client(b)
	b.Run("serial", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			tc.obtain(b, c, h, fmt.Sprintf("s%d.%s", i, testDomain))
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "issuances/s")
	})
	b.Run("parallel8", func(b *testing.B) {
		var n atomic.Int64
		b.SetParallelism(4) // 2 cores × 4 = 8 goroutines
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				tc.obtain(b, c, h, fmt.Sprintf("p%d.%s", n.Add(1), testDomain))
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "issuances/s")
	})
}

// BenchmarkLegoCLI runs the lego CLI itself, unmodified (a fresh account
// and key each run, http-01), and reports issuances/s including lego's
// process start and account registration:
//
//	go test ./acme -run '^$' -bench LegoCLI -benchtime 10x
func BenchmarkLegoCLI(b *testing.B) {
	need(b, "lego")
	tc := startCAConfig(b, benchLimits, nil)
	for i := 0; b.Loop(); i++ {
		cmd := exec.Command("lego", "--server", tc.dirURL, "--accept-tos", "--path", b.TempDir(),
			"--email", "ops@example.org", "--domains", fmt.Sprintf("rate%d.%s", i, testDomain),
			"--key-type", "ec256", "--http", "--http.port", ":"+itoa(tc.httpPort), "run")
		cmd.Env = append(os.Environ(), "LEGO_CA_CERTIFICATES="+filepath.Join(tc.dir, "root.crt"))
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("lego: %v\n%s", err, tail(out, 2000))
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "issuances/s")
}

// benchLimits lifts the account and order rate limits: every benchmark client
// is 127.0.0.1.
func benchLimits(a *config.ACME) {
	a.Limits.NewAccountsPerIPPerMinute = 1_000_000
	a.Limits.NewOrdersPerIPPerMinute = 1_000_000
	a.Limits.NewAccountsPerMinute = 1_000_000
}
