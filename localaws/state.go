package localaws

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// stateVersion is bumped whenever the on-disk shape changes incompatibly.
// Version 1 had one account's maps at the top level; loadState migrates it
// into the default account.
const stateVersion = 2

// state is everything the server remembers; it is also the state file's
// shape. Resources live in their account; issued credentials are keyed by
// access key id across accounts (an access key id is globally unique).
type state struct {
	Version     int                          `json:"version"`
	Accounts    map[string]*accountState     `json:"accounts"`
	Credentials map[string]*issuedCredential `json:"credentials"`
}

// accountState is one account's Roles Anywhere and IAM resources. Maps are
// keyed by resource id, IAM roles and policies by lower-case name (IAM names
// are unique regardless of case).
type accountState struct {
	TrustAnchors map[string]*trustAnchor   `json:"trustAnchors"`
	Profiles     map[string]*profile       `json:"profiles"`
	CRLs         map[string]*crlRecord     `json:"crls"`
	Subjects     map[string]*subject       `json:"subjects"`
	Roles        map[string]*iamRole       `json:"roles"`
	Policies     map[string]*managedPolicy `json:"policies"`

	id string // the account id, set when the state is built or loaded
}

func newState(accounts []Account) *state {
	st := &state{Version: stateVersion, Accounts: map[string]*accountState{}, Credentials: map[string]*issuedCredential{}}
	for _, a := range accounts {
		st.account(a.ID)
	}
	return st
}

func newAccountState(id string) *accountState {
	return &accountState{
		TrustAnchors: map[string]*trustAnchor{}, Profiles: map[string]*profile{}, CRLs: map[string]*crlRecord{},
		Subjects: map[string]*subject{}, Roles: map[string]*iamRole{}, Policies: map[string]*managedPolicy{}, id: id,
	}
}

// account returns the state of account id, creating it empty if needed.
func (st *state) account(id string) *accountState {
	a := st.Accounts[id]
	if a == nil {
		a = newAccountState(id)
		st.Accounts[id] = a
	}
	return a
}

// lookup returns the state of account id, or nil: for requests that name
// an account (CreateSession's ARNs), where an unknown one must not create
// state.
func (st *state) lookup(id string) *accountState { return st.Accounts[id] }

type tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type notificationSetting struct {
	Channel      string `json:"channel"`
	ConfiguredBy string `json:"configuredBy,omitempty"`
	Enabled      bool   `json:"enabled"`
	Event        string `json:"event"`
	Threshold    int    `json:"threshold"`
}

type trustAnchor struct {
	ID                     string                `json:"id"`
	Name                   string                `json:"name"`
	Enabled                bool                  `json:"enabled"`
	SourceType             string                `json:"sourceType"`
	CertificatePEM         string                `json:"certificatePem"`
	CRLDPRevocationEnabled bool                  `json:"crlDpRevocationEnabled"`
	NotificationSettings   []notificationSetting `json:"notificationSettings"`
	Tags                   []tag                 `json:"tags"`
	CreatedAt              time.Time             `json:"createdAt"`
	UpdatedAt              time.Time             `json:"updatedAt"`
}

type attributeMapping struct {
	CertificateField string        `json:"certificateField"`
	MappingRules     []mappingRule `json:"mappingRules"`
}

type mappingRule struct {
	Specifier string `json:"specifier"`
}

type profile struct {
	ID                        string             `json:"id"`
	Name                      string             `json:"name"`
	Enabled                   bool               `json:"enabled"`
	RoleArns                  []string           `json:"roleArns"`
	DurationSeconds           int                `json:"durationSeconds"`
	AcceptRoleSessionName     bool               `json:"acceptRoleSessionName"`
	RequireInstanceProperties bool               `json:"requireInstanceProperties"`
	ManagedPolicyArns         []string           `json:"managedPolicyArns"`
	SessionPolicy             string             `json:"sessionPolicy,omitempty"`
	AttributeMappings         []attributeMapping `json:"attributeMappings"`
	Tags                      []tag              `json:"tags"`
	CreatedBy                 string             `json:"createdBy"`
	CreatedAt                 time.Time          `json:"createdAt"`
	UpdatedAt                 time.Time          `json:"updatedAt"`
}

