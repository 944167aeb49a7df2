package storage

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Export streams every bucket that holds records (a bucket a later change
// adds fails here until Export, and so migrate, carries it), from one
// snapshot, in the order of Kinds, with counts ExportCounts agrees with.
func TestExportCoversEveryBucket(t *testing.T) {
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	d, _ := openTemp(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(d.PutCertUsingToken(ctx, cert("0a", "web", now.Add(time.Hour)), "jti", now.Add(time.Hour)))
	must(d.PutRenewal(ctx, "0a", cert("0b", "web", now.Add(2*time.Hour)), now))
	_, err := d.RevokeSerial(ctx, "0b", 1, now)
	must(err)
	must(d.SaveCRL(ctx, CRL{Number: 3, Seq: 1, DER: []byte{0x30}}))
	must(d.PutAnchorStatus(ctx, AnchorStatus{ARN: "arn:x", CRLNumber: 3}))
	_, err = d.CreateACMEAccount(ctx, &ACMEAccount{ID: "a", Provisioner: "p", Thumbprint: "t", EABKeyID: "k", Key: json.RawMessage(`{}`)})
	must(err)
	must(d.CreateACMEOrder(ctx, &ACMEOrder{ID: "o", AccountID: "a", Status: ACMEPending, Expires: now.Add(time.Hour), AuthzIDs: []string{"z"}},
		[]*ACMEAuthz{{ID: "z", AccountID: "a", OrderID: "o", Status: ACMEPending, Expires: now.Add(time.Hour)}}, ACMEOrderLimits{}))

	exported := map[string]string{
		"certs3": KindCert, "revoked": KindRevocation, "lineages": KindLineage, "tokens": KindToken, "anchors": KindAnchor,
		"acme_accounts": KindACMEAcct, "acme_eab": KindACMEEAB, "acme_orders": KindACMEOrder, "acme_authzs": KindACMEAuthz,
	}
	derived := map[string]bool{"by_subject3": true, "by_state3": true, "acme_keys": true, "acme_open": true, "meta": true}
	must(d.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if exported[string(name)] == "" && !derived[string(name)] {
				t.Errorf("bucket %s is neither exported nor derived", name)
			}
			return nil
		})
	}))

	got := Counts{}
	var order []string
	var ctr *Counters
	must(d.Export(ctx, func(r Record) error {
		if len(order) == 0 || order[len(order)-1] != r.Kind {
			order = append(order, r.Kind)
		}
		if r.Kind == KindCounters {
			ctr = r.Counters
		} else {
			got[r.Kind]++
		}
		return nil
	}))
	want, wctr, err := d.ExportCounts(ctx)
	must(err)
	for k := range exported {
		n := 1
		if k == "certs3" || k == "revoked" { // the revocation took the whole lineage
			n = 2
		}
		if got[exported[k]] != n || want[exported[k]] != n {
			t.Errorf("%s: exported %d, counted %d", exported[k], got[exported[k]], want[exported[k]])
		}
	}
	if len(order) != len(Kinds) || order[len(order)-1] != KindCounters {
		t.Errorf("export order %v, counts %v", order, got)
	}
	if ctr == nil || ctr.RevSeq != 2 || ctr.CRL.Number != 3 || ctr.CRL.Seq != 1 || len(ctr.CRL.DER) != 1 || wctr.RevSeq != 2 || wctr.CRL.Number != 3 {
		t.Errorf("counters %+v / %+v", ctr, wctr)
	}
}
