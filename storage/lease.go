package storage

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"
)

// Lease names the jobs exactly one CA process runs at a time.
const (
	LeaseCRL  = "crl"  // builds and signs CRLs (crl.Updater.Run)
	LeasePush = "push" // pushes CRLs to trust anchors (anchorsync.Pusher.Run)
)

// LeaseInfo says who holds a lease and since when.
type LeaseInfo struct {
	Name   string    `json:"name"`
	Holder string    `json:"holder"`
	Since  time.Time `json:"since"`
}

type leases struct {
	mu   sync.Mutex
	held map[string]LeaseInfo
}

// Hold runs fn while this process holds the named lease, until ctx ends.
// A bbolt file is open in one process only (its file lock), so that
// process holds every lease from the moment it asks for as long as it
// runs; a shared store (PostgreSQL) hands each lease to one replica at a
// time and calls fn again on whichever replica takes it over.
func (d *DB) Hold(ctx context.Context, name string, fn func(ctx context.Context)) {
	host, _ := os.Hostname()
	d.leases.mu.Lock()
	if d.leases.held == nil {
		d.leases.held = map[string]LeaseInfo{}
	}
	d.leases.held[name] = LeaseInfo{Name: name, Holder: fmt.Sprintf("%s pid %d", host, os.Getpid()), Since: time.Now().UTC()}
	d.leases.mu.Unlock()
	defer func() {
		d.leases.mu.Lock()
		delete(d.leases.held, name)
		d.leases.mu.Unlock()
	}()
	fn(ctx)
}

// Leases lists the leases held, by name.
func (d *DB) Leases(ctx context.Context) ([]LeaseInfo, error) {
	d.leases.mu.Lock()
	defer d.leases.mu.Unlock()
	out := make([]LeaseInfo, 0, len(d.leases.held))
	for _, l := range d.leases.held {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
