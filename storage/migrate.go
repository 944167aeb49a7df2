package storage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Migrations. Open runs them on a database of an older schema before it
// returns the database to anyone, in transactions of at most migrateBatch
// certificates each: a million records never sit in one transaction
// (bbolt holds every dirty page of a transaction in memory). A schema 1
// database goes to 2, then to 3.
//
// Schema 1 → 2 rewrites the records in place (JSON → binary) and adds the
// state index. Its first transaction marks the database schema 2 (an
// older release then refuses it as newer, instead of misreading binary
// records) and sets keyMigrateV2; each batch rewrites its records, adds
// their index entries and moves keyMigrateV2 past them in the same
// commit; the last removes keyMigrateV2.
//
// Schema 2 → 3 moves the records, unchanged, into the buckets keyed by
// serial bytes (bolt.go), and puts their index entries there. Its first
// transaction checks that every serial can be such a key (if one cannot,
// nothing is written and the database stays schema 2, which this release
// refuses to open and the last schema 2 release still reads), marks the
// database schema 3, makes the new buckets afresh and sets keyMigrateV3;
// each batch moves its records (deleting them from the schema 2 bucket),
// adds their index entries and moves keyMigrateV3 past them; the last
// deletes the schema 2 buckets and keyMigrateV3. The new buckets have
// names of their own, so none ever holds keys of both forms.
//
// A crash at any point leaves a database whose next Open carries on from
// the marker: the database is never half-migrated without saying so, and
// never started afresh.

var (
	keyMigrateV2 = []byte("migrate_v2") // in bucketMeta: 'm' + hex serial of the last record migrated
	keyMigrateV3 = []byte("migrate_v3") // in bucketMeta: 'm' + hex serial (schema 2 key) of the last record moved
)

const migrateBatch = 5000

// migrating reports whether a migration was started and not finished.
func migrating(db *bolt.DB) bool {
	in := false
	db.View(func(tx *bolt.Tx) error {
		if m := tx.Bucket(bucketMeta); m != nil {
			in = m.Get(keyMigrateV2) != nil || m.Get(keyMigrateV3) != nil
		}
		return nil
	})
	return in
}

// migrate brings db to schemaVersion, batch certificates per commit. A
// million certificates take some 25 s, so log (when not nil) hears when it
// starts, how far it is every 100,000 records and when it is done: a CA
// that is upgraded says why it is not listening yet.
func migrate(db *bolt.DB, batch int, log *slog.Logger) error {
	start, moved, said := time.Now(), 0, 0
	for {
		done, to, n, err := migrateStep(db, batch)
		if err != nil {
			return fmt.Errorf("storage: migrate to schema %d: %w", schemaVersion, err)
		}
		if log == nil {
			if done {
				return nil
			}
			continue
		}
		if done {
			if moved > 0 {
				log.Info("storage: migration done; the file keeps its size until anchorage-ca compact", "file", db.Path(),
					"schema", schemaVersion, "records", moved, "secs", fmt.Sprintf("%.1f", time.Since(start).Seconds()))
			}
			return nil
		}
		if moved == 0 {
			log.Info("storage: migrating the database to this release's schema before serving", "file", db.Path(), "schema", schemaVersion)
		}
		moved += n
		if moved-said >= 100_000 {
			said = moved
			log.Info("storage: migrating", "file", db.Path(), "to_schema", to, "records", moved)
		}
	}
}

// migrateStep commits one batch of the migration, n records of the step
// to schema to; done is true once nothing is left to do.
func migrateStep(db *bolt.DB, batch int) (done bool, to, n int, err error) {
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		var m schemaMarker
		if err := json.Unmarshal(meta.Get(keySchema), &m); err != nil {
			return fmt.Errorf("schema marker: %w", err)
		}
		switch {
		case m.Version < 2 || meta.Get(keyMigrateV2) != nil:
			to = 2
			n, err = migrateV2Step(tx, m, batch)
			return err
		case m.Version < 3 || meta.Get(keyMigrateV3) != nil:
			to = 3
			n, err = migrateV3Step(tx, m, batch)
			return err
		}
		done = true
		return nil
	})
	return done, to, n, err
}

// setVersion records that the database is now of schema version.
func setVersion(meta *bolt.Bucket, m schemaMarker, version int) error {
	m.Version = version
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return meta.Put(keySchema, v)
}

type kv struct{ k, v []byte }

// nextBatch reads up to batch records of certs after the one marker
// names ('m' + key; 'm' alone: from the start).
func nextBatch(certs *bolt.Bucket, marker []byte, batch int) ([]kv, error) {
	if len(marker) == 0 || marker[0] != 'm' {
		return nil, fmt.Errorf("migration marker %q", marker)
	}
	var todo []kv
	cur := certs.Cursor()
	k, v := cur.First()
	if last := marker[1:]; len(last) > 0 {
		if k, v = cur.Seek(last); bytes.Equal(k, last) {
			k, v = cur.Next()
		}
	}
	for ; k != nil && len(todo) < batch; k, v = cur.Next() {
		todo = append(todo, kv{bytes.Clone(k), bytes.Clone(v)})
	}
	return todo, nil
}

