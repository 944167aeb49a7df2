package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/anchorage-pki/anchorage/storage"
)

func scanCert(row pgx.Row) (*storage.Cert, error) {
	var rec []byte
	if err := row.Scan(&rec); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, storage.ErrNotFound
		}
		return nil, err
	}
	c := new(storage.Cert)
	if err := json.Unmarshal(rec, c); err != nil {
		return nil, fmt.Errorf("decode certificate: %w", err)
	}
	return c, nil
}

func getCert(ctx context.Context, q pgx.Tx, serial string, lock bool) (*storage.Cert, error) {
	sql := "SELECT rec FROM certs WHERE serial = $1"
	if lock {
		sql += " FOR UPDATE"
	}
	c, err := scanCert(q.QueryRow(ctx, sql, serial))
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("certificate %s: %w", serial, err)
	}
	return c, err
}

// updateCert rewrites a stored certificate record.
func updateCert(ctx context.Context, tx pgx.Tx, c *storage.Cert) error {
	rec, err := json.Marshal(c)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, "UPDATE certs SET status = $2, rec = $3 WHERE serial = $1", c.Serial, string(c.Status), rec)
	return err
}

// insertCertSQL inserts one certificate row; certRow gives its arguments.
const insertCertSQL = `INSERT INTO certs (serial, subject, not_after, status, lineage, order_id, rec)
	VALUES ($1, $2, $3, $4, $5, $6, $7)`

// certRow is c's row for insertCertSQL, a new lineage of its own unless
// c.Lineage is set (which it then is).
func certRow(c *storage.Cert) ([]any, error) {
	if c.Lineage == "" {
		c.Lineage = c.Serial
	}
	rec, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return []any{c.Serial, c.Subject, c.NotAfter, string(c.Status), c.Lineage, c.Order, rec}, nil
}

// errSerialRecorded is the refusal of a serial seen before.
func errSerialRecorded(serial string) error {
	return fmt.Errorf("serial %s is already recorded", serial)
}

// insertCert stores a new certificate; a serial seen before is refused.
// An ACME order turns valid in the same transaction.
func insertCert(ctx context.Context, tx pgx.Tx, c *storage.Cert) error {
	if c.Order != "" {
		if err := orderIssuedInTx(ctx, tx, c); err != nil {
			return err
		}
	}
	row, err := certRow(c)
	if err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, insertCertSQL+" ON CONFLICT (serial) DO NOTHING", row...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return errSerialRecorded(c.Serial)
	}
	return nil
}

// PutCert records an issued certificate. It starts a lineage of its own
// unless Lineage is set.
func (d *DB) PutCert(ctx context.Context, c *storage.Cert) error {
	var final storage.Cert
	err := d.write(ctx, func(tx pgx.Tx) error {
		final = *c
		return insertCert(ctx, tx, &final)
	})
	if err != nil {
		return fmt.Errorf("storage: put cert %s: %w", c.Serial, err)
	}
	*c = final
	return nil
}

