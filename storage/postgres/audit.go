package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/anchorage-pki/anchorage/storage"
)

// PutAuditSnapshot replaces the stored audit snapshot with s.
func (d *DB) PutAuditSnapshot(ctx context.Context, s storage.AuditSnapshot) error {
	if !json.Valid(s.Data) {
		return errors.New("storage: audit snapshot data is not JSON")
	}
	return d.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO audit_snapshot (id, taken_at, data) VALUES (true, $1, $2)
			ON CONFLICT (id) DO UPDATE SET taken_at = EXCLUDED.taken_at, data = EXCLUDED.data`, s.TakenAt, string(s.Data))
		return err
	})
}

// AuditSnapshot returns the newest audit snapshot, or storage.ErrNotFound
// before the first audit.
func (d *DB) AuditSnapshot(ctx context.Context) (storage.AuditSnapshot, error) {
	var s storage.AuditSnapshot
	var data string
	err := d.pool.QueryRow(ctx, "SELECT taken_at, data::text FROM audit_snapshot WHERE id").Scan(&s.TakenAt, &data)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, storage.ErrNotFound
	}
	if err != nil {
		return s, fmt.Errorf("storage: audit snapshot: %w", err)
	}
	s.Data = json.RawMessage(data)
	return s, nil
}
