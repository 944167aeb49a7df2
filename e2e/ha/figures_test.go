package ha_test

import (
	"context"
	"crypto"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/internal/testenv"
	"github.com/anchorage-pki/anchorage/rolesanywhere"
	"github.com/anchorage-pki/anchorage/signer"
	"github.com/anchorage-pki/anchorage/storage"
)

// BenchmarkFailover measures, over HA_KILLS (default 10) real SIGKILLs of
// the push-lease holder among three replicas:
//
//   - failover: the kill → the anchor accepted a CRL carrying a revocation
//     made through a survivor right after the kill (lease takeover, read
//     back, UpdateCrl, paced at the anchor's 1 request/s CRL quota);
//   - revoke→enforced: with the killed replica back, a revoke through a
//     replica holding neither lease → the first CreateSession (real, signed
//     AWS4-X509) for that certificate that localaws denies, polled every
//     110 ms.
//
// Figures, not assertions; every wait is bounded. Run:
//
//	go test -run '^$' -bench Failover -benchtime 1x ./e2e/ha
func BenchmarkFailover(b *testing.B) {
	kills := 10
	if v, err := strconv.Atoi(os.Getenv("HA_KILLS")); err == nil && v > 0 {
		kills = v
	}
	for range b.N {
		failover, enforced := figures(b, kills)
		b.ReportMetric(ms(pct(failover, 0.5)), "failover-p50-ms")
		b.ReportMetric(ms(slices.Max(failover)), "failover-max-ms")
		b.ReportMetric(ms(pct(enforced, 0.5)), "revoke-enforced-p50-ms")
		b.ReportMetric(ms(slices.Max(enforced)), "revoke-enforced-max-ms")
		b.Logf("push-lease failover (kill -9 → another replica's push at the anchor) over %d kills: p50 %v, max %v",
			kills, pct(failover, 0.5).Round(time.Millisecond), slices.Max(failover).Round(time.Millisecond))
		b.Logf("revoke through a non-leader → CreateSession denied at the anchor, %d revocations: p50 %v, max %v",
			len(enforced), pct(enforced, 0.5).Round(time.Millisecond), slices.Max(enforced).Round(time.Millisecond))
	}
}

func figures(b *testing.B, kills int) (failover, enforced []time.Duration) {
	w := newWorld(b, false)
	ld := startLoad(b, w, newLedger(), 0, false)
	dir := b.TempDir()
	sess := rolesanywhere.Config{TrustAnchorARN: w.anchor, ProfileARN: w.profile, RoleARN: testenv.RoleARN,
		Endpoint: w.aws.URL, SessionDuration: 900}
	for k := range kills {
		victim, _ := w.holder(b, storage.LeasePush)
		var survivor *replica
		for _, r := range w.reps {
			if r != victim {
				survivor = r
				break
			}
		}
		e := ld.enrollOne(b, survivor, fmt.Sprintf("failover-%d.example.com", k))
		killed := time.Now()
		victim.kill(b)
		ld.revokeOne(b, survivor, e)
		at := w.anchorHas(b, wait, e.serial)
		failover = append(failover, at.Sub(killed))
		victim.start(b)
		w.healthy(b, wait)

		// Revoke → enforced, through a replica that holds neither lease.
		push, _ := w.holder(b, storage.LeasePush)
		crlh, _ := w.holder(b, storage.LeaseCRL)
		via := survivor
		for _, r := range w.reps {
			if r != push && r != crlh {
				via = r
				break
			}
		}
		h := ld.enrollOne(b, via, fmt.Sprintf("enforce-%d.example.com", k))
		certFile, keyFile := filepath.Join(dir, fmt.Sprintf("e%d.crt", k)), filepath.Join(dir, fmt.Sprintf("e%d.key", k))
		var chain []byte
		for _, der := range h.pair.Certificate {
			chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
		}
		if err := os.WriteFile(certFile, chain, 0o644); err != nil {
			b.Fatal(err)
		}
		if err := signer.WriteFile(keyFile, h.pair.PrivateKey.(crypto.Signer)); err != nil {
			b.Fatal(err)
		}
		session := func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := rolesanywhere.FetchCredentials(ctx, rolesanywhere.Options{Client: sess,
				Source: rolesanywhere.SourceConfig{Certificate: certFile, PrivateKey: keyFile}})
			return err
		}
		if err := session(); err != nil {
			b.Fatalf("CreateSession before the revocation: %v", err)
		}
		start := time.Now()
		ld.revokeOne(b, via, h)
		for {
			err := session()
			var ae *rolesanywhere.APIError
			if errors.As(err, &ae) && ae.StatusCode == 403 && ae.Code == "AccessDeniedException" {
				break
			}
			if err != nil {
				b.Fatalf("CreateSession after the revocation: %v", err)
			}
			if time.Since(start) > wait {
				b.Fatalf("certificate %s revoked through replica %d not denied at the anchor after %v", h.serial, via.i, wait)
			}
			time.Sleep(110 * time.Millisecond) // under the 10/s CreateSession quota
		}
		enforced = append(enforced, time.Since(start))
		if testing.Verbose() { // the benchmark's log keeps only its first lines
			b.Logf("kill %d: replica %d held push; failover %v; revoke via replica %d (push %d, crl %d) enforced in %v",
				k, victim.i, failover[k].Round(time.Millisecond), via.i, push.i, crlh.i, enforced[k].Round(time.Millisecond))
		}
	}
	w.checkAnchor(b)
	return failover, enforced
}

func pct(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1)+0.5)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
