package storage

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// schema2Certs are records as a schema 2 release stored them: fake DERs
// with every field in the record, and real ones whose fields are read back
// from the DER; renewals, revocations, several subjects and expiries.
func schema2Certs(t *testing.T, n int) []*Cert {
	t.Helper()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var cs []*Cert
	for i := range n {
		// 20 bytes, as ca.NewSerial makes them, not in insertion order.
		serial := fmt.Sprintf("40%06x%030x", i*7919%(1<<24), i)
		c := &Cert{Serial: serial, Subject: fmt.Sprintf("host-%d", i%13), SANs: []string{"h.internal"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Duration(i%50-25) * time.Hour), IssuedAt: now.Add(-time.Hour),
			Method: MethodToken, TokenID: fmt.Sprint("jti-", i), KeyID: "ab", Status: StatusValid, DER: []byte{0x30, byte(i)}}
		if i%100 == 0 { // a real certificate: names, validity and key id from the DER
			sn, _ := new(big.Int).SetString(serial, 16)
			tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: c.Subject}, DNSNames: []string{c.Subject + ".internal"},
				NotBefore: c.NotBefore, NotAfter: c.NotAfter}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
			if err != nil {
				t.Fatal(err)
			}
			x, _ := x509.ParseCertificate(der)
			sum := sha256.Sum256(x.RawSubjectPublicKeyInfo)
			c.DER, c.SANs, c.KeyID = der, []string{"DNS:" + c.Subject + ".internal"}, hex.EncodeToString(sum[:])
		}
		c.Lineage = c.Serial
		if i%10 == 3 {
			c.Status, c.RevokedAt, c.Reason, c.RevokedWith = StatusRevoked, now, 1, cs[i-1].Serial
		}
		if i%10 == 5 { // renews the one before
			c.Method, c.Lineage, c.RenewedFrom = MethodRenew, cs[i-1].Lineage, cs[i-1].Serial
			cs[i-1].RenewedTo = c.Serial
		}
		cs = append(cs, c)
	}
	return cs
}

// schema2DB writes cs as a schema 2 release did: binary records and both
// indexes keyed by the hex serial, in the buckets of that schema.
func schema2DB(t *testing.T, cs []*Cert) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "anchorage.db")
	db, err := bolt.Open(p, 0o600, &bolt.Options{PageSize: createPageSize})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{"certs", "by_subject", "revoked", "tokens", "meta", "anchors", "lineages", "by_state"} {
			if _, err := tx.CreateBucket([]byte(b)); err != nil {
				return err
			}
		}
		m, _ := json.Marshal(schemaMarker{App: "anchorage", Version: 2, CreatedAt: t0})
		if err := tx.Bucket(bucketMeta).Put(keySchema, m); err != nil {
			return err
		}
		for _, c := range cs {
			if c.Status == StatusRevoked {
				r, _ := json.Marshal(revocationRecord{RevokedAt: c.RevokedAt, Reason: c.Reason, NotAfter: c.NotAfter, Seq: 1})
				if err := tx.Bucket(bucketRevoked).Put([]byte(c.Serial), r); err != nil {
					return err
				}
			}
			if err := tx.Bucket(bucketCertsV2).Put([]byte(c.Serial), encodeCert(c)); err != nil {
				return err
			}
			if err := tx.Bucket(bucketBySubjectV2).Put([]byte(c.Subject+"\x00"+c.Serial), nil); err != nil {
				return err
			}
			if err := tx.Bucket(bucketByStateV2).Put(append(stateKey(stateClass(c.Status), c.NotAfter, nil), c.Serial...), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	return p
}

// v2Index is every key of a schema 2 index bucket, rewritten to schema 3's
// form (the hex serial at the end decoded).
func v2Index(t *testing.T, db *bolt.DB, name []byte, hexAt func(k []byte) int) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(name).ForEach(func(k, _ []byte) error {
			i := hexAt(k)
			raw, ok := lowerHex(string(k[i:]))
			if !ok {
				t.Fatalf("%s key %q", name, k)
			}
			out[string(append(bytes.Clone(k[:i]), raw...))] = true
			return nil
		})
	})
	return out
}

