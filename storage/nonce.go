package storage

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"time"
)

// ACME nonces (RFC 8555 §6.5) are minted by package acme as HMAC tokens
// that carry their own issue time, so minting one (newNonce, and every
// response's Replay-Nonce) writes nothing. Storage keeps the two things
// every process answering for the CA must share: the HMAC key (NonceKey)
// and the ids of nonces used and not yet expired (UseNonce), so that a
// nonce is good once across all of them. A used id is kept until the
// expiry the caller gives, after which the caller refuses the nonce on its
// age alone and PruneNonces forgets it: what is kept is bounded by the
// request rate times the nonce lifetime.
//
// The bbolt backend keeps both in memory, deliberately not in the file.
// The file is locked by the one process that serves it (bolt.Open's flock),
// so that process is the only one that ever sees its nonces; its key is
// random per Open and never leaves memory, so every nonce it minted fails
// the MAC after a restart, and a used-set that died with the key cannot be
// replayed against. Durable ids would make every ACME POST one more commit,
// an fsync, for no property a client can observe: with ids in a bucket
// (group commit) BenchmarkIssueHTTP01 ran at 0.65× the issuances/s of the
// in-memory set, which matches the per-process nonces before it (1.0×).
// PostgreSQL, shared by replicas, keeps both in the database
// (storage/postgres).

// NonceKeySize is the size of the ACME nonce HMAC key.
const NonceKeySize = 32

// nonceMemory is the bbolt backend's nonce state.
type nonceMemory struct {
	once sync.Once
	key  []byte
	err  error

	mu   sync.Mutex
	used map[string]time.Time // id -> expires
}

// NonceKey returns the key ACME nonces are authenticated with: random,
// made at the first call after Open, the same until Close.
func (d *DB) NonceKey(ctx context.Context) ([]byte, error) {
	n := &d.nonces
	n.once.Do(func() {
		k := make([]byte, NonceKeySize)
		if _, err := rand.Read(k); err != nil {
			n.err = fmt.Errorf("storage: nonce key: %w", err)
			return
		}
		n.key = k
	})
	return n.key, n.err
}

// UseNonce records nonce id as used until expires and reports whether it
// was fresh (not used before); concurrent uses of one id see true once.
func (d *DB) UseNonce(ctx context.Context, id string, expires time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	n := &d.nonces
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.used[id]; ok {
		return false, nil
	}
	if n.used == nil {
		n.used = map[string]time.Time{}
	}
	n.used[id] = expires
	return true, nil
}

// PruneNonces forgets used nonce ids whose expiry is before now and
// returns how many.
func (d *DB) PruneNonces(ctx context.Context, now time.Time) (int, error) {
	n := &d.nonces
	n.mu.Lock()
	defer n.mu.Unlock()
	pruned := 0
	for id, exp := range n.used {
		if exp.Before(now) {
			delete(n.used, id)
			pruned++
		}
	}
	return pruned, nil
}
