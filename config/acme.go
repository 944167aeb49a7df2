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
	// DB is the bbolt file holding ACME accounts, orders and
	// authorizations (default "acme.db" in the CA directory). Issued
	// certificates and revocations live in paths.db like every other.
	DB           string            `json:"db,omitempty"`
	Provisioners []ACMEProvisioner `json:"provisioners"`
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

// DBFile is the ACME state file, relative to the CA directory unless absolute.
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
