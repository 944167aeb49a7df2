// Package storage is anchorage's record of truth: every certificate the CA
// issues and the lineage it belongs to, every revocation and the revocation
// sequence that counts them, every used enrollment token, the CRLs built
// from them and the trust-anchor push status. It is also the bus of the
// revocation path: ca.Revoke only commits here; the CRL updater builds when
// the revocation sequence is ahead of the newest stored CRL; anchorsync
// pushes the newest stored CRL and records what each anchor holds here;
// revoke --wait reads that record. Watch signals cut latency, but every
// consumer re-reads storage, so correctness never depends on a signal.
//
// The bbolt implementation commits with fsync and groups concurrent writes
// into shared commits (group commit), so a record is durable before the
// caller acknowledges anything and issuance is not bound to one fsync per
// request. Callers declare the small interfaces they need; the method set
// here is kept narrow enough that a PostgreSQL implementation can follow.
package storage

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors callers branch on.
var (
	ErrNotFound  = errors.New("not found")
	ErrTokenUsed = errors.New("token already used")
	// ErrTokenExpired refuses a token whose keep-until time has passed by
	// the time its certificate would be committed.
	ErrTokenExpired = errors.New("token expired before its certificate was recorded")
	ErrStaleCRL     = errors.New("CRL number does not increase")
	ErrRevoked      = errors.New("certificate or its lineage is revoked")
	ErrExpired      = errors.New("certificate has expired")
	// ErrUnavailable marks a failure to reach the store at all (database
	// down or restarting, connection lost): nothing about the request
	// was judged, and a retry later may succeed. A write that meets it
	// may or may not have committed, as with any lost answer.
	ErrUnavailable error = unavailableError{}
)

type unavailableError struct{}

func (unavailableError) Error() string { return "storage unavailable" }

// Unavailable lets front ends that must not import storage (package
// problem) answer 503 instead of 500.
func (unavailableError) Unavailable() bool { return true }

// SupersededError refuses a renewal of a certificate that was renewed
// already: only the newest certificate of a lineage may renew. Successor is
// the certificate that superseded it, so a caller can tell a retry whose
// answer was lost (same key) from a second holder of the same certificate.
type SupersededError struct {
	Predecessor string
	Successor   *Cert
}

func (e *SupersededError) Error() string {
	return fmt.Sprintf("certificate %s was already renewed as %s", e.Predecessor, e.Successor.Serial)
}

// Status is the lifecycle state of an issued certificate.
type Status string

const (
	StatusValid   Status = "valid"
	StatusRevoked Status = "revoked"
)

// Method is how a certificate came to be issued.
type Method string

const (
	MethodToken Method = "token" // one-time enrollment token
	MethodRenew Method = "renew" // mTLS renewal of a predecessor
	MethodACME  Method = "acme"  // ACME order
	MethodAdmin Method = "admin" // admin client certificate (admin intermediate)
	MethodTLS   Method = "tls"   // the CA API's own server certificate
)

// OnCRL reports whether certificates of this method are issued by the
// issuing CA, and so belong on its CRL when revoked. Admin certificates
// come from the admin intermediate and never appear there.
func (m Method) OnCRL() bool { return m != MethodAdmin }

// ReasonSuperseded is RFC 5280's superseded(4), recorded for a renewal that
// was signed but lost the race to store itself.
const ReasonSuperseded = 4

