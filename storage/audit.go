package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// AuditSnapshot is what the last `anchorage-ca audit` saw, kept so the next
// one reports what changed since (subjects new at AWS, for one). Storage
// keeps only the newest; Data is opaque here: its format belongs to package
// audit.
type AuditSnapshot struct {
	TakenAt time.Time       `json:"takenAt"`
	Data    json.RawMessage `json:"data"`
}

// The audit bucket is created by the first snapshot, so files made before
// audits existed open unchanged and read as having no snapshot.
var (
	bucketAudit    = []byte("audit")
	keyAuditLatest = []byte("latest")
)

// PutAuditSnapshot replaces the stored audit snapshot with s.
func (d *DB) PutAuditSnapshot(ctx context.Context, s AuditSnapshot) error {
	if !json.Valid(s.Data) {
		return errors.New("storage: audit snapshot data is not JSON")
	}
	v, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return d.group.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketAudit)
		if err != nil {
			return err
		}
		return b.Put(keyAuditLatest, v)
	})
}

// AuditSnapshot returns the newest audit snapshot, or ErrNotFound before
// the first audit.
func (d *DB) AuditSnapshot(ctx context.Context) (AuditSnapshot, error) {
	var s AuditSnapshot
	err := d.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		if b == nil {
			return ErrNotFound
		}
		v := b.Get(keyAuditLatest)
		if v == nil {
			return ErrNotFound
		}
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("storage: audit snapshot: %w", err)
		}
		return nil
	})
	return s, err
}
