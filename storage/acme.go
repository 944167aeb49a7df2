package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ACME state — accounts, their key and EAB indexes, orders and
// authorizations with their challenges — lives in the CA's one file, so an
// order's final state commits in the transaction that stores its
// certificate (orderIssuedInTx) and nothing ACME knows can disagree with
// the record of truth after a crash.
//
// The records are typed so that storage can apply the few rules that must
// hold inside a transaction (claim, issue, per-account caps, prune) and a
// PostgreSQL implementation can give them columns. What storage never
// interprets stays opaque JSON: the account's JWK and the RFC 7807 problem
// documents, whose format belongs to package acme.
//
// The buckets are created by the first write that needs them, so files made
// before ACME moved here open unchanged, and reads of a missing bucket are
// reads of an empty one.
var (
	bucketACMEAccounts = []byte("acme_accounts") // account id -> ACMEAccount JSON
	bucketACMEKeys     = []byte("acme_keys")     // provisioner \x00 JWK thumbprint -> account id
	bucketACMEEAB      = []byte("acme_eab")      // provisioner \x00 EAB key id -> account id
	bucketACMEOrders   = []byte("acme_orders")   // order id -> ACMEOrder JSON
	bucketACMEAuthzs   = []byte("acme_authzs")   // authz id -> ACMEAuthz JSON
	// account id \x00 order id -> expires (unix, 8 bytes BE) + authorizations
	// (4 bytes BE), for every order not yet finalized: the per-account caps
	// count it without reading orders.
	bucketACMEOpen = []byte("acme_open")
)

// ACME status values (RFC 8555 §7.1.6) that storage acts on.
const (
	ACMEPending    = "pending"
	ACMEReady      = "ready"
	ACMEProcessing = "processing"
	ACMEValid      = "valid"
	ACMEInvalid    = "invalid"
)

// Errors of the ACME methods that callers branch on.
var (
	// ErrACMEEABBound: the external account key already binds an account.
	ErrACMEEABBound = errors.New("external account key is already bound to an account")
	// ErrACMEStale: the record changed since the caller read it.
	ErrACMEStale = errors.New("ACME record changed meanwhile")
	// ErrACMEOrderState: the order is not in the state the operation needs
	// (finalize of an order not ready, issuing for one not processing).
	ErrACMEOrderState = errors.New("ACME order is not in the required state")
)

// ACMEKeyInUseError is returned by RekeyACMEAccount when the new key
// already belongs to an account (RFC 8555 §7.3.5 answers 409 with its URL).
type ACMEKeyInUseError struct{ AccountID string }

func (e *ACMEKeyInUseError) Error() string {
	return "the key already belongs to ACME account " + e.AccountID
}

// ACMELimitError is returned by CreateACMEOrder when the account has too
// much unfinished work. RetryAt is when the oldest unfinished order expires
// and so frees its share.
type ACMELimitError struct {
	What    string // "orders" or "authorizations"
	Limit   int
	RetryAt time.Time
}

func (e *ACMELimitError) Error() string {
	return fmt.Sprintf("account has %d unfinished %s already (the limit)", e.Limit, e.What)
}

// ACMEIdentifier is an order's identifier (RFC 8555 §9.7.7).
type ACMEIdentifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// ACMEAccount is an ACME account. The JSON names are those acme.db used,
// so ImportLegacyACME copies records as they are.
type ACMEAccount struct {
	ID          string          `json:"id"`
	Provisioner string          `json:"provisioner"`
	Key         json.RawMessage `json:"key"` // the account's public JWK
	Thumbprint  string          `json:"thumbprint"`
	Status      string          `json:"status"`
	Contact     []string        `json:"contact,omitempty"`
	EABKeyID    string          `json:"eabKeyId,omitempty"`
	CreatedAt   time.Time       `json:"createdAt"`
}