type crlRecord struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Enabled       bool      `json:"enabled"`
	TrustAnchorID string    `json:"trustAnchorId"`
	PEM           []byte    `json:"pem"`
	Tags          []tag     `json:"tags"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
}

// issuedCredential is a session credential handed out by CreateSession; it is
// what the control plane and STS accept besides the admin key pair.
type issuedCredential struct {
	AccessKeyID     string    `json:"accessKeyId"`
	SecretAccessKey string    `json:"secretAccessKey"`
	SessionToken    string    `json:"sessionToken"`
	Expiration      time.Time `json:"expiration"`
	RoleArn         string    `json:"roleArn"`
	RoleSessionName string    `json:"roleSessionName"`
	AssumedRoleID   string    `json:"assumedRoleId"`
	SourceIdentity  string    `json:"sourceIdentity"`
	Serial          string    `json:"serial"`
	TrustAnchorID   string    `json:"trustAnchorId"`
	ProfileID       string    `json:"profileId"`
	// Account is the account of the role (and of anchor and profile).
	Account string `json:"account"`
	// SessionPolicies are the documents that bound the session (the
	// profile's sessionPolicy and managed policies at issue time, as STS
	// fixes them); Tags are the principal tags the certificate mapped to.
	SessionPolicies []string          `json:"sessionPolicies,omitempty"`
	Tags            map[string]string `json:"tags,omitempty"`
}

// stateV1 is the version 1 file: one account's maps at the top level.
type stateV1 struct {
	Version      int                          `json:"version"`
	TrustAnchors map[string]*trustAnchor      `json:"trustAnchors"`
	Profiles     map[string]*profile          `json:"profiles"`
	CRLs         map[string]*crlRecord        `json:"crls"`
	Credentials  map[string]*issuedCredential `json:"credentials"`
}

// loadState reads path; a missing file is an empty state. The file is
// decoded strictly: an unknown key means it was written by something else.
// A version 1 file becomes the default account (the first of accounts).
func loadState(path string, accounts []Account) (*state, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newState(accounts), nil
	}
	if err != nil {
		return nil, fmt.Errorf("localaws: read state file: %w", err)
	}
	var head struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("localaws: decode state file %s: %w", path, err)
	}
	strict := func(v any) error {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			return fmt.Errorf("localaws: decode state file %s: %w", path, err)
		}
		return nil
	}
	st := newState(nil)
	switch head.Version {
	case 1:
		var v1 stateV1
		if err := strict(&v1); err != nil {
			return nil, err
		}
		if v1.TrustAnchors == nil || v1.Profiles == nil || v1.CRLs == nil || v1.Credentials == nil {
			return nil, fmt.Errorf("localaws: state file %s: a version 1 map is null", path)
		}
		a := st.account(accounts[0].ID)
		a.TrustAnchors, a.Profiles, a.CRLs = v1.TrustAnchors, v1.Profiles, v1.CRLs
		st.Credentials = v1.Credentials
	case stateVersion:
		if err := strict(st); err != nil {
			return nil, err
		}
		if st.Accounts == nil || st.Credentials == nil {
			return nil, fmt.Errorf("localaws: state file %s: accounts or credentials is null", path)
		}
	default:
		return nil, fmt.Errorf("localaws: state file %s has version %d, want %d", path, head.Version, stateVersion)
	}
	st.Version = stateVersion
	for id, a := range st.Accounts {
		if a == nil || a.TrustAnchors == nil || a.Profiles == nil || a.CRLs == nil {
			return nil, fmt.Errorf("localaws: state file %s: account %s has a null map", path, id)
		}
		// Maps added within version 2 may be absent from older files.
		if a.Subjects == nil {
			a.Subjects = map[string]*subject{}
		}
		if a.Roles == nil {
			a.Roles = map[string]*iamRole{}
		}
		if a.Policies == nil {
			a.Policies = map[string]*managedPolicy{}
		}
		a.id = id
	}
	for _, c := range st.Credentials {
		if c.Account == "" {
			c.Account = accounts[0].ID
		}
	}
	for _, acct := range accounts {
		st.account(acct.ID)
	}
	return st, nil
}

// saveState writes st to path atomically: a temporary file in the same
// directory, fsync, rename over the old file, then fsync of the directory so
// the rename itself survives a crash. The file is 0600: it holds secrets.
func saveState(path string, st *state) error {
	raw, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("localaws: encode state: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("localaws: create temporary state file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("localaws: chmod state file: %w", err)
	}
	if _, err := tmp.Write(append(raw, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("localaws: write state file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("localaws: sync state file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("localaws: close state file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("localaws: replace state file: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("localaws: open state directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("localaws: sync state directory: %w", err)
	}
	return nil
}
