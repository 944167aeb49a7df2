package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/anchorage-pki/anchorage/storage"
)

// ACME nonces (see storage/nonce.go): the HMAC key is one row every
// replica reads, and a used nonce is a row whose primary key refuses it a
// second time on any replica. Both are single statements in their own
// implicit transaction: an INSERT … ON CONFLICT DO NOTHING on one key is
// atomic at any isolation level (a concurrent insert of the same id waits
// for the first to commit, then does nothing), so no SERIALIZABLE retry
// loop is needed for them.

// NonceKey returns the ACME nonce HMAC key, creating it on first use: the
// first replica's random key wins and every replica reads that one.
func (d *DB) NonceKey(ctx context.Context) ([]byte, error) {
	key, err := d.nonceKey(ctx)
	if errors.Is(err, pgx.ErrNoRows) {
		k := make([]byte, storage.NonceKeySize)
		if _, err := rand.Read(k); err != nil {
			return nil, fmt.Errorf("storage: nonce key: %w", err)
		}
		if _, err := d.pool.Exec(ctx, "INSERT INTO acme_nonce_key (key) VALUES ($1) ON CONFLICT DO NOTHING", k); err != nil {
			return nil, fmt.Errorf("storage: create nonce key: %w", unavailable(err))
		}
		key, err = d.nonceKey(ctx) // ours, or the one a replica inserted first
	}
	if err != nil {
		return nil, fmt.Errorf("storage: nonce key: %w", unavailable(err))
	}
	if len(key) != storage.NonceKeySize {
		return nil, fmt.Errorf("storage: nonce key has %d bytes, want %d", len(key), storage.NonceKeySize)
	}
	return key, nil
}

func (d *DB) nonceKey(ctx context.Context) ([]byte, error) {
	var key []byte
	err := d.pool.QueryRow(ctx, "SELECT key FROM acme_nonce_key").Scan(&key)
	return key, err
}

// UseNonce records nonce id as used until expires and reports whether it
// was fresh; of concurrent uses of one id on any replicas one sees true.
func (d *DB) UseNonce(ctx context.Context, id string, expires time.Time) (bool, error) {
	tag, err := d.pool.Exec(ctx, "INSERT INTO acme_nonces (id, expires) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING", id, expires)
	if err != nil {
		return false, fmt.Errorf("storage: use nonce: %w", unavailable(err))
	}
	return tag.RowsAffected() == 1, nil
}

// PruneNonces deletes used nonce ids whose expiry is before now.
func (d *DB) PruneNonces(ctx context.Context, now time.Time) (int, error) {
	tag, err := d.pool.Exec(ctx, "DELETE FROM acme_nonces WHERE expires < $1", now)
	if err != nil {
		return 0, fmt.Errorf("storage: prune nonces: %w", unavailable(err))
	}
	return int(tag.RowsAffected()), nil
}
