// Package config holds the CA server's configuration: one typed struct,
// decoded strictly (an unknown key is an error that names it), validated once
// at start with messages that name the offending key.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/anchorage-pki/anchorage/atomicfile"
)

// FileName is the config file inside a CA directory.
const FileName = "config.json"

// Duration is a time.Duration written as a Go duration string ("24h").
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) {
	s := time.Duration(d).String()
	// "24h0m0s" reads better as "24h", "10m0s" as "10m".
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
	}
	return json.Marshal(s)
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string like \"24h\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Paths are file locations, relative to the CA directory unless absolute.
type Paths struct {
	Root        string `json:"root"`
	RootKey     string `json:"rootKey"`
	CACert      string `json:"caCert"`
	CAKey       string `json:"caKey"`
	TLS         string `json:"tls,omitempty"`     // the API's key and chain in one file (0600), replaced with one rename
	TLSCert     string `json:"tlsCert,omitempty"` // older layout: certificate and key apart, read until the first renewal
	TLSKey      string `json:"tlsKey,omitempty"`
	AdminCACert string `json:"adminCaCert,omitempty"` // admin intermediate; default admin-ca.crt
	AdminCAKey  string `json:"adminCaKey,omitempty"`  // default admin-ca.key
	// ServiceCACert is the service intermediate that signs the API's TLS
	// certificate; default service-ca.crt. Never a trust anchor.
	ServiceCACert  string `json:"serviceCaCert,omitempty"`
	ServiceCAKey   string `json:"serviceCaKey,omitempty"` // default service-ca.key
	ProvisionerKey string `json:"provisionerKey"`
	DB             string `json:"db"`
	CRL            string `json:"crl"` // the newest published CRL (DER), kept outside the database
}

// Leaf is the workload certificate profile.
type Leaf struct {
	DefaultLifetime Duration `json:"defaultLifetime"`
	MaxLifetime     Duration `json:"maxLifetime"`
	ServerAuth      bool     `json:"serverAuth"`
}

// Token bounds the one-time enrollment tokens.
type Token struct {
	DefaultTTL Duration `json:"defaultTTL"`
	MaxTTL     Duration `json:"maxTTL"`
}

// CRL controls the revocation list.
type CRL struct {
	NextUpdate Duration `json:"nextUpdate"`       // validity of each CRL
	Resign     Duration `json:"resign"`           // timer re-signing interval
	URL        string   `json:"url,omitempty"`    // CRL distribution point put in leaves
	Listen     string   `json:"listen,omitempty"` // optional plain-HTTP listener for /crl and /crl.pem
}

