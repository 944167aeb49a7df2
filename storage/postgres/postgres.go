// Package postgres is anchorage's record of truth on PostgreSQL, for CAs
// that run several replicas on one shared database. *DB has the method set
// of *storage.DB (bbolt) with the same semantics and the same errors from
// package storage, proven by one conformance suite (storage/storagetest)
// run against both; ImportLegacyACME, a bbolt-only upgrade step, is left
// out.
//
// Schema. Migrations are SQL files embedded in the binary (migrations/),
// applied at Open by a small versioned migrator of our own: a
// schema_migrations(version) table, one transaction per version, all under
// pg_advisory_lock so replicas starting together apply each version once.
// goose and golang-migrate do the same with more dependencies and features
// (down migrations, CLIs, many drivers) anchorage does not use; a failed
// version here rolls back whole, since PostgreSQL DDL is transactional.
//
// Concurrency. Renewals and revocations run at READ COMMITTED behind
// explicit locks: an advisory transaction lock that renewals take shared
// and revocations exclusive (a reader-writer lock, queued fairly by the
// lock manager), and the predecessor row FOR UPDATE. Renewals of different
// lineages run side by side; a revocation waits for the renewals in flight
// to commit, sees them, and holds new ones back until it has committed,
// when they find their lineage revoked. So a renewal and a revocation of
// one lineage on two replicas serialize exactly as in one bbolt
// transaction, and a busy lineage cannot starve a revocation (a
// SERIALIZABLE revoke could lose the conflict to renewals again and
// again). Every other write — tokens, CRLs, ACME, where a count and an
// insert must agree — runs SERIALIZABLE, retried on serialization failure
// and deadlock. A token id is a primary key, so a replay fails on every
// replica; so is a used ACME nonce id, inserted in a statement of its own
// (nonce.go), and the nonce HMAC key is one row every replica reads. The revocation sequence and the newest CRL number live in one
// row updated in the transaction that changes them, so CRL numbers
// increase strictly across failover.
//
// Watch. Each change issues pg_notify in its own transaction, so a signal
// is sent if and only if the change committed; a dedicated connection
// LISTENs and fans the signals out to in-process watchers as the bbolt
// backend does. After a lost connection every topic is signalled once,
// since notifications may have been missed meanwhile.
//
// Leases. Hold takes a session-level pg_try_advisory_lock on a dedicated
// connection and keeps it while fn runs. An advisory lock dies with its
// session: a crashed or partitioned holder loses it as soon as PostgreSQL
// sees the connection gone, with no expiry to tune and no clock to trust
// on either side, where a lease row with an expiry must be renewed on
// time and judged by clocks that may disagree. The leases table only
// records who took each lock and since when, for Leases and /health.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/anchorage-pki/anchorage/storage"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tunes Open. Zero values are defaults.
type Options struct {
	// MaxConns caps the pool (pgxpool's default when zero). Watch and each
	// held lease use one more connection of their own.
	MaxConns int32
	// Password, when set, is used instead of one in the URL (read from a
	// file by the caller, so the URL in a config carries none).
	Password string
	// Holder names this replica in Leases; "HOST pid PID" when empty.
	Holder string
	Logger *slog.Logger
}

// DB is the PostgreSQL-backed store.
type DB struct {
	pool   *pgxpool.Pool
	cfg    *pgx.ConnConfig // for the dedicated connections
	holder string
	log    *slog.Logger

	watch   storage.Signals
	mu      sync.Mutex // guards closing, so no monitor starts once Close waits
	closing bool
	closed  chan struct{}
	wg      sync.WaitGroup // the listener and lease monitors
}