// PutCerts records many certificates in one commit.
func (d *DB) PutCerts(ctx context.Context, cs []*storage.Cert) error {
	final := make([]storage.Cert, len(cs))
	err := d.write(ctx, func(tx pgx.Tx) error {
		for i, c := range cs {
			final[i] = *c
			if err := insertCert(ctx, tx, &final[i]); err != nil {
				return fmt.Errorf("storage: put cert %s: %w", c.Serial, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, c := range cs {
		*c = final[i]
	}
	return nil
}

// PutCertUsingToken records the certificate and marks jti used until
// keepUntil, in one transaction. A jti seen before, on any replica, gives
// storage.ErrTokenUsed; a keepUntil passed by commit time
// storage.ErrTokenExpired; either stores nothing.
func (d *DB) PutCertUsingToken(ctx context.Context, c *storage.Cert, jti string, keepUntil time.Time) error {
	if c.Order == "" {
		return d.putCertUsingTokenPipelined(ctx, c, jti, keepUntil)
	}
	var final storage.Cert
	err := d.write(ctx, func(tx pgx.Tx) error {
		final = *c
		if time.Now().After(keepUntil) {
			return storage.ErrTokenExpired
		}
		tag, err := tx.Exec(ctx, "INSERT INTO tokens (jti, keep_until) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING", jti, keepUntil.Unix())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return storage.ErrTokenUsed
		}
		if err := insertCert(ctx, tx, &final); err != nil {
			return err
		}
		// Checked last, just before the commit: a token verified before its
		// exp+leeway whose commit lands after a prune forgot its id must not
		// be accepted.
		if time.Now().After(keepUntil) {
			return storage.ErrTokenExpired
		}
		return nil
	})
	if errors.Is(err, storage.ErrTokenUsed) || errors.Is(err, storage.ErrTokenExpired) {
		return err
	}
	if err != nil {
		return fmt.Errorf("storage: put cert %s with token: %w", c.Serial, err)
	}
	*c = final
	return nil
}

// putCertUsingTokenPipelined is PutCertUsingToken for a certificate that
// completes no ACME order (every token enrollment): both INSERTs go in one
// pipelined batch, which PostgreSQL runs as one implicit transaction, so
// an enrollment costs one round trip and one commit instead of four round
// trips (BEGIN, two INSERTs, COMMIT). The rules are the same: neither
// INSERT has ON CONFLICT, so a jti used before on any replica (or a serial
// recorded before) is a unique violation that rolls back both; and the
// keep-until check comes last before the commit is sent. Only unique
// constraints are at stake, which hold at any isolation level.
func (d *DB) putCertUsingTokenPipelined(ctx context.Context, c *storage.Cert, jti string, keepUntil time.Time) error {
	final := *c
	row, err := certRow(&final)
	if err != nil {
		return fmt.Errorf("storage: put cert %s with token: %w", c.Serial, err)
	}
	// The connection first, then the clock: a wait for a free connection
	// must not come between the keep-until check and the INSERTs (the
	// prune margin is what covers the remaining round trip).
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("storage: put cert %s with token: %w", c.Serial, unavailable(err))
	}
	defer conn.Release()
	if time.Now().After(keepUntil) {
		return storage.ErrTokenExpired
	}
	b := &pgx.Batch{}
	b.Queue("INSERT INTO tokens (jti, keep_until) VALUES ($1, $2)", jti, keepUntil.Unix())
	b.Queue(insertCertSQL, row...)
	err = conn.SendBatch(ctx, b).Close()
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		switch pe.ConstraintName {
		case "tokens_pkey":
			return storage.ErrTokenUsed
		case "certs_pkey":
			return fmt.Errorf("storage: put cert %s with token: %w", c.Serial, errSerialRecorded(c.Serial))
		}
	}
	if err != nil {
		return fmt.Errorf("storage: put cert %s with token: %w", c.Serial, unavailable(err))
	}
	*c = final
	return nil
}

// TokenUsed reports whether jti has been consumed.
func (d *DB) TokenUsed(ctx context.Context, jti string) (bool, error) {
	var used bool
	err := d.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM tokens WHERE jti = $1)", jti).Scan(&used)
	if err != nil {
		return false, fmt.Errorf("storage: token used: %w", unavailable(err))
	}
	return used, nil
}

// PruneTokens forgets used token ids whose keep-until time has passed.
func (d *DB) PruneTokens(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := d.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM tokens WHERE keep_until < $1", now.Unix())
		n = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("storage: prune tokens: %w", err)
	}
	return n, nil
}

// Cert returns the record for serial.
func (d *DB) Cert(ctx context.Context, serial string) (*storage.Cert, error) {
	c, err := scanCert(d.pool.QueryRow(ctx, "SELECT rec FROM certs WHERE serial = $1", serial))
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("storage: certificate %s: %w", serial, unavailable(err))
	}
	return c, err
}

// ListCerts returns every certificate matching f (at most f.Limit), in
// the order storage.Filter describes.
func (d *DB) ListCerts(ctx context.Context, f storage.Filter, now time.Time) ([]*storage.Cert, error) {
	p, err := d.ListCertsPage(ctx, f, now)
	return p.Certs, err
}