// ACMEOrder is an order. CertSerial and CertNotAfter are set in the
// certificate's own commit; a valid order is kept while its certificate
// lives, so the ordering account can still download and revoke it.
type ACMEOrder struct {
	ID           string           `json:"id"`
	AccountID    string           `json:"accountId"`
	Status       string           `json:"status"`
	Expires      time.Time        `json:"expires"`
	Identifiers  []ACMEIdentifier `json:"identifiers"`
	AuthzIDs     []string         `json:"authzIds"`
	Error        json.RawMessage  `json:"error,omitempty"` // problem document
	CertSerial   string           `json:"certSerial,omitempty"`
	CertNotAfter time.Time        `json:"certNotAfter,omitzero"`
}

// ACMEAuthz is an authorization; it belongs to one order.
type ACMEAuthz struct {
	ID         string          `json:"id"`
	AccountID  string          `json:"accountId"`
	OrderID    string          `json:"orderId"`
	Identifier ACMEIdentifier  `json:"identifier"`
	Wildcard   bool            `json:"wildcard,omitempty"`
	Status     string          `json:"status"`
	Expires    time.Time       `json:"expires"`
	Challenges []ACMEChallenge `json:"challenges"`
}

// ACMEChallenge is one challenge of an authorization.
type ACMEChallenge struct {
	Type      string          `json:"type"`
	Token     string          `json:"token"`
	Status    string          `json:"status"`
	Validated time.Time       `json:"validated,omitzero"`
	Error     json.RawMessage `json:"error,omitempty"` // problem document
}

// ACMEOrderLimits caps an account's unfinished (pending or ready, unexpired)
// orders and the authorizations they hold. Zero means no cap.
type ACMEOrderLimits struct {
	Orders, Authzs int
	Now            time.Time
}

// bucket returns a bucket for writing, creating it on first use.
func bucket(tx *bolt.Tx, name []byte) (*bolt.Bucket, error) {
	if b := tx.Bucket(name); b != nil {
		return b, nil
	}
	return tx.CreateBucket(name)
}

func getJSON[T any](tx *bolt.Tx, name []byte, key string) (*T, error) {
	b := tx.Bucket(name)
	if b == nil {
		return nil, ErrNotFound
	}
	v := b.Get([]byte(key))
	if v == nil {
		return nil, ErrNotFound
	}
	out := new(T)
	if err := json.Unmarshal(v, out); err != nil {
		return nil, fmt.Errorf("decode %s/%s: %w", name, key, err)
	}
	return out, nil
}

