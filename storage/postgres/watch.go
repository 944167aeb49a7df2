package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/anchorage-pki/anchorage/storage"
)

// Watch returns a channel signalled after each commit, on any replica,
// that changes t (NOTIFY, fanned out in-process by storage.Signals), and a
// function that stops the signals.
func (d *DB) Watch(t storage.Topic) (<-chan struct{}, func()) { return d.watch.Watch(t) }

// listen opens the LISTEN connection before Open returns, so no commit
// after Open goes unsignalled, and keeps it up in the background.
func (d *DB) listen(ctx context.Context) error {
	conn, err := d.listenConn(ctx)
	if err != nil {
		return fmt.Errorf("storage: postgres listen: %w", err)
	}
	d.wg.Add(1) // before Open returns: nothing can be closing yet
	go d.listenLoop(conn)
	return nil
}

func (d *DB) listenConn(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, d.cfg.Copy())
	if err != nil {
		return nil, err
	}
	for _, ch := range channels {
		if _, err := conn.Exec(ctx, "LISTEN "+ch); err != nil {
			conn.Close(context.Background())
			return nil, err
		}
	}
	return conn, nil
}

func (d *DB) listenLoop(conn *pgx.Conn) {
	defer d.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-d.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	topic := map[string]storage.Topic{}
	for t, ch := range channels {
		topic[ch] = storage.Topic(t)
	}
	for {
		for conn != nil {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				conn.Close(context.Background())
				conn = nil
				break
			}
			if t, ok := topic[n.Channel]; ok {
				d.watch.Signal(t)
			}
		}
		if ctx.Err() != nil {
			return
		}
		d.log.Warn("storage: postgres LISTEN connection lost; reconnecting")
		for conn == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			c, err := d.listenConn(ctx)
			if err != nil {
				continue
			}
			conn = c
		}
		// Changes committed while no one listened were not signalled.
		for t := range channels {
			d.watch.Signal(storage.Topic(t))
		}
	}
}
