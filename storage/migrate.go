package storage

import (
	"bytes"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Schema 1 → 2 migration. Open runs it on a database of schema 1, before
// it returns the database to anyone, in transactions of at most
// migrateBatch certificates each: a million records never sit in one
// transaction (bbolt holds every dirty page of a transaction in memory).
// The first transaction marks the database schema 2 (an older release
// then refuses it as newer, instead of misreading binary records) and
// sets keyMigrateV2; each batch rewrites its records, adds their index
// entries and moves keyMigrateV2 past them in the same commit; the last
// removes keyMigrateV2. A crash at any point leaves a database that reads
// correctly (readers accept both encodings) and whose next Open carries
// on from the marker: the database is never half-migrated without saying
// so, and never started afresh.

var keyMigrateV2 = []byte("migrate_v2") // in bucketMeta: 'm' + serial of the last record migrated

const migrateBatch = 5000

// migrating reports whether a migration was started and not finished.
func migrating(db *bolt.DB) bool {
	in := false
	db.View(func(tx *bolt.Tx) error {
		if m := tx.Bucket(bucketMeta); m != nil {
			in = m.Get(keyMigrateV2) != nil
		}
		return nil
	})
	return in
}

// migrate brings db to schema 2, batch certificates per commit.
func migrate(db *bolt.DB, batch int) error {
	for {
		done, err := migrateStep(db, batch)
		if err != nil {
			return fmt.Errorf("storage: migrate to schema %d: %w", schemaVersion, err)
		}
		if done {
			return nil
		}
	}
}

// migrateStep commits one batch of the migration; done is true once
// nothing is left to do.
func migrateStep(db *bolt.DB, batch int) (done bool, err error) {
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		var m schemaMarker
		if err := json.Unmarshal(meta.Get(keySchema), &m); err != nil {
			return fmt.Errorf("schema marker: %w", err)
		}
		marker := bytes.Clone(meta.Get(keyMigrateV2))
		if m.Version >= schemaVersion && marker == nil {
			done = true
			return nil
		}
		if m.Version < schemaVersion {
			m.Version = schemaVersion
			v, err := json.Marshal(m)
			if err != nil {
				return err
			}
			if err := meta.Put(keySchema, v); err != nil {
				return err
			}
			marker = []byte{'m'}
		}
		if len(marker) == 0 || marker[0] != 'm' {
			return fmt.Errorf("migration marker %q", marker)
		}
		type kv struct{ k, v []byte }
		var todo []kv
		cur := tx.Bucket(bucketCerts).Cursor()
		k, v := cur.First()
		if last := marker[1:]; len(last) > 0 {
			if k, v = cur.Seek(last); bytes.Equal(k, last) {
				k, v = cur.Next()
			}
		}
		for ; k != nil && len(todo) < batch; k, v = cur.Next() {
			todo = append(todo, kv{bytes.Clone(k), bytes.Clone(v)})
		}
		for _, r := range todo {
			c, err := decodeCert(string(r.k), r.v)
			if err != nil {
				return err
			}
			// putCert rewrites the record (JSON → binary) and puts its
			// index entries; the subject entry is there already.
			if err := putCert(tx, c, ""); err != nil {
				return err
			}
		}
		if len(todo) < batch {
			done = true
			return meta.Delete(keyMigrateV2)
		}
		return meta.Put(keyMigrateV2, append([]byte{'m'}, todo[len(todo)-1].k...))
	})
	return done, err
}
