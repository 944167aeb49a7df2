package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// newOrder stores an order of account acct with n authorizations.
func newOrder(t *testing.T, d *DB, acct, id string, n int, expires time.Time) *ACMEOrder {
	t.Helper()
	o := &ACMEOrder{ID: id, AccountID: acct, Status: ACMEPending, Expires: expires}
	var azs []*ACMEAuthz
	for i := range n {
		az := &ACMEAuthz{ID: fmt.Sprintf("%s-az%d", id, i), AccountID: acct, OrderID: id, Status: ACMEPending, Expires: expires,
			Identifier: ACMEIdentifier{"dns", fmt.Sprintf("h%d.internal", i)},
			Challenges: []ACMEChallenge{{Type: "http-01", Token: "tok", Status: ACMEPending}}}
		azs = append(azs, az)
		o.AuthzIDs = append(o.AuthzIDs, az.ID)
	}
	if err := d.CreateACMEOrder(context.Background(), o, azs, ACMEOrderLimits{}); err != nil {
		t.Fatal(err)
	}
	return o
}

// makeReady validates every authorization of order id.
func makeReady(t *testing.T, d *DB, o *ACMEOrder) {
	t.Helper()
	for _, az := range o.AuthzIDs {
		err := d.UpdateACMEAuthz(context.Background(), az, func(a *ACMEAuthz, o *ACMEOrder, all []*ACMEAuthz) error {
			a.Status = ACMEValid
			for _, x := range all {
				if x.Status != ACMEValid {
					return nil
				}
			}
			o.Status = ACMEReady
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func acmeCert(serial, order string, notAfter time.Time) *Cert {
	c := cert(serial, "web", notAfter)
	c.Method, c.Order = "acme", order
	return c
}

// The index of unfinished orders that the caps count follows orders out
// as they are finalized and pruned (the rules themselves are in the
// conformance suite).
func TestACMEOpenIndexFollowsPrune(t *testing.T) {
	ctx := context.Background()
	d, _ := openTemp(t)
	now := t0.Add(10 * time.Hour)
	newOrder(t, d, "acct", "live", 2, now.Add(time.Hour))
	newOrder(t, d, "acct", "expired", 2, now.Add(-time.Hour))
	o := newOrder(t, d, "acct", "done", 1, now.Add(time.Hour))
	makeReady(t, d, o)
	if _, err := d.ClaimACMEOrder(ctx, "done", now); err != nil {
		t.Fatal(err)
	}
	if orders, _, err := d.PruneACME(ctx, now); err != nil || orders != 1 {
		t.Fatalf("pruned %d, %v", orders, err)
	}
	var open int
	d.db.View(func(tx *bolt.Tx) error { open = tx.Bucket(bucketACMEOpen).Stats().KeyN; return nil })
	if open != 1 {
		t.Errorf("%d unfinished orders indexed, want 1 (live)", open)
	}
}

func TestImportLegacyACME(t *testing.T) {
	ctx := context.Background()
	legacy := filepath.Join(t.TempDir(), "acme.db")
	old, err := bolt.Open(legacy, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	old.Update(func(tx *bolt.Tx) error {
		for b, kv := range map[string][2]string{
			"accounts": {"A", `{"id":"A","provisioner":"p","key":{"kty":"EC"},"thumbprint":"tp","status":"valid","eabKeyId":"k"}`},
			"keys":     {"p\x00tp", "A"},
			"eab":      {"p\x00k", "A"},
			"orders":   {"O", `{"id":"O"}`},
		} {
			bk, _ := tx.CreateBucketIfNotExists([]byte(b))
			bk.Put([]byte(kv[0]), []byte(kv[1]))
		}
		return nil
	})
	old.Close()
	d, _ := openTemp(t)
	if n, err := d.ImportLegacyACME(ctx, legacy); err != nil || n != 1 {
		t.Fatalf("import: %d %v", n, err)
	}
	if a, err := d.ACMEAccountByKey(ctx, "p", "tp"); err != nil || a.ID != "A" || a.EABKeyID != "k" {
		t.Errorf("imported account: %+v %v", a, err)
	}
	if _, err := d.CreateACMEAccount(ctx, &ACMEAccount{ID: "B", Provisioner: "p", Thumbprint: "tp2", EABKeyID: "k"}); !errors.Is(err, ErrACMEEABBound) {
		t.Errorf("EAB binding not imported: %v", err)
	}
	if _, err := d.ACMEOrder(ctx, "O"); !errors.Is(err, ErrNotFound) {
		t.Errorf("orders are not imported: %v", err)
	}
	if _, err := os.Stat(legacy); !os.IsNotExist(err) {
		t.Errorf("acme.db still there after import: %v", err)
	}
	if _, err := os.Stat(legacy + ".imported"); err != nil {
		t.Errorf("acme.db.imported: %v", err)
	}
}
