package caserver

import (
	"context"
	"encoding/json"
	"fmt"
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
type Store interface {
	Close() error
	Damaged() error
	Watch(t storage.Topic) (<-chan struct{}, func())
	Hold(ctx context.Context, name string, fn func(ctx context.Context))
	Leases(ctx context.Context) ([]storage.LeaseInfo, error)

	PutCert(ctx context.Context, c *storage.Cert) error
	PutCerts(ctx context.Context, cs []*storage.Cert) error
	PutCertUsingToken(ctx context.Context, c *storage.Cert, jti string, keepUntil time.Time) error
	TokenUsed(ctx context.Context, jti string) (bool, error)
	PruneTokens(ctx context.Context, now time.Time) (int, error)
	Cert(ctx context.Context, serial string) (*storage.Cert, error)
	ListCerts(ctx context.Context, f storage.Filter, now time.Time) ([]*storage.Cert, error)
	PutRenewal(ctx context.Context, pred string, succ *storage.Cert, now time.Time) error
	RevokeSerial(ctx context.Context, serial string, reason int, at time.Time) (*storage.RevokeResult, error)
	RevokeSubject(ctx context.Context, subject string, reason int, at time.Time) (*storage.RevokeResult, error)
	Revocations(ctx context.Context, now time.Time) (storage.RevocationSet, error)
	RecoverRevocations(ctx context.Context, entries []storage.Revocation, maxLifetime time.Duration) (int, error)
	RevocationSeq(ctx context.Context) (uint64, error)
	PruneRevoked(ctx context.Context, now time.Time) (int, error)
	CRL(ctx context.Context) (storage.CRL, error)
	CRLNumber(ctx context.Context) (number, seq uint64, err error)
	SaveCRL(ctx context.Context, c storage.CRL) error
	PutAnchorStatus(ctx context.Context, s storage.AnchorStatus) error
	AnchorStatuses(ctx context.Context) (map[string]storage.AnchorStatus, error)

	ACMEAccount(ctx context.Context, id string) (*storage.ACMEAccount, error)
	ACMEAccountByKey(ctx context.Context, provisioner, thumbprint string) (*storage.ACMEAccount, error)
	CreateACMEAccount(ctx context.Context, a *storage.ACMEAccount) (*storage.ACMEAccount, error)
	UpdateACMEAccount(ctx context.Context, id string, fn func(*storage.ACMEAccount) error) (*storage.ACMEAccount, error)
	RekeyACMEAccount(ctx context.Context, id, oldThumbprint, newThumbprint string, newKey json.RawMessage) (*storage.ACMEAccount, error)
	CreateACMEOrder(ctx context.Context, o *storage.ACMEOrder, authzs []*storage.ACMEAuthz, lim storage.ACMEOrderLimits) error
	ACMEOrder(ctx context.Context, id string) (*storage.ACMEOrder, error)
	ACMEAuthz(ctx context.Context, id string) (*storage.ACMEAuthz, error)
	UpdateACMEAuthz(ctx context.Context, id string, fn func(a *storage.ACMEAuthz, o *storage.ACMEOrder, all []*storage.ACMEAuthz) error) error
	ClaimACMEOrder(ctx context.Context, id string, now time.Time) (*storage.ACMEOrder, error)
	ReleaseACMEOrder(ctx context.Context, id, status string, problem json.RawMessage) error
	ResolveACMEOrders(ctx context.Context, fn func(o *storage.ACMEOrder, c *storage.Cert)) (int, error)
	PruneACME(ctx context.Context, now time.Time) (orders, authzs int, err error)
}

var (
	_ Store = (*storage.DB)(nil)
	_ Store = (*postgres.DB)(nil)
)

// OpenStore opens the record of truth cfg names, for commands that work
// on it without a running CA (admin issue --local). The caller closes it.
func OpenStore(ctx context.Context, cfg *config.CA) (Store, error) {
	st, _, err := openStore(ctx, cfg)
	return st, err
}

// openStore opens the backend the config names: PostgreSQL with
// "storage.postgres", else the bbolt file at paths.db. where names it in
// messages.
func openStore(ctx context.Context, cfg *config.CA) (st Store, where string, err error) {
	if cfg.Storage == nil || cfg.Storage.Postgres == nil {
		d, err := storage.Open(cfg.Path(cfg.Paths.DB))
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
		return nil, "", fmt.Errorf("storage.postgres: %w", err)
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
