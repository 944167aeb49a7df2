package caserver_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	ra "github.com/aws/aws-sdk-go-v2/service/rolesanywhere"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/caclient"
	"github.com/anchorage-pki/anchorage/crl"
	"github.com/anchorage-pki/anchorage/enroll"
	"github.com/anchorage-pki/anchorage/internal/pgtest"
	"github.com/anchorage-pki/anchorage/internal/testenv"
	"github.com/anchorage-pki/anchorage/problem"
	"github.com/anchorage-pki/anchorage/signer"
	"github.com/anchorage-pki/anchorage/storage"
	"github.com/anchorage-pki/anchorage/storage/postgres"
)

// cluster is three CA replicas on one PostgreSQL database, with one trust
// anchor at localaws configured on all of them.
type cluster struct {
	url    string // the database
	aws    *testenv.AWS
	anchor string
	reps   []*testCA
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	cl := &cluster{aws: testenv.StartAWS(t), url: pgtest.URL(t)}
	a := testenv.InitCAOnPostgres(t, cl.url)
	cl.anchor, _ = cl.aws.Setup(t, a.CACert(t))
	a.AddAnchor(t, cl.anchor, cl.aws.URL)
	b, c := a.Replica(t), a.Replica(t)
	for _, r := range []*testenv.CA{a, b, c} {
		r.Start(t)
		cl.reps = append(cl.reps, &testCA{r})
	}
	cl.anchorHolds(t, 1, 15*time.Second)
	return cl
}

