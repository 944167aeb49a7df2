package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/anchorage-pki/anchorage/storage"
)

// leaseRetry is how often a standby asks for a lease another replica holds,
// and how often a holder checks that its lock connection is alive.
const leaseRetry = time.Second

// Hold runs fn while this replica holds the named lease, until ctx ends
// or the DB is closed. It waits, asking every second, while another
// replica holds it. If the lock's connection is lost, fn's context is
// cancelled (the lock died with the session) and, once fn returns, Hold
// asks for the lease again. Hold returns when fn returns on its own, or
// when ctx ends or the DB closes.
func (d *DB) Hold(ctx context.Context, name string, fn func(ctx context.Context)) {
	key := leaseKey(name)
	for {
		conn := d.acquireLease(ctx, name, key)
		if conn == nil {
			return // ctx ended or the DB closed
		}
		lost := d.runHeld(ctx, conn, fn)
		if !lost {
			return
		}
		d.log.Warn("storage: lease lost", "lease", name)
	}
}

// acquireLease returns the connection holding the lock for key, or nil
// once ctx ends or the DB closes.
func (d *DB) acquireLease(ctx context.Context, name string, key int64) *pgx.Conn {
	for {
		if conn := d.tryLease(ctx, name, key); conn != nil {
			return conn
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.closed:
			return nil
		case <-time.After(leaseRetry):
		}
	}
}

func (d *DB) tryLease(ctx context.Context, name string, key int64) *pgx.Conn {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, d.cfg.Copy())
	if err != nil {
		return nil
	}
	var got bool
	if err := conn.QueryRow(cctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got); err != nil || !got {
		conn.Close(context.Background())
		return nil
	}
	_, err = conn.Exec(cctx, `INSERT INTO leases (name, holder, since, lock_key) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, since = EXCLUDED.since, lock_key = EXCLUDED.lock_key`,
		name, d.holder, time.Now().UTC(), key)
	if err != nil {
		conn.Close(context.Background())
		return nil
	}
	return conn
}

// runHeld runs fn with a context that ends when ctx does, when the DB
// closes, or when conn (the lock's session) stops answering. It reports
// whether the lease was lost while ctx and the DB were still alive.
func (d *DB) runHeld(ctx context.Context, conn *pgx.Conn, fn func(ctx context.Context)) (lost bool) {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lostc := make(chan bool, 1)
	done := make(chan struct{})
	d.mu.Lock()
	if d.closing {
		d.mu.Unlock()
		conn.Close(context.Background())
		return false
	}
	d.wg.Add(1)
	d.mu.Unlock()
	go func() {
		defer d.wg.Done()
		// The monitor owns conn: closing it ends the session and with it
		// the lock, whether or not fn has returned yet.
		defer conn.Close(context.Background())
		t := time.NewTicker(leaseRetry)
		defer t.Stop()
		for {
			select {
			case <-done:
				lostc <- false
				return
			case <-fctx.Done():
				lostc <- false
				return
			case <-d.closed:
				cancel()
				lostc <- false
				return
			case <-t.C:
				pctx, pcancel := context.WithTimeout(fctx, 3*time.Second)
				_, err := conn.Exec(pctx, "SELECT 1 /* anchorage lease held */")
				pcancel()
				if err != nil && fctx.Err() == nil {
					cancel()
					lostc <- true
					return
				}
			}
		}
	}()
	fn(fctx)
	close(done)
	lost = <-lostc
	return lost && ctx.Err() == nil
}

// Leases lists the leases held now, by any replica, by name: a row counts
// only while the advisory lock it names is granted to some session.
func (d *DB) Leases(ctx context.Context) ([]storage.LeaseInfo, error) {
	rows, err := d.pool.Query(ctx, `SELECT l.name, l.holder, l.since FROM leases l
		WHERE EXISTS (SELECT 1 FROM pg_locks k WHERE k.locktype = 'advisory' AND k.granted AND k.objsubid = 1
			AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND ((k.classid::bigint << 32) | k.objid::bigint) = l.lock_key)
		ORDER BY l.name`)
	if err != nil {
		return nil, fmt.Errorf("storage: leases: %w", unavailable(err))
	}
	defer rows.Close()
	out := []storage.LeaseInfo{}
	for rows.Next() {
		var l storage.LeaseInfo
		if err := rows.Scan(&l.Name, &l.Holder, &l.Since); err != nil {
			return nil, err
		}
		l.Since = l.Since.UTC()
		out = append(out, l)
	}
	return out, rows.Err()
}