func putJSON(tx *bolt.Tx, name []byte, key string, v any) error {
	b, err := bucket(tx, name)
	if err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

func pair(a, b string) []byte { return []byte(a + "\x00" + b) }

// putOrder stores o and keeps the index of unfinished orders in step.
func putOrder(tx *bolt.Tx, o *ACMEOrder) error {
	if err := putJSON(tx, bucketACMEOrders, o.ID, o); err != nil {
		return err
	}
	open, err := bucket(tx, bucketACMEOpen)
	if err != nil {
		return err
	}
	if o.Status != ACMEPending && o.Status != ACMEReady {
		return open.Delete(pair(o.AccountID, o.ID))
	}
	var v [12]byte
	binary.BigEndian.PutUint64(v[:8], uint64(o.Expires.Unix()))
	binary.BigEndian.PutUint32(v[8:], uint32(len(o.AuthzIDs)))
	return open.Put(pair(o.AccountID, o.ID), v[:])
}

// ACMEAccount returns account id, ErrNotFound if there is none.
func (d *DB) ACMEAccount(ctx context.Context, id string) (*ACMEAccount, error) {
	var a *ACMEAccount
	err := d.view(func(tx *bolt.Tx) (err error) {
		a, err = getJSON[ACMEAccount](tx, bucketACMEAccounts, id)
		return err
	})
	return a, err
}

func accountByKey(tx *bolt.Tx, provisioner, thumbprint string) (*ACMEAccount, error) {
	b := tx.Bucket(bucketACMEKeys)
	if b == nil {
		return nil, ErrNotFound
	}
	id := b.Get(pair(provisioner, thumbprint))
	if id == nil {
		return nil, ErrNotFound
	}
	return getJSON[ACMEAccount](tx, bucketACMEAccounts, string(id))
}

// ACMEAccountByKey returns the provisioner's account whose key has this
// RFC 7638 thumbprint. The same key may hold one account per provisioner.
func (d *DB) ACMEAccountByKey(ctx context.Context, provisioner, thumbprint string) (*ACMEAccount, error) {
	var a *ACMEAccount
	err := d.view(func(tx *bolt.Tx) (err error) { a, err = accountByKey(tx, provisioner, thumbprint); return err })
	return a, err
}

// CreateACMEAccount stores a new account with its key (and EAB key, if
// any) bound to it. If the key already holds an account of the provisioner
// — a concurrent newAccount with the same key — that account is returned
// and nothing is stored. An EAB key bound before gives ErrACMEEABBound.
func (d *DB) CreateACMEAccount(ctx context.Context, a *ACMEAccount) (*ACMEAccount, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out *ACMEAccount
	err := d.group.do(func(tx *bolt.Tx) error {
		out = nil
		if cur, err := accountByKey(tx, a.Provisioner, a.Thumbprint); err == nil {
			out = cur
			return nil
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if a.EABKeyID != "" {
			eab, err := bucket(tx, bucketACMEEAB)
			if err != nil {
				return err
			}
			if eab.Get(pair(a.Provisioner, a.EABKeyID)) != nil {
				return ErrACMEEABBound
			}
			if err := eab.Put(pair(a.Provisioner, a.EABKeyID), []byte(a.ID)); err != nil {
				return err
			}
		}
		keys, err := bucket(tx, bucketACMEKeys)
		if err != nil {
			return err
		}
		if err := keys.Put(pair(a.Provisioner, a.Thumbprint), []byte(a.ID)); err != nil {
			return err
		}
		out = a
		return putJSON(tx, bucketACMEAccounts, a.ID, a)
	})
	if errors.Is(err, ErrACMEEABBound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("storage: create ACME account: %w", err)
	}
	return out, nil
}

// UpdateACMEAccount applies fn to account id and stores the result (contact
// changes, deactivation). fn must not change the key; see RekeyACMEAccount.
func (d *DB) UpdateACMEAccount(ctx context.Context, id string, fn func(*ACMEAccount) error) (*ACMEAccount, error) {
	var a *ACMEAccount
	err := d.group.do(func(tx *bolt.Tx) (err error) {
		if a, err = getJSON[ACMEAccount](tx, bucketACMEAccounts, id); err != nil {
			return err
		}
		tp := a.Thumbprint
		if err := fn(a); err != nil {
			return err
		}
		if a.Thumbprint != tp {
			return errors.New("UpdateACMEAccount must not change the key")
		}
		return putJSON(tx, bucketACMEAccounts, id, a)
	})
	return a, err
}

// RekeyACMEAccount moves account id from the key with oldThumbprint to
// newKey (RFC 8555 §7.3.5). ErrACMEStale if the account's key is no longer
// oldThumbprint; *ACMEKeyInUseError if newKey holds an account already.
func (d *DB) RekeyACMEAccount(ctx context.Context, id, oldThumbprint, newThumbprint string, newKey json.RawMessage) (*ACMEAccount, error) {
	var a *ACMEAccount
	err := d.group.do(func(tx *bolt.Tx) (err error) {
		if a, err = getJSON[ACMEAccount](tx, bucketACMEAccounts, id); err != nil {
			return err
		}
		keys, err := bucket(tx, bucketACMEKeys)
		if err != nil {
			return err
		}
		if other := keys.Get(pair(a.Provisioner, newThumbprint)); other != nil {
			return &ACMEKeyInUseError{AccountID: string(other)}
		}
		if a.Thumbprint != oldThumbprint {
			return ErrACMEStale
		}
		if err := keys.Delete(pair(a.Provisioner, oldThumbprint)); err != nil {
			return err
		}
		if err := keys.Put(pair(a.Provisioner, newThumbprint), []byte(a.ID)); err != nil {
			return err
		}
		a.Key, a.Thumbprint = newKey, newThumbprint
		return putJSON(tx, bucketACMEAccounts, id, a)
	})
	return a, err
}

// CreateACMEOrder stores a new order with its authorizations, in one
// commit, unless the account's unfinished orders would exceed lim: then a
// *ACMELimitError and nothing is stored. Counting and storing share the
// transaction, so concurrent requests cannot overshoot the cap together.
func (d *DB) CreateACMEOrder(ctx context.Context, o *ACMEOrder, authzs []*ACMEAuthz, lim ACMEOrderLimits) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := d.group.do(func(tx *bolt.Tx) error {
		if err := checkOpen(tx, o.AccountID, len(authzs), lim); err != nil {
			return err
		}
		for _, az := range authzs {
			if err := putJSON(tx, bucketACMEAuthzs, az.ID, az); err != nil {
				return err
			}
		}
		return putOrder(tx, o)
	})
	var le *ACMELimitError
	if errors.As(err, &le) {
		return err
	}
	if err != nil {
		return fmt.Errorf("storage: create ACME order: %w", err)
	}
	return nil
}

func checkOpen(tx *bolt.Tx, account string, newAuthzs int, lim ACMEOrderLimits) error {
	if lim.Orders <= 0 && lim.Authzs <= 0 {
		return nil
	}
	var orders, authzs int
	var oldest time.Time
	if b := tx.Bucket(bucketACMEOpen); b != nil {
		prefix := []byte(account + "\x00")
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(v) != 12 {
				continue
			}
			exp := time.Unix(int64(binary.BigEndian.Uint64(v[:8])), 0)
			if !lim.Now.Before(exp) {
				continue // expired: invalid, waiting for the prune
			}
			orders++
			authzs += int(binary.BigEndian.Uint32(v[8:]))
			if oldest.IsZero() || exp.Before(oldest) {
				oldest = exp
			}
		}
	}
	if lim.Orders > 0 && orders+1 > lim.Orders {
		return &ACMELimitError{What: "orders", Limit: lim.Orders, RetryAt: oldest}
	}
	if lim.Authzs > 0 && authzs+newAuthzs > lim.Authzs {
		if oldest.IsZero() { // one order alone is over the cap: waiting won't help
			oldest = lim.Now
		}
		return &ACMELimitError{What: "authorizations", Limit: lim.Authzs, RetryAt: oldest}
	}
	return nil
}

