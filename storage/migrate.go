package storage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
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
// serial bytes (bolt.go), and then the index entries, their serial turned
// into bytes; it never decodes a record (see migrateV3Step). Open first
// checks, reading only, that every key has a schema 3 form: if one has
// not, nothing is written and the database stays schema 2, which this
// release refuses to open and the last schema 2 release still reads. The
// first transaction marks the database schema 3, makes the new buckets
// afresh and sets keyMigrateV3; each batch moves its entries (deleting
// them from the schema 2 bucket) and moves keyMigrateV3 past them; the
// last deletes the schema 2 buckets and keyMigrateV3. The new buckets
// have names of their own, so none ever holds keys of both forms.
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
// million certificates take some 12 s, so log (when not nil) hears when it
// starts, how far it is every 100,000 records and when it is done: a CA
// that is upgraded says why it is not listening yet.
func migrate(db *bolt.DB, batch int, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	moved := map[int]int{} // records, by the schema they were brought to
	said := map[int]int{}  // moved, when last logged
	for step := 0; ; step++ {
		done, to, n, err := migrateStep(db, batch)
		if err != nil {
			return fmt.Errorf("storage: migrate to schema %d: %w", schemaVersion, err)
		}
		if done {
			if step > 0 {
				log.Info("storage: migration done; the file keeps its size until anchorage-ca compact", "file", db.Path(),
					"schema", schemaVersion, "records", moved[schemaVersion], "secs", fmt.Sprintf("%.1f", time.Since(start).Seconds()))
			}
			return nil
		}
		if step == 0 {
			log.Info("storage: migrating the database to this release's schema before serving", "file", db.Path(), "schema", schemaVersion)
		}
		moved[to] += n
		if moved[to]-said[to] >= 100_000 {
			said[to] = moved[to]
			log.Info("storage: migrating", "file", db.Path(), "to_schema", to, "records", moved[to])
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

// nextBatch reads up to batch entries of b after the key last (empty:
// from the start).
func nextBatch(b *bolt.Bucket, last []byte, batch int) []kv {
	var todo []kv
	cur := b.Cursor()
	k, v := cur.First()
	if len(last) > 0 {
		if k, v = cur.Seek(last); bytes.Equal(k, last) {
			k, v = cur.Next()
		}
	}
	for ; k != nil && len(todo) < batch; k, v = cur.Next() {
		todo = append(todo, kv{bytes.Clone(k), bytes.Clone(v)})
	}
	return todo
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
	if len(marker) == 0 || marker[0] != 'm' {
		return 0, fmt.Errorf("migration marker %q", marker)
	}
	todo := nextBatch(certs, marker[1:], batch)
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

// migrateV3Step is one batch of schema 2 → 3. It moves bytes and never
// decodes a record: records are copied as they are, and the index entries
// are schema 2's own, their hex serial turned into bytes. So a record this
// release cannot decode (damaged, or DER a newer parser refuses) moves
// like any other and reads as it did, instead of stopping a migration
// that has already marked the file schema 3 — which neither release
// would then open. Phases, each in batches, named by the marker's first
// byte: 'm' the records, 's' the subject index, 't' the state index.
func migrateV3Step(tx *bolt.Tx, m schemaMarker, batch int) (int, error) {
	meta := tx.Bucket(bucketMeta)
	marker := bytes.Clone(meta.Get(keyMigrateV3))
	if m.Version < 3 {
		// Every key must have a schema 3 form before any is written:
		// Open checked already, on its read-only open; this is the
		// backstop, and a refusal leaves the database as it was.
		if err := checkV3Keys(tx); err != nil {
			return 0, fmt.Errorf("%w; the database is left at schema 2", err)
		}
		if err := setVersion(meta, m, 3); err != nil {
			return 0, err
		}
		// Open made them, empty, before migrating; made afresh all the
		// same, so that nothing but this copy is ever in them.
		for _, p := range v3Phases() {
			if tx.Bucket(p.to) != nil {
				if err := tx.DeleteBucket(p.to); err != nil {
					return 0, err
				}
			}
			if _, err := tx.CreateBucket(p.to); err != nil {
				return 0, err
			}
		}
		marker = []byte{'m'}
	}
	if len(marker) == 0 {
		return 0, fmt.Errorf("migration marker %q", marker)
	}
	phases := v3Phases()
	at := slices.IndexFunc(phases, func(p v3Phase) bool { return p.name == marker[0] })
	if at < 0 {
		return 0, fmt.Errorf("migration marker %q", marker)
	}
	ph := phases[at]
	old, dst := tx.Bucket(ph.from), tx.Bucket(ph.to)
	var todo []kv
	if old != nil {
		todo = nextBatch(old, marker[1:], batch)
	}
	// Keys arrive in order: pages fill as they do for appends.
	dst.FillPercent = 0.95
	for _, r := range todo {
		k, err := v3Key(ph.name, r.k)
		if err != nil {
			return 0, err
		}
		if err := dst.Put(k, r.v); err != nil {
			return 0, err
		}
		// Moved, not copied: the next batches reuse the pages it frees,
		// and the file grows by a batch, not by a second copy of every
		// record.
		if err := old.Delete(r.k); err != nil {
			return 0, err
		}
	}
	n := 0
	if ph.name == 'm' {
		n = len(todo)
	}
	if len(todo) == batch {
		return n, meta.Put(keyMigrateV3, append([]byte{ph.name}, todo[len(todo)-1].k...))
	}
	if at+1 < len(phases) {
		return n, meta.Put(keyMigrateV3, []byte{phases[at+1].name})
	}
	for _, p := range phases {
		if tx.Bucket(p.from) != nil {
			if err := tx.DeleteBucket(p.from); err != nil {
				return 0, err
			}
		}
	}
	return n, meta.Delete(keyMigrateV3)
}

// v3Phase is one bucket schema 2 → 3 moves: from its schema 2 name to its
// schema 3 one.
type v3Phase struct {
	name     byte // in the marker
	from, to []byte
}

func v3Phases() []v3Phase {
	return []v3Phase{{'m', bucketCertsV2, bucketCerts}, {'s', bucketBySubjectV2, bucketBySubject}, {'t', bucketByStateV2, bucketByState}}
}

// v3Key is the schema 3 key of a schema 2 key of phase ph: a record's key
// is its serial; a subject entry is subject ‖ 0 ‖ serial (a serial holds
// no NUL, so the last one ends the subject); a state entry is class ‖
// 8-byte time ‖ serial.
func v3Key(ph byte, k []byte) ([]byte, error) {
	var head, serial []byte
	switch ph {
	case 'm':
		serial = k
	case 's':
		i := bytes.LastIndexByte(k, 0)
		if i < 0 {
			return nil, fmt.Errorf("subject index key %q has no serial", k)
		}
		head, serial = k[:i+1], k[i+1:]
	case 't':
		if len(k) < 9 {
			return nil, fmt.Errorf("state index key %q has no serial", k)
		}
		head, serial = k[:9], k[9:]
	}
	b, err := checkSerial(string(serial))
	if err != nil {
		return nil, fmt.Errorf("certificate %w", err)
	}
	return append(bytes.Clone(head), b...), nil
}

// checkV3Keys refuses a schema 2 database holding a key schema 3 cannot
// form (a serial that is not lowercase hex of whole bytes), reading only.
func checkV3Keys(tx *bolt.Tx) error {
	for _, ph := range v3Phases() {
		b := tx.Bucket(ph.from)
		if b == nil {
			continue
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if _, err := v3Key(ph.name, k); err != nil {
				return err
			}
		}
	}
	return nil
}
