package audit

import (
	"crypto/x509"
	"time"
)

// World is everything one audit looks at, fetched before Analyze runs.
type World struct {
	Now time.Time
	// CA is this CA's issuing certificate(s): the issuers its workload
	// certificates chain to.
	CA []*x509.Certificate
	// Certs are the CA's live (valid, unexpired) certificates.
	Certs []Cert
	// Accounts are the AWS accounts read; one whose fetch failed carries
	// Err and is reported, not analysed.
	Accounts []*Account
	// Issued holds the serial (lowercase hex) of every certificate the CA
	// ever issued, live or not: a subject at AWS with another serial came
	// from elsewhere.
	Issued map[string]bool
	// MaxLifetime is the lifetime policy (notAfter - notBefore).
	MaxLifetime time.Duration
	// Previous is the last audit's snapshot, nil on the first audit.
	Previous *Snapshot
	// Progress, when set, hears how far Analyze is (every 100
	// certificates).
	Progress func(format string, args ...any)
}

// Cert is one live certificate of the CA.
type Cert struct {
	Serial string // lowercase hex
	Cert   *x509.Certificate
	// KeyID is the hex SHA-256 of the SubjectPublicKeyInfo.
	KeyID string
	// Lineage is the enrollment the certificate renews (its first serial).
	Lineage string
}

// Account is what one AWS account and region hold.
type Account struct {
	Name     string // from config
	ID       string // 12 digits
	Region   string
	Anchors  []Anchor
	Profiles []Profile
	CRLs     []CRL
	Roles    map[string]*Role // by ARN; roles named by profiles
	Subjects []Subject
	// SubjectsRead is false when subjects were skipped (--no-subjects):
	// the snapshot then keeps the previous audit's subjects of the account.
	SubjectsRead bool
	Err          error
}

// Anchor is a Roles Anywhere trust anchor.
type Anchor struct {
	ARN, ID, Name string
	Enabled       bool
	SourceType    string
	// Bundle is the parsed x509CertificateData (empty for an ACM PCA
	// source).
	Bundle []*x509.Certificate
}

// Mapping is one attribute mapping of a profile: which specifiers of a
// certificate field become session tags.
type Mapping struct {
	Field      string   `json:"certificateField"` // x509Subject, x509Issuer, x509SAN
	Specifiers []string `json:"specifiers"`
}

// Profile is a Roles Anywhere profile.
type Profile struct {
	ARN, ID, Name     string
	Enabled           bool
	RoleARNs          []string
	SessionPolicy     string // JSON; "" when none
	ManagedPolicyARNs []string
	// ManagedPolicies are the documents of ManagedPolicyARNs (default
	// versions), in the same order; a missing one is absent.
	ManagedPolicies []NamedPolicy
	// Mappings nil means AWS's defaults.
	Mappings                  []Mapping
	DurationSeconds           int
	RequireInstanceProperties bool
}

// CRL is a CRL imported into a trust anchor.
type CRL struct {
	ARN, ID, Name string
	AnchorARN     string
	Enabled       bool
	// Size is the length of crlData as sent (PEM text), the quantity the
	// 300000 limit bounds.
	Size       int
	NextUpdate time.Time // zero when it does not parse
	Number     string
}

// Role is an IAM role with its policies.
type Role struct {
	ARN, Name   string
	TrustPolicy string // JSON
	// Policies are its inline policies and the default versions of its
	// attached managed policies.
	Policies []NamedPolicy
	Err      error // GetRole failed: not analysed, reported
}

// NamedPolicy is one policy document and where it came from.
type NamedPolicy struct {
	Name     string // inline policy name or managed policy name
	ARN      string // managed policies only
	Document string // JSON
}

// Subject is what Roles Anywhere recorded about one certificate identity.
type Subject struct {
	ID, ARN     string
	X509Subject string
	Enabled     bool
	CreatedAt   time.Time
	LastSeenAt  time.Time
	Credentials []SubjectCredential
	Instances   []InstanceProperties
}

// SubjectCredential is one certificate seen for a subject.
type SubjectCredential struct {
	Serial string // as AWS reports it (decimal or hex)
	Issuer string
	SeenAt time.Time
	Failed bool
	DER    []byte // x509CertificateData decoded, when present
}

// InstanceProperties is one set of instance properties a session came with.
type InstanceProperties struct {
	Properties map[string]string
	SeenAt     time.Time
	Failed     bool
}
