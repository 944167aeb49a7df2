package storage

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// waitFor fails the test if ch does not deliver within 5s: a wedged group
// commit blocks forever.
func waitFor(t *testing.T, what string, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("%s is blocked: group commit wedged", what)
		return nil
	}
}

// idle waits up to 5s for the leader to finish: it clears running just
// after it answers its last batch.
func idle(t *testing.T, g *groupCommit) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		g.mu.Lock()
		running, n := g.running, len(g.pending)
		g.mu.Unlock()
		if !running && n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group commit left running=%v with %d pending", running, n)
		}
	}
}

func pendingLen(g *groupCommit) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pending)
}

// TestGroupCommitWriterPanic: a writer whose fn panics gets an error, the
// other writers of its group run again alone and commit, and later writers
// proceed.
func TestGroupCommitWriterPanic(t *testing.T) {
	d, _ := openTemp(t)
	ctx := context.Background()
	g := d.group
	put := func(serial string) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error { return insertCert(tx, cert(serial, "s-"+serial, time.Now().Add(time.Hour))) }
	}
	run := func(fn func(*bolt.Tx) error) <-chan error {
		ch := make(chan error, 1)
		go func() { ch <- g.do(fn) }()
		return ch
	}

	// A lone writer that panics.
	err := waitFor(t, "lone panicking writer", run(func(*bolt.Tx) error { panic("boom") }))
	if err == nil || !strings.Contains(err.Error(), "boom") || errors.Is(err, ErrDamaged) {
		t.Fatalf("lone panicking writer: %v", err)
	}
	if err := waitFor(t, "writer after a panic", run(put("01"))); err != nil {
		t.Fatal(err)
	}

	// A group [c, panicker, e]: the leader's writer holds its commit until
	// the group has queued behind it.
	release := make(chan struct{})
	leader := run(func(tx *bolt.Tx) error {
		<-release
		return put("02")(tx)
	})
	for !func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.running }() {
		time.Sleep(time.Millisecond)
	}
	var panics atomic.Int32
	var group []<-chan error
	for i, fn := range []func(*bolt.Tx) error{
		put("0c"),
		func(tx *bolt.Tx) error {
			panics.Add(1)
			if err := put("0b")(tx); err != nil { // a write in the shared tx, rolled back
				return err
			}
			var m map[string]int
			m["x"]++ // nil map: a bug in a writer
			return nil
		},
		put("0e"),
	} {
		group = append(group, run(fn))
		for pendingLen(g) != i+1 {
			time.Sleep(time.Millisecond)
		}
	}
	close(release)
	if err := waitFor(t, "leader", leader); err != nil {
		t.Fatal(err)
	}
	errs := make([]error, len(group))
	for i, ch := range group {
		errs[i] = waitFor(t, fmt.Sprintf("writer %d of the group", i), ch)
	}
	if errs[0] != nil || errs[2] != nil {
		t.Errorf("the panicker's group mates must commit alone: %v, %v", errs[0], errs[2])
	}
	var wp *writePanic
	if !errors.As(errs[1], &wp) || wp.bbolt || errors.Is(errs[1], ErrDamaged) || !strings.Contains(errs[1].Error(), "nil map") {
		t.Errorf("panicking writer: %v", errs[1])
	}
	if n := panics.Load(); n != 1 {
		t.Errorf("the panicking writer ran %d times; a panic is not retried", n)
	}
	if err := waitFor(t, "writer after the group", run(put("0f"))); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"01", "02", "0c", "0e", "0f"} {
		if _, err := d.Cert(ctx, s); err != nil {
			t.Errorf("cert %s: %v", s, err)
		}
	}
	if _, err := d.Cert(ctx, "0b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the panicking writer's put must be rolled back: %v", err)
	}
	idle(t, g)
}

// TestGroupCommitLeaderAnswersAfterItsOwnBatch: a writer that leads a
// commit returns once its own batch is durable, and the writers that
// queued meanwhile commit under a leader of their own. (A leader that went
// on committing for every later batch made its own answer wait for all of
// them: under steady load, the slowest answers.)
func TestGroupCommitLeaderAnswersAfterItsOwnBatch(t *testing.T) {
	d, _ := openTemp(t)
	g := d.group
	run := func(fn func(*bolt.Tx) error) <-chan error {
		ch := make(chan error, 1)
		go func() { ch <- g.do(fn) }()
		return ch
	}
	put := func(serial string, hold <-chan struct{}) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error {
			if hold != nil {
				<-hold
			}
			return insertCert(tx, cert(serial, "s-"+serial, time.Now().Add(time.Hour)))
		}
	}
	releaseFirst, releaseSecond := make(chan struct{}), make(chan struct{})
	var once1, once2 sync.Once
	free1, free2 := func() { once1.Do(func() { close(releaseFirst) }) }, func() { once2.Do(func() { close(releaseSecond) }) }
	// On failure too: a held commit would keep the database from closing.
	t.Cleanup(func() { free1(); free2() })
	first := run(put("a1", releaseFirst))
	for !func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.running }() {
		time.Sleep(time.Millisecond)
	}
	// Queued while the first batch is being written: the next batch,
	// whose commit is held until the first writer has its answer.
	second := run(put("a2", releaseSecond))
	for deadline := time.Now().Add(5 * time.Second); pendingLen(g) != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("second writer never queued")
		}
	}
	free1()
	if err := waitFor(t, "the first writer, while the next batch is held", first); err != nil {
		t.Fatal(err)
	}
	free2()
	if err := waitFor(t, "the second writer", second); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"a1", "a2"} {
		if _, err := d.Cert(context.Background(), s); err != nil {
			t.Errorf("cert %s: %v", s, err)
		}
	}
	idle(t, g)
}

