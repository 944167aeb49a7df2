package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/anchorage-pki/anchorage/storage"
)

// ErrNotEmpty refuses an import into a database that holds records.
var ErrNotEmpty = errors.New("database is not empty")

// Importer copies a storage.Export stream into an empty database in one
// transaction: nothing is visible, and nothing is left behind on failure,
// until Commit.
type Importer struct {
	tx    pgx.Tx
	batch *pgx.Batch
	n     storage.Counts
}

// importBatch is how many statements go to the server in one round trip.
const importBatch = 500

// Import begins an import. It locks the tables against concurrent
// writers and refuses (ErrNotEmpty, naming what it found) a database
// holding any certificate, revocation, token id, anchor status, ACME
// record, CRL or revocation sequence.
func (d *DB) Import(ctx context.Context) (*Importer, error) {
	tx, err := d.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
	if err != nil {
		return nil, fmt.Errorf("storage: import: %w", err)
	}
	fail := func(err error) (*Importer, error) {
		tx.Rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE certs, revocations, lineages, tokens, counters, anchors, acme_accounts, acme_eab, acme_orders, acme_authzs IN EXCLUSIVE MODE`); err != nil {
		return fail(fmt.Errorf("storage: import: %w", err))
	}
	var what string
	err = tx.QueryRow(ctx, `SELECT coalesce(
		(SELECT 'certificates' FROM certs LIMIT 1),
		(SELECT 'revocations' FROM revocations LIMIT 1),
		(SELECT 'lineage cuts' FROM lineages LIMIT 1),
		(SELECT 'token ids' FROM tokens LIMIT 1),
		(SELECT 'anchor statuses' FROM anchors LIMIT 1),
		(SELECT 'ACME accounts' FROM acme_accounts LIMIT 1),
		(SELECT 'ACME orders' FROM acme_orders LIMIT 1),
		(SELECT 'a CRL or a revocation sequence' FROM counters WHERE crl_number > 0 OR rev_seq > 0 OR crl_der IS NOT NULL),
		'')`).Scan(&what)
	if err != nil {
		return fail(fmt.Errorf("storage: import: %w", err))
	}
	if what != "" {
		return fail(fmt.Errorf("%w: it holds %s", ErrNotEmpty, what))
	}
	return &Importer{tx: tx, batch: &pgx.Batch{}, n: storage.Counts{}}, nil
}

// Add queues one record. Records are written in batches; an error of an
// earlier batch may surface on a later Add or on Commit.
func (im *Importer) Add(ctx context.Context, r storage.Record) error {
	b := im.batch
	switch r.Kind {
	case storage.KindCert:
		c := r.Cert
		// The record as the backend's own encoder writes it; lineage is the
		// column the queries use, LineageID for records from before lineages.
		rec, err := json.Marshal(c)
		if err != nil {
			return err
		}
		b.Queue(`INSERT INTO certs (serial, subject, not_after, status, lineage, order_id, rec) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			c.Serial, c.Subject, c.NotAfter, string(c.Status), c.LineageID(), c.Order, rec)
	case storage.KindRevocation:
		e := r.Revocation
		b.Queue(`INSERT INTO revocations (serial, revoked_at, reason, not_after, seq) VALUES ($1, $2, $3, $4, $5)`,
			e.Serial, e.RevokedAt, e.Reason, e.NotAfter, int64(e.Seq))
	case storage.KindLineage:
		l := r.Lineage
		b.Queue(`INSERT INTO lineages (id, revoked_at, revoked_by) VALUES ($1, $2, $3)`, l.ID, l.RevokedAt, l.By)
	case storage.KindToken:
		b.Queue(`INSERT INTO tokens (jti, keep_until) VALUES ($1, $2)`, r.Token.JTI, r.Token.KeepUntil)
	case storage.KindAnchor:
		rec, err := json.Marshal(r.Anchor)
		if err != nil {
			return err
		}
		b.Queue(`INSERT INTO anchors (arn, rec) VALUES ($1, $2)`, r.Anchor.ARN, rec)
	case storage.KindACMEAcct:
		a := r.Account
		rec, err := json.Marshal(a)
		if err != nil {
			return err
		}
		b.Queue(`INSERT INTO acme_accounts (id, provisioner, thumbprint, rec) VALUES ($1, $2, $3, $4)`, a.ID, a.Provisioner, a.Thumbprint, rec)
	case storage.KindACMEEAB:
		e := r.EAB
		b.Queue(`INSERT INTO acme_eab (provisioner, key_id, account_id) VALUES ($1, $2, $3)`, e.Provisioner, e.KeyID, e.AccountID)
	case storage.KindACMEOrder:
		o := r.Order
		rec, err := json.Marshal(o)
		if err != nil {
			return err
		}
		var certNotAfter any
		if !o.CertNotAfter.IsZero() {
			certNotAfter = o.CertNotAfter
		}
		b.Queue(`INSERT INTO acme_orders (id, account_id, status, expires, authzs, cert_not_after, rec) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			o.ID, o.AccountID, o.Status, o.Expires, len(o.AuthzIDs), certNotAfter, rec)
	case storage.KindACMEAuthz:
		a := r.Authz
		rec, err := json.Marshal(a)
		if err != nil {
			return err
		}
		b.Queue(`INSERT INTO acme_authzs (id, order_id, rec) VALUES ($1, $2, $3)`, a.ID, a.OrderID, rec)
	case storage.KindCounters:
		c := r.Counters
		var der []byte
		if len(c.CRL.DER) > 0 {
			der = c.CRL.DER
		}
		b.Queue(`UPDATE counters SET rev_seq = $1, crl_number = $2, crl_seq = $3, crl_der = $4`,
			int64(c.RevSeq), int64(c.CRL.Number), int64(c.CRL.Seq), der)
		im.n[r.Kind]--
	default:
		return fmt.Errorf("storage: import: unknown record kind %q", r.Kind)
	}
	im.n[r.Kind]++
	if b.Len() >= importBatch {
		return im.flush(ctx)
	}
	return nil
}

func (im *Importer) flush(ctx context.Context) error {
	if im.batch.Len() == 0 {
		return nil
	}
	b := im.batch
	im.batch = &pgx.Batch{}
	if err := im.tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("storage: import: %w", err)
	}
	return nil
}

// Counts is how many records of each kind were added so far.
func (im *Importer) Counts() storage.Counts { return im.n }

// Commit writes what is queued, checks the counts in the database against
// the records added, and commits.
func (im *Importer) Commit(ctx context.Context) error {
	if err := im.flush(ctx); err != nil {
		im.Rollback(ctx)
		return err
	}
	got, _, err := counts(ctx, im.tx)
	if err != nil {
		im.Rollback(ctx)
		return fmt.Errorf("storage: import: %w", err)
	}
	for _, k := range storage.Kinds {
		if k != storage.KindCounters && got[k] != im.n[k] {
			im.Rollback(ctx)
			return fmt.Errorf("storage: import: %d %s added but %d in the database", im.n[k], k, got[k])
		}
	}
	// Replicas already running on the database (they should not be) wake
	// up and re-read.
	for _, t := range []storage.Topic{storage.TopicRevocation, storage.TopicCRL, storage.TopicAnchors} {
		if err := notify(ctx, im.tx, t); err != nil {
			im.Rollback(ctx)
			return fmt.Errorf("storage: import: %w", err)
		}
	}
	if err := im.tx.Commit(ctx); err != nil {
		return fmt.Errorf("storage: import: commit: %w", err)
	}
	return nil
}

// Rollback abandons the import.
func (im *Importer) Rollback(ctx context.Context) {
	im.tx.Rollback(context.WithoutCancel(ctx))
}

// ExportCounts counts the database's records of each kind and returns
// its counters (without the CRL's DER), for verifying a copy.
func (d *DB) ExportCounts(ctx context.Context) (storage.Counts, storage.Counters, error) {
	var n storage.Counts
	var c storage.Counters
	err := d.read(ctx, func(tx pgx.Tx) (err error) {
		n, c, err = counts(ctx, tx)
		return err
	})
	return n, c, err
}

func counts(ctx context.Context, tx pgx.Tx) (storage.Counts, storage.Counters, error) {
	var v [9]int
	var rev, num, seq int64
	err := tx.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM certs), (SELECT count(*) FROM revocations), (SELECT count(*) FROM lineages),
		(SELECT count(*) FROM tokens), (SELECT count(*) FROM anchors), (SELECT count(*) FROM acme_accounts),
		(SELECT count(*) FROM acme_eab), (SELECT count(*) FROM acme_orders), (SELECT count(*) FROM acme_authzs),
		rev_seq, crl_number, crl_seq FROM counters`).Scan(&v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &rev, &num, &seq)
	if err != nil {
		return nil, storage.Counters{}, err
	}
	n := storage.Counts{}
	for i, k := range storage.Kinds[:9] {
		n[k] = v[i]
	}
	return n, storage.Counters{RevSeq: uint64(rev), CRL: storage.CRL{Number: uint64(num), Seq: uint64(seq)}}, nil
}
