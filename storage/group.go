package storage

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// groupCommit shares one bbolt write transaction (two fsyncs) among all
// writers that arrive while the previous commit is on disk. Unlike
// bbolt's Batch it never waits on a timer: a lone writer commits at once,
// so latency at low load stays one commit, and under load each fsync
// carries every request that queued behind it.
type groupCommit struct {
	db      *bolt.DB
	mu      sync.Mutex
	pending []*groupReq
	running bool
	damaged atomic.Pointer[error] // first damage a read or write met
}

type groupReq struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// do runs fn in a shared write transaction and returns when that
// transaction is durable (or fn's own error). fn may run twice: if any
// writer of a group fails, the group is rolled back and each writer runs
// again in a transaction of its own, so one failure never sinks others.
// A panic, in fn or in bbolt (a damaged page), becomes an error for the
// writers it concerns (see writePanic); it never stops later writers.
func (g *groupCommit) do(fn func(*bolt.Tx) error) error {
	r := &groupReq{fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, r)
	lead := !g.running
	g.running = true
	g.mu.Unlock()
	if lead {
		g.lead()
	}
	err := <-r.done
	if err == errLead {
		g.lead()
		err = <-r.done
	}
	return err
}

// errLead, sent to a waiting writer, makes it the leader of the next
// batch (its own among them).
var errLead = errors.New("storage: lead the next group commit")

// lead commits one batch, every writer pending, and then hands the lead
// to the first writer that queued meanwhile, or clears running under the
// same lock that found the queue empty. A writer leads only the batch it
// is in: were the leader to go on committing for later writers, as long
// as the load lasted, its own answer would wait for all of their commits
// (the worst latencies under steady load). commit does not panic, but if
// it ever did (or a writer called runtime.Goexit), running is reset and
// every writer of the batch and of the queue gets an error rather than
// waiting for a leader that is gone.
func (g *groupCommit) lead() {
	var batch []*groupReq
	finished := false
	defer func() {
		if finished {
			return
		}
		p := recover()
		g.mu.Lock()
		g.running = false
		left := g.pending
		g.pending = nil
		g.mu.Unlock()
		why := fmt.Sprint(p)
		if p == nil {
			why = "a writer exited its goroutine"
		}
		err := fmt.Errorf("storage: write failed: group commit stopped: %s", why)
		for _, r := range append(batch, left...) {
			select {
			case r.done <- err:
			default: // already answered
			}
		}
		if p != nil {
			panic(p)
		}
	}()
	g.mu.Lock()
	batch = g.pending
	g.pending = nil
	g.mu.Unlock()
	if len(batch) > 0 {
		g.commit(batch)
	}
	g.mu.Lock()
	var next *groupReq
	if len(g.pending) > 0 {
		next = g.pending[0]
	} else {
		g.running = false
	}
	finished = true
	g.mu.Unlock()
	if next != nil {
		next.done <- errLead
	}
}

func (g *groupCommit) commit(batch []*groupReq) {
	var failed *groupReq
	err := g.update(func(tx *bolt.Tx) error {
		for _, r := range batch {
			failed = r
			if err := r.fn(tx); err != nil {
				return err
			}
		}
		failed = nil // a panic from here on is bbolt's commit, no writer's
		return nil
	})
	if err == nil {
		for _, r := range batch {
			r.done <- nil
		}
		return
	}
	if failed == nil || len(batch) == 1 {
		// The commit itself failed (disk, damage), or the only writer failed.
		for _, r := range batch {
			r.done <- err
		}
		return
	}
	var wp *writePanic
	for _, r := range batch {
		if r == failed && errors.As(err, &wp) {
			r.done <- err // it would only panic again
			continue
		}
		r.done <- g.update(r.fn)
	}
}

// update is db.Update — every write goes through it, grouped or not — that
// returns a panic (bbolt's on a damaged page, or a writer's) as a
// *writePanic, and a fault on a mapped page that is not in the file as one
// too, instead of crashing or unwinding the group leader. bbolt's Update
// rolls the transaction back as the panic passes. Damage it meets is
// remembered for Damaged (and so /health).
func (g *groupCommit) update(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = g.noteDamage(newWritePanic(g.db.Path(), p))
		}
	}()
	return g.db.Update(fn)
}

// noteDamage remembers the first error that says the file is damaged.
func (g *groupCommit) noteDamage(err error) error {
	if errors.Is(err, ErrDamaged) {
		g.damaged.CompareAndSwap(nil, &err)
	}
	return err
}

// writePanic is a write transaction that panicked. If the panic came from
// bbolt itself (an assertion on a damaged page, a fault) it wraps
// ErrDamaged; otherwise it is a bug in the writer and names where.
type writePanic struct {
	path  string
	value any
	where string // function of the panic, "go.etcd.io/bbolt/…" for bbolt
	bbolt bool
}

func newWritePanic(path string, p any) *writePanic {
	w := &writePanic{path: path, value: p}
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	for {
		f, more := frames.Next()
		// The first frame below the panic that is not the runtime's
		// (gopanic, sigpanic, …) is the code that panicked.
		if fn := f.Function; fn != "" && !strings.HasPrefix(fn, "runtime.") && !strings.Contains(fn, "storage.newWritePanic") && !strings.Contains(fn, "(*groupCommit).update.func") {
			w.where = fmt.Sprintf("%s (%s:%d)", fn, f.File, f.Line)
			w.bbolt = strings.HasPrefix(fn, "go.etcd.io/bbolt")
			break
		}
		if !more {
			break
		}
	}
	return w
}

func (w *writePanic) Error() string {
	msg, _, _ := strings.Cut(fmt.Sprint(w.value), "\n")
	if w.bbolt {
		return fmt.Sprintf("storage: write to %s failed: the database is damaged (bbolt: %s); %s", w.path, msg, restore)
	}
	return fmt.Sprintf("storage: write to %s failed: panic in %s: %s", w.path, w.where, msg)
}

func (w *writePanic) Unwrap() error {
	if w.bbolt {
		return ErrDamaged
	}
	return nil
}

// view is db.View with update's protection: a read over a damaged page
// returns an error (wrapping ErrDamaged) instead of crashing the process
// from whichever goroutine happened to read.
func (d *DB) view(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = d.group.noteDamage(newWritePanic(d.db.Path(), p))
		}
	}()
	return d.db.View(fn)
}

// Damaged returns the first error that showed the database file damaged
// since it was opened, or nil. Once set, the CA cannot be trusted to
// record what it does: /health reports it unhealthy.
func (d *DB) Damaged() error {
	if e := d.group.damaged.Load(); e != nil {
		return *e
	}
	return nil
}