// TestGroupCommitWritersConcurrentPanics: many writers, some panicking, all
// get an answer (run with -race).
func TestGroupCommitWritersConcurrentPanics(t *testing.T) {
	d, _ := openTemp(t)
	ctx := context.Background()
	const n = 64
	chs := make([]chan error, n)
	for i := range n {
		chs[i] = make(chan error, 1)
		go func() {
			chs[i] <- d.group.do(func(tx *bolt.Tx) error {
				if i%5 == 0 {
					panic(fmt.Sprintf("writer %d", i))
				}
				return insertCert(tx, cert(fmt.Sprintf("%04x", i), "s", time.Now().Add(time.Hour)))
			})
		}()
	}
	for i, ch := range chs {
		err := waitFor(t, fmt.Sprintf("writer %d", i), ch)
		if (i%5 == 0) != (err != nil) {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	for i := range n {
		if _, err := d.Cert(ctx, fmt.Sprintf("%04x", i)); (i%5 == 0) != errors.Is(err, ErrNotFound) {
			t.Errorf("cert %d: %v", i, err)
		}
	}
}

// reviewDB writes testdata/review-<name>.db.gz to a temporary file: a
// database from a reviewer's mutation run (one small page id written over
// a page's elements) that the page walk once accepted and on which bbolt
// panicked in the writes after Open. 472: a leaf's first key grown past its
// parent's key ("write: circular dependency occurred"); 1413: an empty
// branch key ("read: zero-length inode key"), which bbolt's own check
// misses; 4070: a leaf's first key below its parent's.
func reviewDB(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "review-"+name+".db.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name+".db")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// damagedBolt opens a review database with bbolt directly, as Open did
// before it refused them, to reach the writes. The files are of schema 1,
// and nothing migrates them: the writes go to the buckets they have,
// where the damage is (keys of schema 3's form in schema 1's buckets,
// which no code but these tests ever writes).
func damagedBolt(t *testing.T, name string) *DB {
	saved := [][]byte{bucketCerts, bucketBySubject, bucketByState}
	bucketCerts, bucketBySubject, bucketByState = bucketCertsV2, bucketBySubjectV2, bucketByStateV2
	t.Cleanup(func() { bucketCerts, bucketBySubject, bucketByState = saved[0], saved[1], saved[2] })
	bdb, err := bolt.Open(reviewDB(t, name), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d := newDB(bdb)
	t.Cleanup(func() { d.Close() })
	return d
}

func putAsync(d *DB, serial, subject string) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- d.PutCert(context.Background(), cert(serial, subject, time.Now().Add(time.Hour))) }()
	return ch
}

// TestDamagedDatabaseWriteFailsNotWedges: on a damaged database that got
// past Open, bbolt panics on the first write that reads the damaged page
// (1413: an empty branch key in by_subject); that writer gets ErrDamaged,
// and the writers after it answers, not a hang.
func TestDamagedDatabaseWriteFailsNotWedges(t *testing.T) {
	d := damagedBolt(t, "1413")
	err := waitFor(t, "first write", putAsync(d, "ff01d8", "new"))
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "zero-length inode key") {
		t.Fatalf("first write on a damaged database: %v, want ErrDamaged from bbolt", err)
	}
	t.Logf("first write: %v", err)
	if !errors.Is(d.Damaged(), ErrDamaged) {
		t.Errorf("Damaged() after a damaged write: %v (health would still say ok)", d.Damaged())
	}
	var chs []<-chan error
	for i := range 8 { // concurrent, so some share a group
		chs = append(chs, putAsync(d, fmt.Sprintf("ff1%03d", i), fmt.Sprintf("host-%d", i)))
	}
	for i, ch := range chs {
		if err := waitFor(t, fmt.Sprintf("write %d after it", i), ch); !errors.Is(err, ErrDamaged) {
			t.Errorf("write %d after it: %v, want ErrDamaged", i, err)
		}
	}
	idle(t, d.group)
}

// TestDamagedDatabaseWritesNeverWedge: 472 (a leaf's first key longer than
// its parent's key for it) does not panic at once: a write to the leaf
// gives the branch a second entry, and a later commit that reuses the
// freed page trips "write: circular dependency occurred", or not,
// depending on page allocation. Whatever happens, every write answers,
// and any failure is ErrDamaged.
func TestDamagedDatabaseWritesNeverWedge(t *testing.T) {
	d := damagedBolt(t, "472")
	damaged := 0
	for i := range 40 {
		err := waitFor(t, fmt.Sprintf("write %d", i), putAsync(d, fmt.Sprintf("ff%04x", i), fmt.Sprintf("new-%d", i%7)))
		if err != nil && !errors.Is(err, ErrDamaged) {
			t.Fatalf("write %d: %v", i, err)
		}
		if err != nil {
			damaged++
		}
	}
	t.Logf("%d of 40 writes failed with ErrDamaged", damaged)
	idle(t, d.group)
}

// TestOpenRefusesReviewDamage: Open refuses the databases above, each
// with one line naming the damage.
func TestOpenRefusesReviewDamage(t *testing.T) {
	for name, want := range map[string]string{
		"472":  "is not its parent's key",
		"1413": "has an empty key",
		"4070": "is not its parent's key",
	} {
		p := reviewDB(t, name)
		before, _ := os.ReadFile(p)
		d, err := Open(p)
		if err == nil {
			d.Close()
			t.Errorf("%s: Open accepted a damaged database", name)
			continue
		}
		var oe *OpenError
		if !errors.As(err, &oe) || !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want a one-line ErrDamaged with %q", name, err, want)
		}
		if after, _ := os.ReadFile(p); !bytes.Equal(before, after) {
			t.Errorf("%s: a refused Open changed the file", name)
		}
	}
}

