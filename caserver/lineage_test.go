package caserver_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/caclient"
	"github.com/anchorage-pki/anchorage/problem"
)

// renewer is one holder of a certificate that keeps renewing it over
// mTLS, moving to each successor it gets.
type renewer struct {
	mu   sync.Mutex
	pair tls.Certificate
}

func (r *renewer) renewOnce(t *testing.T, tc *testCA) (string, error) {
	r.mu.Lock()
	pair := r.pair
	r.mu.Unlock()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := caclient.NewCSR(key, "x", nil)
	res, err := tc.Client(t, &pair).Renew(context.Background(), csr)
	if err != nil {
		return "", err
	}
	certPEM := []byte(res.Chain)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	next, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Error(err)
		return "", err
	}
	r.mu.Lock()
	r.pair = next
	r.mu.Unlock()
	return res.Serial, nil
}

// Several holders of one certificate (a stolen copy among them) renew it
// as fast as they can while an admin revokes its subject — or its first
// serial. Once the revoke has answered, no certificate of the subject is
// valid and the CRL carries every one of them; renewals after it are
// refused with a problem document, never a 500.
func TestRenewalsRacingRevoke(t *testing.T) {
	for _, by := range []string{"subject", "serial"} {
		t.Run(by, func(t *testing.T) {
			for round := range 3 {
				raceOnce(t, by, round)
			}
		})
	}
}

func raceOnce(t *testing.T, by string, round int) {
	tc := startCA(t)
	ctx := context.Background()
	name := "race.example.com"
	pair, first := tc.enroll(t, name, "DNS:"+name)
	// Three workers of the legitimate host share its newest certificate;
	// a fourth holds a stolen copy of the first one and keeps trying it.
	host := &renewer{pair: pair}
	rs := []*renewer{host, host, host, {pair: pair}}
	var attempts, renewed, superseded, refusedAfter atomic.Int64
	var revoked atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				after := revoked.Load()
				attempts.Add(1)
				_, err := r.renewOnce(t, tc)
				if err == nil {
					if after {
						t.Errorf("a renewal started after the revoke answered succeeded")
					}
					renewed.Add(1)
					continue
				}
				switch pt := problemType(err); {
				case pt == problem.CertSuperseded:
					superseded.Add(1)
				case pt == problem.CertRevoked:
					if after {
						refusedAfter.Add(1)
					}
				default:
					t.Errorf("renewal: unexpected answer %v", err)
					return
				}
			}
		}()
	}
	// Revoke mid-race: after a round-dependent delay and once the race is
	// on (renewals landing, the stolen copy refused), however slow the
	// machine; the deadline only bounds a broken CA.
	time.Sleep(time.Duration(250+100*round) * time.Millisecond)
	for deadline := time.Now().Add(30 * time.Second); renewed.Load() < 5 || superseded.Load() == 0; {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	req := apiv1.RevokeRequest{Subject: name, Reason: "keyCompromise"}
	if by == "serial" {
		req = apiv1.RevokeRequest{Serial: first.Serial, Reason: "keyCompromise"}
	}
	rr, err := tc.Admin(t).Revoke(ctx, req)
	if err != nil {
		t.Fatalf("revoke: %v", err)
	}
	revoked.Store(true)
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()

	list, err := tc.Admin(t).Certs(ctx, name, "", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	der, err := tc.Client(t, nil).CRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	onCRL := map[string]bool{}
	for _, e := range rl.RevokedCertificateEntries {
		onCRL[ca.SerialHex(e.SerialNumber)] = true
	}
	for _, c := range list.Certs {
		if c.Status != "revoked" || !onCRL[c.Serial] && !c.Undelivered {
			t.Errorf("%s by %s, round %d: %s is %s (on CRL %d: %v) after revoke answered", by, by, round, c.Serial, c.Status, rl.Number, onCRL[c.Serial])
		}
		if c.Lineage != first.Serial {
			t.Errorf("%s: lineage %q, want %s", c.Serial, c.Lineage, first.Serial)
		}
	}
	if renewed.Load() < 5 || superseded.Load() == 0 {
		t.Errorf("the race did not happen: %d renewals, %d superseded", renewed.Load(), superseded.Load())
	}
	t.Logf("revoke by %s, round %d: %d attempts, %d renewed, %d refused as superseded, %d refused as revoked after the revoke; %d certificates in the lineage, %d revoked by this call, CRL %d",
		by, round, attempts.Load(), renewed.Load(), superseded.Load(), refusedAfter.Load(), len(list.Certs), len(rr.Revoked), rr.CRLNumber)
}

// Revoking the newest certificate of a lineage — the serial a responder
// sees in CloudTrail — also revokes its unexpired predecessor, which holds
// the same key unless the host rekeyed.
func TestRevokeNewestRevokesPredecessor(t *testing.T) {
	tc := startCA(t)
	ctx := context.Background()
	pair, first := tc.enroll(t, "pred.example.com", "DNS:pred.example.com")
	h := &renewer{pair: pair}
	second, err := h.renewOnce(t, tc)
	if err != nil {
		t.Fatal(err)
	}
	rr, err := tc.Admin(t).Revoke(ctx, apiv1.RevokeRequest{Serial: second, Reason: "keyCompromise"})
	if err != nil || len(rr.Revoked) != 2 {
		t.Fatalf("revoke the newest: %+v %v", rr, err)
	}
	der, err := tc.Client(t, nil).CRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rl, _ := x509.ParseRevocationList(der)
	on := map[string]bool{}
	for _, e := range rl.RevokedCertificateEntries {
		on[ca.SerialHex(e.SerialNumber)] = true
	}
	if !on[first.Serial] || !on[second] {
		t.Errorf("CRL %d: predecessor %s on it %v, newest %s on it %v", rl.Number, first.Serial, on[first.Serial], second, on[second])
	}
}

// A host firing one renewal many times in parallel (same key) gets one
// successor back every time, and the CRL does not grow: losing a race
// must not be a way to push the CRL towards the Roles Anywhere cap.
func TestParallelRetriesDoNotGrowCRL(t *testing.T) {
	tc := startCA(t)
	ctx := context.Background()
	pair, _ := tc.enroll(t, "retry.example.com", "DNS:retry.example.com")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := caclient.NewCSR(key, "x", nil)
	before, _ := tc.Client(t, nil).CRL(ctx)
	var wg sync.WaitGroup
	serials := make(chan string, 40)
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := tc.Client(t, &pair).Renew(ctx, csr)
			if err != nil {
				t.Errorf("parallel retry: %v", err)
				return
			}
			serials <- res.Serial
		}()
	}
	wg.Wait()
	close(serials)
	got := map[string]bool{}
	for s := range serials {
		got[s] = true
	}
	if len(got) != 1 {
		t.Errorf("40 retries of one renewal got %d different successors", len(got))
	}
	after, _ := tc.Client(t, nil).CRL(ctx)
	rb, _ := x509.ParseRevocationList(before)
	ra, _ := x509.ParseRevocationList(after)
	if len(ra.RevokedCertificateEntries) != len(rb.RevokedCertificateEntries) {
		t.Errorf("CRL grew from %d to %d entries", len(rb.RevokedCertificateEntries), len(ra.RevokedCertificateEntries))
	}
}
