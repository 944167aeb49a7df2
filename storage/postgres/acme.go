package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/anchorage-pki/anchorage/storage"
)

// ACME state has the same rules as in the bbolt backend (storage/acme.go):
// caps counted in the transaction that creates the order, an order turned
// valid in its certificate's transaction, prune and resolve. Records are
// JSON in rec with the columns the rules query beside them.

func getJSON[T any](ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, table, id string, lock bool) (*T, error) {
	sql := "SELECT rec FROM " + table + " WHERE id = $1"
	if lock {
		sql += " FOR UPDATE"
	}
	var rec []byte
	if err := q.QueryRow(ctx, sql, id).Scan(&rec); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, storage.ErrNotFound
		}
		return nil, err
	}
	out := new(T)
	if err := json.Unmarshal(rec, out); err != nil {
		return nil, fmt.Errorf("decode %s/%s: %w", table, id, err)
	}
	return out, nil
}

func putAccount(ctx context.Context, tx pgx.Tx, a *storage.ACMEAccount) error {
	rec, err := json.Marshal(a)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO acme_accounts (id, provisioner, thumbprint, rec) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET provisioner = EXCLUDED.provisioner, thumbprint = EXCLUDED.thumbprint, rec = EXCLUDED.rec`,
		a.ID, a.Provisioner, a.Thumbprint, rec)
	return err
}

func putOrder(ctx context.Context, tx pgx.Tx, o *storage.ACMEOrder) error {
	rec, err := json.Marshal(o)
	if err != nil {
		return err
	}
	var certNotAfter *time.Time
	if !o.CertNotAfter.IsZero() {
		certNotAfter = &o.CertNotAfter
	}
	_, err = tx.Exec(ctx, `INSERT INTO acme_orders (id, account_id, status, expires, authzs, cert_not_after, rec) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (id) DO UPDATE SET account_id = EXCLUDED.account_id, status = EXCLUDED.status, expires = EXCLUDED.expires,
		authzs = EXCLUDED.authzs, cert_not_after = EXCLUDED.cert_not_after, rec = EXCLUDED.rec`,
		o.ID, o.AccountID, o.Status, o.Expires, len(o.AuthzIDs), certNotAfter, rec)
	return err
}

func putAuthz(ctx context.Context, tx pgx.Tx, a *storage.ACMEAuthz) error {
	rec, err := json.Marshal(a)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO acme_authzs (id, order_id, rec) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET order_id = EXCLUDED.order_id, rec = EXCLUDED.rec`, a.ID, a.OrderID, rec)
	return err
}

// ACMEAccount returns account id, storage.ErrNotFound if there is none.
func (d *DB) ACMEAccount(ctx context.Context, id string) (*storage.ACMEAccount, error) {
	return getJSON[storage.ACMEAccount](ctx, d.pool, "acme_accounts", id, false)
}

func accountByKey(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, provisioner, thumbprint string) (*storage.ACMEAccount, error) {
	var rec []byte
	err := q.QueryRow(ctx, "SELECT rec FROM acme_accounts WHERE provisioner = $1 AND thumbprint = $2", provisioner, thumbprint).Scan(&rec)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, storage.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	a := new(storage.ACMEAccount)
	return a, json.Unmarshal(rec, a)
}

// ACMEAccountByKey returns the provisioner's account whose key has this
// RFC 7638 thumbprint.
func (d *DB) ACMEAccountByKey(ctx context.Context, provisioner, thumbprint string) (*storage.ACMEAccount, error) {
	return accountByKey(ctx, d.pool, provisioner, thumbprint)
}