// ACMEOrder returns order id, ErrNotFound if there is none.
func (d *DB) ACMEOrder(ctx context.Context, id string) (*ACMEOrder, error) {
	var o *ACMEOrder
	err := d.view(func(tx *bolt.Tx) (err error) { o, err = getJSON[ACMEOrder](tx, bucketACMEOrders, id); return err })
	return o, err
}

// ACMEAuthz returns authorization id, ErrNotFound if there is none.
func (d *DB) ACMEAuthz(ctx context.Context, id string) (*ACMEAuthz, error) {
	var a *ACMEAuthz
	err := d.view(func(tx *bolt.Tx) (err error) { a, err = getJSON[ACMEAuthz](tx, bucketACMEAuthzs, id); return err })
	return a, err
}

// UpdateACMEAuthz applies fn to authorization id, its order and all the
// order's authorizations (a is also in all), in one transaction, and stores
// a and o as fn leaves them: a challenge result and the order state it
// implies commit together. fn may run more than once (group commit) and
// must only change its arguments; an error from fn stores nothing.
func (d *DB) UpdateACMEAuthz(ctx context.Context, id string, fn func(a *ACMEAuthz, o *ACMEOrder, all []*ACMEAuthz) error) error {
	return d.group.do(func(tx *bolt.Tx) error {
		a, err := getJSON[ACMEAuthz](tx, bucketACMEAuthzs, id)
		if err != nil {
			return err
		}
		o, err := getJSON[ACMEOrder](tx, bucketACMEOrders, a.OrderID)
		if err != nil {
			return fmt.Errorf("order of authorization %s: %w", id, err)
		}
		all := make([]*ACMEAuthz, 0, len(o.AuthzIDs))
		for _, oid := range o.AuthzIDs {
			if oid == id {
				all = append(all, a)
				continue
			}
			other, err := getJSON[ACMEAuthz](tx, bucketACMEAuthzs, oid)
			if err != nil {
				return fmt.Errorf("authorization %s of order %s: %w", oid, o.ID, err)
			}
			all = append(all, other)
		}
		if err := fn(a, o, all); err != nil {
			return err
		}
		if err := putJSON(tx, bucketACMEAuthzs, a.ID, a); err != nil {
			return err
		}
		return putOrder(tx, o)
	})
}

