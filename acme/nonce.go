package acme

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
)

// nonces hands out single-use anti-replay nonces (RFC 8555 §6.5). They
// live in memory in two generations: when the current one fills up it
// becomes the previous one and the oldest generation is dropped, so memory
// stays bounded and a nonce stays good for at least genSize issues after it.
// A restart forgets them all; clients retry on badNonce.
type nonces struct {
	mu        sync.Mutex
	cur, prev map[string]struct{}
}

const genSize = 50_000

func newNonces() *nonces { return &nonces{cur: map[string]struct{}{}} }

func (n *nonces) issue() string {
	b := make([]byte, 16)
	rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.cur) >= genSize {
		n.prev, n.cur = n.cur, make(map[string]struct{}, genSize)
	}
	n.cur[v] = struct{}{}
	return v
}

// use consumes v and reports whether it was outstanding.
func (n *nonces) use(v string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.cur[v]; ok {
		delete(n.cur, v)
		return true
	}
	if _, ok := n.prev[v]; ok {
		delete(n.prev, v)
		return true
	}
	return false
}