// Open connects to url (a postgres:// URL or key=value DSN; TLS as the URL
// says), applies pending migrations and starts listening for changes.
func Open(ctx context.Context, url string, o Options) (*DB, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("storage: postgres url: %w", err)
	}
	if o.MaxConns > 0 {
		pc.MaxConns = o.MaxConns
	}
	if o.Password != "" {
		pc.ConnConfig.Password = o.Password
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("storage: postgres: %w", err)
	}
	// The pool connects lazily: fail here, in one line, on a wrong password
	// or an unreachable server rather than on the first request.
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("storage: postgres %s: %w", pc.ConnConfig.Host, err)
	}
	d := &DB{pool: pool, cfg: pc.ConnConfig, holder: o.Holder, log: o.Logger, closed: make(chan struct{})}
	if d.holder == "" {
		host, _ := os.Hostname()
		d.holder = fmt.Sprintf("%s pid %d", host, os.Getpid())
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	if err := d.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := d.listen(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return d, nil
}

// Close stops the listener, releases held leases (their fn see their
// context cancelled) and closes the pool.
func (d *DB) Close() error {
	d.mu.Lock()
	if d.closing {
		d.mu.Unlock()
		return nil
	}
	d.closing = true
	close(d.closed)
	d.mu.Unlock()
	d.wg.Wait()
	d.pool.Close()
	return nil
}

// Damaged is for the bbolt backend's file checks; PostgreSQL guards its
// own pages, and a broken connection is an error of the call that meets it.
func (d *DB) Damaged() error { return nil }

const migrationLock = 0x616e63686f72 // "anchor": the migrator's advisory lock key

func (d *DB) migrate(ctx context.Context) error {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("storage: postgres: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrationLock)); err != nil {
		return fmt.Errorf("storage: postgres: migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(migrationLock))
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"); err != nil {
		return fmt.Errorf("storage: postgres: schema_migrations: %w", err)
	}
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	type mig struct {
		version int
		name    string
	}
	var ms []mig
	for _, f := range files {
		base := strings.TrimPrefix(f, "migrations/")
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("storage: postgres: migration %s has no version prefix", base)
		}
		ms = append(ms, mig{v, f})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		// Two files with one version: the second would be skipped as
		// applied, silently. Refuse to start instead.
		if ms[i].version == ms[i-1].version {
			return fmt.Errorf("storage: postgres: migrations %s and %s share version %d", ms[i-1].name, ms[i].name, ms[i].version)
		}
	}
	for _, m := range ms {
		var done bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)", m.version).Scan(&done); err != nil {
			return fmt.Errorf("storage: postgres: %w", err)
		}
		if done {
			continue
		}
		sql, err := migrations.ReadFile(m.name)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", m.version)
			return err
		})
		if err != nil {
			return fmt.Errorf("storage: postgres: migration %s: %w", m.name, err)
		}
	}
	return nil
}

// retryable reports a transaction that lost a serialization conflict or a
// deadlock and may simply run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// write runs fn in a SERIALIZABLE transaction, again after a serialization
// failure, so fn must be safe to run more than once (as with the bbolt
// backend's group commit).
func (d *DB) write(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return d.run(ctx, pgx.Serializable, fn)
}

// writeLocked runs fn in a READ COMMITTED transaction for writes whose
// rules rest on explicit row locks: each statement sees everything
// committed before it, so once fn holds its locks it reads the current
// state and cannot fail on a stale snapshot. Under SERIALIZABLE a
// revocation of a busy lineage could lose the conflict to renewals again
// and again; behind a lock it waits its turn.
func (d *DB) writeLocked(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return d.run(ctx, pgx.ReadCommitted, fn)
}

func (d *DB) run(ctx context.Context, iso pgx.TxIsoLevel, fn func(tx pgx.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	backoff := time.Millisecond
	for attempt := 0; ; attempt++ {
		err := pgx.BeginTxFunc(ctx, d.pool, pgx.TxOptions{IsoLevel: iso}, fn)
		if err == nil || !retryable(err) || attempt >= 50 {
			return unavailable(err)
		}
		t := time.NewTimer(backoff + rand.N(backoff))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, 50*time.Millisecond)
	}
}

// read runs fn on one consistent snapshot.
func (d *DB) read(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return unavailable(pgx.BeginTxFunc(ctx, d.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn))
}

// unavailable marks err with storage.ErrUnavailable when it says the
// database could not be reached or the session died (server down or
// restarting, connection refused or cut), rather than that it judged the
// request: the API answers those 503 (retry later), not 500.
func unavailable(err error) error {
	if err == nil || errors.Is(err, storage.ErrUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// 08: connection exception; 57P01-57P03: administrator or crash
		// shutdown, cannot connect now (starting up); 53300: too many
		// connections.
		if strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" || pe.Code == "53300" {
			return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
		}
		return err
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.EPIPE) ||
		strings.Contains(err.Error(), "conn closed") {
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	return err
}

var channels = [...]string{
	storage.TopicRevocation: "anchorage_revocation",
	storage.TopicCRL:        "anchorage_crl",
	storage.TopicAnchors:    "anchorage_anchors",
}

// notify signals t to every replica's watchers when tx commits.
func notify(ctx context.Context, tx pgx.Tx, t storage.Topic) error {
	_, err := tx.Exec(ctx, "SELECT pg_notify($1, '')", channels[t])
	return err
}

// leaseKey is the advisory lock key of a lease name: non-negative, so the
// pg_locks columns it splits into read back without sign games.
func leaseKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("anchorage lease " + name))
	return int64(h.Sum64() &^ (1 << 63))
}