// CreateACMEAccount stores a new account with its key (and EAB key) bound
// to it, or returns the account the key holds already.
// storage.ErrACMEEABBound if the EAB key binds an account already.
func (d *DB) CreateACMEAccount(ctx context.Context, a *storage.ACMEAccount) (*storage.ACMEAccount, error) {
	var out *storage.ACMEAccount
	err := d.write(ctx, func(tx pgx.Tx) error {
		out = nil
		if cur, err := accountByKey(ctx, tx, a.Provisioner, a.Thumbprint); err == nil {
			out = cur
			return nil
		} else if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if a.EABKeyID != "" {
			tag, err := tx.Exec(ctx, "INSERT INTO acme_eab (provisioner, key_id, account_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", a.Provisioner, a.EABKeyID, a.ID)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return storage.ErrACMEEABBound
			}
		}
		out = a
		return putAccount(ctx, tx, a)
	})
	if errors.Is(err, storage.ErrACMEEABBound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("storage: create ACME account: %w", err)
	}
	return out, nil
}

// UpdateACMEAccount applies fn to account id and stores the result. fn
// must not change the key; see RekeyACMEAccount.
func (d *DB) UpdateACMEAccount(ctx context.Context, id string, fn func(*storage.ACMEAccount) error) (*storage.ACMEAccount, error) {
	var a *storage.ACMEAccount
	err := d.write(ctx, func(tx pgx.Tx) (err error) {
		if a, err = getJSON[storage.ACMEAccount](ctx, tx, "acme_accounts", id, true); err != nil {
			return err
		}
		tp := a.Thumbprint
		if err := fn(a); err != nil {
			return err
		}
		if a.Thumbprint != tp {
			return errors.New("UpdateACMEAccount must not change the key")
		}
		return putAccount(ctx, tx, a)
	})
	return a, err
}

// RekeyACMEAccount moves account id from the key with oldThumbprint to
// newKey. storage.ErrACMEStale if the account's key is no longer
// oldThumbprint; *storage.ACMEKeyInUseError if newKey holds an account.
func (d *DB) RekeyACMEAccount(ctx context.Context, id, oldThumbprint, newThumbprint string, newKey json.RawMessage) (*storage.ACMEAccount, error) {
	var a *storage.ACMEAccount
	err := d.write(ctx, func(tx pgx.Tx) (err error) {
		if a, err = getJSON[storage.ACMEAccount](ctx, tx, "acme_accounts", id, true); err != nil {
			return err
		}
		if other, err := accountByKey(ctx, tx, a.Provisioner, newThumbprint); err == nil {
			return &storage.ACMEKeyInUseError{AccountID: other.ID}
		} else if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if a.Thumbprint != oldThumbprint {
			return storage.ErrACMEStale
		}
		a.Key, a.Thumbprint = newKey, newThumbprint
		return putAccount(ctx, tx, a)
	})
	return a, err
}

// CreateACMEOrder stores a new order with its authorizations unless the
// account's unfinished orders would exceed lim (*storage.ACMELimitError).
// Counting and storing share the serializable transaction.
func (d *DB) CreateACMEOrder(ctx context.Context, o *storage.ACMEOrder, authzs []*storage.ACMEAuthz, lim storage.ACMEOrderLimits) error {
	err := d.write(ctx, func(tx pgx.Tx) error {
		if err := checkOpen(ctx, tx, o.AccountID, len(authzs), lim); err != nil {
			return err
		}
		for _, az := range authzs {
			if err := putAuthz(ctx, tx, az); err != nil {
				return err
			}
		}
		return putOrder(ctx, tx, o)
	})
	var le *storage.ACMELimitError
	if errors.As(err, &le) {
		return err
	}
	if err != nil {
		return fmt.Errorf("storage: create ACME order: %w", err)
	}
	return nil
}