// ListCertsPage returns one page of the certificates matching f after
// f.Cursor. Each shape of query has an index that yields its rows in
// order (migrations 0002): certs_by_subject (subject, serial),
// certs_by_status_expiry (status, not_after, serial), certs_by_expiry_serial
// (not_after, serial) and the primary key; TestListUsesIndexes checks the
// plans.
func (d *DB) ListCertsPage(ctx context.Context, f storage.Filter, now time.Time) (storage.CertPage, error) {
	sql, args, err := listQuery(f, now)
	if err != nil {
		return storage.CertPage{}, err
	}
	rows, err := d.pool.Query(ctx, sql, args...)
	if err != nil {
		return storage.CertPage{}, fmt.Errorf("storage: list certs: %w", unavailable(err))
	}
	defer rows.Close()
	var page storage.CertPage
	for rows.Next() {
		c, err := scanCert(rows)
		if err != nil {
			return storage.CertPage{}, fmt.Errorf("storage: list certs: %w", unavailable(err))
		}
		page.Certs = append(page.Certs, c)
	}
	if err := rows.Err(); err != nil {
		return storage.CertPage{}, fmt.Errorf("storage: list certs: %w", unavailable(err))
	}
	if f.Limit > 0 && len(page.Certs) == f.Limit {
		page.Next = storage.EncodeCursor(page.Certs[len(page.Certs)-1])
	}
	return page, nil
}

// listQuery is the SELECT for one page of f.
func listQuery(f storage.Filter, now time.Time) (string, []any, error) {
	after, resume, err := storage.DecodeCursor(f.Cursor)
	if err != nil {
		return "", nil, err
	}
	sql := "SELECT rec FROM certs WHERE true"
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if f.Subject != "" {
		sql += " AND subject = " + arg(f.Subject)
	}
	if f.Status != "" {
		sql += " AND status = " + arg(string(f.Status))
	}
	if f.Live {
		sql += " AND not_after > " + arg(now)
	}
	if f.Expired {
		sql += " AND not_after <= " + arg(now)
	}
	if !f.Before.IsZero() {
		sql += " AND not_after < " + arg(f.Before)
	}
	order := " ORDER BY serial"
	if f.ByExpiry() {
		order = " ORDER BY not_after, serial"
		if resume {
			sql += " AND (not_after, serial) > (" + arg(after.NotAfter) + ", " + arg(after.Serial) + ")"
		}
	} else if resume {
		sql += " AND serial > " + arg(after.Serial)
	}
	sql += order
	if f.Limit > 0 {
		sql += " LIMIT " + arg(f.Limit)
	}
	return sql, args, nil
}

func lineageRevoked(ctx context.Context, tx pgx.Tx, id string) (bool, error) {
	var yes bool
	err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM lineages WHERE id = $1)", id).Scan(&yes)
	return yes, err
}

// PutRenewal stores succ as the renewal of pred in one transaction that
// locks pred and checks, against the committed state, that it is known,
// unexpired at now, not revoked, in a lineage with nothing revoked, and not
// renewed already; see storage.DB.PutRenewal for what a lost race stores.
func (d *DB) PutRenewal(ctx context.Context, pred string, succ *storage.Cert, now time.Time) error {
	var refusal error
	var final storage.Cert
	err := d.writeLocked(ctx, func(tx pgx.Tx) error {
		refusal, final = nil, *succ
		s := &final
		// Shared: renewals run together, but never beside a revocation.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock_shared($1)", int64(revokeLock)); err != nil {
			return err
		}
		p, err := getCert(ctx, tx, pred, true)
		if err != nil {
			return err
		}
		revoked, err := lineageRevoked(ctx, tx, p.LineageID())
		if err != nil {
			return err
		}
		switch {
		case p.Status == storage.StatusRevoked || revoked:
			return storage.ErrRevoked
		case p.Expired(now):
			return storage.ErrExpired
		case p.RenewedTo != "":
			next, err := getCert(ctx, tx, p.RenewedTo, false)
			if err != nil {
				return fmt.Errorf("successor of %s: %w", pred, err)
			}
			refusal = &storage.SupersededError{Predecessor: pred, Successor: next}
			// Signed but never handed out: recorded as revoked, superseded,
			// and kept off the CRL.
			s.Lineage, s.RenewedFrom = p.LineageID(), pred
			s.Status, s.RevokedAt, s.Reason, s.Undelivered = storage.StatusRevoked, now.Truncate(time.Second), storage.ReasonSuperseded, true
			return insertCert(ctx, tx, s)
		}
		s.Lineage, s.RenewedFrom = p.LineageID(), pred
		if err := insertCert(ctx, tx, s); err != nil {
			return err
		}
		p.RenewedTo = s.Serial
		return updateCert(ctx, tx, p)
	})
	if err == nil {
		*succ = final
	}
	switch {
	case err == nil && refusal != nil:
		return refusal
	case errors.Is(err, storage.ErrRevoked), errors.Is(err, storage.ErrExpired), errors.Is(err, storage.ErrNotFound):
		return err
	case err != nil:
		return fmt.Errorf("storage: renew %s as %s: %w", pred, succ.Serial, err)
	}
	return nil
}

