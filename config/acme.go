package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// ACME configures the ACME (RFC 8555) front end: one entry per provisioner,
// served at /acme/{name}/directory. Owned by package acme; see its doc.
type ACME struct {
	// DB names the file where ACME state was kept before it moved into
	// paths.db (default "acme.db" in the CA directory). It is no longer
	// written: if it exists at start its accounts are imported once and it
	// is renamed to *.imported.
	DB           string            `json:"db,omitempty"`
	Provisioners []ACMEProvisioner `json:"provisioners"`
	// Limits bound what one client or account can make the CA store.
	Limits ACMELimits `json:"limits,omitzero"`
}

// ACMELimits bound the ACME state a client can create before proving
// control of anything: every order and authorization is stored in the CA's
// database. Zero means the default. Refusals are rateLimited (or
// rejectedIdentifier for identifiers) with Retry-After.
type ACMELimits struct {
	// IdentifiersPerOrder (default 100, at most 1000).
	IdentifiersPerOrder int `json:"identifiersPerOrder,omitempty"`
	// PendingOrdersPerAccount caps unfinished (pending or ready,
	// unexpired) orders per account (default 100).
	PendingOrdersPerAccount int `json:"pendingOrdersPerAccount,omitempty"`
	// PendingAuthorizationsPerAccount caps the authorizations those
	// unfinished orders hold (default 300).
	PendingAuthorizationsPerAccount int `json:"pendingAuthorizationsPerAccount,omitempty"`
	// NewAccountsPerIPPerMinute and NewOrdersPerIPPerMinute are token
	// buckets per client address (IPv6 per /64), refilled per minute,
	// holding as many tokens as the rate (defaults 10 and 60).
	NewAccountsPerIPPerMinute int `json:"newAccountsPerIPPerMinute,omitempty"`
	NewOrdersPerIPPerMinute   int `json:"newOrdersPerIPPerMinute,omitempty"`
	// NewAccountsPerMinute is one token bucket for every client address
	// together (default 100): it bounds how fast many addresses can grow
	// the database with accounts. While it is exhausted new accounts are
	// refused for everyone; existing accounts are unaffected.
	NewAccountsPerMinute int `json:"newAccountsPerMinute,omitempty"`
}

// Default ACME limits.
const (
	DefaultACMEIdentifiersPerOrder     = 100
	DefaultACMEPendingOrders           = 100
	DefaultACMEPendingAuthorizations   = 300
	DefaultACMENewAccountsPerIPPerMin  = 10
	DefaultACMENewOrdersPerIPPerMinute = 60
	DefaultACMENewAccountsPerMinute    = 100
)

// WithDefaults returns l with zero fields set to their defaults.
func (l ACMELimits) WithDefaults() ACMELimits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.IdentifiersPerOrder, DefaultACMEIdentifiersPerOrder)
	def(&l.PendingOrdersPerAccount, DefaultACMEPendingOrders)
	def(&l.PendingAuthorizationsPerAccount, DefaultACMEPendingAuthorizations)
	def(&l.NewAccountsPerIPPerMinute, DefaultACMENewAccountsPerIPPerMin)
	def(&l.NewOrdersPerIPPerMinute, DefaultACMENewOrdersPerIPPerMinute)
	def(&l.NewAccountsPerMinute, DefaultACMENewAccountsPerMinute)
	return l
}

// ACMEProvisioner is one ACME provisioner's policy.
type ACMEProvisioner struct {
	Name string `json:"name"`
	// Allow lists the identifiers this provisioner may certify: DNS
	// names ("host.example.com" exactly, "*.internal" for every name
	// below internal), IP addresses and CIDR ranges ("10.0.0.0/8").
	// Everything else is refused with rejectedIdentifier.
	Allow []string `json:"allow"`
	// Lifetime of issued certificates (default: leaf.defaultLifetime);
	// the CA still caps it at leaf.maxLifetime.
	Lifetime Duration `json:"lifetime,omitempty"`
	// ServerAuth adds the serverAuth EKU (default true; needs
	// leaf.serverAuth). clientAuth is always present.
	ServerAuth *bool `json:"serverAuth,omitempty"`
	// Challenges offered (default all: http-01, dns-01, tls-alpn-01).
	Challenges []string `json:"challenges,omitempty"`
	// Validation says where the CA's validator connects.
	Validation ACMEValidation `json:"validation,omitzero"`
	// EAB, when set, requires External Account Binding on newAccount.
	EAB *ACMEEAB `json:"externalAccountBinding,omitempty"`
}

// ACMEValidation points challenge validation at a private network or, in
// tests, at 127.0.0.1.
type ACMEValidation struct {
	HTTP01Port    int      `json:"http01Port,omitempty"`    // default 80
	TLSALPN01Port int      `json:"tlsAlpn01Port,omitempty"` // default 443
	Resolver      string   `json:"resolver,omitempty"`      // DNS server HOST:PORT; default: the system's
	Timeout       Duration `json:"timeout,omitempty"`       // per validation; default 10s
}

// ACMEEAB names the file with the provisioner's external account keys: a
// JSON object {"KEY-ID": "base64url HMAC key", ...}, mode 0600. Each key
// binds one account.
type ACMEEAB struct {
	KeysFile string `json:"keysFile"`
}

// ACME challenge types.
var ACMEChallengeTypes = []string{"http-01", "dns-01", "tls-alpn-01"}

var provisionerName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// DBFile is the old ACME state file, relative to the CA directory unless absolute.
func (a *ACME) DBFile() string {
	if a.DB == "" {
		return "acme.db"
	}
	return a.DB
}

