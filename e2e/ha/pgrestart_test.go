package ha_test

import (
	"testing"
	"time"
)

// PostgreSQL is stopped under load and started again. While it is down,
// requests are answered 503 with an RFC 7807 "unavailable" problem (never
// a 500, never a hang past the request deadline); after it is back the
// replicas reconnect by themselves (both leases held again, /health
// healthy), the load succeeds again, and nothing is half-written: every
// certificate received is stored, every revocation acknowledged is on
// every replica's CRL and at the anchor.
func TestPostgresRestartUnderLoad(t *testing.T) {
	w := newWorld(t, true)
	l := newLedger()
	ld := startLoad(t, w, l, 3, true)
	time.Sleep(1500 * time.Millisecond)

	w.pg.Stop(t)
	down := time.Now()
	deadline := down.Add(wait)
	for l.get("enroll 503")+l.get("renew 503")+l.get("revoke 503") < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("no 503 answers within %v of the outage: %s", wait, l.summary())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // the outage goes on under load
	during := l.summary()
	w.pg.Start(t)
	up := time.Now()
	t.Logf("PostgreSQL down %v: %s", up.Sub(down).Round(time.Millisecond), during)

	w.healthy(t, wait)
	t.Logf("every replica healthy with both leases held %v after PostgreSQL came back", time.Since(up).Round(time.Millisecond))
	before := l.get("enroll 201") + l.get("renew 201") + l.get("revoke 200")
	deadline = time.Now().Add(wait)
	for l.get("enroll 201")+l.get("renew 201")+l.get("revoke 200") < before+20 {
		if time.Now().After(deadline) {
			t.Fatalf("the load does not succeed again after the restart: %s", l.summary())
		}
		time.Sleep(50 * time.Millisecond)
	}
	ld.halt()
	t.Log(l.summary())
	ld.verify(t)
}
