package audit

import "time"

// SchemaVersion names the JSON shape of Report; it changes only when a
// field changes meaning or goes away (new fields may appear).
const SchemaVersion = "anchorage.audit/v1"

// Severity of a finding.
type Severity string

const (
	High   Severity = "high"
	Medium Severity = "medium"
	Low    Severity = "low"
)

// Rank orders severities: high 3, medium 2, low 1, anything else 0.
func (s Severity) Rank() int {
	switch s {
	case High:
		return 3
	case Medium:
		return 2
	case Low:
		return 1
	}
	return 0
}

// ParseSeverity reads "high", "medium" or "low".
func ParseSeverity(s string) (Severity, bool) {
	v := Severity(s)
	return v, v.Rank() > 0
}

// Report is the audit's answer. Every list is sorted, so two audits of the
// same world give the same JSON.
type Report struct {
	Schema       string         `json:"schema"`
	GeneratedAt  time.Time      `json:"generatedAt"`
	CA           []CAInfo       `json:"ca"`
	Accounts     []AccountInfo  `json:"accounts"`
	Anchors      []AnchorNode   `json:"anchors"`
	Profiles     []ProfileNode  `json:"profiles"`
	Roles        []RoleNode     `json:"roles"`
	Certificates []CertEntry    `json:"certificates"`
	Ranking      []RankEntry    `json:"ranking"`
	Findings     []Finding      `json:"findings"`
	Summary      map[string]int `json:"summary"` // findings by severity
	Snapshot     *SnapshotInfo  `json:"previousAudit,omitempty"`
	Notes        []string       `json:"notes,omitempty"`
	snapshot     *Snapshot      // what to store for the next audit
}

// CAInfo names one of this CA's issuing certificates.
type CAInfo struct {
	Subject     string `json:"subject"`
	SKI         string `json:"ski"`         // hex
	Fingerprint string `json:"fingerprint"` // SHA-256 of the DER, hex
}

// AccountInfo is one account read (or not).
type AccountInfo struct {
	Name     string `json:"name"`
	ID       string `json:"id,omitempty"`
	Region   string `json:"region"`
	Error    string `json:"error,omitempty"`
	Anchors  int    `json:"anchors"`
	Profiles int    `json:"profiles"`
	Roles    int    `json:"roles"`
	Subjects int    `json:"subjects"`
}

// AnchorNode is a trust anchor on the map.
type AnchorNode struct {
	ARN     string       `json:"arn"`
	Account string       `json:"account"`
	Name    string       `json:"name"`
	Enabled bool         `json:"enabled"`
	Ours    bool         `json:"ours"` // its bundle holds this CA
	Bundle  []BundleCert `json:"bundle"`
	CRLs    []CRLInfo    `json:"crls"`
}

// BundleCert is one CA certificate of an anchor's bundle.
type BundleCert struct {
	Subject string `json:"subject"`
	SKI     string `json:"ski"`
	Ours    bool   `json:"ours"`
}

// CRLInfo is one CRL imported into an anchor.
type CRLInfo struct {
	ARN        string    `json:"arn"`
	Name       string    `json:"name"`
	Enabled    bool      `json:"enabled"`
	Size       int       `json:"size"`
	Number     string    `json:"number,omitempty"`
	NextUpdate time.Time `json:"nextUpdate,omitzero"`
}

// ProfileNode is a profile on the map.
type ProfileNode struct {
	ARN             string    `json:"arn"`
	Account         string    `json:"account"`
	Name            string    `json:"name"`
	Enabled         bool      `json:"enabled"`
	Roles           []string  `json:"roles"`
	SessionPolicy   bool      `json:"sessionPolicy"`
	ManagedPolicies []string  `json:"managedPolicies,omitempty"`
	Mappings        []Mapping `json:"attributeMappings"`
}

// RoleNode is a role on the map with a summary of what it may do.
type RoleNode struct {
	ARN         string            `json:"arn"`
	Account     string            `json:"account"`
	Name        string            `json:"name"`
	Error       string            `json:"error,omitempty"`
	Permissions PermissionSummary `json:"permissions"`
}

// PermissionSummary condenses a role's own policies (before any session
// policy).
type PermissionSummary struct {
	Policies   int    `json:"policies"`
	Statements int    `json:"statements"` // Allow statements
	Level      string `json:"level"`      // highest: permissions-management, write, read, none
	Admin      bool   `json:"admin"`      // admin-equivalent
	Wildcard   bool   `json:"wildcardResource"`
	Score      int    `json:"score"`
}

// CertEntry is one live certificate and everything it reaches.
type CertEntry struct {
	Serial     string      `json:"serial"`
	Subject    string      `json:"subject"`
	SANs       []string    `json:"sans"`
	NotBefore  time.Time   `json:"notBefore"`
	NotAfter   time.Time   `json:"notAfter"`
	Anchors    []string    `json:"anchors"` // enabled anchors that trust it
	Access     []Access    `json:"access"`  // (anchor, profile, role) it can assume
	Score      int         `json:"score"`
	ScoreParts []ScorePart `json:"scoreParts"`
}

// Access is one way in: CreateSession with this anchor, profile and role
// would succeed for the certificate.
type Access struct {
	Account string `json:"account"`
	Anchor  string `json:"anchor"`
	Profile string `json:"profile"`
	Role    string `json:"role"`
}

// ScorePart is one statement's share of a certificate's blast radius.
type ScorePart struct {
	Account   string `json:"account"`
	Role      string `json:"role"`
	Profile   string `json:"profile"`   // whose session policy bounded it
	Policy    string `json:"policy"`    // policy name
	Statement string `json:"statement"` // Sid, or #index (0-based)
	Action    string `json:"action"`
	Resource  string `json:"resource"`
	Level     string `json:"level"`   // permissions-management, write, read
	Breadth   string `json:"breadth"` // all, pattern, exact
	Points    int    `json:"points"`
}

// RankEntry is one line of the blast-radius ranking.
type RankEntry struct {
	Serial  string `json:"serial"`
	Subject string `json:"subject"`
	Score   int    `json:"score"`
	Roles   int    `json:"roles"` // distinct (account, role) reached
}

// Finding is one thing that looks wrong.
type Finding struct {
	ID          string   `json:"id"`
	Severity    Severity `json:"severity"`
	Kind        string   `json:"kind"`    // anchor, profile, role, certificate, subject
	Subject     string   `json:"subject"` // what it is about: an ARN or a serial
	Account     string   `json:"account,omitempty"`
	Explanation string   `json:"explanation"`
}

// SnapshotInfo says which audit this one was compared with.
type SnapshotInfo struct {
	TakenAt  time.Time `json:"takenAt"`
	Subjects int       `json:"subjects"`
}

// Count returns how many findings are at or above s.
func (r *Report) Count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity.Rank() >= s.Rank() {
			n++
		}
	}
	return n
}