// TrustAnchor is one Roles Anywhere trust anchor anchorsync keeps current.
type TrustAnchor struct {
	ARN      string `json:"arn"`
	Region   string `json:"region,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
}

// CA is the whole configuration of anchorage-ca.
type CA struct {
	Name         string        `json:"name"`
	URL          string        `json:"url"`
	Listen       string        `json:"listen"`
	Paths        Paths         `json:"paths"`
	Leaf         Leaf          `json:"leaf"`
	Token        Token         `json:"token"`
	CRL          CRL           `json:"crl"`
	Admins       []string      `json:"admins"` // SHA-256 fingerprints (hex) of legacy root-signed admin certificates; reloaded on SIGHUP
	TrustAnchors []TrustAnchor `json:"trustAnchors,omitempty"`
	// AnchorCheck is how often anchorsync reads every anchor's CRL back
	// (GetCrl), to catch a CRL disabled, deleted or replaced there
	// (default 5m).
	AnchorCheck Duration `json:"anchorCheck,omitempty"`
	ACME        *ACME    `json:"acme,omitempty"`
	AWS         *AWS     `json:"aws,omitempty"`
	// Storage is the bbolt file at paths.db when absent.
	Storage *Storage `json:"storage,omitempty"`
	// Events is the audit stream; none when absent.
	Events *Events `json:"events,omitempty"`
	// Audit is what `anchorage-ca audit` reads and checks against.
	Audit *Audit `json:"audit,omitempty"`

	dir string
}

// Default returns the configuration init writes, before names are filled in.
func Default() *CA {
	return &CA{
		Listen: "127.0.0.1:8443",
		Paths: Paths{
			Root: "root.crt", RootKey: "root.key", CACert: "ca.crt", CAKey: "ca.key",
			TLS: "tls.pem", AdminCACert: "admin-ca.crt", AdminCAKey: "admin-ca.key",
			ServiceCACert: "service-ca.crt", ServiceCAKey: "service-ca.key", ProvisionerKey: "provisioner.key",
			DB: "anchorage.db", CRL: "crl.der",
		},
		Leaf:  Leaf{DefaultLifetime: Duration(24 * time.Hour), MaxLifetime: Duration(7 * 24 * time.Hour), ServerAuth: true},
		Token: Token{DefaultTTL: Duration(10 * time.Minute), MaxTTL: Duration(24 * time.Hour)},
		CRL:   CRL{NextUpdate: Duration(24 * time.Hour), Resign: Duration(6 * time.Hour)},
		// Admins come from the admin intermediate and are checked against
		// storage; this list is only for legacy root-signed admin certificates.
		Admins: []string{},
	}
}

// Load reads DIR/config.json strictly and validates it.
func Load(dir string) (*CA, error) {
	path := filepath.Join(dir, FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no CA in %s (%s missing; run anchorage-ca init first)", dir, FileName)
		}
		return nil, err
	}
	c := new(CA)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("%s: %s", path, describeJSONError(err))
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: trailing data after the JSON object", path)
	}
	c.dir = dir
	if c.Paths.CRL == "" { // config.json from before paths.crl
		c.Paths.CRL = Default().Paths.CRL
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func describeJSONError(err error) string {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown key " + rest
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("key %q: want %s, got %s", te.Field, te.Type, te.Value)
	}
	return strings.TrimPrefix(msg, "json: ")
}

// Validate checks every field and names the key at fault.
func (c *CA) Validate() error {
	if c.URL == "" {
		return errors.New(`key "url": required`)
	}
	if u, err := url.Parse(c.URL); err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf(`key "url": want https://HOST[:PORT], got %q`, c.URL)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf(`key "listen": %v`, err)
	}
	for k, v := range map[string]string{
		"paths.root": c.Paths.Root, "paths.caCert": c.Paths.CACert, "paths.caKey": c.Paths.CAKey,
		"paths.provisionerKey": c.Paths.ProvisionerKey, "paths.db": c.Paths.DB,
		"paths.crl": c.Paths.CRL,
	} {
		if v == "" {
			return fmt.Errorf("key %q: required", k)
		}
	}
	if err := c.Storage.validate(); err != nil {
		return err
	}
	if err := c.Events.validate(); err != nil {
		return err
	}
	if c.Paths.TLS == "" && (c.Paths.TLSCert == "" || c.Paths.TLSKey == "") {
		return errors.New(`key "paths.tls": required (or both paths.tlsCert and paths.tlsKey)`)
	}
	switch {
	case c.Leaf.DefaultLifetime.D() < 5*time.Second:
		// Seconds-long lifetimes are for test profiles that exercise renewal.
		return errors.New(`key "leaf.defaultLifetime": must be at least 5s`)
	case c.Leaf.MaxLifetime.D() < c.Leaf.DefaultLifetime.D():
		return errors.New(`key "leaf.maxLifetime": must be at least leaf.defaultLifetime`)
	case c.Leaf.MaxLifetime.D() > 366*24*time.Hour:
		return errors.New(`key "leaf.maxLifetime": must not exceed 8784h (a year)`)
	case c.Token.DefaultTTL.D() <= 0 || c.Token.DefaultTTL.D() > c.Token.MaxTTL.D():
		return errors.New(`key "token.defaultTTL": must be positive and at most token.maxTTL`)
	case c.Token.MaxTTL.D() > 24*time.Hour:
		return errors.New(`key "token.maxTTL": must not exceed 24h`)
	case c.CRL.NextUpdate.D() < time.Hour:
		return errors.New(`key "crl.nextUpdate": must be at least 1h`)
	case c.CRL.Resign.D() <= 0 || c.CRL.Resign.D() >= c.CRL.NextUpdate.D():
		return errors.New(`key "crl.resign": must be positive and shorter than crl.nextUpdate`)
	}
	if c.CRL.URL != "" {
		if u, err := url.Parse(c.CRL.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf(`key "crl.url": want an http(s) URL, got %q`, c.CRL.URL)
		}
	}
	if c.CRL.Listen != "" {
		if _, _, err := net.SplitHostPort(c.CRL.Listen); err != nil {
			return fmt.Errorf(`key "crl.listen": %v`, err)
		}
	}
	for i, fp := range c.Admins {
		if len(fp) != 64 || strings.Trim(strings.ToLower(fp), "0123456789abcdef") != "" {
			return fmt.Errorf(`key "admins[%d]": want a SHA-256 fingerprint (64 hex digits)`, i)
		}
	}
	if err := c.Audit.validate(); err != nil {
		return err
	}
	if c.AWS != nil {
		if err := c.AWS.validate(); err != nil {
			return err
		}
	}
	if c.ACME != nil {
		if err := c.ACME.validate(); err != nil {
			return err
		}
	}
	for i, ta := range c.TrustAnchors {
		if !strings.HasPrefix(ta.ARN, "arn:") || !strings.Contains(ta.ARN, ":trust-anchor/") {
			return fmt.Errorf(`key "trustAnchors[%d].arn": want arn:aws:rolesanywhere:REGION:ACCOUNT:trust-anchor/ID, got %q`, i, ta.ARN)
		}
		if ta.Endpoint != "" {
			if u, err := url.Parse(ta.Endpoint); err != nil || u.Host == "" {
				return fmt.Errorf(`key "trustAnchors[%d].endpoint": want a URL, got %q`, i, ta.Endpoint)
			}
		}
	}
	return nil
}

// Dir is the CA directory the config was loaded from.
func (c *CA) Dir() string { return c.dir }

// SetDir sets the directory relative paths resolve against.
func (c *CA) SetDir(dir string) { c.dir = dir }

// Path resolves a configured path against the CA directory.
// Key references (pkcs11:, tpm:, handle:) are returned unchanged.
func (c *CA) Path(p string) string {
	if filepath.IsAbs(p) || strings.HasPrefix(p, "pkcs11:") || strings.HasPrefix(p, "tpm:") || strings.HasPrefix(p, "handle:") {
		return p
	}
	return filepath.Join(c.dir, p)
}

// Save writes the config atomically to DIR/config.json.
func (c *CA) Save() error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	// 0600: a key reference may carry a PKCS#11 pin-value.
	return atomicfile.Write(filepath.Join(c.dir, FileName), append(b, '\n'), 0o600)
}
