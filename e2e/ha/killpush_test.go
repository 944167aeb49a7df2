package ha_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/storage"
)

// The replica holding the push lease is killed with SIGKILL while its
// UpdateCrl is at the anchor (held there by the endpoint's hook, and
// dropped unserved once its caller is gone, as a request lost on the
// way). Another replica takes the lease and pushes a CRL carrying that
// revocation and one made after the kill within 15 s; the anchor saw one
// ImportCrl in all and only increasing CRL numbers.
func TestKillPushHolderMidPush(t *testing.T) {
	w := newWorld(t, false)
	ld := startLoad(t, w, newLedger(), 0, false) // the clients' keys, no workers
	victim, lease := w.holder(t, storage.LeasePush)
	var other *replica
	for _, r := range w.reps {
		if r != victim {
			other = r
			break
		}
	}
	a := ld.enrollOne(t, other, "midpush-a.example.com")

	inflight := make(chan struct{})
	var once sync.Once
	w.aws.HoldCRLWrites(func(r *http.Request) bool {
		if r.Method != http.MethodPatch {
			return true
		}
		held := false
		once.Do(func() { held = true })
		if !held {
			return true
		}
		close(inflight)
		select {
		case <-r.Context().Done(): // the caller died
		case <-time.After(wait):
		}
		return r.Context().Err() == nil
	})
	t.Cleanup(func() { w.aws.HoldCRLWrites(nil) })
	ld.revokeOne(t, other, a)
	select {
	case <-inflight:
	case <-time.After(15 * time.Second):
		t.Fatal("the push holder sent no UpdateCrl within 15 s of the revocation")
	}
	if now, _ := w.holder(t, storage.LeasePush); now != victim {
		t.Fatalf("the push lease moved to replica %d before the kill", now.i)
	}
	killed := time.Now()
	victim.kill(t)
	b := ld.enrollOne(t, other, "midpush-b.example.com")
	ld.revokeOne(t, other, b)
	at := w.anchorHas(t, 15*time.Second, a.serial, b.serial)
	next, nl := w.holder(t, storage.LeasePush)
	if next == victim || nl.Holder == lease.Holder {
		t.Fatalf("push lease still names the killed replica: %+v", nl)
	}
	t.Logf("replica %d (push since %s) killed mid-UpdateCrl; replica %d took the lease and the anchor held both revocations %v after the kill",
		victim.i, lease.Since.Format(time.TimeOnly), next.i, at.Sub(killed).Round(time.Millisecond))
	w.checkAnchor(t)
	// The killed replica comes back as a standby and serves the CRL.
	victim.start(t)
	w.everyCRLHas(t, wait, []string{a.serial, b.serial})
}