// anchorHolds waits until the anchor holds CRL number want or newer, as
// the stored anchor status says (read through a running replica, so the
// wait does not spend the anchor's 1 request/s CRL quota), then reads the
// CRL at localaws and returns its entries.
func (cl *cluster) anchorHolds(t *testing.T, want uint64, timeout time.Duration) map[string]bool {
	t.Helper()
	for _, r := range cl.reps {
		if r.Srv != nil {
			r.WaitAnchors(t, want, timeout)
			break
		}
	}
	out, err := cl.aws.Client().ListCrls(context.Background(), &ra.ListCrlsInput{})
	if err != nil || len(out.Crls) != 1 {
		t.Fatalf("ListCrls: %+v %v", out, err)
	}
	blk, _ := pem.Decode(out.Crls[0].CrlData)
	if blk == nil {
		t.Fatalf("the anchor's CRL is not PEM: %q", out.Crls[0].CrlData)
	}
	rl, err := x509.ParseRevocationList(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if rl.Number.Uint64() < want {
		t.Fatalf("the anchor holds CRL %d, its stored status says >= %d", rl.Number, want)
	}
	return entries(rl)
}

func entries(rl *x509.RevocationList) map[string]bool {
	on := map[string]bool{}
	for _, e := range rl.RevokedCertificateEntries {
		on[ca.SerialHex(e.SerialNumber)] = true
	}
	return on
}

// enrollOn enrolls name on replica r with a token for the CA's one name
// (cfg.URL, shared by the replicas), as a workload behind a load balancer.
func enrollOn(t *testing.T, r *testCA, name string) *apiv1.CertResponse {
	t.Helper()
	key, err := signer.Open(context.Background(), filepath.Join(r.Dir, "provisioner.key"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := enroll.Mint(key, r.Cfg.URL, name, nil, 10*time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := caclient.NewCSR(mustKey(), name, nil)
	res, err := r.Client(t, nil).Enroll(context.Background(), tok, csr)
	if err != nil {
		t.Fatalf("enroll %s on %s: %v", name, r.URL, err)
	}
	return res
}

// crlOf fetches a replica's /crl.
func crlOf(t *testing.T, r *testCA) *x509.RevocationList {
	t.Helper()
	der, err := r.Client(t, nil).CRL(context.Background())
	if err != nil {
		t.Fatalf("%s /crl: %v", r.URL, err)
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return rl
}

// everyCRLHas waits until every running replica's /crl lists serials.
func (cl *cluster) everyCRLHas(t *testing.T, timeout time.Duration, serials ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, r := range cl.reps {
		if r.Srv == nil {
			continue
		}
		for {
			rl := crlOf(t, r)
			on, all := entries(rl), true
			for _, s := range serials {
				all = all && on[s]
			}
			if all {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s /crl (number %d) lacks %v", r.URL, rl.Number, serials)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Enroll on A, renew on B, revoke on C: every replica serves a CRL with
// the lineage, the anchor holds it, one ImportCrl in all; more
// revocations spread over the replicas give strictly increasing CRL
// numbers; one token replayed 50 times over the three gives one
// certificate.
func TestThreeReplicasOneDatabase(t *testing.T) {
	cl := startCluster(t)
	a, b, c := cl.reps[0], cl.reps[1], cl.reps[2]
	ctx := context.Background()

	pair, res := a.enroll(t, "rep-01.example.com")
	csr, _ := caclient.NewCSR(mustKey(), "rep-01.example.com", nil)
	ren, err := b.Client(t, &pair).Renew(ctx, csr)
	if err != nil {
		t.Fatalf("renew on B: %v", err)
	}
	start := time.Now()
	rr, err := c.Admin(t).Revoke(ctx, apiv1.RevokeRequest{Serial: res.Serial, Reason: "keyCompromise"})
	if err != nil || len(rr.Revoked) != 2 || rr.CRLNumber == 0 {
		t.Fatalf("revoke on C: %+v %v", rr, err)
	}
	cl.everyCRLHas(t, 10*time.Second, res.Serial, ren.Serial)
	on := cl.anchorHolds(t, rr.CRLNumber, 15*time.Second)
	if !on[res.Serial] || !on[ren.Serial] {
		t.Fatalf("the anchor's CRL lacks the lineage: %v", on)
	}
	t.Logf("revoke on C → anchor holds CRL %d in %v", rr.CRLNumber, time.Since(start))
	// revoke --wait's view on every replica: stored anchor status.
	for _, r := range cl.reps {
		r.WaitAnchors(t, rr.CRLNumber, 10*time.Second)
	}

	// Revocations through each replica in turn: numbers strictly increase,
	// every replica's /crl follows and never goes back.
	last, seen := rr.CRLNumber, map[int]uint64{}
	for i := range 6 {
		r := cl.reps[i%3]
		e := enrollOn(t, r, "rep-more.example.com")
		rr, err := r.Admin(t).Revoke(ctx, apiv1.RevokeRequest{Serial: e.Serial, Reason: "superseded"})
		if err != nil {
			t.Fatalf("revoke on replica %d: %v", i%3, err)
		}
		if rr.CRLNumber <= last {
			t.Fatalf("revocation %d on replica %d: CRL number %d after %d", i, i%3, rr.CRLNumber, last)
		}
		last = rr.CRLNumber
		cl.everyCRLHas(t, 10*time.Second, e.Serial)
		for j, x := range cl.reps {
			n := crlOf(t, x).Number.Uint64()
			if n < seen[j] {
				t.Fatalf("replica %d's /crl went back from %d to %d", j, seen[j], n)
			}
			seen[j] = n
		}
	}
	cl.anchorHolds(t, last, 20*time.Second)
	// Every replica's crl.der (the start-up check against an older
	// database) follows the CRLs other replicas built.
	for i, r := range cl.reps {
		n, ok, err := crl.FileNumber(r.Cfg.Path(r.Cfg.Paths.CRL))
		if err != nil || !ok || n < last {
			t.Errorf("replica %d's %s records CRL %d (%v, %v), want >= %d", i, r.Cfg.Paths.CRL, n, ok, err, last)
		}
	}
	if n := cl.aws.Count("POST", "/crls"); n != 1 {
		t.Errorf("%d ImportCrl calls across three replicas, want 1", n)
	}

	// One token, 50 concurrent enrollments spread over the three.
	tok := a.token(t, "replay.example.com", nil, time.Minute, time.Now())
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, replayed := 0, 0
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			csr, _ := caclient.NewCSR(mustKey(), "replay.example.com", nil)
			_, err := cl.reps[i%3].Client(t, nil).Enroll(ctx, tok, csr)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case problemType(err) == problem.TokenReplayed:
				replayed++
			default:
				t.Errorf("replica %d: %v", i%3, err)
			}
		}()
	}
	wg.Wait()
	if ok != 1 || replayed != 49 {
		t.Errorf("one token over three replicas gave %d certificates and %d replay refusals; want 1 and 49", ok, replayed)
	}
	for i, r := range cl.reps {
		list, err := r.Admin(t).Certs(ctx, "replay.example.com", "", 0, "")
		if err != nil || len(list.Certs) != 1 {
			t.Errorf("replica %d lists %d certificates for the token (%v), want 1", i, len(list.Certs), err)
		}
	}
}

// holderOf returns the replica whose listen address the named lease's
// holder names, reading the leases through r's /health.
func (cl *cluster) holderOf(t *testing.T, r *testCA, name string) (int, apiv1.Lease) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		h, err := r.Client(t, nil).Health(context.Background())
		if err == nil {
			for _, l := range h.Leases {
				if l.Name != name {
					continue
				}
				for i, x := range cl.reps {
					if x.Srv != nil && strings.HasSuffix(l.Holder, " listen "+x.Cfg.Listen) {
						return i, l
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no running replica holds lease %q: %+v %v", name, h, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop the replica holding the push lease: another takes it and pushes
// the next revocation within seconds, without a second ImportCrl. Done a
// few times, restarting the stopped replica each time; the failover times
// (stop → the anchor holds the revocation made through a survivor) are
// logged.
func TestPushLeaseFailover(t *testing.T) {
	cl := startCluster(t)
	ctx := context.Background()
	// /health and /metrics name a distinct holder for each lease.
	i, l := cl.holderOf(t, cl.reps[0], storage.LeasePush)
	if l.Since.IsZero() || l.Since.After(time.Now()) {
		t.Fatalf("push lease since %v", l.Since)
	}
	m := cl.reps[(i+1)%3].Scrape(t)
	if _, ok := m.Value("anchorage_lease_held_since_timestamp_seconds", "lease", "push", "holder", l.Holder); !ok {
		t.Errorf("/metrics of a non-holder does not name the push holder %q", l.Holder)
	}

	// The stored anchor status, which revoke --wait on every replica reads,
	// never goes back across the failovers.
	watch, err := postgres.Open(ctx, cl.url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	wctx, wcancel := context.WithCancel(ctx)
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		var last uint64
		for wctx.Err() == nil {
			st, err := watch.AnchorStatuses(wctx)
			if err == nil {
				if n := st[cl.anchor].CRLNumber; n < last {
					t.Errorf("stored anchor status went back from CRL %d to %d", last, n)
				} else {
					last = n
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	defer func() { wcancel(); <-wdone }()

	var times []time.Duration
	var revoked []string
	const kills = 5
	for k := range kills {
		i, l := cl.holderOf(t, cl.reps[k%3], storage.LeasePush)
		victim := cl.reps[i]
		survivor := cl.reps[(i+1)%3]
		e := enrollOn(t, survivor, "failover.example.com")
		stopping := time.Now()
		victim.Stop()
		victim.Srv = nil
		stopped := time.Now()
		rr, err := survivor.Admin(t).Revoke(ctx, apiv1.RevokeRequest{Serial: e.Serial, Reason: "keyCompromise"})
		if err != nil {
			t.Fatalf("revoke through a survivor: %v", err)
		}
		// Stored status only here: reading the anchor at localaws would
		// spend the 1 request/s CRL quota the new leader is pushing with.
		survivor.WaitAnchors(t, rr.CRLNumber, 20*time.Second)
		took := time.Since(stopped)
		revoked = append(revoked, e.Serial)
		j, nl := cl.holderOf(t, survivor, storage.LeasePush)
		if j == i || nl.Holder == l.Holder {
			t.Fatalf("push lease still names the stopped replica: %+v", nl)
		}
		times = append(times, took)
		t.Logf("kill %d: replica %d held push since %s, stopped in %v; replica %d took the lease %v and the anchor held CRL %d %v after the stop",
			k, i, l.Since.Format(time.RFC3339), stopped.Sub(stopping), j, nl.Since.Sub(stopped).Round(time.Millisecond), rr.CRLNumber, took)
		victim.Start(t)
	}
	on := cl.anchorHolds(t, 0, 20*time.Second)
	for _, serial := range revoked {
		if !on[serial] {
			t.Errorf("the anchor's CRL lacks %s, revoked through a survivor", serial)
		}
	}
	if n := cl.aws.Count("POST", "/crls"); n != 1 {
		t.Errorf("%d ImportCrl calls over %d failovers, want 1", n, kills)
	}
	sort.Slice(times, func(a, b int) bool { return times[a] < times[b] })
	t.Logf("push failover (stop → anchor holds the next revocation) over %d kills: p50 %v, max %v",
		kills, times[len(times)/2], times[len(times)-1])
}
