package acme

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// NonceStore is what the anti-replay nonces need from storage: the HMAC
// key every replica shares and the single-use record (storage/nonce.go).
type NonceStore interface {
	// NonceKey returns the shared HMAC key, creating it on first use.
	NonceKey(ctx context.Context) ([]byte, error)
	// UseNonce records id as used until expires; fresh is false if it
	// was used before, on any replica.
	UseNonce(ctx context.Context, id string, expires time.Time) (fresh bool, err error)
	PruneNonces(ctx context.Context, now time.Time) (int, error)
}

// nonces mints and checks the anti-replay nonces of RFC 8555 §6.5 so that
// a nonce from any replica of the CA is good at every replica, once.
//
// A nonce is base64url(issued ‖ random ‖ mac): issued is the minting time
// (unix milliseconds, 8 bytes big-endian), random 16 bytes, mac the first
// 16 bytes of HMAC-SHA256(key, issued ‖ random) under the key shared
// through storage. Minting is pure computation, so newNonce and the
// Replay-Nonce of every response write nothing, and an unauthenticated
// client cannot grow storage by asking for nonces. Checking the MAC and the
// age also writes nothing; only a nonce that passes both, in a request
// whose JWS parsed and verified, is consumed: its id (the random part) is
// inserted with an expiry, and a second insert on any replica fails. Ids
// are pruned once expired, when the nonce is refused on its age alone, so
// storage holds at most (consuming requests per second) × (lifetime +
// skew + prune interval).
type nonces struct {
	key   []byte
	store NonceStore
	now   func() time.Time
}

const (
	// nonceLifetime is how long a nonce may wait between minting and use.
	// Clients use one within seconds (lego and certbot take the
	// Replay-Nonce of the previous response), but a client may sit on one
	// while it waits for DNS propagation or a hook, which lego and certbot
	// let run for minutes; on badNonce they retry with the fresh nonce the
	// refusal carries, so a longer wait costs a round trip, not an
	// issuance. Ten minutes covers those waits; what storage keeps grows
	// linearly with it and stays small (at 100 consuming requests/s, some
	// 70,000 ids of ~60 bytes).
	nonceLifetime = 10 * time.Minute
	// nonceSkew is the clock difference between replicas that is
	// tolerated: a nonce minted up to this far in the verifier's future is
	// accepted, and used ids are kept this much past the lifetime, so a
	// replica whose clock lags the one pruning cannot accept an id already
	// pruned. NTP keeps replicas well within it.
	nonceSkew = time.Minute
	// noncePruneEvery is how often each replica prunes expired ids.
	noncePruneEvery = time.Minute

	nonceRandom = 16
	nonceMAC    = 16
	nonceLen    = 8 + nonceRandom + nonceMAC
)

// newNonceMinter reads (or creates) the shared key.
func newNonceMinter(ctx context.Context, st NonceStore, now func() time.Time) (*nonces, error) {
	key, err := st.NonceKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("acme: nonce key: %w", err)
	}
	return &nonces{key: key, store: st, now: now}, nil
}

func (n *nonces) mac(b []byte) []byte {
	h := hmac.New(sha256.New, n.key)
	h.Write(b)
	return h.Sum(nil)[:nonceMAC]
}

func (n *nonces) issue() string {
	b := make([]byte, 8, nonceLen)
	binary.BigEndian.PutUint64(b, uint64(n.now().UnixMilli()))
	b = b[:8+nonceRandom]
	rand.Read(b[8:])
	return base64.RawURLEncoding.EncodeToString(append(b, n.mac(b)...))
}

// check verifies v's MAC and age, without storage. It returns the id under
// which v is consumed and until when that id must be remembered, or the
// badNonce problem.
func (n *nonces) check(v string) (id string, keep time.Time, pr *Problem) {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(b) != nonceLen || !hmac.Equal(b[8+nonceRandom:], n.mac(b[:8+nonceRandom])) {
		return "", time.Time{}, badNonce("nonce %q was not issued by this CA; get a fresh one from newNonce", v)
	}
	issued := time.UnixMilli(int64(binary.BigEndian.Uint64(b[:8])))
	age := n.now().Sub(issued)
	switch {
	case age > nonceLifetime:
		return "", time.Time{}, badNonce("nonce expired: issued %v ago, nonces last %v; get a fresh one from newNonce", age.Round(time.Second), nonceLifetime)
	case age < -nonceSkew:
		return "", time.Time{}, badNonce("nonce issued %v in this replica's future; get a fresh one from newNonce", (-age).Round(time.Second))
	}
	return base64.RawURLEncoding.EncodeToString(b[8 : 8+nonceRandom]), issued.Add(nonceLifetime + nonceSkew), nil
}

// use consumes a nonce that passed check.
func (n *nonces) use(ctx context.Context, id string, keep time.Time) *Problem {
	fresh, err := n.store.UseNonce(ctx, id, keep)
	if err != nil {
		return internal(fmt.Errorf("consuming nonce: %w", err))
	}
	if !fresh {
		return badNonce("nonce has been used already; get a fresh one from newNonce")
	}
	return nil
}

// prune forgets expired ids every interval until ctx ends. Every replica
// runs it; deleting what another replica deleted is a no-op.
func (n *nonces) prune(ctx context.Context, log *slog.Logger, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if k, err := n.store.PruneNonces(ctx, n.now()); err != nil && ctx.Err() == nil {
				log.Error("pruning used ACME nonces", "err", err)
			} else if k > 0 {
				log.Debug("pruned used ACME nonces", "count", k)
			}
		}
	}
}

func badNonce(format string, args ...any) *Problem {
	return problemf(ErrBadNonce, http.StatusBadRequest, format, args...)
}
