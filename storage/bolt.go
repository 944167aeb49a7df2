package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketCerts     = []byte("certs")      // serial -> Cert JSON
	bucketBySubject = []byte("by_subject") // subject \x00 serial -> nil
	bucketRevoked   = []byte("revoked")    // serial -> revocation JSON (CRL source)
	bucketTokens    = []byte("tokens")     // jti -> expiry (unix seconds, big endian)
	bucketMeta      = []byte("meta")       // crl_number, crl_der
	bucketAnchors   = []byte("anchors")    // trust anchor ARN -> AnchorStatus JSON

	// buckets is every bucket an anchorage database has. Create makes them
	// all; Open adds the ones a database from an older release lacks.
	buckets = [][]byte{bucketCerts, bucketBySubject, bucketRevoked, bucketTokens, bucketMeta, bucketAnchors}

	keyCRLNumber = []byte("crl_number")
	keyCRLDER    = []byte("crl_der")
)

// DB is the bbolt-backed store.
type DB struct {
	db    *bolt.DB
	group *groupCommit
}

// newDB wraps a bolt file that Open or Create (open.go) has checked.
func newDB(db *bolt.DB) *DB { return &DB{db: db, group: &groupCommit{db: db}} }

// Close releases the file.
func (d *DB) Close() error { return d.db.Close() }

func subjectKey(subject, serial string) []byte {
	k := make([]byte, 0, len(subject)+1+len(serial))
	k = append(k, subject...)
	k = append(k, 0)
	return append(k, serial...)
}

func putCert(tx *bolt.Tx, c *Cert) error {
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketCerts).Put([]byte(c.Serial), v); err != nil {
		return err
	}
	return tx.Bucket(bucketBySubject).Put(subjectKey(c.Subject, c.Serial), nil)
}

// PutCert records an issued certificate durably.
func (d *DB) PutCert(ctx context.Context, c *Cert) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := d.group.do(func(tx *bolt.Tx) error { return putCert(tx, c) }); err != nil {
		return fmt.Errorf("storage: put cert %s: %w", c.Serial, err)
	}
	return nil
}

// PutCerts records many certificates in one commit (imports, tests).
func (d *DB) PutCerts(ctx context.Context, cs []*Cert) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		for _, c := range cs {
			if err := putCert(tx, c); err != nil {
				return fmt.Errorf("storage: put cert %s: %w", c.Serial, err)
			}
		}
		return nil
	})
}

// PutCertUsingToken records the certificate and marks the enrollment token
// jti as used, in one commit: either both are durable or neither is. A jti
// seen before gives ErrTokenUsed and stores nothing.
func (d *DB) PutCertUsingToken(ctx context.Context, c *Cert, jti string, tokenExpiry time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := d.group.do(func(tx *bolt.Tx) error {
		tb := tx.Bucket(bucketTokens)
		if tb.Get([]byte(jti)) != nil {
			return ErrTokenUsed
		}
		var exp [8]byte
		binary.BigEndian.PutUint64(exp[:], uint64(tokenExpiry.Unix()))
		if err := tb.Put([]byte(jti), exp[:]); err != nil {
			return err
		}
		return putCert(tx, c)
	})
	if err == ErrTokenUsed {
		return err
	}
	if err != nil {
		return fmt.Errorf("storage: put cert %s with token: %w", c.Serial, err)
	}
	return nil
}

// TokenUsed reports whether jti has been consumed. It lets a verifier refuse
// a replay before doing any signing work; PutCertUsingToken remains the
// authoritative check.
func (d *DB) TokenUsed(ctx context.Context, jti string) (bool, error) {
	var used bool
	err := d.db.View(func(tx *bolt.Tx) error {
		used = tx.Bucket(bucketTokens).Get([]byte(jti)) != nil
		return nil
	})
	return used, err
}

// PruneTokens forgets used token ids whose tokens have expired: an expired
// token is refused on its expiry alone, so its id no longer needs keeping.
func (d *DB) PruneTokens(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := d.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketTokens).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(v) == 8 && int64(binary.BigEndian.Uint64(v)) < now.Unix() {
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	return n, err
}

// Cert returns the record for serial (lowercase hex).
func (d *DB) Cert(ctx context.Context, serial string) (*Cert, error) {
	var c *Cert
	err := d.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketCerts).Get([]byte(serial))
		if v == nil {
			return ErrNotFound
		}
		c = new(Cert)
		return json.Unmarshal(v, c)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ListCerts returns certificates matching f, newest first when filtered by
// subject, in serial order otherwise.
func (d *DB) ListCerts(ctx context.Context, f Filter, now time.Time) ([]*Cert, error) {
	var out []*Cert
	match := func(c *Cert) bool {
		if f.Status != "" && c.Status != f.Status {
			return false
		}
		if f.Live && c.Expired(now) {
			return false
		}
		return true
	}
	err := d.db.View(func(tx *bolt.Tx) error {
		certs := tx.Bucket(bucketCerts)
		add := func(v []byte) (bool, error) {
			c := new(Cert)
			if err := json.Unmarshal(v, c); err != nil {
				return false, err
			}
			if match(c) {
				out = append(out, c)
			}
			return f.Limit > 0 && len(out) >= f.Limit, nil
		}
		if f.Subject != "" {
			prefix := append([]byte(f.Subject), 0)
			cur := tx.Bucket(bucketBySubject).Cursor()
			for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
				v := certs.Get(k[len(prefix):])
				if v == nil {
					continue
				}
				if done, err := add(v); err != nil || done {
					return err
				}
			}
			return nil
		}
		cur := certs.Cursor()
		for k, v := cur.First(); k != nil; k, v = cur.Next() {
			if done, err := add(v); err != nil || done {
				return err
			}
		}
		return nil
	})
	return out, err
}