// revokeLock is the advisory lock renewals take shared and revocations
// exclusive. An advisory lock, not a row lock, because the lock manager
// queues it fairly: a waiting revocation holds back renewals that ask
// after it, where share locks on a row can be granted past a waiting
// exclusive one and starve it.
const revokeLock = 0x616e63686f73 // "anchos"

// revokeInTx marks c revoked, advances the revocation sequence and, for a
// certificate of the issuing CA, adds it to the CRL source.
func revokeInTx(ctx context.Context, tx pgx.Tx, c *storage.Cert, reason int, at time.Time, with string) error {
	c.Status, c.RevokedAt, c.Reason, c.RevokedWith = storage.StatusRevoked, at, reason, with
	if err := updateCert(ctx, tx, c); err != nil {
		return err
	}
	var seq int64
	if err := tx.QueryRow(ctx, "UPDATE counters SET rev_seq = rev_seq + 1 RETURNING rev_seq").Scan(&seq); err != nil {
		return err
	}
	if !c.Method.OnCRL() {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO revocations (serial, revoked_at, reason, not_after, seq) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (serial) DO UPDATE SET revoked_at = EXCLUDED.revoked_at, reason = EXCLUDED.reason, not_after = EXCLUDED.not_after, seq = EXCLUDED.seq`,
		c.Serial, at, reason, c.NotAfter, seq)
	return err
}

// revoke revokes the certificates pick selects and every unexpired member
// of their lineages, and cuts those lineages off, in one transaction.
func (d *DB) revoke(ctx context.Context, reason int, at time.Time, by string, pick func(tx pgx.Tx) ([]*storage.Cert, error)) (*storage.RevokeResult, error) {
	var res *storage.RevokeResult
	err := d.writeLocked(ctx, func(tx pgx.Tx) error {
		res = &storage.RevokeResult{}
		// One revocation at a time, on every replica, and none beside a
		// renewal.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(revokeLock)); err != nil {
			return err
		}
		named, err := pick(tx)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		visit := func(c *storage.Cert, with string) error {
			if seen[c.Serial] {
				return nil
			}
			seen[c.Serial] = true
			if c.Status == storage.StatusRevoked {
				res.Already = append(res.Already, c)
				return nil
			}
			if err := revokeInTx(ctx, tx, c, reason, at, with); err != nil {
				return err
			}
			res.Changed = append(res.Changed, c)
			return nil
		}
		fresh := func(c *storage.Cert) *storage.Cert {
			// A member visited earlier in this commit is read back as this
			// commit left it.
			for _, x := range append(res.Changed, res.Already...) {
				if x.Serial == c.Serial {
					return x
				}
			}
			return c
		}
		for _, c := range named {
			c = fresh(c)
			if err := visit(c, ""); err != nil {
				return err
			}
			// The whole lineage goes, successors and unexpired predecessors.
			root := c
			if id := c.LineageID(); id != c.Serial {
				if root, err = getCert(ctx, tx, id, true); errors.Is(err, storage.ErrNotFound) {
					root = c
				} else if err != nil {
					return fmt.Errorf("lineage %s of %s: %w", id, c.Serial, err)
				}
				root = fresh(root)
			}
			for m := root; ; {
				if m.Serial != c.Serial && (!m.Expired(at) || m.Status == storage.StatusRevoked) {
					if err := visit(m, c.Serial); err != nil {
						return err
					}
				}
				if m.RenewedTo == "" {
					break
				}
				next, err := getCert(ctx, tx, m.RenewedTo, true)
				if err != nil {
					return fmt.Errorf("successor %s of %s: %w", m.RenewedTo, m.Serial, err)
				}
				m = fresh(next)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO lineages (id, revoked_at, revoked_by) VALUES ($1, $2, $3)
				ON CONFLICT (id) DO UPDATE SET revoked_at = EXCLUDED.revoked_at, revoked_by = EXCLUDED.revoked_by`,
				c.LineageID(), at, by); err != nil {
				return err
			}
		}
		var seq int64
		if err := tx.QueryRow(ctx, "SELECT rev_seq FROM counters").Scan(&seq); err != nil {
			return err
		}
		res.Seq = uint64(seq)
		if len(res.Changed) > 0 {
			return notify(ctx, tx, storage.TopicRevocation)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// RevokeSerial revokes one certificate and every unexpired member of its
// lineage. storage.ErrNotFound if it was never issued.
func (d *DB) RevokeSerial(ctx context.Context, serial string, reason int, at time.Time) (*storage.RevokeResult, error) {
	return d.revoke(ctx, reason, at, serial, func(tx pgx.Tx) ([]*storage.Cert, error) {
		c, err := getCert(ctx, tx, serial, true)
		if err != nil {
			return nil, err
		}
		return []*storage.Cert{c}, nil
	})
}

// RevokeSubject revokes every unexpired certificate whose subject CN is
// subject, and so every lineage of that name. storage.ErrNotFound if none.
func (d *DB) RevokeSubject(ctx context.Context, subject string, reason int, at time.Time) (*storage.RevokeResult, error) {
	return d.revoke(ctx, reason, at, "subject:"+subject, func(tx pgx.Tx) ([]*storage.Cert, error) {
		rows, err := tx.Query(ctx, "SELECT rec FROM certs WHERE subject = $1 AND not_after > $2 ORDER BY serial FOR UPDATE", subject, at)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []*storage.Cert
		for rows.Next() {
			c, err := scanCert(rows)
			if err != nil {
				return nil, err
			}
			if !c.Expired(at) {
				out = append(out, c)
			}
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(out) == 0 {
			return nil, storage.ErrNotFound
		}
		return out, nil
	})
}

// Revocations returns, from one snapshot, the revocation sequence and the
// revocations of certificates still unexpired at now.
func (d *DB) Revocations(ctx context.Context, now time.Time) (storage.RevocationSet, error) {
	var out storage.RevocationSet
	err := d.read(ctx, func(tx pgx.Tx) error {
		out = storage.RevocationSet{}
		var seq int64
		if err := tx.QueryRow(ctx, "SELECT rev_seq FROM counters").Scan(&seq); err != nil {
			return err
		}
		out.Seq = uint64(seq)
		// Kept RevocationGrace past notAfter, as on bbolt: a CA clock
		// running ahead must not drop a still-valid certificate.
		rows, err := tx.Query(ctx, "SELECT serial, revoked_at, reason, not_after FROM revocations WHERE not_after > $1 ORDER BY serial", now.Add(-storage.RevocationGrace))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r storage.Revocation
			if err := rows.Scan(&r.Serial, &r.RevokedAt, &r.Reason, &r.NotAfter); err != nil {
				return err
			}
			out.Entries = append(out.Entries, r)
		}
		return rows.Err()
	})
	if err != nil {
		return storage.RevocationSet{}, fmt.Errorf("storage: revocations: %w", err)
	}
	return out, nil
}

// RevocationSeq is the current revocation sequence.
func (d *DB) RevocationSeq(ctx context.Context) (uint64, error) {
	var seq int64
	if err := d.pool.QueryRow(ctx, "SELECT rev_seq FROM counters").Scan(&seq); err != nil {
		return 0, fmt.Errorf("storage: revocation sequence: %w", unavailable(err))
	}
	return uint64(seq), nil
}

// PruneRevoked drops revocation entries of certificates that have expired.
func (d *DB) PruneRevoked(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := d.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM revocations WHERE not_after <= $1", now.Add(-storage.RevocationRetention))
		n = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("storage: prune revoked: %w", err)
	}
	return n, nil
}

