package acme

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/anchorage-pki/anchorage/storage"
)

// ipLimiter is a token bucket per client address, in memory: it bounds how
// fast one client can make the CA store accounts or orders before it has
// proven anything. A restart refills every bucket, which is fine for a
// bound on growth (the per-account caps are in storage and survive). IPv6
// clients are counted per /64, which one host usually holds whole.
type ipLimiter struct {
	mu      sync.Mutex
	perSec  float64 // refill rate
	burst   float64
	buckets map[netip.Prefix]*tokenBucket
	now     func() time.Time
}

type tokenBucket struct {
	tokens float64
	at     time.Time
}

// maxTracked bounds the limiter's memory: past it, buckets that have
// refilled completely (clients quiet for a while) are forgotten, and if
// that is not enough (many addresses at once), arbitrary ones: a client
// forgotten early gets a full bucket, which costs strictness, not memory.
const maxTracked = 10_000

func newIPLimiter(perMinute int, now func() time.Time) *ipLimiter {
	return &ipLimiter{perSec: float64(perMinute) / 60, burst: float64(perMinute),
		buckets: map[netip.Prefix]*tokenBucket{}, now: now}
}

// allow takes a token for the client at remoteAddr, or says how long until
// one is there.
func (l *ipLimiter) allow(remoteAddr string) (bool, time.Duration) {
	key, ok := clientKey(remoteAddr)
	if !ok {
		return true, 0 // not an IP (a test's pipe, a unix socket): nothing to key on
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxTracked {
			l.sweep(now)
		}
		b = &tokenBucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	return b.take(now, l.perSec, l.burst)
}

// take refills b to now and takes a token, or says how long until one is
// there.
func (b *tokenBucket) take(now time.Time, perSec, burst float64) (bool, time.Duration) {
	b.tokens = math.Min(burst, b.tokens+now.Sub(b.at).Seconds()*perSec)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / perSec * float64(time.Second))
}

// globalLimiter is one token bucket for every client together: the
// per-address buckets bound one client, this bounds many (a range of
// addresses, a botnet) so the state they can make the CA store grows at a
// known rate at most. Its cost is that such a flood also refuses
// legitimate newcomers until it stops; existing accounts are unaffected.
type globalLimiter struct {
	mu     sync.Mutex
	perSec float64
	burst  float64
	b      tokenBucket
	now    func() time.Time
}

func newGlobalLimiter(perMinute int, now func() time.Time) *globalLimiter {
	return &globalLimiter{perSec: float64(perMinute) / 60, burst: float64(perMinute),
		b: tokenBucket{tokens: float64(perMinute), at: now()}, now: now}
}

// allow takes a token, or says how long until one is there.
func (l *globalLimiter) allow() (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.take(l.now(), l.perSec, l.burst)
}

func (l *ipLimiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*l.perSec >= l.burst {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < maxTracked*9/10 {
			break
		}
		delete(l.buckets, k)
	}
}

func clientKey(remoteAddr string) (netip.Prefix, bool) {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}, false
	}
	ip = ip.Unmap().WithZone("")
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p, true
}

// rateLimited is the refusal of a bound that waiting lifts (RFC 8555
// §6.7); Retry-After says how long.
func rateLimited(w http.ResponseWriter, wait time.Duration, format string, args ...any) *Problem {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return problemf(ErrRateLimited, http.StatusTooManyRequests, "%s; retry in %ds", fmt.Sprintf(format, args...), secs)
}

// limitProblem maps a storage cap to its refusal.
func (s *Server) limitProblem(w http.ResponseWriter, err error) *Problem {
	var le *storage.ACMELimitError
	if !errors.As(err, &le) {
		return nil
	}
	// RetryAt is when the oldest unfinished order expires, up to a day
	// away; most free their share much sooner by finishing, and clients
	// such as x/crypto/acme sleep for the whole Retry-After. So ask again
	// in a minute at most: a refusal costs one index scan.
	return rateLimited(w, min(le.RetryAt.Sub(s.now()), time.Minute),
		"this account has %d unfinished %s, the limit: finish them, deactivate their authorizations, or wait until they expire", le.Limit, le.What)
}