type revocationRecord struct {
	RevokedAt time.Time `json:"revokedAt"`
	Reason    int       `json:"reason"`
	NotAfter  time.Time `json:"notAfter"`
}

func revokeInTx(tx *bolt.Tx, c *Cert, reason int, at time.Time) error {
	c.Status = StatusRevoked
	c.RevokedAt = at
	c.Reason = reason
	if err := putCert(tx, c); err != nil {
		return err
	}
	v, err := json.Marshal(revocationRecord{RevokedAt: at, Reason: reason, NotAfter: c.NotAfter})
	if err != nil {
		return err
	}
	return tx.Bucket(bucketRevoked).Put([]byte(c.Serial), v)
}

// Revoke marks the certificates selected by pick as revoked, in one
// fsynced commit, and returns those it changed. Already revoked
// certificates are returned unchanged with alreadyRevoked set, so a repeated
// revoke is harmless.
func (d *DB) revoke(ctx context.Context, reason int, at time.Time, pick func(tx *bolt.Tx) ([]*Cert, error)) (changed, already []*Cert, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	err = d.db.Update(func(tx *bolt.Tx) error {
		changed, already = nil, nil
		certs, err := pick(tx)
		if err != nil {
			return err
		}
		for _, c := range certs {
			if c.Status == StatusRevoked {
				already = append(already, c)
				continue
			}
			if err := revokeInTx(tx, c, reason, at); err != nil {
				return err
			}
			changed = append(changed, c)
		}
		return nil
	})
	return changed, already, err
}

// RevokeSerial revokes one certificate. ErrNotFound if it was never issued.
func (d *DB) RevokeSerial(ctx context.Context, serial string, reason int, at time.Time) (changed, already []*Cert, err error) {
	return d.revoke(ctx, reason, at, func(tx *bolt.Tx) ([]*Cert, error) {
		v := tx.Bucket(bucketCerts).Get([]byte(serial))
		if v == nil {
			return nil, ErrNotFound
		}
		c := new(Cert)
		if err := json.Unmarshal(v, c); err != nil {
			return nil, err
		}
		return []*Cert{c}, nil
	})
}

// RevokeSubject revokes every unexpired certificate whose subject CN is
// subject. ErrNotFound if there is none.
func (d *DB) RevokeSubject(ctx context.Context, subject string, reason int, at time.Time) (changed, already []*Cert, err error) {
	return d.revoke(ctx, reason, at, func(tx *bolt.Tx) ([]*Cert, error) {
		var out []*Cert
		prefix := append([]byte(subject), 0)
		certs := tx.Bucket(bucketCerts)
		cur := tx.Bucket(bucketBySubject).Cursor()
		for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
			v := certs.Get(k[len(prefix):])
			if v == nil {
				continue
			}
			c := new(Cert)
			if err := json.Unmarshal(v, c); err != nil {
				return nil, err
			}
			if !c.Expired(at) {
				out = append(out, c)
			}
		}
		if len(out) == 0 {
			return nil, ErrNotFound
		}
		return out, nil
	})
}

// Revoked lists revocations of certificates still unexpired at now: an
// expired certificate is invalid on its own, so CRLs need not carry it.
func (d *DB) Revoked(ctx context.Context, now time.Time) ([]Revocation, error) {
	var out []Revocation
	err := d.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRevoked).ForEach(func(k, v []byte) error {
			var r revocationRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("revocation %s: %w", k, err)
			}
			if now.Before(r.NotAfter) {
				out = append(out, Revocation{Serial: string(k), RevokedAt: r.RevokedAt, Reason: r.Reason, NotAfter: r.NotAfter})
			}
			return nil
		})
	})
	return out, err
}

// PruneRevoked drops revocation entries of certificates that have expired:
// they left the CRL already, and the certificate records keep their history.
// It keeps CRL builds proportional to live revocations.
func (d *DB) PruneRevoked(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := d.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRevoked).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var r revocationRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("revocation %s: %w", k, err)
			}
			if !now.Before(r.NotAfter) {
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	return n, err
}

// CRL returns the last saved CRL number and DER (0, nil if none yet).
func (d *DB) CRL(ctx context.Context) (uint64, []byte, error) {
	var n uint64
	var der []byte
	err := d.db.View(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		if v := m.Get(keyCRLNumber); len(v) == 8 {
			n = binary.BigEndian.Uint64(v)
		}
		der = bytes.Clone(m.Get(keyCRLDER))
		return nil
	})
	return n, der, err
}

// SaveCRL stores a newly built CRL. The number must exceed the stored one
// (ErrStaleCRL otherwise), which keeps CRL numbers strictly increasing even
// if two builders race.
func (d *DB) SaveCRL(ctx context.Context, number uint64, der []byte) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		if v := m.Get(keyCRLNumber); len(v) == 8 && binary.BigEndian.Uint64(v) >= number {
			return ErrStaleCRL
		}
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], number)
		if err := m.Put(keyCRLNumber, b[:]); err != nil {
			return err
		}
		return m.Put(keyCRLDER, der)
	})
}

// PutAnchorStatus saves anchorsync's status for one trust anchor.
func (d *DB) PutAnchorStatus(ctx context.Context, s AnchorStatus) error {
	v, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return d.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAnchors).Put([]byte(s.ARN), v)
	})
}

// AnchorStatuses returns every saved trust anchor status, by ARN.
func (d *DB) AnchorStatuses(ctx context.Context) (map[string]AnchorStatus, error) {
	out := map[string]AnchorStatus{}
	err := d.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAnchors).ForEach(func(k, v []byte) error {
			var s AnchorStatus
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			out[string(k)] = s
			return nil
		})
	})
	return out, err
}