// AddsServerAuth reports whether certificates get the serverAuth EKU.
func (p *ACMEProvisioner) AddsServerAuth() bool { return p.ServerAuth == nil || *p.ServerAuth }

// ChallengeTypes returns the offered challenge types.
func (p *ACMEProvisioner) ChallengeTypes() []string {
	if len(p.Challenges) == 0 {
		return ACMEChallengeTypes
	}
	return p.Challenges
}

func (a *ACME) validate() error {
	if a.DB != "" && filepath.Base(a.DB) == "anchorage.db" {
		return errors.New(`key "acme.db": must not be the CA's own database`)
	}
	for _, l := range []struct {
		key    string
		v, max int
	}{
		{"identifiersPerOrder", a.Limits.IdentifiersPerOrder, 1000},
		{"pendingOrdersPerAccount", a.Limits.PendingOrdersPerAccount, 1_000_000},
		{"pendingAuthorizationsPerAccount", a.Limits.PendingAuthorizationsPerAccount, 1_000_000},
		{"newAccountsPerIPPerMinute", a.Limits.NewAccountsPerIPPerMinute, 1_000_000},
		{"newOrdersPerIPPerMinute", a.Limits.NewOrdersPerIPPerMinute, 1_000_000},
		{"newAccountsPerMinute", a.Limits.NewAccountsPerMinute, 1_000_000},
	} {
		if l.v < 0 || l.v > l.max {
			return fmt.Errorf(`key "acme.limits.%s": want 1 to %d (0 or absent for the default), got %d`, l.key, l.max, l.v)
		}
	}
	if a.Limits.PendingAuthorizationsPerAccount != 0 && a.Limits.WithDefaults().IdentifiersPerOrder > a.Limits.PendingAuthorizationsPerAccount {
		return fmt.Errorf(`key "acme.limits.pendingAuthorizationsPerAccount": %d is below identifiersPerOrder (%d): such orders could never be made`,
			a.Limits.PendingAuthorizationsPerAccount, a.Limits.WithDefaults().IdentifiersPerOrder)
	}
	if len(a.Provisioners) == 0 {
		return errors.New(`key "acme.provisioners": at least one provisioner is required (or drop "acme")`)
	}
	seen := map[string]bool{}
	for i, p := range a.Provisioners {
		key := fmt.Sprintf("acme.provisioners[%d]", i)
		if !provisionerName.MatchString(p.Name) {
			return fmt.Errorf(`key %q: want lowercase letters, digits, ".", "_", "-" (it is a URL path segment), got %q`, key+".name", p.Name)
		}
		if seen[p.Name] {
			return fmt.Errorf(`key %q: provisioner %q appears twice`, key+".name", p.Name)
		}
		seen[p.Name] = true
		if len(p.Allow) == 0 {
			return fmt.Errorf(`key %q: required (e.g. ["*.internal"])`, key+".allow")
		}
		for j, pat := range p.Allow {
			if err := CheckACMEPattern(pat); err != nil {
				return fmt.Errorf(`key "%s.allow[%d]": %v`, key, j, err)
			}
		}
		if l := p.Lifetime.D(); l != 0 && (l < 5*time.Second || l > 366*24*time.Hour) {
			return fmt.Errorf(`key %q: must be between 5s and 8784h`, key+".lifetime")
		}
		for j, c := range p.Challenges {
			ok := false
			for _, t := range ACMEChallengeTypes {
				ok = ok || c == t
			}
			if !ok {
				return fmt.Errorf(`key "%s.challenges[%d]": want one of %s, got %q`, key, j, strings.Join(ACMEChallengeTypes, ", "), c)
			}
		}
		v := p.Validation
		if v.HTTP01Port < 0 || v.HTTP01Port > 65535 {
			return fmt.Errorf(`key %q: not a port`, key+".validation.http01Port")
		}
		if v.TLSALPN01Port < 0 || v.TLSALPN01Port > 65535 {
			return fmt.Errorf(`key %q: not a port`, key+".validation.tlsAlpn01Port")
		}
		if v.Resolver != "" {
			if _, _, err := net.SplitHostPort(v.Resolver); err != nil {
				return fmt.Errorf(`key %q: want HOST:PORT of a DNS server: %v`, key+".validation.resolver", err)
			}
		}
		if v.Timeout < 0 || v.Timeout.D() > 5*time.Minute {
			return fmt.Errorf(`key %q: must be at most 5m`, key+".validation.timeout")
		}
		if p.EAB != nil && p.EAB.KeysFile == "" {
			return fmt.Errorf(`key %q: required`, key+".externalAccountBinding.keysFile")
		}
	}
	return nil
}

// CheckACMEPattern validates one allow entry: an IP, a CIDR prefix, a DNS
// name, or "*." followed by a DNS name.
func CheckACMEPattern(p string) error {
	if _, err := netip.ParsePrefix(p); err == nil {
		return nil
	}
	if _, err := netip.ParseAddr(p); err == nil {
		return nil
	}
	name := strings.TrimPrefix(p, "*.")
	if name == "" || strings.Contains(name, "*") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || len(name) > 253 {
		return fmt.Errorf("want a DNS name, *.DOMAIN, an IP or a CIDR prefix, got %q", p)
	}
	for _, l := range strings.Split(name, ".") {
		if l == "" || len(l) > 63 || strings.Trim(strings.ToLower(l), "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return fmt.Errorf("want a DNS name, *.DOMAIN, an IP or a CIDR prefix, got %q", p)
		}
	}
	return nil
}