func bucketKeys(db *bolt.DB, name []byte) map[string]bool {
	out := map[string]bool{}
	db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(name)
		if b == nil {
			out = nil
			return nil
		}
		return b.ForEach(func(k, _ []byte) error { out[string(k)] = true; return nil })
	})
	return out
}

// listAll pages through f, limit at a time.
func listAll(t *testing.T, d *DB, f Filter, now time.Time) []*Cert {
	t.Helper()
	var out []*Cert
	for {
		p, err := d.ListCertsPage(context.Background(), f, now)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Certs...)
		if p.Next == "" {
			return out
		}
		f.Cursor = p.Next
	}
}

// A schema 2 database migrates on Open to schema 3: every record
// (byte for byte), every index entry and every listing as it was, the
// schema 2 buckets gone. A migration cut short after one batch (a crash)
// is marked, refused by an older release, and finished by the next Open.
func TestOpenMigratesSchema2(t *testing.T) {
	want := schema2Certs(t, 2500)
	p := schema2DB(t, want)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	bdb, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	records := map[string][]byte{}
	bdb.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCertsV2).ForEach(func(k, v []byte) error {
			raw, _ := lowerHex(string(k))
			records[string(raw)] = bytes.Clone(v)
			return nil
		})
	})
	subjects := v2Index(t, bdb, bucketBySubjectV2, func(k []byte) int { return bytes.LastIndexByte(k, 0) + 1 })
	states := v2Index(t, bdb, bucketByStateV2, func([]byte) int { return 9 })
	if len(records) != 2500 || len(subjects) != 2500 || len(states) != 2500 {
		t.Fatalf("schema 2 file: %d records, %d subject and %d state entries", len(records), len(subjects), len(states))
	}

	// A crash after the first of three batches (Open has made the new
	// buckets before migrating).
	if err := bdb.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if done, _, _, err := migrateStep(bdb, 1000); done || err != nil {
		t.Fatalf("first batch: done %v, %v", done, err)
	}
	bdb.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta.Get(keyMigrateV3) == nil {
			t.Error("no progress marker after one batch")
		}
		if v := meta.Get(keySchema); !bytes.Contains(v, []byte(`"version":3`)) {
			t.Errorf("schema marker during migration: %s (an older release must refuse it)", v)
		}
		if n, old := tx.Bucket(bucketCerts).Stats().KeyN, tx.Bucket(bucketCertsV2).Stats().KeyN; n != 1000 || old != 1500 {
			t.Errorf("after one batch: %d records moved, %d left in schema 2's bucket", n, old)
		}
		return nil
	})
	bdb.Close()

	var logged bytes.Buffer
	d, err := OpenWith(p, OpenOptions{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// The operator hears why the CA is not listening yet, and when it is
	// done: the 1,500 records the crash left.
	for _, s := range []string{"migrating the database to this release's schema", "migration done", "records=1500", "schema=3"} {
		if !strings.Contains(logged.String(), s) {
			t.Errorf("migration log lacks %q:\n%s", s, logged.String())
		}
	}
	checkAllCerts(t, d, want)
	d.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta.Get(keyMigrateV3) != nil || meta.Get(keyMigrateV2) != nil {
			t.Error("progress marker left after Open")
		}
		if v := meta.Get(keySchema); !bytes.Contains(v, []byte(`"version":3`)) {
			t.Errorf("schema marker after Open: %s", v)
		}
		for _, b := range [][]byte{bucketCertsV2, bucketBySubjectV2, bucketByStateV2} {
			if tx.Bucket(b) != nil {
				t.Errorf("schema 2 bucket %s left", b)
			}
		}
		n := 0
		tx.Bucket(bucketCerts).ForEach(func(k, v []byte) error {
			if !bytes.Equal(records[string(k)], v) {
				t.Fatalf("record %x: not the schema 2 record", k)
			}
			n++
			return nil
		})
		if n != len(records) {
			t.Errorf("%d records, want %d", n, len(records))
		}
		return nil
	})
	if got := bucketKeys(d.db, bucketBySubject); !reflect.DeepEqual(got, subjects) {
		t.Errorf("subject index: %d entries, want the %d of schema 2", len(got), len(subjects))
	}
	if got := bucketKeys(d.db, bucketByState); !reflect.DeepEqual(got, states) {
		t.Errorf("state index: %d entries, want the %d of schema 2", len(got), len(states))
	}

	// Listings and exports as from a database made at schema 3.
	fresh, _ := openTemp(t)
	if err := fresh.PutCerts(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	for _, f := range []Filter{{}, {Limit: 7}, {Subject: "host-3", Limit: 5}, {Subject: "host-3", Status: StatusRevoked},
		{Status: StatusRevoked, Limit: 9}, {Status: StatusValid, Live: true, Limit: 100}, {Status: StatusValid, Expired: true}, {Live: true, Limit: 33}} {
		got, exp := listAll(t, d, f, now), listAll(t, fresh, f, now)
		if len(got) == 0 || !reflect.DeepEqual(got, exp) {
			t.Errorf("%+v: %d listed after migration, %d from a new database", f, len(got), len(exp))
		}
	}
	export := func(d *DB) (out []*Cert) {
		if err := d.Export(context.Background(), func(r Record) error {
			if r.Kind == KindCert {
				out = append(out, r.Cert)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := export(d); len(got) != len(want) || !reflect.DeepEqual(got, export(fresh)) {
		t.Errorf("export after migration: %d certificates, not the new database's", len(got))
	}
	// And it is a database like any other.
	if _, err := d.RevokeSubject(context.Background(), "host-4", 1, now); err != nil {
		t.Fatal(err)
	}
	d.Close()
	before, _ := os.ReadFile(p)
	logged.Reset()
	if d, err = OpenWith(p, OpenOptions{Logger: slog.New(slog.NewTextHandler(&logged, nil))}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if after, _ := os.ReadFile(p); !bytes.Equal(before, after) {
		t.Error("Open of a migrated database wrote to it")
	}
	if logged.Len() != 0 {
		t.Errorf("Open of a migrated database logged: %s", logged.String())
	}
}

// A schema 1 database goes to 2, then 3, every batch of either crash-safe.
func TestOpenMigratesSchema1ThroughTwo(t *testing.T) {
	p, want := schema1DB(t, 1200)
	bdb, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	steps := 0
	for done := false; !done; steps++ {
		if done, _, _, err = migrateStep(bdb, 500); err != nil {
			t.Fatal(err)
		}
	}
	// 1 → 2: three batches; 2 → 3: three each for the records, the
	// subject index and the state index; the last step finds nothing to do.
	if steps != 13 {
		t.Errorf("%d steps", steps)
	}
	bdb.Close()
	d, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	checkAllCerts(t, d, want)
	if got := bucketKeys(d.db, bucketByState); len(got) != len(want) {
		t.Errorf("%d state entries", len(got))
	}
}

// A schema 2 serial that schema 3 cannot key stops the migration before
// it writes anything: the database stays schema 2, whole.
func TestMigrationRefusesNonHexSerial(t *testing.T) {
	cs := schema2Certs(t, 20)
	cs[7].Serial, cs[7].Lineage = "ABCD", "ABCD"
	p := schema2DB(t, cs)
	before, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Open(p)
	if err == nil {
		d.Close()
		t.Fatal("Open migrated a database with a serial that is not hex")
	}
	var oe *OpenError
	if !errors.As(err, &oe) || !strings.Contains(err.Error(), `"ABCD"`) || !strings.Contains(err.Error(), "nothing was written") {
		t.Errorf("Open: %v", err)
	}
	if after, _ := os.ReadFile(p); !bytes.Equal(before, after) {
		t.Error("a refused migration wrote to the file")
	}
	bdb, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	bdb.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keySchema); !bytes.Contains(v, []byte(`"version":2`)) || tx.Bucket(bucketMeta).Get(keyMigrateV3) != nil {
			t.Errorf("schema marker %s after a refused migration", v)
		}
		if n := tx.Bucket(bucketCertsV2).Stats().KeyN; n != 20 {
			t.Errorf("%d schema 2 records", n)
		}
		return nil
	})
}

// Serials are lowercase hex of whole bytes, or refused; a lookup or a
// cursor with any other serial finds nothing rather than failing oddly.
func TestSerialForm(t *testing.T) {
	d, _ := openTemp(t)
	ctx := context.Background()
	now := time.Now()
	for _, s := range []string{"", "ABCD", "abc", "0x12", "zz", "ab cd"} {
		err := d.PutCert(ctx, cert(s, "x", now.Add(time.Hour)))
		if !errors.Is(err, errSerial) || !strings.Contains(err.Error(), fmt.Sprintf("%q", s)) {
			t.Errorf("PutCert %q: %v", s, err)
		}
	}
	if err := d.PutCert(ctx, cert("00ab", "x", now.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Cert(ctx, "00AB"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Cert(00AB): %v", err)
	}
	if c, err := d.Cert(ctx, "00ab"); err != nil || c.Serial != "00ab" {
		t.Errorf("Cert(00ab): %v, %v", c, err)
	}
	bad := EncodeCursor(&Cert{Serial: "XY", NotAfter: now})
	if _, err := d.ListCertsPage(ctx, Filter{Cursor: bad}, now); !errors.Is(err, ErrBadCursor) {
		t.Errorf("cursor with serial XY: %v", err)
	}
}

// A record this release cannot decode (here cut short; in life damage, or
// DER a newer x509 parser refuses), past the first batch, moves as it is:
// the migration never decodes, so it cannot stop half-way after marking
// the file schema 3 (which neither release would open). The record reads
// as it did in schema 2 — an error naming it — and every other one reads.
func TestMigrationMovesUndecodableRecord(t *testing.T) {
	cs := schema2Certs(t, 1500)
	p := schema2DB(t, cs)
	bdb, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := cs[1200].Serial
	var damaged []byte
	if err := bdb.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCertsV2)
		damaged = bytes.Clone(b.Get([]byte(bad)))
		damaged = damaged[:len(damaged)-10]
		return b.Put([]byte(bad), damaged)
	}); err != nil {
		t.Fatal(err)
	}
	bdb.Close()
	d, err := Open(p)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer d.Close()
	checkAllCerts(t, d, append(slices.Clone(cs[:1200]), cs[1201:]...))
	if _, err := d.Cert(context.Background(), bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("the damaged record: %v (want its decode error, naming it)", err)
	}
	d.db.View(func(tx *bolt.Tx) error {
		k, _ := serialKey(bad)
		if v := tx.Bucket(bucketCerts).Get(k); !bytes.Equal(v, damaged) {
			t.Errorf("the damaged record was not moved as it was (%d bytes, want %d)", len(v), len(damaged))
		}
		return nil
	})
	if got := bucketKeys(d.db, bucketByState); len(got) != len(cs) {
		t.Errorf("%d state entries, want %d: the damaged record's index entries move too", len(got), len(cs))
	}
}

// A crash after any step of schema 2 → 3 (in the records, the subject
// index or the state index phase) leaves a file the next Open finishes:
// every record and every index entry, none twice.
func TestMigrationResumesAfterAnyStep(t *testing.T) {
	cs := schema2Certs(t, 1100)
	base, err := os.ReadFile(schema2DB(t, cs))
	if err != nil {
		t.Fatal(err)
	}
	for k := 1; k <= 9; k++ { // 3 batches in each of 3 phases
		p := filepath.Join(t.TempDir(), "anchorage.db")
		if err := os.WriteFile(p, base, 0o600); err != nil {
			t.Fatal(err)
		}
		bdb, err := bolt.Open(p, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < k; i++ {
			if done, _, _, err := migrateStep(bdb, 500); err != nil || done {
				t.Fatalf("step %d of %d: done %v, %v", i+1, k, done, err)
			}
		}
		bdb.Close() // the crash
		d, err := Open(p)
		if err != nil {
			t.Fatalf("after %d steps: Open: %v", k, err)
		}
		checkAllCerts(t, d, cs)
		for _, b := range [][]byte{bucketCerts, bucketByState} {
			if got := bucketKeys(d.db, b); len(got) != len(cs) {
				t.Errorf("after %d steps: %s has %d keys, want %d", k, b, len(got), len(cs))
			}
		}
		n := 0
		for _, c := range cs {
			got, err := d.ListCerts(context.Background(), Filter{Subject: c.Subject}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if slices.ContainsFunc(got, func(g *Cert) bool { return g.Serial == c.Serial }) {
				n++
			}
		}
		if n != len(cs) {
			t.Errorf("after %d steps: %d of %d certificates listed under their subject", k, n, len(cs))
		}
		d.Close()
	}
}
