package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/internal/testenv"
	"github.com/anchorage-pki/anchorage/rolesanywhere"
)

// BenchmarkRevokeToDenied measures, per revocation, the time from the
// revoke request to the first CreateSession the endpoint denies (polled
// every 110 ms, under the 10/s CreateSession quota). "isolated" leaves the
// 1 request/s CRL quota idle between revocations; "back-to-back" revokes as
// soon as the previous one is enforced, so pacing shows. Reported: p50 and
// p99 in ms (run with -benchtime=20x or more).
func BenchmarkRevokeToDenied(b *testing.B) {
	for _, mode := range []string{"isolated", "back-to-back"} {
		b.Run(mode, func(b *testing.B) {
			w := newWorld(b)
			var lat []time.Duration
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				res, cert, key := w.ca.Enroll(b, w.workDir, fmt.Sprintf("lat-%d", i))
				if _, err := w.createSession(b, cert, key); err != nil {
					b.Fatal(err)
				}
				if mode == "isolated" {
					time.Sleep(1200 * time.Millisecond)
				}
				b.StartTimer()
				start := time.Now()
				if _, err := w.ca.Admin(b).Revoke(context.Background(), apiv1.RevokeRequest{Serial: res.Serial}); err != nil {
					b.Fatal(err)
				}
				for {
					_, err := w.createSession(b, cert, key)
					if accessDenied(err) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					if time.Since(start) > 30*time.Second {
						b.Fatal("not denied after 30s")
					}
					time.Sleep(110 * time.Millisecond)
				}
				lat = append(lat, time.Since(start))
			}
			b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkCredentialProcess measures `anchorage credential-process` as
// the SDK runs it: a new process, file reads, signing, one CreateSession.
// Every run is cold (--no-cache, as the helper, which keeps no cache
// between processes); compare BenchmarkCachedCredentials for what
// serve/update hand out.
func BenchmarkCredentialProcess(b *testing.B) {
	w := newWorld(b)
	_, cert, key := w.ca.Enroll(b, w.workDir, "cp-bench")
	args := []string{"credential-process", "--no-cache", "--certificate", cert, "--private-key", key,
		"--trust-anchor-arn", w.anchor, "--profile-arn", w.profile, "--role-arn", testenv.RoleARN,
		"--endpoint", w.aws.URL}
	run := func(b *testing.B, bin string, args []string) {
		for b.Loop() {
			out, err := exec.Command(bin, args...).Output()
			if err != nil || len(out) == 0 {
				b.Fatalf("%v %s", err, out)
			}
			b.StopTimer()
			time.Sleep(100 * time.Millisecond) // stay under the 10/s CreateSession quota
			b.StartTimer()
		}
	}
	b.Run("anchorage", func(b *testing.B) { run(b, anchorageBin(b), args) })
	// RAH names a built aws_signing_helper: the same cold call through
	// AWS's helper (no --no-cache there: it keeps no cache), against the
	// same endpoint, for make bench's ratio.
	if rah := os.Getenv("RAH"); rah != "" {
		b.Run("aws_signing_helper", func(b *testing.B) {
			run(b, rah, slices.DeleteFunc(slices.Clone(args), func(a string) bool { return a == "--no-cache" }))
		})
	}
}

// BenchmarkCachedCredentials is what `anchorage serve` and `update` pay per
// request once credentials are cached: a file stat for rotation and a map
// read; the first call (cold: read files, sign, CreateSession) is reported
// separately as cold-ms.
func BenchmarkCachedCredentials(b *testing.B) {
	w := newWorld(b)
	_, cert, key := w.ca.Enroll(b, w.workDir, "cache-bench")
	client, err := rolesanywhere.NewClient(w.sessionCfg)
	if err != nil {
		b.Fatal(err)
	}
	src, err := rolesanywhere.NewFileSource(context.Background(), rolesanywhere.SourceConfig{Certificate: cert, PrivateKey: key})
	if err != nil {
		b.Fatal(err)
	}
	cache := rolesanywhere.NewCache(client, src, 0)
	start := time.Now()
	if _, _, err := cache.Credentials(context.Background()); err != nil {
		b.Fatal(err)
	}
	cold := time.Since(start)
	for b.Loop() {
		if _, _, err := cache.Credentials(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cold.Microseconds())/1000, "cold-ms")
}
