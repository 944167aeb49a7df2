package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/anchorage-pki/anchorage/rolesanywhere"
	"github.com/anchorage-pki/anchorage/signer"
)

// Duration is a JSON duration string such as "24h" or "500ms".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`want a duration string like "5m"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Config is the agent's configuration file (dist/agent.json is an example),
// decoded strictly: an unknown key is an error that names it. Every field
// can also be set by a flag of `anchorage agent`.
type Config struct {
	CA        string `json:"ca"`        // CA URL
	Root      string `json:"root"`      // CA root certificate file
	Cert      string `json:"cert"`      // certificate chain file (written)
	Key       string `json:"key"`       // key reference: file, pkcs11:, handle:0x81…, tpm:PATH
	KeyType   string `json:"keyType"`   // for enrollment: ec (default), p384, rsa, rsa3072, rsa4096
	TokenFile string `json:"tokenFile"` // one-time token for the first start

	PKCS11Lib string `json:"pkcs11Lib"` // module when the URI has no module-path
	TPMDevice string `json:"tpmDevice"` // default $TPM_DEVICE or /dev/tpmrm0

	// Rekey makes a new key at every renewal (key files only). Off by
	// default: the key file then never changes and every read of the two
	// files gives a matching pair.
	Rekey bool `json:"rekey"`

	// RenewAt is the fraction of the lifetime after which to renew
	// (default 2/3); Jitter spreads it by ± this fraction (default 0.05).
	RenewAt float64 `json:"renewAt"`
	Jitter  float64 `json:"jitter"`
	// UnhealthyAt is the fraction of the lifetime after which a
	// certificate not yet renewed makes the agent unhealthy (default 0.85).
	UnhealthyAt float64 `json:"unhealthyAt"`
	// RetryMin and RetryMax bound the backoff between failed attempts
	// (default 5s and 5m; never more than a tenth of the lifetime).
	RetryMin Duration `json:"retryMin"`
	RetryMax Duration `json:"retryMax"`

	// ReloadHook runs with /bin/sh -c after each new certificate, with
	// ANCHORAGE_CERT, ANCHORAGE_KEY, ANCHORAGE_SERIAL, ANCHORAGE_NOT_AFTER set.
	ReloadHook  string   `json:"reloadHook"`
	HookTimeout Duration `json:"hookTimeout"` // default 1m

	// HealthListen serves GET /health (200 healthy, 503 not) on a loopback
	// address, e.g. 127.0.0.1:9912.
	HealthListen string `json:"healthListen"`
	// MetricsListen serves Prometheus metrics at /metrics: the
	// certificate's expiry, renewal and credential refresh state. Any
	// address (Prometheus usually scrapes from elsewhere); the metrics
	// carry no names, serials or credentials.
	MetricsListen string `json:"metricsListen"`
	// StatusFile is rewritten (atomically) with the status JSON at every
	// change and at least every minute.
	StatusFile string `json:"statusFile"`

	// Credentials, if set, serves AWS credentials from the certificate.
	Credentials *CredentialsConfig `json:"credentials"`
}

// CredentialsConfig serves IAM Roles Anywhere credentials from the same
// process, as `anchorage serve` or `anchorage update` would.
type CredentialsConfig struct {
	// Mode is "serve" (IMDSv2 on 127.0.0.1), "ecs" (the container
	// credentials protocol, with a token) or "update" (credentials file).
	Mode            string `json:"mode"`
	TrustAnchorARN  string `json:"trustAnchorArn"`
	ProfileARN      string `json:"profileArn"`
	RoleARN         string `json:"roleArn"`
	Region          string `json:"region"`
	Endpoint        string `json:"endpoint"`
	SessionDuration int    `json:"sessionDuration"`
	RoleSessionName string `json:"roleSessionName"`
	Intermediates   string `json:"intermediates"`
	NoVerifySSL     bool   `json:"noVerifySsl"`
	// serve and ecs
	Port     int `json:"port"`     // on 127.0.0.1, default 9911
	HopLimit int `json:"hopLimit"` // default 64
	// Address (HOST:PORT) replaces 127.0.0.1:port; an address off this
	// host also needs allowNonLoopback, because anyone who can reach it
	// gets the role's credentials (the IMDSv2 token does not stop them).
	Address          string `json:"address"`
	AllowNonLoopback bool   `json:"allowNonLoopback"`
	// ecs: the file holding the token callers must send as Authorization
	// (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE): 0600, no newline. It is
	// re-read when it changes, so the token rotates without a restart.
	AuthTokenFile string `json:"authTokenFile"`
	// NoSocket (serve and ecs) turns off the unix socket in
	// $XDG_RUNTIME_DIR/anchorage on which credential-process runs of the
	// same user and identity get the agent's credentials.
	NoSocket bool `json:"noSocket"`
	// update
	Profile         string `json:"profile"`         // default "default"
	CredentialsFile string `json:"credentialsFile"` // default $AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials
}

// LoadConfig reads a config file strictly.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes JSON, rejecting unknown keys and trailing data.
func ParseConfig(b []byte) (*Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		msg := err.Error()
		if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			return nil, fmt.Errorf("key %s: unknown", f)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("key %q: want %s", te.Field, te.Type)
		}
		return nil, fmt.Errorf("not valid JSON: %v", strings.TrimPrefix(msg, "json: "))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON object")
	}
	return &c, nil
}

