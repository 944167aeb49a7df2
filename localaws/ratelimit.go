package localaws

import (
	"sync"
	"time"
)

// API groups that share one quota (§5.6: "each group combined").
const (
	groupCRL           = "crl"
	groupTrustAnchor   = "trust-anchor"
	groupProfile       = "profile"
	groupSubject       = "subject"
	groupCreateSession = "create-session"
)

// bucket is a token bucket: rate tokens per second, at most burst saved up.
// A nil bucket never throttles.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64) *bucket {
	if rate <= 0 {
		return nil
	}
	// The burst equals one second's worth (at least one request), so "1/s"
	// means a second call within the same second is refused, as AWS does.
	burst := rate
	if burst < 1 {
		burst = 1
	}
	return &bucket{rate: rate, burst: burst, tokens: burst}
}

// allow takes one token if there is one. now is real time, not the
// server's injectable clock (see Config.Now).
func (b *bucket) allow(now time.Time) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens += now.Sub(b.last).Seconds() * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// newBuckets builds one bucket per group from the configured limits.
func newBuckets(l RateLimits) map[string]*bucket {
	pick := func(v, def float64) float64 {
		switch {
		case l.Disabled || v < 0:
			return 0
		case v == 0:
			return def
		default:
			return v
		}
	}
	return map[string]*bucket{
		groupCRL:           newBucket(pick(l.CRL, 1)),
		groupTrustAnchor:   newBucket(pick(l.TrustAnchor, 1)),
		groupProfile:       newBucket(pick(l.Profile, 1)),
		groupSubject:       newBucket(pick(l.Subject, 1)),
		groupCreateSession: newBucket(pick(l.CreateSession, 10)),
	}
}
