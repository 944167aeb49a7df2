package acme

import (
	"fmt"
	"testing"
	"time"
)

func TestGlobalLimiter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newGlobalLimiter(3, func() time.Time { return now })
	for i := range 3 {
		if ok, _ := l.allow(); !ok {
			t.Fatalf("request %d refused within the burst", i)
		}
	}
	ok, wait := l.allow()
	if ok || wait <= 0 || wait > 20*time.Second {
		t.Fatalf("past the burst: allowed=%v wait %v", ok, wait)
	}
	now = now.Add(20 * time.Second) // refilled at 3 per minute
	if ok, _ := l.allow(); !ok {
		t.Error("refused after the refill")
	}
	if ok, _ := l.allow(); ok {
		t.Error("allowed a second request after one refill")
	}
}

func TestIPLimiter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newIPLimiter(2, func() time.Time { return now })
	for _, tt := range []struct {
		addr    string
		advance time.Duration
		ok      bool
	}{
		{"192.0.2.1:1000", 0, true},
		{"192.0.2.1:1001", 0, true},  // the port does not matter
		{"192.0.2.1:1002", 0, false}, // burst of 2 used up
		{"192.0.2.2:1000", 0, true},  // another address has its own
		{"[2001:db8::1]:1", 0, true},
		{"[2001:db8::2]:1", 0, true},               // same /64
		{"[2001:db8::3]:1", 0, false},              // counted together
		{"[2001:db8:0:1::1]:1", 0, true},           // another /64
		{"[::ffff:192.0.2.1]:1", 0, false},         // IPv4-mapped is the IPv4 address
		{"192.0.2.1:1003", 30 * time.Second, true}, // refilled at 2 per minute
		{"192.0.2.1:1004", 0, false},
		{"pipe", 0, true}, // no address to key on
	} {
		now = now.Add(tt.advance)
		ok, wait := l.allow(tt.addr)
		if ok != tt.ok {
			t.Errorf("%s: allowed=%v, want %v", tt.addr, ok, tt.ok)
		}
		if !ok && (wait <= 0 || wait > 30*time.Second) {
			t.Errorf("%s: wait %v", tt.addr, wait)
		}
	}
	// Memory stays bounded under many addresses.
	for i := range 3 * maxTracked {
		l.allow(fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255))
	}
	if n := len(l.buckets); n > maxTracked {
		t.Errorf("%d buckets tracked, want at most %d", n, maxTracked)
	}
}
