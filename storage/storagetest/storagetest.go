// Package storagetest is the conformance suite of anchorage's storage
// backends: one table of tests, run by storage (bbolt) and storage/postgres
// against their own backend, so both keep the same semantics — lineages
// and the renew/revoke race, whole-lineage revocation, single-use tokens,
// strictly increasing CRL numbers, anchor status, Watch signals, leases and
// ACME state. Tests of one backend's internals (bbolt's file checks and
// group commit, PostgreSQL's replicas) stay beside that backend.
package storagetest

import (
	"context"
	"encoding/json"
	"time"

	"github.com/anchorage-pki/anchorage/storage"
)

// Backend is the method set every storage backend implements.
type Backend interface {
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

var _ Backend = (*storage.DB)(nil)
