package caserver

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/storage"
	"github.com/anchorage-pki/anchorage/storage/postgres"
)

// Store is the record of truth the CA is assembled on: the bbolt file
// (storage.DB) or a PostgreSQL database shared by replicas (postgres.DB).
// The composition root hands it to every component, each of which takes
// only the small interface it declares.
type Store = storage.Backend

var (
	_ Store = (*storage.DB)(nil)
	_ Store = (*postgres.DB)(nil)
)

// OpenStore opens the record of truth cfg names, for commands that work
// on it without a running CA (admin issue --local). The caller closes it.
// A bbolt file from an older release is migrated here too, which can take
// a while: log (may be nil) hears how it goes, so the command can say so.
func OpenStore(ctx context.Context, cfg *config.CA, log *slog.Logger) (Store, error) {
	st, _, err := openStore(ctx, cfg, log)
	return st, err
}

// openStore opens the backend the config names: PostgreSQL with
// "storage.postgres", else the bbolt file at paths.db. where names it in
// messages; log (may be nil) hears how a bbolt file from an older
// release is migrated.
func openStore(ctx context.Context, cfg *config.CA, log *slog.Logger) (st Store, where string, err error) {
	if cfg.Storage == nil || cfg.Storage.Postgres == nil {
		d, err := storage.OpenWith(cfg.Path(cfg.Paths.DB), storage.OpenOptions{Logger: log})
		if err != nil {
			return nil, "", err
		}
		return d, cfg.Path(cfg.Paths.DB), nil
	}
	p := cfg.Storage.Postgres
	// Replicas on one database are told apart in Leases (/health,
	// /metrics) by host, process and listen address: two replicas on one
	// host, or in one test process, differ in the last.
	host, _ := os.Hostname()
	o := postgres.Options{MaxConns: p.MaxConns, Holder: fmt.Sprintf("%s pid %d listen %s", host, os.Getpid(), cfg.Listen)}
	if p.PasswordFile != "" {
		b, err := os.ReadFile(cfg.Path(p.PasswordFile))
		if err != nil {
			return nil, "", fmt.Errorf("storage.postgres.passwordFile: %w", err)
		}
		o.Password = strings.TrimRight(string(b), "\r\n")
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	d, err := postgres.Open(octx, p.URL, o)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", p.Origin(), err)
	}
	return d, "PostgreSQL " + describe(p.URL), nil
}

// describe names a database by host and name, never its password.
func describe(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "database"
	}
	return u.Host + u.Path
}