// ClaimACMEOrder moves order id from ready to processing for a finalize,
// so that a concurrent finalize cannot issue twice. It returns the order as
// it was found; if it was not ready (or expired at now) the error wraps
// ErrACMEOrderState and nothing changes.
func (d *DB) ClaimACMEOrder(ctx context.Context, id string, now time.Time) (*ACMEOrder, error) {
	var o *ACMEOrder
	err := d.group.do(func(tx *bolt.Tx) (err error) {
		if o, err = getJSON[ACMEOrder](tx, bucketACMEOrders, id); err != nil {
			return err
		}
		if o.Status != ACMEReady || !now.Before(o.Expires) {
			return fmt.Errorf("%w: order %s is %s", ErrACMEOrderState, id, o.Status)
		}
		o.Status = ACMEProcessing
		return putOrder(tx, o)
	})
	return o, err
}

// ReleaseACMEOrder ends a finalize that did not issue: the order goes from
// processing to status (ready for another CSR, or invalid with problem).
// An order no longer processing — issued meanwhile — is left alone.
func (d *DB) ReleaseACMEOrder(ctx context.Context, id, status string, problem json.RawMessage) error {
	return d.group.do(func(tx *bolt.Tx) error {
		o, err := getJSON[ACMEOrder](tx, bucketACMEOrders, id)
		if err != nil || o.Status != ACMEProcessing {
			return err
		}
		o.Status, o.Error = status, problem
		return putOrder(tx, o)
	})
}

// orderIssuedInTx marks the order of a newly stored certificate valid, in
// the certificate's own transaction: either both are durable or neither.
// It refuses an order that is not processing (not claimed by a finalize),
// so a certificate never commits behind an order that could issue again.
// putCert calls it before writing the record: a record already there is a
// rewrite (a revocation), not an issuance, and its order — valid, or
// pruned once the certificate expired — is left alone.
func orderIssuedInTx(tx *bolt.Tx, c *Cert) error {
	if k, ok := serialKey(c.Serial); ok && tx.Bucket(bucketCerts).Get(k) != nil {
		return nil
	}
	o, err := getJSON[ACMEOrder](tx, bucketACMEOrders, c.Order)
	if err != nil {
		return fmt.Errorf("ACME order %s of certificate %s: %w", c.Order, c.Serial, err)
	}
	if o.Status != ACMEProcessing {
		return fmt.Errorf("%w: ACME order %s is %s, not processing", ErrACMEOrderState, o.ID, o.Status)
	}
	o.Status, o.CertSerial, o.CertNotAfter, o.Error = ACMEValid, c.Serial, c.NotAfter, nil
	return putOrder(tx, o)
}

