package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/anchorage-pki/anchorage/internal/pgtest"
	"github.com/anchorage-pki/anchorage/storage"
	"github.com/anchorage-pki/anchorage/storage/postgres"
	"github.com/anchorage-pki/anchorage/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func open(t *testing.T, url, holder string) *postgres.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := postgres.Open(ctx, url, postgres.Options{Holder: holder})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// The PostgreSQL backend passes the conformance suite the bbolt one does.
func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend { return open(t, pgtest.URL(t), "") })
}

// Migrations run once, whoever opens first; opening again is a no-op.
func TestOpenTwiceMigratesOnce(t *testing.T) {
	url := pgtest.URL(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := postgres.Open(context.Background(), url, postgres.Options{})
			if err == nil {
				d.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// Two handles on one database are two replicas: the renew/revoke race of
// one lineage holds across them.
func TestReplicasRenewRevokeRace(t *testing.T) {
	for round := range 3 {
		url := pgtest.URL(t)
		a, b := open(t, url, "A"), open(t, url, "B")
		storagetest.RenewRevokeRace(t, fmt.Sprintf("round %d", round), time.Duration(20+round*20)*time.Millisecond, a, b)
	}
}

// 50 concurrent replays of one token spread over two replicas store
// exactly one certificate; each refusal is ErrTokenUsed.
func TestReplicasTokenReplay(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	ds := []*postgres.DB{open(t, url, "A"), open(t, url, "B")}
	exp := time.Now().Add(time.Minute)
	var wg sync.WaitGroup
	var wins atomic.Int64
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &storage.Cert{Serial: fmt.Sprintf("%04x", i+1), Subject: "a", NotAfter: exp, Status: storage.StatusValid, Method: storage.MethodToken}
			err := ds[i%2].PutCertUsingToken(ctx, c, "one", exp)
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, storage.ErrTokenUsed):
				t.Errorf("replay %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	all, err := ds[1].ListCerts(ctx, storage.Filter{}, time.Now())
	if wins.Load() != 1 || len(all) != 1 || err != nil {
		t.Errorf("%d replays accepted, %d certificates stored (%v); want 1", wins.Load(), len(all), err)
	}
}

// A revocation on one replica wakes the watchers of the other.
func TestReplicasWatch(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	a, b := open(t, url, "A"), open(t, url, "B")
	ch, stop := b.Watch(storage.TopicRevocation)
	defer stop()
	now := time.Now()
	if err := a.PutCert(ctx, &storage.Cert{Serial: "01", Subject: "w", NotAfter: now.Add(time.Hour), Status: storage.StatusValid, Method: storage.MethodToken}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RevokeSerial(ctx, "01", 1, now); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("replica B was not signalled of A's revocation")
	}
}

// A lease held by replica A is taken over by B within a few seconds of
// A's Close; both see who holds it.
func TestLeaseTakeOver(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := pgtest.URL(t)
	a, b := open(t, url, "A"), open(t, url, "B")
	var holder atomic.Value
	holder.Store("")
	run := func(d *postgres.DB, name string) {
		go d.Hold(ctx, storage.LeaseCRL, func(ctx context.Context) {
			holder.Store(name)
			<-ctx.Done()
		})
	}
	run(a, "A")
	waitFor(t, 10*time.Second, "A holds the lease", func() bool { return holder.Load() == "A" })
	run(b, "B")
	time.Sleep(2500 * time.Millisecond) // B asks at least twice meanwhile
	if h := holder.Load(); h != "A" {
		t.Fatalf("lease moved to %v while A held it", h)
	}
	for _, d := range []*postgres.DB{a, b} {
		ls, err := d.Leases(ctx)
		if err != nil || len(ls) != 1 || ls[0].Holder != "A" {
			t.Errorf("leases seen while A holds: %+v %v", ls, err)
		}
	}
	closed := time.Now()
	a.Close()
	waitFor(t, 5*time.Second, "B takes the lease over", func() bool { return holder.Load() == "B" })
	t.Logf("take-over %v after A's Close", time.Since(closed).Round(time.Millisecond))
	ls, err := b.Leases(ctx)
	if err != nil || len(ls) != 1 || ls[0].Holder != "B" || ls[0].Since.Before(closed.Add(-time.Second)) {
		t.Errorf("leases after take-over: %+v %v", ls, err)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", d, what)
		}
	}
}

// terminate ends the server sessions whose last statement starts with
// prefix, as a crashed network path or a DBA would.
func terminate(t *testing.T, url, prefix string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE $1`, prefix+"%").Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The lease's session dying cancels fn, and Hold takes the lease again.
func TestLeaseLostWithItsSession(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := pgtest.URL(t)
	a := open(t, url, "A")
	var runs atomic.Int64
	go a.Hold(ctx, storage.LeasePush, func(ctx context.Context) {
		runs.Add(1)
		<-ctx.Done()
	})
	waitFor(t, 10*time.Second, "A holds the lease", func() bool { return runs.Load() == 1 })
	// The lease's session is found by its monitor's ping (every second):
	// until the first ping its last statement is the lock taken, so wait
	// for it rather than sleeping a second and a bit, which a loaded
	// machine can outrun.
	var n int
	waitFor(t, 10*time.Second, "the lease's session pings", func() bool {
		n = terminate(t, url, "SELECT 1 /* anchorage lease held")
		return n != 0
	})
	if n != 1 {
		t.Fatalf("terminated %d lease sessions, want 1", n)
	}
	waitFor(t, 10*time.Second, "A takes the lease again", func() bool { return runs.Load() == 2 })
	ls, err := a.Leases(ctx)
	if err != nil || len(ls) != 1 || ls[0].Name != storage.LeasePush {
		t.Errorf("leases after the lost session: %+v %v", ls, err)
	}
}

// A lost LISTEN connection is reopened, and watchers are signalled.
func TestWatchSurvivesLostConnection(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	a, b := open(t, url, "A"), open(t, url, "B")
	ch, stop := b.Watch(storage.TopicRevocation)
	defer stop()
	if n := terminate(t, url, "LISTEN"); n != 2 {
		t.Fatalf("terminated %d listeners, want 2", n)
	}
	select { // the reconnect signals every topic: changes may have been missed
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no signal after the listener reconnected")
	}
	now := time.Now()
	if err := a.PutCert(ctx, &storage.Cert{Serial: "01", Subject: "w", NotAfter: now.Add(time.Hour), Status: storage.StatusValid, Method: storage.MethodToken}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RevokeSerial(ctx, "01", 1, now); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("replica B was not signalled after its listener reconnected")
	}
}

// CRL saves racing on two replicas: every stored number is stored once
// and the newest is the highest saved; revocations racing on two replicas
// each advance the one revocation sequence.
func TestReplicasCounters(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	ds := []*postgres.DB{open(t, url, "A"), open(t, url, "B")}
	var mu sync.Mutex
	saved := map[uint64]int{}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := uint64(i%20 + 1)
			err := ds[i%2].SaveCRL(ctx, storage.CRL{Number: n, DER: []byte{byte(n)}})
			switch {
			case err == nil:
				mu.Lock()
				saved[n]++
				mu.Unlock()
			case !errors.Is(err, storage.ErrStaleCRL):
				t.Errorf("save %d: %v", n, err)
			}
		}()
	}
	wg.Wait()
	var high uint64
	for n, k := range saved {
		if k != 1 {
			t.Errorf("CRL %d stored %d times", n, k)
		}
		high = max(high, n)
	}
	if c, err := ds[0].CRL(ctx); err != nil || c.Number != high || len(c.DER) != 1 || uint64(c.DER[0]) != high {
		t.Errorf("newest CRL %+v %v, want number %d", c, err, high)
	}

	now := time.Now()
	const n = 30
	for i := range n {
		c := &storage.Cert{Serial: fmt.Sprintf("%04x", i+1), Subject: fmt.Sprintf("h%d", i), NotAfter: now.Add(time.Hour), Status: storage.StatusValid, Method: storage.MethodToken}
		if err := ds[0].PutCert(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := ds[i%2].RevokeSerial(ctx, fmt.Sprintf("%04x", i+1), 1, now); err != nil {
				t.Errorf("revoke %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	set, err := ds[1].Revocations(ctx, now)
	if err != nil || set.Seq != n || len(set.Entries) != n {
		t.Errorf("after %d racing revocations: seq %d, %d entries, %v", n, set.Seq, len(set.Entries), err)
	}
}

// An unreachable server fails Open at once, in one line naming it.
func TestOpenUnreachableIsOneLine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dir := t.TempDir()
	_, err := postgres.Open(ctx, "postgres://postgres@/x?host="+dir+"&port=1", postgres.Options{})
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), dir) {
		t.Errorf("open of nothing: %v", err)
	}
}

// Replicas share one nonce key, created once however many ask together,
// and a nonce id is fresh once across them: of 50 concurrent uses spread
// over two replicas one wins.
func TestReplicasNonces(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	ds := []*postgres.DB{open(t, url, "A"), open(t, url, "B")}
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := ds[i%2].NonceKey(ctx)
			if err != nil {
				t.Errorf("key %d: %v", i, err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	for i, k := range keys {
		if len(k) != storage.NonceKeySize || string(k) != string(keys[0]) {
			t.Fatalf("replica key %d differs from key 0", i)
		}
	}
	exp := time.Now().Add(10 * time.Minute)
	var fresh atomic.Int64
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := ds[i%2].UseNonce(ctx, "one", exp)
			if err != nil {
				t.Errorf("use %d: %v", i, err)
			}
			if ok {
				fresh.Add(1)
			}
		}()
	}
	wg.Wait()
	if fresh.Load() != 1 {
		t.Errorf("%d of 50 uses of one nonce on two replicas were fresh, want 1", fresh.Load())
	}
	if n, err := ds[1].PruneNonces(ctx, exp.Add(time.Second)); n != 1 || err != nil {
		t.Errorf("replica B pruned %d (%v) of the nonce A or B used, want 1", n, err)
	}
}
