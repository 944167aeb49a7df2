package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"
)

// Audit configures `anchorage-ca audit`: which AWS accounts to read and
// the certificate lifetime policy it checks against. Without it the audit
// reads the accounts and regions of trustAnchors, with the default
// credential chain.
type Audit struct {
	// MaxLifetime is the longest lifetime (notAfter - notBefore) a live
	// certificate may have before it is a finding (default 24h; a backdated
	// notBefore of up to 5m is allowed on top).
	MaxLifetime Duration       `json:"maxLifetime,omitempty"`
	Accounts    []AuditAccount `json:"accounts,omitempty"`
}

// AuditAccount is one AWS account and region the audit reads.
type AuditAccount struct {
	Name   string `json:"name"`
	Region string `json:"region"`
	// Endpoint replaces both the Roles Anywhere and the IAM endpoint
	// (localaws serves both on one address); AWS's when empty.
	Endpoint string `json:"endpoint,omitempty"`
	// Profile is a shared-config profile (~/.aws/config, credentials) to
	// take credentials from; the default chain when empty.
	Profile string `json:"profile,omitempty"`
}

// DefaultAuditMaxLifetime is the lifetime policy when audit.maxLifetime is
// not set: the CA's default leaf lifetime (its 1m backdate fits the 5m allowance).
const DefaultAuditMaxLifetime = 24 * time.Hour

var (
	auditNamePattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	auditRegionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)
)

func (a *Audit) validate() error {
	if a == nil {
		return nil
	}
	if a.MaxLifetime.D() < 0 {
		return errors.New(`key "audit.maxLifetime": must not be negative`)
	}
	seen := map[string]bool{}
	for i, acct := range a.Accounts {
		key := fmt.Sprintf("audit.accounts[%d]", i)
		if !auditNamePattern.MatchString(acct.Name) {
			return fmt.Errorf(`key "%s.name": want 1-64 letters, digits, '.', '_' or '-', got %q`, key, acct.Name)
		}
		if seen[acct.Name] {
			return fmt.Errorf(`key "%s.name": %q is used twice`, key, acct.Name)
		}
		seen[acct.Name] = true
		if !auditRegionPattern.MatchString(acct.Region) {
			return fmt.Errorf(`key "%s.region": want a region name like us-east-1, got %q`, key, acct.Region)
		}
		if acct.Endpoint != "" {
			if u, err := url.Parse(acct.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf(`key "%s.endpoint": want an http(s) URL, got %q`, key, acct.Endpoint)
			}
		}
	}
	return nil
}

// AuditLifetime is the lifetime policy the audit checks.
func (c *CA) AuditLifetime() time.Duration {
	if c.Audit != nil && c.Audit.MaxLifetime > 0 {
		return c.Audit.MaxLifetime.D()
	}
	return DefaultAuditMaxLifetime
}
