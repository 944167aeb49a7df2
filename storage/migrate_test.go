package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// schema1DB writes a database as releases before schema 2 did: JSON
// certificate records, the subject index, revocation entries and a
// schema 1 marker. It returns the path and the records.
func schema1DB(t *testing.T, n int) (string, []*Cert) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "anchorage.db")
	db, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var cs []*Cert
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{"certs", "by_subject", "revoked", "tokens", "meta", "anchors", "lineages"} {
			if _, err := tx.CreateBucket([]byte(b)); err != nil {
				return err
			}
		}
		m, _ := json.Marshal(schemaMarker{App: "anchorage", Version: 1, CreatedAt: now})
		if err := tx.Bucket(bucketMeta).Put(keySchema, m); err != nil {
			return err
		}
		for i := range n {
			c := &Cert{Serial: fmt.Sprintf("%06x", i*7919%(1<<24)), Subject: fmt.Sprintf("host-%d", i%13),
				SANs: []string{"h.internal"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Duration(i%50-25) * time.Hour),
				IssuedAt: now.Add(-time.Hour), Method: MethodToken, TokenID: fmt.Sprint("jti-", i), KeyID: "ab",
				Status: StatusValid, DER: []byte{0x30, byte(i)}}
			c.Lineage = c.Serial
			if i%10 == 3 {
				c.Status, c.RevokedAt, c.Reason = StatusRevoked, now, 1
				r, _ := json.Marshal(revocationRecord{RevokedAt: now, Reason: 1, NotAfter: c.NotAfter, Seq: 1})
				if err := tx.Bucket(bucketRevoked).Put([]byte(c.Serial), r); err != nil {
					return err
				}
			}
			v, _ := json.Marshal(c) // what putCert wrote in schema 1
			if err := tx.Bucket(bucketCertsV2).Put([]byte(c.Serial), v); err != nil {
				return err
			}
			if err := tx.Bucket(bucketBySubjectV2).Put([]byte(c.Subject+"\x00"+c.Serial), nil); err != nil {
				return err
			}
			cs = append(cs, c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	return p, cs
}

func checkAllCerts(t *testing.T, d *DB, want []*Cert) {
	t.Helper()
	ctx := context.Background()
	for _, w := range want {
		got, err := d.Cert(ctx, w.Serial)
		if err != nil {
			t.Fatalf("cert %s: %v", w.Serial, err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Fatalf("cert %s:\n%+v\nwant\n%+v", w.Serial, got, w)
		}
	}
}

// A schema 1 database migrates on Open, in batches, to binary records
// with the state index (schema 2), then to schema 3; a migration cut
// short (a crash after some batches) holds every record, in either
// encoding, and finishes on the next Open.
func TestOpenMigratesSchema1(t *testing.T) {
	p, want := schema1DB(t, 2500)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sizeBefore := fileSize(t, p)

	// A crash after the first of three batches.
	bdb, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if done, _, _, err := migrateStep(bdb, 1000); done || err != nil {
		t.Fatalf("first batch: done %v, %v", done, err)
	}
	// Both encodings read back alike.
	bdb.View(func(tx *bolt.Tx) error {
		for _, w := range want {
			got, err := decodeCert(w.Serial, tx.Bucket(bucketCertsV2).Get([]byte(w.Serial)))
			if err != nil || !reflect.DeepEqual(got, w) {
				t.Fatalf("cert %s half-way: %v\n%+v\nwant\n%+v", w.Serial, err, got, w)
			}
		}
		return nil
	})
	var json, binary int
	bdb.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta).Get(keyMigrateV2) == nil {
			t.Error("no progress marker after one batch")
		}
		if v := tx.Bucket(bucketMeta).Get(keySchema); !bytes.Contains(v, []byte(`"version":2`)) {
			t.Errorf("schema marker during migration: %s (an older release must refuse it)", v)
		}
		return tx.Bucket(bucketCertsV2).ForEach(func(k, v []byte) error {
			if v[0] == '{' {
				json++
			} else {
				binary++
			}
			return nil
		})
	})
	if binary != 1000 || json != 1500 {
		t.Errorf("after one batch: %d binary, %d JSON records", binary, json)
	}
	bdb.Close()

	d, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	checkAllCerts(t, d, want)
	d.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta).Get(keyMigrateV2) != nil || tx.Bucket(bucketMeta).Get(keyMigrateV3) != nil {
			t.Error("progress marker left after Open")
		}
		if v := tx.Bucket(bucketMeta).Get(keySchema); !bytes.Contains(v, []byte(`"version":3`)) {
			t.Errorf("schema marker after Open: %s", v)
		}
		return tx.Bucket(bucketCerts).ForEach(func(k, v []byte) error {
			if v[0] != recordV2 {
				t.Fatalf("record %s not migrated", k)
			}
			return nil
		})
	})
	// The state index answers like a scan.
	for _, f := range []Filter{{Status: StatusRevoked}, {Status: StatusValid, Live: true}, {Status: StatusValid, Expired: true}, {Live: true}} {
		got, err := d.ListCerts(context.Background(), f, now)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, c := range want {
			if f.Match(c, now) {
				n++
			}
		}
		if len(got) != n || n == 0 {
			t.Errorf("%+v: %d listed, %d match", f, len(got), n)
		}
	}
	d.Close()
	t.Logf("schema 1 file %d bytes; after migration %d", sizeBefore, fileSize(t, p))

	// Migrated: the next Open writes nothing.
	before, _ := os.ReadFile(p)
	d, err = Open(p)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if after, _ := os.ReadFile(p); !bytes.Equal(before, after) {
		t.Error("Open of a migrated database wrote to it")
	}
}

func fileSize(t *testing.T, p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func FuzzDecodeCert(f *testing.F) {
	c := &Cert{Serial: "0a", Subject: "s", SANs: []string{"a"}, Method: MethodToken, Status: StatusValid, KeyID: "ff", DER: []byte{1, 2}}
	f.Add(encodeCert(c))
	f.Add([]byte(`{"serial":"0a"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCert("0a", b)
		if err != nil || b[0] != recordV2 {
			return
		}
		if o := recordOrder(b); o != c.Order {
			t.Fatalf("recordOrder %q, record says %q", o, c.Order)
		}
		// What decodes re-encodes to a record that decodes the same.
		d, err := decodeCert("0a", encodeCert(c))
		if err != nil {
			t.Fatalf("re-encoded record: %v", err)
		}
		if !reflect.DeepEqual(c, d) {
			t.Fatalf("round trip:\n%+v\n%+v", c, d)
		}
	})
}