// ResolveACMEOrders settles, at start, orders left processing by a finalize
// that never finished. For each it calls fn with the certificate recorded
// for the order (nil if none) and stores the order as fn leaves it. With
// orderIssuedInTx an order and its certificate commit together, so the
// certificate is found only in state written otherwise; the scan for it
// runs only when some order is processing.
func (d *DB) ResolveACMEOrders(ctx context.Context, fn func(o *ACMEOrder, c *Cert)) (int, error) {
	n := 0
	err := d.group.update(func(tx *bolt.Tx) error {
		n = 0
		ob := tx.Bucket(bucketACMEOrders)
		if ob == nil {
			return nil
		}
		stuck := map[string]*ACMEOrder{}
		err := ob.ForEach(func(k, v []byte) error {
			var o ACMEOrder
			if err := json.Unmarshal(v, &o); err != nil {
				return fmt.Errorf("decode order %s: %w", k, err)
			}
			if o.Status == ACMEProcessing {
				stuck[o.ID] = &o
			}
			return nil
		})
		if err != nil || len(stuck) == 0 {
			return err
		}
		found := map[string]*Cert{}
		err = tx.Bucket(bucketCerts).ForEach(func(k, v []byte) error {
			if stuck[recordOrder(v)] == nil {
				return nil
			}
			c, err := decodeCert(serialOf(k), v)
			if err != nil {
				return err
			}
			found[c.Order] = c
			return nil
		})
		if err != nil {
			return err
		}
		for id, o := range stuck {
			fn(o, found[id])
			if err := putOrder(tx, o); err != nil {
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
// authorizations and challenges: an unfinished or invalid order once it
// expired, a valid one once its certificate has expired too (until then
// the ordering account may download and revoke it). Processing orders are
// left to ResolveACMEOrders. Accounts are kept. It returns how many orders
// and authorizations it deleted.
func (d *DB) PruneACME(ctx context.Context, now time.Time) (orders, authzs int, err error) {
	err = d.group.update(func(tx *bolt.Tx) error {
		orders, authzs = 0, 0
		ob := tx.Bucket(bucketACMEOrders)
		if ob == nil {
			return nil
		}
		ab, open := tx.Bucket(bucketACMEAuthzs), tx.Bucket(bucketACMEOpen)
		c := ob.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var o ACMEOrder
			if err := json.Unmarshal(v, &o); err != nil {
				return fmt.Errorf("decode order %s: %w", k, err)
			}
			until := o.Expires
			switch o.Status {
			case ACMEProcessing:
				continue
			case ACMEValid:
				if o.CertNotAfter.After(until) {
					until = o.CertNotAfter
				}
			}
			if now.Before(until) {
				continue
			}
			if err := c.Delete(); err != nil {
				return err
			}
			orders++
			for _, id := range o.AuthzIDs {
				if ab != nil && ab.Get([]byte(id)) != nil {
					if err := ab.Delete([]byte(id)); err != nil {
						return err
					}
					authzs++
				}
			}
			if open != nil {
				if err := open.Delete(pair(o.AccountID, o.ID)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("storage: prune ACME: %w", err)
	}
	return orders, authzs, nil
}

// ImportLegacyACME copies accounts and their key and EAB bindings from the
// acme.db that package acme used to keep apart (a bbolt file) into this one, and
// then renames it to path+".imported" so it is imported once. Accounts the
// CA knows already are kept as they are, so a crash between the commit and
// the rename only repeats a harmless import. Orders, authorizations and
// certificate links are not carried over: unfinished orders expire within
// a day and clients make new ones. It returns the number of accounts added.
func (d *DB) ImportLegacyACME(ctx context.Context, path string) (int, error) {
	old, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 3 * time.Second})
	if err != nil {
		return 0, fmt.Errorf("storage: open legacy %s: %w", path, err)
	}
	n := 0
	err = old.View(func(otx *bolt.Tx) error {
		return d.group.update(func(tx *bolt.Tx) error {
			n = 0
			for _, m := range []struct{ from, to []byte }{
				{[]byte("accounts"), bucketACMEAccounts},
				{[]byte("keys"), bucketACMEKeys},
				{[]byte("eab"), bucketACMEEAB},
			} {
				src := otx.Bucket(m.from)
				if src == nil {
					continue
				}
				dst, err := bucket(tx, m.to)
				if err != nil {
					return err
				}
				err = src.ForEach(func(k, v []byte) error {
					if dst.Get(k) != nil {
						return nil
					}
					if bytes.Equal(m.to, bucketACMEAccounts) {
						n++
					}
					return dst.Put(bytes.Clone(k), bytes.Clone(v))
				})
				if err != nil {
					return err
				}
			}
			return nil
		})
	})
	if cerr := old.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("storage: import legacy %s: %w", path, err)
	}
	if err := os.Rename(path, path+".imported"); err != nil {
		return n, fmt.Errorf("storage: imported %s but could not rename it: %w", path, err)
	}
	return n, nil
}