// migrateV2Step is one batch of schema 1 → 2, in the schema 2 buckets.
func migrateV2Step(tx *bolt.Tx, m schemaMarker, batch int) (int, error) {
	meta := tx.Bucket(bucketMeta)
	marker := bytes.Clone(meta.Get(keyMigrateV2))
	if m.Version < 2 {
		if err := setVersion(meta, m, 2); err != nil {
			return 0, err
		}
		marker = []byte{'m'}
	}
	st, err := tx.CreateBucketIfNotExists(bucketByStateV2)
	if err != nil {
		return 0, err
	}
	certs, bySubject := tx.Bucket(bucketCertsV2), tx.Bucket(bucketBySubjectV2)
	todo, err := nextBatch(certs, marker, batch)
	if err != nil {
		return 0, err
	}
	certs.FillPercent, st.FillPercent = 0.95, 0.9 // as putCert's
	for _, r := range todo {
		c, err := decodeCert(string(r.k), r.v)
		if err != nil {
			return 0, err
		}
		// The record is rewritten (JSON → binary) and its index entries
		// put, as schema 2's putCert did; the subject entry is there
		// already.
		if err := certs.Put(r.k, encodeCert(c)); err != nil {
			return 0, err
		}
		k := append([]byte(c.Subject), 0)
		if err := bySubject.Put(append(k, c.Serial...), nil); err != nil {
			return 0, err
		}
		if err := st.Put(append(stateKey(stateClass(c.Status), c.NotAfter, nil), c.Serial...), nil); err != nil {
			return 0, err
		}
	}
	if len(todo) < batch {
		return len(todo), meta.Delete(keyMigrateV2) // schema 3 next
	}
	return len(todo), meta.Put(keyMigrateV2, append([]byte{'m'}, todo[len(todo)-1].k...))
}

// migrateV3Step is one batch of schema 2 → 3.
func migrateV3Step(tx *bolt.Tx, m schemaMarker, batch int) (int, error) {
	meta := tx.Bucket(bucketMeta)
	old := tx.Bucket(bucketCertsV2)
	marker := bytes.Clone(meta.Get(keyMigrateV3))
	if m.Version < 3 {
		// Every serial must have a schema 3 key before any is written:
		// a refusal leaves the database as it was, schema 2.
		if old != nil {
			c := old.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				if _, err := checkSerial(string(k)); err != nil {
					return 0, fmt.Errorf("certificate %w; the database is left at schema 2", err)
				}
			}
		}
		if err := setVersion(meta, m, 3); err != nil {
			return 0, err
		}
		// Open made them, empty, before migrating; made afresh all the
		// same, so that nothing but this copy is ever in them.
		for _, b := range [][]byte{bucketCerts, bucketBySubject, bucketByState} {
			if tx.Bucket(b) != nil {
				if err := tx.DeleteBucket(b); err != nil {
					return 0, err
				}
			}
			if _, err := tx.CreateBucket(b); err != nil {
				return 0, err
			}
		}
		marker = []byte{'m'}
	}
	var todo []kv
	if old != nil {
		var err error
		if todo, err = nextBatch(old, marker, batch); err != nil {
			return 0, err
		}
	}
	certs, bySubject, st := tx.Bucket(bucketCerts), tx.Bucket(bucketBySubject), tx.Bucket(bucketByState)
	certs.FillPercent, st.FillPercent = 0.95, 0.9 // as putCert's
	for _, r := range todo {
		key, err := checkSerial(string(r.k))
		if err != nil {
			return 0, fmt.Errorf("certificate %w", err)
		}
		c, err := decodeCert(string(r.k), r.v)
		if err != nil {
			return 0, err
		}
		// The record as it is: it does not hold its serial.
		if err := certs.Put(key, r.v); err != nil {
			return 0, err
		}
		// Moved, not copied: the next batches reuse the pages it frees,
		// and the file grows by about the new indexes, not by a second
		// copy of every record.
		if err := old.Delete(r.k); err != nil {
			return 0, err
		}
		if err := bySubject.Put(subjectKey(c.Subject, key), nil); err != nil {
			return 0, err
		}
		if err := st.Put(stateKey(stateClass(c.Status), c.NotAfter, key), nil); err != nil {
			return 0, err
		}
	}
	if len(todo) < batch {
		for _, b := range [][]byte{bucketCertsV2, bucketBySubjectV2, bucketByStateV2} {
			if tx.Bucket(b) != nil {
				if err := tx.DeleteBucket(b); err != nil {
					return 0, err
				}
			}
		}
		return len(todo), meta.Delete(keyMigrateV3)
	}
	return len(todo), meta.Put(keyMigrateV3, append([]byte{'m'}, todo[len(todo)-1].k...))
}