func checkOpen(ctx context.Context, tx pgx.Tx, account string, newAuthzs int, lim storage.ACMEOrderLimits) error {
	if lim.Orders <= 0 && lim.Authzs <= 0 {
		return nil
	}
	// Whole seconds, as the bbolt backend's index keeps them.
	rows, err := tx.Query(ctx, "SELECT expires, authzs FROM acme_orders WHERE account_id = $1 AND status IN ('pending', 'ready')", account)
	if err != nil {
		return err
	}
	defer rows.Close()
	var orders, authzs int
	var oldest time.Time
	for rows.Next() {
		var exp time.Time
		var n int
		if err := rows.Scan(&exp, &n); err != nil {
			return err
		}
		exp = time.Unix(exp.Unix(), 0)
		if !lim.Now.Before(exp) {
			continue // expired: invalid, waiting for the prune
		}
		orders++
		authzs += n
		if oldest.IsZero() || exp.Before(oldest) {
			oldest = exp
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if lim.Orders > 0 && orders+1 > lim.Orders {
		return &storage.ACMELimitError{What: "orders", Limit: lim.Orders, RetryAt: oldest}
	}
	if lim.Authzs > 0 && authzs+newAuthzs > lim.Authzs {
		if oldest.IsZero() {
			oldest = lim.Now
		}
		return &storage.ACMELimitError{What: "authorizations", Limit: lim.Authzs, RetryAt: oldest}
	}
	return nil
}

// ACMEOrder returns order id, storage.ErrNotFound if there is none.
func (d *DB) ACMEOrder(ctx context.Context, id string) (*storage.ACMEOrder, error) {
	return getJSON[storage.ACMEOrder](ctx, d.pool, "acme_orders", id, false)
}

// ACMEAuthz returns authorization id, storage.ErrNotFound if there is none.
func (d *DB) ACMEAuthz(ctx context.Context, id string) (*storage.ACMEAuthz, error) {
	return getJSON[storage.ACMEAuthz](ctx, d.pool, "acme_authzs", id, false)
}

// UpdateACMEAuthz applies fn to authorization id, its order and all the
// order's authorizations in one transaction, and stores a and o as fn
// leaves them. fn may run more than once and must only change its
// arguments; an error from fn stores nothing.
func (d *DB) UpdateACMEAuthz(ctx context.Context, id string, fn func(a *storage.ACMEAuthz, o *storage.ACMEOrder, all []*storage.ACMEAuthz) error) error {
	return d.write(ctx, func(tx pgx.Tx) error {
		a, err := getJSON[storage.ACMEAuthz](ctx, tx, "acme_authzs", id, true)
		if err != nil {
			return err
		}
		o, err := getJSON[storage.ACMEOrder](ctx, tx, "acme_orders", a.OrderID, true)
		if err != nil {
			return fmt.Errorf("order of authorization %s: %w", id, err)
		}
		all := make([]*storage.ACMEAuthz, 0, len(o.AuthzIDs))
		for _, oid := range o.AuthzIDs {
			if oid == id {
				all = append(all, a)
				continue
			}
			other, err := getJSON[storage.ACMEAuthz](ctx, tx, "acme_authzs", oid, false)
			if err != nil {
				return fmt.Errorf("authorization %s of order %s: %w", oid, o.ID, err)
			}
			all = append(all, other)
		}
		if err := fn(a, o, all); err != nil {
			return err
		}
		if err := putAuthz(ctx, tx, a); err != nil {
			return err
		}
		return putOrder(ctx, tx, o)
	})
}

// ClaimACMEOrder moves order id from ready to processing for a finalize.
// If it was not ready (or expired at now) the error wraps
// storage.ErrACMEOrderState and nothing changes.
func (d *DB) ClaimACMEOrder(ctx context.Context, id string, now time.Time) (*storage.ACMEOrder, error) {
	var o *storage.ACMEOrder
	err := d.write(ctx, func(tx pgx.Tx) (err error) {
		if o, err = getJSON[storage.ACMEOrder](ctx, tx, "acme_orders", id, true); err != nil {
			return err
		}
		if o.Status != storage.ACMEReady || !now.Before(o.Expires) {
			return fmt.Errorf("%w: order %s is %s", storage.ErrACMEOrderState, id, o.Status)
		}
		o.Status = storage.ACMEProcessing
		return putOrder(ctx, tx, o)
	})
	return o, err
}

// ReleaseACMEOrder ends a finalize that did not issue: the order goes from
// processing to status. An order no longer processing is left alone.
func (d *DB) ReleaseACMEOrder(ctx context.Context, id, status string, problem json.RawMessage) error {
	return d.write(ctx, func(tx pgx.Tx) error {
		o, err := getJSON[storage.ACMEOrder](ctx, tx, "acme_orders", id, true)
		if err != nil || o.Status != storage.ACMEProcessing {
			return err
		}
		o.Status, o.Error = status, problem
		return putOrder(ctx, tx, o)
	})
}

// orderIssuedInTx marks the order of a newly stored certificate valid, in
// the certificate's own transaction; it refuses an order not processing.
func orderIssuedInTx(ctx context.Context, tx pgx.Tx, c *storage.Cert) error {
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM certs WHERE serial = $1)", c.Serial).Scan(&exists); err != nil || exists {
		return err
	}
	o, err := getJSON[storage.ACMEOrder](ctx, tx, "acme_orders", c.Order, true)
	if err != nil {
		return fmt.Errorf("ACME order %s of certificate %s: %w", c.Order, c.Serial, err)
	}
	if o.Status != storage.ACMEProcessing {
		return fmt.Errorf("%w: ACME order %s is %s, not processing", storage.ErrACMEOrderState, o.ID, o.Status)
	}
	o.Status, o.CertSerial, o.CertNotAfter, o.Error = storage.ACMEValid, c.Serial, c.NotAfter, nil
	return putOrder(ctx, tx, o)
}

