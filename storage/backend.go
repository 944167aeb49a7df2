package storage

import (
	"context"
	"encoding/json"
	"time"
)

// Backend is the whole method set of a record of truth: the bbolt file
// (DB) or a PostgreSQL database shared by replicas (storage/postgres). Only
// the composition root (caserver) and the conformance suite
// (storage/storagetest) hold a Backend; every component takes just the
// small interface it declares.
type Backend interface {
	Close() error
	Damaged() error
	Watch(t Topic) (<-chan struct{}, func())
	Hold(ctx context.Context, name string, fn func(ctx context.Context))
	Leases(ctx context.Context) ([]LeaseInfo, error)

	PutCert(ctx context.Context, c *Cert) error
	PutCerts(ctx context.Context, cs []*Cert) error
	PutCertUsingToken(ctx context.Context, c *Cert, jti string, keepUntil time.Time) error
	TokenUsed(ctx context.Context, jti string) (bool, error)
	PruneTokens(ctx context.Context, now time.Time) (int, error)
	Cert(ctx context.Context, serial string) (*Cert, error)
	ListCerts(ctx context.Context, f Filter, now time.Time) ([]*Cert, error)
	ListCertsPage(ctx context.Context, f Filter, now time.Time) (CertPage, error)
	PutRenewal(ctx context.Context, pred string, succ *Cert, now time.Time) error
	RevokeSerial(ctx context.Context, serial string, reason int, at time.Time) (*RevokeResult, error)
	RevokeSubject(ctx context.Context, subject string, reason int, at time.Time) (*RevokeResult, error)
	Revocations(ctx context.Context, now time.Time) (RevocationSet, error)
	RecoverRevocations(ctx context.Context, entries []Revocation, maxLifetime time.Duration) (int, error)
	RevocationSeq(ctx context.Context) (uint64, error)
	PruneRevoked(ctx context.Context, now time.Time) (int, error)
	CRL(ctx context.Context) (CRL, error)
	CRLNumber(ctx context.Context) (number, seq uint64, err error)
	SaveCRL(ctx context.Context, c CRL) error
	PutAnchorStatus(ctx context.Context, s AnchorStatus) error
	AnchorStatuses(ctx context.Context) (map[string]AnchorStatus, error)
	PutAuditSnapshot(ctx context.Context, s AuditSnapshot) error
	AuditSnapshot(ctx context.Context) (AuditSnapshot, error)

	ACMEAccount(ctx context.Context, id string) (*ACMEAccount, error)
	ACMEAccountByKey(ctx context.Context, provisioner, thumbprint string) (*ACMEAccount, error)
	CreateACMEAccount(ctx context.Context, a *ACMEAccount) (*ACMEAccount, error)
	UpdateACMEAccount(ctx context.Context, id string, fn func(*ACMEAccount) error) (*ACMEAccount, error)
	RekeyACMEAccount(ctx context.Context, id, oldThumbprint, newThumbprint string, newKey json.RawMessage) (*ACMEAccount, error)
	CreateACMEOrder(ctx context.Context, o *ACMEOrder, authzs []*ACMEAuthz, lim ACMEOrderLimits) error
	ACMEOrder(ctx context.Context, id string) (*ACMEOrder, error)
	ACMEAuthz(ctx context.Context, id string) (*ACMEAuthz, error)
	UpdateACMEAuthz(ctx context.Context, id string, fn func(a *ACMEAuthz, o *ACMEOrder, all []*ACMEAuthz) error) error
	ClaimACMEOrder(ctx context.Context, id string, now time.Time) (*ACMEOrder, error)
	ReleaseACMEOrder(ctx context.Context, id, status string, problem json.RawMessage) error
	ResolveACMEOrders(ctx context.Context, fn func(o *ACMEOrder, c *Cert)) (int, error)
	PruneACME(ctx context.Context, now time.Time) (orders, authzs int, err error)
	NonceKey(ctx context.Context) ([]byte, error)
	UseNonce(ctx context.Context, id string, expires time.Time) (fresh bool, err error)
	PruneNonces(ctx context.Context, now time.Time) (int, error)
}

var _ Backend = (*DB)(nil)
