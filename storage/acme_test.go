package storage

import (
	"context"
	"encoding/json"
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

// The certificate and its order's final state commit together; issuing for
// an order nobody claimed stores nothing; a revocation rewrites the record
// without tripping over the order.
func TestACMEOrderIssuedWithCertificate(t *testing.T) {
	ctx := context.Background()
	d, path := openTemp(t)
	o := newOrder(t, d, "acct", "o1", 2, t0.Add(time.Hour))

	if err := d.PutCert(ctx, acmeCert("01", "o1", t0.Add(48*time.Hour))); !errors.Is(err, ErrACMEOrderState) {
		t.Fatalf("cert for a pending order: %v, want ErrACMEOrderState", err)
	}
	if _, err := d.Cert(ctx, "01"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused certificate was stored: %v", err)
	}
	if _, err := d.ClaimACMEOrder(ctx, "o1", t0); !errors.Is(err, ErrACMEOrderState) {
		t.Fatalf("claim of a pending order: %v", err)
	}
	makeReady(t, d, o)
	if _, err := d.ClaimACMEOrder(ctx, "o1", t0.Add(2*time.Hour)); !errors.Is(err, ErrACMEOrderState) {
		t.Fatalf("claim of an expired order: %v", err)
	}
	if _, err := d.ClaimACMEOrder(ctx, "o1", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ClaimACMEOrder(ctx, "o1", t0); !errors.Is(err, ErrACMEOrderState) {
		t.Fatalf("second claim: %v", err)
	}
	if err := d.PutCert(ctx, acmeCert("02", "o1", t0.Add(48*time.Hour))); err != nil {
		t.Fatal(err)
	}
	if err := d.PutCert(ctx, acmeCert("03", "o1", t0.Add(48*time.Hour))); !errors.Is(err, ErrACMEOrderState) {
		t.Errorf("a second certificate for one order: %v", err)
	}
	if err := d.ReleaseACMEOrder(ctx, "o1", ACMEReady, nil); err != nil {
		t.Fatal(err)
	}
	// Close and reopen: the order is valid with the serial, durably.
	d.Close()
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got, err := d.ACMEOrder(ctx, "o1")
	if err != nil || got.Status != ACMEValid || got.CertSerial != "02" || !got.CertNotAfter.Equal(t0.Add(48*time.Hour)) {
		t.Fatalf("order after issue and reopen: %+v %v", got, err)
	}
	// A revocation rewrites the record, also once the order is pruned
	// (certificate and order expired): that is no second issuance.
	if o, _, err := d.PruneACME(ctx, t0.Add(49*time.Hour)); err != nil || o != 1 {
		t.Fatalf("prune: %d %v", o, err)
	}
	if res, err := d.RevokeSerial(ctx, "02", 4, t0.Add(50*time.Hour)); err != nil || len(res.Changed) != 1 {
		t.Errorf("revoking an ACME certificate whose order was pruned: %v", err)
	}
	if c, err := d.Cert(ctx, "02"); err != nil || c.Status != StatusRevoked || c.Order != "o1" {
		t.Errorf("certificate after revocation: %+v %v", c, err)
	}
}

// An order left processing is settled at start by what storage holds.
func TestACMEResolveProcessing(t *testing.T) {
	ctx := context.Background()
	d, _ := openTemp(t)
	for _, id := range []string{"issued", "lost", "expired"} {
		o := newOrder(t, d, "acct", id, 1, t0.Add(time.Hour))
		makeReady(t, d, o)
		if _, err := d.ClaimACMEOrder(ctx, id, t0); err != nil {
			t.Fatal(err)
		}
	}
	// A certificate recorded without its order's update — not possible
	// through PutCert, but the state another writer or an older version
	// could leave behind.
	err := d.db.Update(func(tx *bolt.Tx) error {
		return putJSON(tx, bucketCerts, "0c", acmeCert("0c", "issued", t0.Add(48*time.Hour)))
	})
	if err != nil {
		t.Fatal(err)
	}
	n, err := d.ResolveACMEOrders(ctx, func(o *ACMEOrder, c *Cert) {
		switch {
		case c != nil:
			o.Status, o.CertSerial, o.CertNotAfter = ACMEValid, c.Serial, c.NotAfter
		case o.ID == "expired":
			o.Status = ACMEInvalid
		default:
			o.Status = ACMEReady
		}
	})
	if err != nil || n != 3 {
		t.Fatalf("resolved %d, %v", n, err)
	}
	for id, want := range map[string]string{"issued": ACMEValid, "lost": ACMEReady, "expired": ACMEInvalid} {
		if o, _ := d.ACMEOrder(ctx, id); o.Status != want {
			t.Errorf("order %s: %s, want %s", id, o.Status, want)
		}
	}
	if o, _ := d.ACMEOrder(ctx, "issued"); o.CertSerial != "0c" {
		t.Errorf("resolved order has serial %q", o.CertSerial)
	}
	if n, err := d.ResolveACMEOrders(ctx, func(*ACMEOrder, *Cert) { t.Error("nothing is processing any more") }); n != 0 || err != nil {
		t.Errorf("second resolve: %d %v", n, err)
	}
}

func TestACMEPrune(t *testing.T) {
	ctx := context.Background()
	d, _ := openTemp(t)
	now := t0.Add(10 * time.Hour)
	tests := []struct {
		id     string
		exp    time.Time
		status string
		notAft time.Time // of the certificate, for valid orders
		keep   bool
	}{
		{"pending-live", now.Add(time.Hour), ACMEPending, time.Time{}, true},
		{"pending-expired", now.Add(-time.Hour), ACMEPending, time.Time{}, false},
		{"ready-expired", now.Add(-time.Second), ACMEReady, time.Time{}, false},
		{"invalid-expired", now.Add(-time.Hour), ACMEInvalid, time.Time{}, false},
		{"invalid-live", now.Add(time.Hour), ACMEInvalid, time.Time{}, true},
		{"valid-cert-live", now.Add(-time.Hour), ACMEValid, now.Add(time.Hour), true},
		{"valid-cert-expired", now.Add(-2 * time.Hour), ACMEValid, now.Add(-time.Hour), false},
		{"processing-expired", now.Add(-time.Hour), ACMEProcessing, time.Time{}, true},
	}
	for _, tt := range tests {
		newOrder(t, d, "acct", tt.id, 2, tt.exp)
		err := d.db.Update(func(tx *bolt.Tx) error {
			o, err := getJSON[ACMEOrder](tx, bucketACMEOrders, tt.id)
			if err != nil {
				return err
			}
			o.Status, o.CertNotAfter = tt.status, tt.notAft
			return putOrder(tx, o)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	orders, authzs, err := d.PruneACME(ctx, now)
	if err != nil || orders != 4 || authzs != 8 {
		t.Fatalf("pruned %d orders %d authzs, %v; want 4, 8", orders, authzs, err)
	}
	for _, tt := range tests {
		_, oerr := d.ACMEOrder(ctx, tt.id)
		_, aerr := d.ACMEAuthz(ctx, tt.id+"-az1")
		if kept := oerr == nil; kept != tt.keep || (aerr == nil) != tt.keep {
			t.Errorf("%s: order %v, authz %v; want kept=%v", tt.id, oerr, aerr, tt.keep)
		}
	}
	// The index of unfinished orders forgot the pruned ones too.
	var open int
	d.db.View(func(tx *bolt.Tx) error { open = tx.Bucket(bucketACMEOpen).Stats().KeyN; return nil })
	if open != 1 {
		t.Errorf("%d unfinished orders indexed, want 1 (pending-live)", open)
	}
}

func TestACMEOrderLimits(t *testing.T) {
	ctx := context.Background()
	d, _ := openTemp(t)
	try := func(acct, id string, n int, lim ACMEOrderLimits) error {
		o := &ACMEOrder{ID: id, AccountID: acct, Status: ACMEPending, Expires: t0.Add(time.Hour)}
		var azs []*ACMEAuthz
		for i := range n {
			az := &ACMEAuthz{ID: fmt.Sprintf("%s-%d", id, i), OrderID: id, Status: ACMEPending}
			azs, o.AuthzIDs = append(azs, az), append(o.AuthzIDs, az.ID)
		}
		return d.CreateACMEOrder(ctx, o, azs, lim)
	}
	lim := ACMEOrderLimits{Orders: 3, Authzs: 10, Now: t0}
	for _, tt := range []struct {
		acct, id string
		n        int
		want     string // "" = stored, else the limit hit
	}{
		{"a", "1", 4, ""},
		{"a", "2", 4, ""},
		{"a", "3", 3, "authorizations"}, // 11 > 10
		{"a", "4", 2, ""},               // 10
		{"b", "5", 10, ""},              // another account has its own share
		{"b", "6", 11, "authorizations"},
		{"a", "7", 0, "orders"}, // a fourth order
	} {
		err := try(tt.acct, tt.id, tt.n, lim)
		var le *ACMELimitError
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("order %s: %v", tt.id, err)
		case tt.want != "" && (!errors.As(err, &le) || le.What != tt.want):
			t.Errorf("order %s: %v, want the %s limit", tt.id, err, tt.want)
		case tt.want != "" && le.RetryAt.Before(t0):
			t.Errorf("order %s: retry at %v", tt.id, le.RetryAt)
		}
	}
	if _, err := d.ACMEOrder(ctx, "3"); !errors.Is(err, ErrNotFound) {
		t.Errorf("refused order was stored: %v", err)
	}
	// Finished or expired orders free their share.
	d.ReleaseACMEOrder(ctx, "1", ACMEInvalid, nil) // not processing: no-op
	d.db.Update(func(tx *bolt.Tx) error {
		o, _ := getJSON[ACMEOrder](tx, bucketACMEOrders, "1")
		o.Status = ACMEInvalid
		return putOrder(tx, o)
	})
	if err := try("a", "8", 4, lim); err != nil {
		t.Errorf("after one order became invalid: %v", err)
	}
	if err := try("a", "9", 10, ACMEOrderLimits{Orders: 3, Authzs: 10, Now: t0.Add(time.Hour)}); err != nil {
		t.Errorf("once the others expired: %v", err)
	}
}

// Accounts, their key index and EAB bindings survive a reopen; a key is
// bound once per provisioner; key rollover moves the index.
func TestACMEAccounts(t *testing.T) {
	ctx := context.Background()
	d, path := openTemp(t)
	a := &ACMEAccount{ID: "A", Provisioner: "p", Key: json.RawMessage(`{"kty":"EC"}`), Thumbprint: "tp1", Status: ACMEValid, EABKeyID: "kid"}
	if got, err := d.CreateACMEAccount(ctx, a); err != nil || got.ID != "A" {
		t.Fatalf("create: %v %v", got, err)
	}
	// The same key again (a racing newAccount) finds the first account.
	if got, err := d.CreateACMEAccount(ctx, &ACMEAccount{ID: "B", Provisioner: "p", Thumbprint: "tp1"}); err != nil || got.ID != "A" {
		t.Errorf("same key: %v %v", got, err)
	}
	if _, err := d.CreateACMEAccount(ctx, &ACMEAccount{ID: "C", Provisioner: "p", Thumbprint: "tp2", EABKeyID: "kid"}); !errors.Is(err, ErrACMEEABBound) {
		t.Errorf("EAB key reused: %v", err)
	}
	if got, err := d.CreateACMEAccount(ctx, &ACMEAccount{ID: "D", Provisioner: "q", Thumbprint: "tp1"}); err != nil || got.ID != "D" {
		t.Errorf("same key, other provisioner: %v %v", got, err)
	}
	d.CreateACMEAccount(ctx, &ACMEAccount{ID: "E", Provisioner: "p", Thumbprint: "tp3"})
	var inUse *ACMEKeyInUseError
	if _, err := d.RekeyACMEAccount(ctx, "A", "tp1", "tp3", nil); !errors.As(err, &inUse) || inUse.AccountID != "E" {
		t.Errorf("rekey to a taken key: %v", err)
	}
	if _, err := d.RekeyACMEAccount(ctx, "A", "old", "tp4", nil); !errors.Is(err, ErrACMEStale) {
		t.Errorf("rekey from a stale key: %v", err)
	}
	if _, err := d.RekeyACMEAccount(ctx, "A", "tp1", "tp4", json.RawMessage(`{"kty":"OKP"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.UpdateACMEAccount(ctx, "A", func(a *ACMEAccount) error { a.Contact = []string{"mailto:x@example.org"}; return nil }); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got, err := d.ACMEAccountByKey(ctx, "p", "tp4")
	if err != nil || got.ID != "A" || string(got.Key) != `{"kty":"OKP"}` || len(got.Contact) != 1 {
		t.Errorf("after reopen: %+v %v", got, err)
	}
	if _, err := d.ACMEAccountByKey(ctx, "p", "tp1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("old key after rollover: %v", err)
	}
}

// A store made before ACME moved here has none of its buckets: reads find
// nothing, the first write creates them.
func TestACMEOnOldFile(t *testing.T) {
	ctx := context.Background()
	d, _ := openTemp(t)
	if _, err := d.ACMEOrder(ctx, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("order in an empty store: %v", err)
	}
	if o, a, err := d.PruneACME(ctx, t0); o+a != 0 || err != nil {
		t.Errorf("prune of an empty store: %d %d %v", o, a, err)
	}
	if n, err := d.ResolveACMEOrders(ctx, nil); n != 0 || err != nil {
		t.Errorf("resolve in an empty store: %d %v", n, err)
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