// defaults fills what was left empty.
func (c *Config) defaults() {
	if c.RenewAt == 0 {
		c.RenewAt = 2.0 / 3
	}
	if c.Jitter == 0 {
		c.Jitter = 0.05
	}
	if c.UnhealthyAt == 0 {
		c.UnhealthyAt = 0.85
	}
	if c.RetryMin == 0 {
		c.RetryMin = Duration(5 * time.Second)
	}
	if c.RetryMax == 0 {
		c.RetryMax = Duration(5 * time.Minute)
	}
	if c.HookTimeout == 0 {
		c.HookTimeout = Duration(time.Minute)
	}
	if cc := c.Credentials; cc != nil {
		if cc.Port == 0 {
			cc.Port = rolesanywhere.DefaultServePort
		}
		if cc.HopLimit == 0 {
			cc.HopLimit = rolesanywhere.DefaultHopLimit
		}
		if cc.Profile == "" {
			cc.Profile = "default"
		}
	}
}

// Validate checks the config once at start; messages name the key.
func (c *Config) Validate() error {
	c.defaults()
	for k, v := range map[string]string{"ca": c.CA, "root": c.Root, "cert": c.Cert, "key": c.Key} {
		if v == "" {
			return fmt.Errorf("key %q: required", k)
		}
	}
	if !strings.HasPrefix(c.CA, "https://") {
		return fmt.Errorf(`key "ca": want https://HOST[:PORT], got %q`, c.CA)
	}
	if _, err := signer.ParseKeyType(c.KeyType); err != nil {
		return fmt.Errorf(`key "keyType": %v`, err)
	}
	if c.Rekey && signer.IsHardware(c.Key) {
		return fmt.Errorf(`key "rekey": works with key files only, not with a %s key`, signer.KindOf(c.Key))
	}
	switch {
	case c.RenewAt <= 0 || c.RenewAt >= 1:
		return fmt.Errorf(`key "renewAt": want a fraction of the lifetime between 0 and 1, got %v`, c.RenewAt)
	case c.Jitter < 0 || c.Jitter > 0.2:
		return fmt.Errorf(`key "jitter": want 0 to 0.2, got %v`, c.Jitter)
	case c.RenewAt+c.Jitter >= c.UnhealthyAt:
		return fmt.Errorf(`key "unhealthyAt": must be after renewAt+jitter (%.3f), got %v`, c.RenewAt+c.Jitter, c.UnhealthyAt)
	case c.UnhealthyAt >= 1:
		return fmt.Errorf(`key "unhealthyAt": must be below 1 (the expiry), got %v`, c.UnhealthyAt)
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return errors.New(`key "retryMax": must be at least retryMin, both positive`)
	}
	if c.HealthListen != "" {
		host, _, err := net.SplitHostPort(c.HealthListen)
		if err != nil {
			return fmt.Errorf(`key "healthListen": %v`, err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf(`key "healthListen": want a loopback address such as 127.0.0.1:9912, got %q`, c.HealthListen)
		}
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			return fmt.Errorf(`key "metricsListen": %v`, err)
		}
	}
	if cc := c.Credentials; cc != nil {
		switch cc.Mode {
		case "serve", "ecs", "update":
		default:
			return fmt.Errorf(`key "credentials.mode": want "serve", "ecs" or "update", got %q`, cc.Mode)
		}
		for k, v := range map[string]string{"trustAnchorArn": cc.TrustAnchorARN, "profileArn": cc.ProfileARN, "roleArn": cc.RoleARN} {
			if v == "" {
				return fmt.Errorf(`key "credentials.%s": required`, k)
			}
		}
		if cc.Port < 0 || cc.Port > 65535 {
			return fmt.Errorf(`key "credentials.port": %d out of range`, cc.Port)
		}
		if cc.Address != "" {
			if err := rolesanywhere.CheckServeAddress(cc.Address, cc.AllowNonLoopback); err != nil {
				msg := strings.Replace(err.Error(), "--allow-non-loopback", `"allowNonLoopback": true`, 1)
				return fmt.Errorf(`key "credentials.address": %s`, strings.Replace(msg, " (and prefer --ecs with a token)", "", 1))
			}
		}
		switch {
		case cc.Mode == "ecs" && cc.AuthTokenFile == "":
			return errors.New(`key "credentials.authTokenFile": required with "mode": "ecs" (the container endpoint never serves without a token)`)
		case cc.Mode == "update" && cc.NoSocket:
			return errors.New(`key "credentials.noSocket": works with "mode": "serve" or "ecs" only (update serves no socket)`)
		case cc.Mode != "ecs" && cc.AuthTokenFile != "":
			return fmt.Errorf(`key "credentials.authTokenFile": works with "mode": "ecs" only, not %q`, cc.Mode)
		case cc.Mode == "ecs":
			// The same checks as serve --ecs, once at start; the file is
			// checked again whenever it changes.
			if _, err := rolesanywhere.ReadAuthToken(cc.AuthTokenFile); err != nil {
				return fmt.Errorf(`key "credentials.authTokenFile": %w`, err)
			}
		}
	}
	return nil
}

// signerOptions are the key settings that are not in the reference.
func (c *Config) signerOptions() []signer.Option {
	return []signer.Option{signer.WithPKCS11Module(c.PKCS11Lib), signer.WithTPMDevice(c.TPMDevice)}
}