// Cert is the stored record of one issued certificate.
type Cert struct {
	Serial    string    `json:"serial"` // lowercase hex, even length
	Subject   string    `json:"subject"`
	SANs      []string  `json:"sans,omitempty"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	IssuedAt  time.Time `json:"issuedAt"`
	Method    Method    `json:"method"`
	TokenID   string    `json:"tokenId,omitempty"`
	// KeyID is the lowercase hex SHA-256 of the certificate's
	// SubjectPublicKeyInfo: a renewal retried with the same key is told
	// apart from another holder by it.
	KeyID string `json:"keyId,omitempty"`
	// Lineage is the serial of the first certificate of the chain of
	// renewals this one belongs to (its enrollment or ACME order).
	Lineage     string    `json:"lineage,omitempty"`
	RenewedFrom string    `json:"renewedFrom,omitempty"`
	RenewedTo   string    `json:"renewedTo,omitempty"` // set once it is renewed; then it may not renew again
	Order       string    `json:"order,omitempty"`     // ACME order id
	Status      Status    `json:"status"`
	RevokedAt   time.Time `json:"revokedAt,omitzero"`
	Reason      int       `json:"reason,omitempty"` // RFC 5280 CRLReason code
	// RevokedWith is the serial an admin named when this certificate was
	// revoked as another member of its lineage (empty when named itself).
	RevokedWith string `json:"revokedWith,omitempty"`
	// Undelivered marks a renewal that was signed but lost the race to
	// store itself: recorded, revoked, never handed to anyone, and so kept
	// off the CRL.
	Undelivered bool   `json:"undelivered,omitempty"`
	DER         []byte `json:"der"`
	// IssuedBy says who asked for an admin certificate: the serial of the
	// admin certificate that called POST /v1/admins, "init" for the first
	// admin, "local:HOST" for `admin issue --local`; empty on other
	// methods and on admin records older than this field.
	IssuedBy string `json:"issuedBy,omitempty"`
	// Parsed, when the caller has it, is DER parsed by crypto/x509: the
	// issuing core passes the certificate it just signed so that writing
	// the record does not parse it a second time. It is used only when its
	// Raw is DER; storage never sets or stores it.
	Parsed *x509.Certificate `json:"-"`
}

// Expired reports whether the certificate is past its notAfter at now.
func (c *Cert) Expired(now time.Time) bool { return !now.Before(c.NotAfter) }

// LineageID is the lineage the certificate belongs to; records written
// before lineages existed are each their own.
func (c *Cert) LineageID() string {
	if c.Lineage != "" {
		return c.Lineage
	}
	return c.Serial
}

// Revocation is one entry of the CRL.
type Revocation struct {
	Serial    string
	RevokedAt time.Time
	Reason    int
	NotAfter  time.Time
}

// RevocationSet is a consistent snapshot of what the CRL must carry: the
// revocations of unexpired certificates and the revocation sequence they
// add up to.
type RevocationSet struct {
	Seq     uint64
	Entries []Revocation
}

// CRL is one stored, signed CRL: its number, its DER, and the revocation
// sequence it covers (every revocation committed up to Seq is on it).
type CRL struct {
	Number uint64
	Seq    uint64
	DER    []byte
}

// Filter selects certificates in ListCerts. Zero fields match everything.
//
// Order: by serial within a subject when Subject is set; otherwise by
// notAfter, then serial, when any of Status, Live, Expired or Before is
// set (both backends answer these from an index by state and expiry);
// otherwise by serial. Each page is read in O(log n + page) from an index,
// except that with Subject set the other fields filter that subject's
// certificates.
type Filter struct {
	Subject string // exact CN
	Status  Status
	Live    bool      // only unexpired
	Expired bool      // only past notAfter
	Before  time.Time // only notAfter before this (zero: any)
	// Limit is the most certificates a page holds (0: all of them, for
	// callers inside the CA; the API always sets one).
	Limit int
	// Cursor continues a listing after the page that returned it as Next
	// (empty: from the start). It is opaque, and means the same on every
	// backend for the same Filter.
	Cursor string
}

// CertPage is one page of a listing. Next is empty on the last page;
// otherwise it is the Cursor of the page after this one (which may be
// empty when the listing ends exactly at a page boundary).
type CertPage struct {
	Certs []*Cert
	Next  string
}

// ByExpiry reports whether the listing f selects is ordered by notAfter.
func (f Filter) ByExpiry() bool {
	return f.Subject == "" && (f.Status != "" || f.Live || f.Expired || !f.Before.IsZero())
}

// Match reports whether c passes the filter's conditions at now (Subject
// aside, which every backend selects by index).
func (f Filter) Match(c *Cert, now time.Time) bool {
	switch {
	// Subject too: bbolt's subject index is a prefix scan, and a subject
	// that holds a NUL would otherwise be listed under the part before it.
	case f.Subject != "" && c.Subject != f.Subject,
		f.Status != "" && c.Status != f.Status,
		f.Live && c.Expired(now),
		f.Expired && !c.Expired(now),
		!f.Before.IsZero() && !c.NotAfter.Before(f.Before):
		return false
	}
	return true
}

// ErrBadCursor refuses a cursor that no listing made.
var ErrBadCursor = errors.New("malformed listing cursor")

// Position is where a listing stands: the notAfter and serial of the last
// certificate it returned.
type Position struct {
	NotAfter time.Time
	Serial   string
}

// EncodeCursor makes the opaque cursor for the position after c.
func EncodeCursor(c *Cert) string {
	b := make([]byte, 9, 9+len(c.Serial))
	b[0] = 1
	binary.BigEndian.PutUint64(b[1:], uint64(c.NotAfter.UnixMicro()))
	return base64.RawURLEncoding.EncodeToString(append(b, c.Serial...))
}

// DecodeCursor reads a cursor EncodeCursor made; ok is false for the
// empty cursor (start of the listing).
func DecodeCursor(s string) (p Position, ok bool, err error) {
	if s == "" {
		return p, false, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 10 || b[0] != 1 || len(b) > 9+256 {
		return p, false, ErrBadCursor
	}
	return Position{NotAfter: time.UnixMicro(int64(binary.BigEndian.Uint64(b[1:]))).UTC(), Serial: string(b[9:])}, true, nil
}

// RevokeResult is what one revocation commit changed.
type RevokeResult struct {
	Changed []*Cert // revoked by this commit
	Already []*Cert // revoked before, left as they were
	Seq     uint64  // revocation sequence after the commit
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
	// Regressed is set when the anchor holds a CRL numbered above the
	// CA's newest: pushing would roll the anchor back (un-revoke hosts),
	// so anchorsync stops for that anchor until an operator looks.
	Regressed  bool   `json:"regressed,omitempty"`
	HeldNumber uint64 `json:"heldNumber,omitempty"` // CRL number read back from the anchor
	// Recovered counts revocations this anchor enforced that the CA's
	// database had lost (it was restored from an older backup), taken back
	// into storage so no push could un-revoke them.
	Recovered int `json:"recovered,omitempty"`
}

// Topic names a kind of change Watch signals.
type Topic int

const (
	TopicRevocation Topic = iota // revocation sequence advanced
	TopicCRL                     // a new CRL was stored
	TopicAnchors                 // an anchor status was stored
	numTopics
)

// RevocationGrace is how long past its notAfter a revoked certificate
// stays on the CRL source. An expired certificate is invalid on its own,
// but "expired" is the CA's clock: with that clock ahead of a relying
// party's (an NTP fault, a VM restored with a wrong time), dropping the
// entry at notAfter would leave a revoked certificate that the relying
// party still considers valid off the pushed CRL. The grace tolerates a
// CA clock up to this far ahead, at the cost of a CRL carrying entries for
// at most this long after they expire.
const RevocationGrace = time.Hour

// RevocationRetention is how long past its notAfter a revocation entry is
// kept before PruneRevoked deletes it: well beyond RevocationGrace, so a
// clock that runs ahead and is then set back finds the entry still there
// (and back on the CRL) instead of lost for good.
const RevocationRetention = 24 * time.Hour
