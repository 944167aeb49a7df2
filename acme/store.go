package acme

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"time"

	"go.step.sm/crypto/jose"

	"github.com/anchorage-pki/anchorage/storage"
)

// Store is what the ACME front end needs from the CA's record of truth.
// ACME state lives there beside the certificates, so that an order's final
// state commits with its certificate (storage.Cert.Order). Methods are typed
// rather than transactions so that another implementation (PostgreSQL) can
// follow; storage.DB documents the rule each keeps inside its transaction.
// Missing records are storage.ErrNotFound.
type Store interface {
	ACMEAccount(ctx context.Context, id string) (*storage.ACMEAccount, error)
	ACMEAccountByKey(ctx context.Context, provisioner, thumbprint string) (*storage.ACMEAccount, error)
	// CreateACMEAccount binds key (and EAB key) and stores a, or returns the
	// account the key already holds; storage.ErrACMEEABBound.
	CreateACMEAccount(ctx context.Context, a *storage.ACMEAccount) (*storage.ACMEAccount, error)
	UpdateACMEAccount(ctx context.Context, id string, fn func(*storage.ACMEAccount) error) (*storage.ACMEAccount, error)
	// RekeyACMEAccount: *storage.ACMEKeyInUseError, storage.ErrACMEStale.
	RekeyACMEAccount(ctx context.Context, id, oldThumbprint, newThumbprint string, newKey json.RawMessage) (*storage.ACMEAccount, error)

	// CreateACMEOrder stores o and authzs unless the account's unfinished
	// orders exceed lim (*storage.ACMELimitError), counted in the same commit.
	CreateACMEOrder(ctx context.Context, o *storage.ACMEOrder, authzs []*storage.ACMEAuthz, lim storage.ACMEOrderLimits) error
	ACMEOrder(ctx context.Context, id string) (*storage.ACMEOrder, error)
	ACMEAuthz(ctx context.Context, id string) (*storage.ACMEAuthz, error)
	// UpdateACMEAuthz changes an authorization and its order together.
	UpdateACMEAuthz(ctx context.Context, id string, fn func(a *storage.ACMEAuthz, o *storage.ACMEOrder, all []*storage.ACMEAuthz) error) error
	// ClaimACMEOrder: ready → processing, else storage.ErrACMEOrderState.
	// The certificate's commit then makes it valid (storage.Cert.Order).
	ClaimACMEOrder(ctx context.Context, id string, now time.Time) (*storage.ACMEOrder, error)
	// ReleaseACMEOrder: processing → status after a failed issue.
	ReleaseACMEOrder(ctx context.Context, id, status string, problem json.RawMessage) error
	// ResolveACMEOrders hands fn each processing order (at start) with the
	// certificate recorded for it, if any, and stores what fn decides.
	ResolveACMEOrders(ctx context.Context, fn func(o *storage.ACMEOrder, c *storage.Cert)) (int, error)

	// Cert is the issued certificate: the download and revokeCert read
	// the leaf and its order from the record of truth.
	Cert(ctx context.Context, serial string) (*storage.Cert, error)

	NonceStore
}

// legacyImporter is implemented by a store that can take over the acme.db
// this package used to keep (storage.DB).
type legacyImporter interface {
	ImportLegacyACME(ctx context.Context, path string) (int, error)
}

// The records are storage's; the names here keep the handlers short.
type (
	ident     = storage.ACMEIdentifier
	account   = storage.ACMEAccount
	order     = storage.ACMEOrder
	authz     = storage.ACMEAuthz
	challenge = storage.ACMEChallenge
)

// Status values of accounts, orders, authorizations and challenges.
const (
	statusValid       = storage.ACMEValid
	statusPending     = storage.ACMEPending
	statusReady       = storage.ACMEReady
	statusProcessing  = storage.ACMEProcessing
	statusInvalid     = storage.ACMEInvalid
	statusDeactivated = "deactivated"
	statusExpired     = "expired"
)

// accountKey decodes the account's stored JWK.
func accountKey(a *account) (*jose.JSONWebKey, error) {
	k := new(jose.JSONWebKey)
	if err := k.UnmarshalJSON(a.Key); err != nil {
		return nil, err
	}
	return k, nil
}

func marshalKey(k *jose.JSONWebKey) (json.RawMessage, error) { return k.MarshalJSON() }

// raw is the problem document as stored on orders and challenges.
func (p *Problem) raw() json.RawMessage {
	if p == nil {
		return nil
	}
	b, _ := json.Marshal(p)
	return b
}

// newID is 128 random bits, base64url: unguessable, so resource URLs do
// not leak one account's orders to another by enumeration.
func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
