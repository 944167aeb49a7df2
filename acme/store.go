package acme

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.step.sm/crypto/jose"
)

// ACME state in its own bbolt file: anchorage.db is held open by the CA's
// storage, and nothing here is a record of truth (certificates and
// revocations are in anchorage.db).
var (
	bktAccounts = []byte("accounts") // id -> account
	bktKeys     = []byte("keys")     // provisioner \x00 JWK thumbprint -> account id
	bktOrders   = []byte("orders")   // id -> order
	bktAuthzs   = []byte("authzs")   // id -> authz
	bktCerts    = []byte("certs")    // serial -> certRecord
	bktEAB      = []byte("eab")      // provisioner \x00 key id -> account id
)

var errNotFound = errors.New("not found")

// Status values of accounts, orders, authorizations and challenges.
const (
	statusValid       = "valid"
	statusPending     = "pending"
	statusReady       = "ready"
	statusProcessing  = "processing"
	statusInvalid     = "invalid"
	statusDeactivated = "deactivated"
	statusExpired     = "expired"
)

type ident struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type account struct {
	ID          string           `json:"id"`
	Provisioner string           `json:"provisioner"`
	Key         *jose.JSONWebKey `json:"key"`
	Thumbprint  string           `json:"thumbprint"`
	Status      string           `json:"status"`
	Contact     []string         `json:"contact,omitempty"`
	EABKeyID    string           `json:"eabKeyId,omitempty"`
	CreatedAt   time.Time        `json:"createdAt"`
}

type order struct {
	ID          string    `json:"id"`
	AccountID   string    `json:"accountId"`
	Status      string    `json:"status"`
	Expires     time.Time `json:"expires"`
	Identifiers []ident   `json:"identifiers"`
	AuthzIDs    []string  `json:"authzIds"`
	Error       *Problem  `json:"error,omitempty"`
	CertSerial  string    `json:"certSerial,omitempty"`
}

type authz struct {
	ID         string      `json:"id"`
	AccountID  string      `json:"accountId"`
	OrderID    string      `json:"orderId"`
	Identifier ident       `json:"identifier"`
	Wildcard   bool        `json:"wildcard,omitempty"`
	Status     string      `json:"status"`
	Expires    time.Time   `json:"expires"`
	Challenges []challenge `json:"challenges"`
}

type challenge struct {
	Type      string    `json:"type"`
	Token     string    `json:"token"`
	Status    string    `json:"status"`
	Validated time.Time `json:"validated,omitzero"`
	Error     *Problem  `json:"error,omitempty"`
}

type certRecord struct {
	Serial    string `json:"serial"`
	AccountID string `json:"accountId"`
	OrderID   string `json:"orderId"`
	ChainPEM  []byte `json:"chainPem"`
}

type store struct{ db *bolt.DB }

func openStore(path string) (*store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 3 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("acme: open %s: %w", path, err)
	}
	db.MaxBatchDelay = 2 * time.Millisecond
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bktAccounts, bktKeys, bktOrders, bktAuthzs, bktCerts, bktEAB} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("acme: init %s: %w", path, err)
	}
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

func (s *store) view(fn func(tx *bolt.Tx) error) error { return s.db.View(fn) }

// update runs fn in a write transaction; concurrent callers share a
// commit (fn may run more than once, so it must only touch tx).
func (s *store) update(fn func(tx *bolt.Tx) error) error { return s.db.Batch(fn) }

func get[T any](tx *bolt.Tx, bucket []byte, id string) (*T, error) {
	b := tx.Bucket(bucket).Get([]byte(id))
	if b == nil {
		return nil, errNotFound
	}
	v := new(T)
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("acme: decode %s/%s: %w", bucket, id, err)
	}
	return v, nil
}

func put(tx *bolt.Tx, bucket []byte, id string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put([]byte(id), b)
}

// newID is 128 random bits, base64url: unguessable, so resource URLs do
// not leak one account's orders to another by enumeration.
func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