// CRL returns the newest stored CRL (zero Number and nil DER if none yet).
func (d *DB) CRL(ctx context.Context) (storage.CRL, error) {
	var n, s int64
	var der []byte
	if err := d.pool.QueryRow(ctx, "SELECT crl_number, crl_seq, crl_der FROM counters").Scan(&n, &s, &der); err != nil {
		return storage.CRL{}, fmt.Errorf("storage: crl: %w", unavailable(err))
	}
	return storage.CRL{Number: uint64(n), Seq: uint64(s), DER: der}, nil
}

// CRLNumber returns the newest stored CRL's number and covered sequence.
func (d *DB) CRLNumber(ctx context.Context) (number, seq uint64, err error) {
	var n, s int64
	if err := d.pool.QueryRow(ctx, "SELECT crl_number, crl_seq FROM counters").Scan(&n, &s); err != nil {
		return 0, 0, fmt.Errorf("storage: crl number: %w", unavailable(err))
	}
	return uint64(n), uint64(s), nil
}

// SaveCRL stores a newly built CRL; its number must exceed the stored one
// (storage.ErrStaleCRL otherwise), on every replica.
func (d *DB) SaveCRL(ctx context.Context, c storage.CRL) error {
	return d.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "UPDATE counters SET crl_number = $1, crl_seq = $2, crl_der = $3 WHERE crl_number < $1",
			int64(c.Number), int64(c.Seq), c.DER)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return storage.ErrStaleCRL
		}
		return notify(ctx, tx, storage.TopicCRL)
	})
}