// TestOpenRunsBboltCheck: damage the page walk does not look for (keys of
// a leaf out of order) is refused by bbolt's own check.
func TestOpenRunsBboltCheck(t *testing.T) {
	p := filepath.Join(t.TempDir(), "order.db")
	bdb, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("certs"))
		if err != nil {
			return err
		}
		for _, k := range []string{"key-A-marker", "key-B-marker", "key-C-marker"} {
			if err := b.Put([]byte(k), bytes.Repeat([]byte{'v'}, 1500)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	bdb.Close()
	b, _ := os.ReadFile(p)
	if bytes.Count(b, []byte("key-B-marker")) != 1 {
		t.Fatal("key-B-marker is not in the file exactly once")
	}
	os.WriteFile(p, bytes.Replace(b, []byte("key-B-marker"), []byte("key-0-marker"), 1), 0o600)
	d, err := Open(p)
	if err == nil {
		d.Close()
		t.Fatal("Open accepted a leaf with keys out of order")
	}
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "bbolt check") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("out-of-order keys: %v", err)
	}
	t.Log(err)
}

// TestOpenAcceptsChurnedDatabase: a database that has seen many inserts,
// revocations and prunes (page splits, merges, freed pages) passes the
// stricter walk and bbolt's check.
func TestOpenAcceptsChurnedDatabase(t *testing.T) {
	d, p := openTemp(t)
	ctx := context.Background()
	now := time.Now()
	for round := range 6 {
		var cs []*Cert
		for i := range 500 {
			c := cert(fmt.Sprintf("%02x%04x", round, i), fmt.Sprintf("host-%d", i%97), now.Add(time.Duration(i%3-1)*time.Hour))
			c.DER = bytes.Repeat([]byte{byte(i)}, 300+i%900)
			cs = append(cs, c)
		}
		if err := d.PutCerts(ctx, cs); err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			if _, err := d.RevokeSubject(ctx, fmt.Sprintf("host-%d", (round*10+i)%97), 1, now); err != nil && !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
		}
		if _, err := d.PruneRevoked(ctx, now.Add(2*time.Hour+RevocationRetention)); err != nil {
			t.Fatal(err)
		}
	}
	// Deletes in the big buckets, in several commits: leaves merge,
	// first keys change, branches rebalance.
	rng := rand.New(rand.NewPCG(1, 2))
	next := 0
	for range 20 {
		err := d.db.Update(func(tx *bolt.Tx) error {
			for _, name := range [][]byte{bucketCerts, bucketBySubject} {
				c := tx.Bucket(name).Cursor()
				for k, _ := c.First(); k != nil; k, _ = c.Next() {
					if rng.IntN(8) == 0 {
						if err := c.Delete(); err != nil {
							return err
						}
					}
				}
			}
			for range 50 {
				next++
				c := cert(fmt.Sprintf("%02x%04x", rng.IntN(6), 1000+next), fmt.Sprintf("re-%d", rng.IntN(50)), now.Add(time.Hour))
				c.DER = make([]byte, rng.IntN(3000))
				if err := insertCert(tx, c); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2, err := Open(p)
	if err != nil {
		t.Fatalf("Open refused a healthy database: %v", err)
	}
	d2.Close()
}
