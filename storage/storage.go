// Package storage is anchorage's record of truth: every certificate the CA
// issues, every revocation, every used enrollment token, the CRL number and
// the trust-anchor push status. The bbolt implementation commits with fsync
// and groups concurrent writes into shared commits (group commit), so a
// record is durable before the caller acknowledges anything and issuance is
// not bound to one fsync per request.
//
// Callers declare the small interfaces they need; the method set here is kept
// narrow enough that a PostgreSQL implementation can follow.
package storage

import (
	"errors"
	"time"
)

// Sentinel errors callers branch on.
var (
	ErrNotFound  = errors.New("not found")
	ErrTokenUsed = errors.New("token already used")
	ErrStaleCRL  = errors.New("CRL number does not increase")
)

// Status is the lifecycle state of an issued certificate.
type Status string

const (
	StatusValid   Status = "valid"
	StatusRevoked Status = "revoked"
)

// Cert is the stored record of one issued certificate.
type Cert struct {
	Serial      string    `json:"serial"` // lowercase hex, no leading zeros stripped
	Subject     string    `json:"subject"`
	SANs        []string  `json:"sans,omitempty"`
	NotBefore   time.Time `json:"notBefore"`
	NotAfter    time.Time `json:"notAfter"`
	IssuedAt    time.Time `json:"issuedAt"`
	Method      string    `json:"method"` // token, renew, acme, admin, tls
	TokenID     string    `json:"tokenId,omitempty"`
	RenewedFrom string    `json:"renewedFrom,omitempty"`
	Order       string    `json:"order,omitempty"` // ACME order id; its final state commits with this record
	Status      Status    `json:"status"`
	RevokedAt   time.Time `json:"revokedAt,omitzero"`
	Reason      int       `json:"reason,omitempty"` // RFC 5280 CRLReason code
	DER         []byte    `json:"der"`
}

// Expired reports whether the certificate is past its notAfter at now.
func (c *Cert) Expired(now time.Time) bool { return !now.Before(c.NotAfter) }

// Revocation is one entry of the CRL.
type Revocation struct {
	Serial    string
	RevokedAt time.Time
	Reason    int
	NotAfter  time.Time
}

// Filter selects certificates in ListCerts. Zero fields match everything.
type Filter struct {
	Subject string // exact CN
	Status  Status
	Live    bool // only unexpired
	Limit   int
}

// AnchorStatus is what anchorsync last achieved for one trust anchor.
type AnchorStatus struct {
	ARN        string    `json:"arn"`
	CRLID      string    `json:"crlId,omitempty"`
	CRLNumber  uint64    `json:"crlNumber"`
	PushedAt   time.Time `json:"pushedAt,omitzero"`
	LastError  string    `json:"lastError,omitempty"`
	LastTry    time.Time `json:"lastTry,omitzero"`
	Attempts   int       `json:"attempts,omitempty"`
	Throttled  int       `json:"throttled,omitempty"`
	UpdatedCRL uint64    `json:"updatedCrl,omitempty"`
}