// ResolveACMEOrders settles orders left processing by a finalize that
// never finished: fn gets each with the certificate recorded for it (nil
// if none), and the order is stored as fn leaves it.
func (d *DB) ResolveACMEOrders(ctx context.Context, fn func(o *storage.ACMEOrder, c *storage.Cert)) (int, error) {
	n := 0
	err := d.write(ctx, func(tx pgx.Tx) error {
		n = 0
		rows, err := tx.Query(ctx, "SELECT rec FROM acme_orders WHERE status = $1 ORDER BY id FOR UPDATE", storage.ACMEProcessing)
		if err != nil {
			return err
		}
		var stuck []*storage.ACMEOrder
		for rows.Next() {
			var rec []byte
			if err := rows.Scan(&rec); err != nil {
				rows.Close()
				return err
			}
			o := new(storage.ACMEOrder)
			if err := json.Unmarshal(rec, o); err != nil {
				rows.Close()
				return fmt.Errorf("decode order: %w", err)
			}
			stuck = append(stuck, o)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, o := range stuck {
			c, err := scanCert(tx.QueryRow(ctx, "SELECT rec FROM certs WHERE order_id = $1 ORDER BY serial LIMIT 1", o.ID))
			if errors.Is(err, storage.ErrNotFound) {
				c = nil
			} else if err != nil {
				return err
			}
			fn(o, c)
			if err := putOrder(ctx, tx, o); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("storage: resolve ACME orders: %w", err)
	}
	return n, nil
}

// PruneACME deletes orders that expiry has made moot, with their
// authorizations: an unfinished or invalid order once it expired, a valid
// one once its certificate has expired too. Processing orders are left to
// ResolveACMEOrders; accounts are kept.
func (d *DB) PruneACME(ctx context.Context, now time.Time) (orders, authzs int, err error) {
	err = d.write(ctx, func(tx pgx.Tx) error {
		orders, authzs = 0, 0
		rows, err := tx.Query(ctx, `DELETE FROM acme_orders WHERE status <> $1
			AND $2 >= CASE WHEN status = $3 AND cert_not_after > expires THEN cert_not_after ELSE expires END
			RETURNING rec`, storage.ACMEProcessing, now, storage.ACMEValid)
		if err != nil {
			return err
		}
		var ids []string
		for rows.Next() {
			var rec []byte
			if err := rows.Scan(&rec); err != nil {
				rows.Close()
				return err
			}
			var o storage.ACMEOrder
			if err := json.Unmarshal(rec, &o); err != nil {
				rows.Close()
				return fmt.Errorf("decode order: %w", err)
			}
			orders++
			ids = append(ids, o.AuthzIDs...)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) > 0 {
			tag, err := tx.Exec(ctx, "DELETE FROM acme_authzs WHERE id = ANY($1)", ids)
			if err != nil {
				return err
			}
			authzs = int(tag.RowsAffected())
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("storage: prune ACME: %w", err)
	}
	return orders, authzs, nil
}
