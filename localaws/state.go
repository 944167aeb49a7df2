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
const stateVersion = 1

// state is everything the server remembers; it is also the state file's
// shape. Maps are keyed by resource id (access key id for credentials).
type state struct {
	Version      int                          `json:"version"`
	TrustAnchors map[string]*trustAnchor      `json:"trustAnchors"`
	Profiles     map[string]*profile          `json:"profiles"`
	CRLs         map[string]*crlRecord        `json:"crls"`
	Credentials  map[string]*issuedCredential `json:"credentials"`
}

func newState() *state {
	return &state{
		Version:      stateVersion,
		TrustAnchors: map[string]*trustAnchor{},
		Profiles:     map[string]*profile{},
		CRLs:         map[string]*crlRecord{},
		Credentials:  map[string]*issuedCredential{},
	}
}

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
}

// loadState reads path; a missing file is an empty state. The file is
// decoded strictly: an unknown key means it was written by something else.
func loadState(path string) (*state, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newState(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("localaws: read state file: %w", err)
	}
	st := newState()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(st); err != nil {
		return nil, fmt.Errorf("localaws: decode state file %s: %w", path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("localaws: state file %s has version %d, want %d", path, st.Version, stateVersion)
	}
	for name, m := range map[string]bool{"trustAnchors": st.TrustAnchors == nil, "profiles": st.Profiles == nil, "crls": st.CRLs == nil, "credentials": st.Credentials == nil} {
		if m {
			return nil, fmt.Errorf("localaws: state file %s: %s is null", path, name)
		}
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
