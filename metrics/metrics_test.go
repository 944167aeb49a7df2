package metrics

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestObserve(t *testing.T) {
	a, b := NewCA(), NewCA() // two servers in one process: separate registries
	tests := []struct {
		op, method, result string
		family             string
	}{
		{"issue", "token", "ok", "anchorage_issuance_requests_total"},
		{"issue", "token", "token_replayed", "anchorage_issuance_requests_total"},
		{"renew", "mtls", "superseded", "anchorage_renewal_requests_total"},
		{"revoke", "admin", "ok", "anchorage_revocation_requests_total"},
	}
	for _, tt := range tests {
		a.Observe(tt.op, tt.method, tt.result, 3*time.Millisecond)
		if got := testutil.ToFloat64(a.total[tt.op].WithLabelValues(tt.method, tt.result)); got != 1 {
			t.Errorf("%s{%s,%s} = %v, want 1", tt.family, tt.method, tt.result, got)
		}
	}
	a.Observe("bogus", "x", "ok", time.Second) // ignored, not a panic
	a.ObservePush("arn:a", 2*time.Second, nil)
	a.ObservePush("arn:a", time.Second, errors.New("throttled"))
	if n := testutil.CollectAndCount(a.push); n != 2 {
		t.Errorf("push histogram has %d series, want 2 (ok, error)", n)
	}
	if n := testutil.CollectAndCount(b.total["issue"]); n != 0 {
		t.Errorf("the second registry saw %d issuance series", n)
	}
	fams, err := a.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range fams {
		names = append(names, f.GetName())
	}
	for _, want := range []string{"go_goroutines", "process_cpu_seconds_total", "anchorage_issuance_duration_seconds", "anchorage_trust_anchor_push_duration_seconds"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("registry lacks %s: %v", want, names)
		}
	}
}
