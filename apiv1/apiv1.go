// Package apiv1 holds the wire types of the CA's /v1 HTTP API, shared by the
// server and by the workload and admin clients, so neither side imports the
// other.
package apiv1

import "time"

// Paths of the API.
const (
	PathEnroll  = "/v1/enroll"
	PathRenew   = "/v1/renew"
	PathRevoke  = "/v1/revoke"
	PathCerts   = "/v1/certs"
	PathCRL     = "/crl"
	PathCRLPEM  = "/crl.pem"
	PathHealth  = "/health"
	PathMetrics = "/metrics"
)

// MaxBody bounds every request body.
const MaxBody = 64 << 10

// EnrollRequest trades a one-time token and a CSR for a certificate.
type EnrollRequest struct {
	Token string `json:"token"`
	CSR   string `json:"csr"` // PEM PKCS#10
}

// RenewRequest asks for a successor of the mTLS client certificate.
type RenewRequest struct {
	CSR string `json:"csr"`
}

// CertResponse carries an issued certificate.
type CertResponse struct {
	Serial    string    `json:"serial"`
	Subject   string    `json:"subject"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	Chain     string    `json:"chain"` // PEM: leaf, issuing CA, ...
}

// RevokeRequest revokes one serial, or every live certificate of a subject.
type RevokeRequest struct {
	Serial  string `json:"serial,omitempty"`
	Subject string `json:"subject,omitempty"`
	Reason  string `json:"reason,omitempty"` // RFC 5280 name or code
}

// RevokeResponse says what changed and which CRL carries it.
type RevokeResponse struct {
	Revoked        []CertInfo `json:"revoked"`
	AlreadyRevoked []CertInfo `json:"alreadyRevoked,omitempty"`
	// CRLNumber is the first stored CRL carrying the revocation; 0 when the
	// CA answered before one was built (the revocation stands regardless).
	CRLNumber     uint64 `json:"crlNumber"`
	RevocationSeq uint64 `json:"revocationSeq"`
	// IssuedByRevoked lists the admin certificates still valid that a
	// revoked admin certificate of this request (or of an earlier one,
	// for AlreadyRevoked) issued, directly or through other admins:
	// what a leaked admin left behind, to revoke as well.
	IssuedByRevoked []CertInfo `json:"issuedByRevoked,omitempty"`
}

// CertInfo describes a stored certificate.
type CertInfo struct {
	Serial    string    `json:"serial"`
	Subject   string    `json:"subject"`
	SANs      []string  `json:"sans,omitempty"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	Method    string    `json:"method"`
	Status    string    `json:"status"` // valid, revoked, expired
	RevokedAt time.Time `json:"revokedAt,omitzero"`
	Reason    string    `json:"reason,omitempty"`
	// Lineage is the serial of the first certificate of its chain of
	// renewals; RenewedFrom/RenewedTo link its neighbours in that chain.
	Lineage     string `json:"lineage,omitempty"`
	RenewedFrom string `json:"renewedFrom,omitempty"`
	RenewedTo   string `json:"renewedTo,omitempty"`
	// RevokedWith is the serial whose revocation took this certificate
	// along (it was renewed from it).
	RevokedWith string `json:"revokedWith,omitempty"`
	// Undelivered: a renewal that lost a race, recorded and revoked but
	// never handed to anyone (so not on the CRL).
	Undelivered bool `json:"undelivered,omitempty"`
	// IssuedBy is, for an admin certificate, the serial of the admin
	// certificate that asked for it, or "init" / "local:HOST".
	IssuedBy string `json:"issuedBy,omitempty"`
	// IssuerRevoked is, for a still-valid admin certificate, the serial
	// of the revoked admin certificate it was issued by, directly or
	// through other admins (GET /v1/admins, issuedByRevoked).
	IssuerRevoked string `json:"issuerRevoked,omitempty"`
}

// CertList answers GET /v1/certs: one page of at most limit certificates
// (default CertsDefaultLimit, at most CertsMaxLimit). Next, when set, is
// the cursor of the following page: GET /v1/certs?cursor=NEXT with the
// same filters.
type CertList struct {
	Certs []CertInfo `json:"certs"`
	Next  string     `json:"next,omitempty"`
}

// Page sizes of GET /v1/certs.
const (
	CertsDefaultLimit = 100
	CertsMaxLimit     = 1000
)

// Health answers GET /health.
type Health struct {
	Status   string     `json:"status"` // ok, degraded or unhealthy
	CRL      *CRLHealth `json:"crl,omitempty"`
	Warnings []string   `json:"warnings,omitempty"`
	// Leases: which CA process runs the CRL updater ("crl") and the
	// trust-anchor pusher ("push"), and since when.
	Leases []Lease `json:"leases,omitempty"`
}

// Lease is one job held by one CA process.
type Lease struct {
	Name   string    `json:"name"`
	Holder string    `json:"holder"`
	Since  time.Time `json:"since"`
}

// CRLHealth describes the current CRL.
type CRLHealth struct {
	Number     uint64    `json:"number"`
	ThisUpdate time.Time `json:"thisUpdate"`
	NextUpdate time.Time `json:"nextUpdate"`
	Entries    int       `json:"entries"`
	PEMBytes   int       `json:"pemBytes"`
	NearCap    bool      `json:"nearImportCap"` // at 80% of the Roles Anywhere cap or more
	OverCap    bool      `json:"overImportCap"` // over it: trust anchors keep an older CRL
}

// Paths of the trust-anchor status API.
const (
	PathAnchors     = "/v1/anchors"
	PathAnchorsPush = "/v1/anchors/push"
)

// AnchorStatus is what anchorsync last achieved for one trust anchor.
type AnchorStatus struct {
	ARN       string    `json:"arn"`
	CRLID     string    `json:"crlId,omitempty"`
	CRLNumber uint64    `json:"crlNumber"` // newest CRL the anchor holds
	PushedAt  time.Time `json:"pushedAt,omitzero"`
	LastTry   time.Time `json:"lastTry,omitzero"`
	LastError string    `json:"lastError,omitempty"`
	Attempts  int       `json:"failedAttempts,omitempty"`
	Throttled int       `json:"throttled,omitempty"`
	// Regressed: the anchor holds a CRL numbered HeldNumber, above the
	// CA's newest; anchorsync refuses to push over it.
	Regressed  bool   `json:"regressed,omitempty"`
	HeldNumber uint64 `json:"heldNumber,omitempty"`
	// Recovered counts revocations this anchor enforced that the CA's
	// database had lost (restored from an older backup) and took back.
	Recovered int `json:"recovered,omitempty"`
}

// AnchorList answers GET /v1/anchors.
type AnchorList struct {
	CRLNumber uint64         `json:"crlNumber"`        // the CA's current CRL
	CRLSeq    uint64         `json:"crlRevocationSeq"` // revocation sequence the current CRL covers
	Anchors   []AnchorStatus `json:"anchors"`
}
