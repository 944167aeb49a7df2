package acme

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/config"
)

// provisioner is one configured ACME provisioner, ready to use.
type provisioner struct {
	name       string
	cfg        *config.ACMEProvisioner
	exact      map[string]bool // DNS names allowed as such
	suffixes   []string        // ".internal" for "*.internal"
	prefixes   []netip.Prefix  // IPs and ranges
	challenges []string
	lifetime   time.Duration
	clientOnly bool
	eab        map[string][]byte // key id -> HMAC key; nil = no EAB
	v          validator
}

func newProvisioner(c *config.ACMEProvisioner, dir string) (*provisioner, error) {
	p := &provisioner{
		name: c.Name, cfg: c, exact: map[string]bool{},
		challenges: c.ChallengeTypes(), lifetime: c.Lifetime.D(), clientOnly: !c.AddsServerAuth(),
	}
	for _, a := range c.Allow {
		if pfx, err := netip.ParsePrefix(a); err == nil {
			p.prefixes = append(p.prefixes, pfx.Masked())
		} else if ip, err := netip.ParseAddr(a); err == nil {
			p.prefixes = append(p.prefixes, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
		} else if base, ok := strings.CutPrefix(strings.ToLower(a), "*."); ok {
			p.suffixes = append(p.suffixes, "."+base)
		} else {
			p.exact[strings.ToLower(a)] = true
		}
	}
	if c.EAB != nil {
		keys, err := loadEABKeys(c.EAB.KeysFile, dir)
		if err != nil {
			return nil, fmt.Errorf("acme provisioner %q: %w", c.Name, err)
		}
		p.eab = keys
	}
	v := c.Validation
	p.v = validator{httpPort: v.HTTP01Port, tlsPort: v.TLSALPN01Port, timeout: v.Timeout.D(), resolver: net.DefaultResolver}
	if p.v.httpPort == 0 {
		p.v.httpPort = 80
	}
	if p.v.tlsPort == 0 {
		p.v.tlsPort = 443
	}
	if p.v.timeout == 0 {
		p.v.timeout = 10 * time.Second
	}
	if addr := v.Resolver; addr != "" {
		p.v.resolverAddr = addr
		p.v.resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}
	}
	return p, nil
}

// loadEABKeys reads {"KEY-ID": "base64url HMAC key"}; the file holds
// secrets, so it must not be readable by group or others.
func loadEABKeys(path, dir string) (map[string][]byte, error) {
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("external account keys: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("external account keys %s: mode %v, want 0600 (the file holds secrets)", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw map[string]string
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("external account keys %s: want {\"KEY-ID\": \"base64url key\"}: %v", path, err)
	}
	keys := map[string][]byte{}
	for kid, v := range raw {
		k, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
		if err != nil || len(k) < 16 {
			return nil, fmt.Errorf("external account keys %s: key %q: want at least 16 bytes, base64url", path, kid)
		}
		keys[kid] = k
	}
	return keys, nil
}

// normalize checks an order identifier's syntax and returns its canonical
// form: lowercase DNS names, IPs without zones in their shortest form.
func normalize(id ident) (ident, *Problem) {
	switch id.Type {
	case "dns":
		v := strings.ToLower(id.Value)
		if net.ParseIP(v) != nil {
			// RFC 8738 wants type "ip"; lego 4.9 sends IPs as "dns" (and
			// puts them in the CSR as DNS names): take them as IPs.
			return normalize(ident{Type: "ip", Value: v})
		}
		if _, err := ca.ParseSANs([]string{"DNS:" + v}); err != nil || strings.Count(v, "*") > 1 || v == "*" {
			return id, &Problem{Type: ErrRejectedIdentifier, Status: 400, Detail: fmt.Sprintf("%q is not a valid DNS name", id.Value), Identifier: &id}
		}
		return ident{Type: "dns", Value: v}, nil
	case "ip":
		ip, err := netip.ParseAddr(id.Value)
		if err != nil || ip.Zone() != "" {
			return id, malformed("identifier %q is not an IP address", id.Value)
		}
		return ident{Type: "ip", Value: ip.Unmap().String()}, nil
	}
	return id, &Problem{Type: ErrUnsupportedIdentifier, Status: 400, Detail: fmt.Sprintf("identifier type %q is not supported (use dns or ip)", id.Type), Identifier: &id}
}

// allows reports whether the policy permits a normalized identifier.
func (p *provisioner) allows(id ident) bool {
	if id.Type == "ip" {
		ip := netip.MustParseAddr(id.Value)
		return slices.ContainsFunc(p.prefixes, func(pfx netip.Prefix) bool { return pfx.Contains(ip) })
	}
	if p.exact[id.Value] {
		return true
	}
	return slices.ContainsFunc(p.suffixes, func(s string) bool { return strings.HasSuffix(id.Value, s) })
}

// challengesFor lists the challenge types offered for an identifier:
// wildcards only over DNS, IP addresses never over DNS (RFC 8738).
func (p *provisioner) challengesFor(id ident) []string {
	var out []string
	for _, t := range p.challenges {
		switch {
		case strings.HasPrefix(id.Value, "*.") && t != "dns-01":
		case id.Type == "ip" && t == "dns-01":
		default:
			out = append(out, t)
		}
	}
	return out
}

// bareWildcard reports whether id is "*.Z" for a zone Z that the policy
// allows as "*.Z" (and no wider zone covers): such a certificate would
// stand for every name directly under Z at once, where the policy allows
// each of them only on its own.
func (p *provisioner) bareWildcard(id ident) (string, bool) {
	base, ok := strings.CutPrefix(id.Value, "*.")
	if !ok || id.Type != "dns" || !slices.Contains(p.suffixes, "."+base) {
		return "", false
	}
	below := slices.ContainsFunc(p.suffixes, func(s string) bool { return strings.HasSuffix(base, s) })
	return base, !below
}
