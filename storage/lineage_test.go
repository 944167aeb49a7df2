package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// renewal is a successor record as the issuing core would hand it in.
func renewal(serial, subject string, notAfter time.Time, key string) *Cert {
	c := cert(serial, subject, notAfter)
	c.Method, c.KeyID = MethodRenew, key
	return c
}

func TestLineageRenewal(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	exp := now.Add(time.Hour)
	tests := []struct {
		name string
		run  func(t *testing.T, d *DB)
	}{
		{"renewal extends the lineage and supersedes its predecessor", func(t *testing.T, d *DB) {
			must(t, d.PutCert(ctx, cert("01", "web", exp)))
			must(t, d.PutRenewal(ctx, "01", renewal("02", "web", exp, "k2"), now))
			must(t, d.PutRenewal(ctx, "02", renewal("03", "web", exp, "k3"), now))
			c1, c2, c3 := get(t, d, "01"), get(t, d, "02"), get(t, d, "03")
			if c1.Lineage != "01" || c2.Lineage != "01" || c3.Lineage != "01" {
				t.Errorf("lineages %q %q %q, want all 01", c1.Lineage, c2.Lineage, c3.Lineage)
			}
			if c1.RenewedTo != "02" || c2.RenewedFrom != "01" || c2.RenewedTo != "03" || c3.RenewedTo != "" {
				t.Errorf("links: %+v / %+v / %+v", c1, c2, c3)
			}
		}},
		{"a superseded certificate cannot renew again", func(t *testing.T, d *DB) {
			must(t, d.PutCert(ctx, cert("01", "web", exp)))
			must(t, d.PutRenewal(ctx, "01", renewal("02", "web", exp, "k2"), now))
			err := d.PutRenewal(ctx, "01", renewal("03", "web", exp, "k3"), now)
			var sup *SupersededError
			if !errors.As(err, &sup) || sup.Successor.Serial != "02" {
				t.Fatalf("second renewal of 01: %v", err)
			}
			// What lost is recorded, revoked as superseded and undelivered,
			// and kept off the CRL: nobody holds it, and races must not be a
			// way to grow the CRL.
			c3 := get(t, d, "03")
			if c3.Status != StatusRevoked || c3.Reason != ReasonSuperseded || !c3.Undelivered {
				t.Errorf("lost renewal recorded as %s reason %d undelivered %v", c3.Status, c3.Reason, c3.Undelivered)
			}
			set, _ := d.Revocations(ctx, now)
			if len(set.Entries) != 0 || set.Seq != 0 {
				t.Errorf("CRL source: %+v", set)
			}
			if get(t, d, "01").RenewedTo != "02" {
				t.Error("the refused renewal moved the lineage head")
			}
		}},
		{"revoked or expired predecessor renews nothing", func(t *testing.T, d *DB) {
			must(t, d.PutCert(ctx, cert("01", "web", exp)))
			must(t, d.PutCert(ctx, cert("02", "db", now.Add(-time.Second))))
			if _, err := d.RevokeSerial(ctx, "01", 1, now); err != nil {
				t.Fatal(err)
			}
			if err := d.PutRenewal(ctx, "01", renewal("03", "web", exp, "k"), now); !errors.Is(err, ErrRevoked) {
				t.Errorf("revoked: %v", err)
			}
			if err := d.PutRenewal(ctx, "02", renewal("04", "db", exp, "k"), now); !errors.Is(err, ErrExpired) {
				t.Errorf("expired: %v", err)
			}
			if err := d.PutRenewal(ctx, "ff", renewal("05", "db", exp, "k"), now); !errors.Is(err, ErrNotFound) {
				t.Errorf("unknown: %v", err)
			}
			for _, s := range []string{"03", "04", "05"} {
				if _, err := d.Cert(ctx, s); !errors.Is(err, ErrNotFound) {
					t.Errorf("refused renewal %s was stored: %v", s, err)
				}
			}
		}},
		{"revoking an ancestor revokes every member in one commit", func(t *testing.T, d *DB) {
			must(t, d.PutCert(ctx, cert("01", "web", exp)))
			must(t, d.PutRenewal(ctx, "01", renewal("02", "web", exp, "k2"), now))
			must(t, d.PutRenewal(ctx, "02", renewal("03", "web", exp, "k3"), now))
			must(t, d.PutCert(ctx, cert("10", "web", exp))) // another lineage, same name
			res, err := d.RevokeSerial(ctx, "01", 1, now)
			if err != nil || len(res.Changed) != 3 || res.Seq != 3 {
				t.Fatalf("revoke 01: %+v %v", res, err)
			}
			for _, s := range []string{"02", "03"} {
				if c := get(t, d, s); c.Status != StatusRevoked || c.RevokedWith != "01" {
					t.Errorf("%s: %s, revoked with %q", s, c.Status, c.RevokedWith)
				}
			}
			if get(t, d, "10").Status != StatusValid {
				t.Error("another lineage of the same name was revoked by serial")
			}
		}},
		{"revoking a middle member revokes the whole lineage", func(t *testing.T, d *DB) {
			must(t, d.PutCert(ctx, cert("01", "web", exp)))
			must(t, d.PutRenewal(ctx, "01", renewal("02", "web", exp, "k2"), now))
			must(t, d.PutRenewal(ctx, "02", renewal("03", "web", exp, "k3"), now))
			if _, err := d.RevokeSerial(ctx, "02", 1, now); err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{"01", "03"} {
				if c := get(t, d, s); c.Status != StatusRevoked || c.RevokedWith != "02" {
					t.Errorf("revoke 02 must revoke %s too (same lineage): %s, revoked with %q", s, c.Status, c.RevokedWith)
				}
			}
			err := d.PutRenewal(ctx, "01", renewal("04", "web", exp, "k2"), now)
			var sup *SupersededError
			if !errors.Is(err, ErrRevoked) && !errors.As(err, &sup) {
				t.Errorf("renewing the lineage's valid ancestor: %v", err)
			}
		}},
		{"admin revocations stay off the issuing CA's CRL", func(t *testing.T, d *DB) {
			a := cert("0a", "admin", exp)
			a.Method = MethodAdmin
			must(t, d.PutCert(ctx, a))
			res, err := d.RevokeSerial(ctx, "0a", 1, now)
			if err != nil || len(res.Changed) != 1 {
				t.Fatal(res, err)
			}
			if set, _ := d.Revocations(ctx, now); len(set.Entries) != 0 || set.Seq != 1 {
				t.Errorf("CRL source: %+v", set)
			}
			if get(t, d, "0a").Status != StatusRevoked {
				t.Error("admin record not revoked")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _ := openTemp(t)
			tt.run(t, d)
		})
	}
}

// Renewals racing a revocation of their subject: whatever the interleaving,
// once the revoke has committed no certificate of the subject is valid and
// every one of them is in the CRL source.
func TestRenewalRaceWithRevoke(t *testing.T) {
	ctx := context.Background()
	for round := range 5 {
		d, _ := openTemp(t)
		now := time.Now()
		exp := now.Add(time.Hour)
		must(t, d.PutCert(ctx, cert("01", "web", exp)))
		var head atomic.Value
		head.Store("01")
		var next atomic.Int64
		next.Store(1)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var renewed, refused atomic.Int64
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					pred := head.Load().(string)
					serial := fmt.Sprintf("%04x", next.Add(1))
					err := d.PutRenewal(ctx, pred, renewal(serial, "web", exp, "k"+serial), now)
					if err == nil {
						renewed.Add(1)
						head.Store(serial)
					} else {
						refused.Add(1)
						if errors.Is(err, ErrRevoked) {
							return
						}
					}
				}
			}()
		}
		time.Sleep(time.Duration(5+round*5) * time.Millisecond)
		res, err := d.RevokeSubject(ctx, "web", 1, now)
		if err != nil {
			t.Fatal(err)
		}
		// Renewals after the revoke must all be refused.
		time.Sleep(5 * time.Millisecond)
		close(stop)
		wg.Wait()
		all, _ := d.ListCerts(ctx, Filter{Subject: "web"}, now)
		set, _ := d.Revocations(ctx, now)
		onCRL := map[string]bool{}
		for _, e := range set.Entries {
			onCRL[e.Serial] = true
		}
		for _, c := range all {
			if c.Status != StatusRevoked || !onCRL[c.Serial] && !c.Undelivered {
				t.Errorf("round %d: %s is %s (on CRL: %v) after the subject was revoked", round, c.Serial, c.Status, onCRL[c.Serial])
			}
		}
		if len(all) < 2 || renewed.Load() == 0 {
			t.Errorf("round %d: the race did not happen (%d certificates, %d renewals)", round, len(all), renewed.Load())
		}
		t.Logf("round %d: %d renewals, %d refused, %d revoked by the subject revoke, %d certificates", round,
			renewed.Load(), refused.Load(), len(res.Changed), len(all))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, d *DB, serial string) *Cert {
	t.Helper()
	c, err := d.Cert(context.Background(), serial)
	if err != nil {
		t.Fatalf("cert %s: %v", serial, err)
	}
	return c
}