// PutAnchorStatus saves anchorsync's status for one trust anchor.
func (d *DB) PutAnchorStatus(ctx context.Context, s storage.AnchorStatus) error {
	rec, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return d.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO anchors (arn, rec) VALUES ($1, $2) ON CONFLICT (arn) DO UPDATE SET rec = EXCLUDED.rec", s.ARN, rec); err != nil {
			return err
		}
		return notify(ctx, tx, storage.TopicAnchors)
	})
}

// AnchorStatuses returns every saved trust anchor status, by ARN.
func (d *DB) AnchorStatuses(ctx context.Context) (map[string]storage.AnchorStatus, error) {
	rows, err := d.pool.Query(ctx, "SELECT arn, rec FROM anchors")
	if err != nil {
		return nil, fmt.Errorf("storage: anchor statuses: %w", unavailable(err))
	}
	defer rows.Close()
	out := map[string]storage.AnchorStatus{}
	for rows.Next() {
		var arn string
		var rec []byte
		if err := rows.Scan(&arn, &rec); err != nil {
			return nil, err
		}
		var s storage.AnchorStatus
		if err := json.Unmarshal(rec, &s); err != nil {
			return nil, fmt.Errorf("storage: anchor %s: %w", arn, err)
		}
		out[arn] = s
	}
	return out, rows.Err()
}

// RecoverRevocations adds the revocations a trust anchor enforces that this
// database lacks (see storage.DB.RecoverRevocations for why and how): a
// known certificate is revoked with its lineage cut, an unknown serial gets
// a CRL entry kept until revokedAt + maxLifetime.
func (d *DB) RecoverRevocations(ctx context.Context, entries []storage.Revocation, maxLifetime time.Duration) (int, error) {
	n := 0
	err := d.writeLocked(ctx, func(tx pgx.Tx) error {
		n = 0
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(revokeLock)); err != nil {
			return err
		}
		for _, e := range entries {
			var one int
			err := tx.QueryRow(ctx, "SELECT 1 FROM revocations WHERE serial = $1", e.Serial).Scan(&one)
			if err == nil {
				continue
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			c, err := getCert(ctx, tx, e.Serial, true)
			switch {
			case err == nil && c.Status == storage.StatusRevoked:
				if c.Method.OnCRL() && !c.Expired(time.Now()) {
					if err := revokeInTx(ctx, tx, c, c.Reason, c.RevokedAt, c.RevokedWith); err != nil {
						return err
					}
					n++
				}
				continue
			case err == nil:
				if err := revokeInTx(ctx, tx, c, e.Reason, e.RevokedAt, "recovered:trust-anchor"); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `INSERT INTO lineages (id, revoked_at, revoked_by) VALUES ($1, $2, $3)
					ON CONFLICT (id) DO UPDATE SET revoked_at = EXCLUDED.revoked_at, revoked_by = EXCLUDED.revoked_by`,
					c.LineageID(), e.RevokedAt, "recovered:"+e.Serial); err != nil {
					return err
				}
				n++
				continue
			case !errors.Is(err, storage.ErrNotFound):
				return err
			}
			var seq int64
			if err := tx.QueryRow(ctx, "UPDATE counters SET rev_seq = rev_seq + 1 RETURNING rev_seq").Scan(&seq); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO revocations (serial, revoked_at, reason, not_after, seq) VALUES ($1, $2, $3, $4, $5)`,
				e.Serial, e.RevokedAt, e.Reason, e.RevokedAt.Add(maxLifetime), seq); err != nil {
				return err
			}
			n++
		}
		if n > 0 {
			return notify(ctx, tx, storage.TopicRevocation)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("storage: recover revocations: %w", err)
	}
	return n, nil
}
