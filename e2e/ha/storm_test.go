package ha_test

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

// Random replicas are killed with SIGKILL, and started again, under an
// enroll, renew and revoke load that talks to random running replicas.
// Nothing a client was given is lost: every certificate received is
// stored, every revocation acknowledged is on the next CRL of every
// replica and at the anchor (one ImportCrl, increasing numbers).
// HA_STORM_KILLS sets the number of kills (default 6).
func TestKillStorm(t *testing.T) {
	kills := 6
	if v, err := strconv.Atoi(os.Getenv("HA_STORM_KILLS")); err == nil && v > 0 {
		kills = v
	}
	w := newWorld(t, false)
	l := newLedger()
	ld := startLoad(t, w, l, 3, false)
	for k := range kills {
		time.Sleep(time.Duration(800+rand.N(800)) * time.Millisecond)
		r := w.reps[rand.N(len(w.reps))]
		t.Logf("kill %d: replica %d (pid %d)", k, r.i, r.pid())
		r.kill(t)
		time.Sleep(time.Duration(200+rand.N(600)) * time.Millisecond)
		r.start(t)
	}
	time.Sleep(time.Second)
	ld.halt()
	w.healthy(t, wait)
	t.Log(l.summary())
	if l.get("enroll 201") == 0 || l.get("renew 201") == 0 || l.get("revoke 200") == 0 {
		t.Errorf("the load did not get every kind of request through: %s", l.summary())
	}
	ld.verify(t)
}
