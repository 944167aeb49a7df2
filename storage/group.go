package storage

import (
	"sync"

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
}

type groupReq struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// do runs fn in a shared write transaction and returns when that
// transaction is durable (or fn's own error). fn may run twice: if any
// writer of a group fails, the group is rolled back and each writer runs
// again in a transaction of its own, so one failure never sinks others.
func (g *groupCommit) do(fn func(*bolt.Tx) error) error {
	r := &groupReq{fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, r)
	if g.running {
		g.mu.Unlock()
		return <-r.done
	}
	g.running = true
	for len(g.pending) > 0 {
		batch := g.pending
		g.pending = nil
		g.mu.Unlock()
		g.commit(batch)
		g.mu.Lock()
	}
	g.running = false
	g.mu.Unlock()
	return <-r.done
}

func (g *groupCommit) commit(batch []*groupReq) {
	var failed *groupReq
	err := g.db.Update(func(tx *bolt.Tx) error {
		for _, r := range batch {
			if err := r.fn(tx); err != nil {
				failed = r
				return err
			}
		}
		return nil
	})
	if err == nil {
		for _, r := range batch {
			r.done <- nil
		}
		return
	}
	if failed == nil || len(batch) == 1 {
		// The commit itself failed (disk), or the only writer failed.
		for _, r := range batch {
			r.done <- err
		}
		return
	}
	for _, r := range batch {
		r.done <- g.db.Update(r.fn)
	}
}
