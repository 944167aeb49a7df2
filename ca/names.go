package ca

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"unicode"

	"github.com/anchorage-pki/anchorage/apiv1"
)

// Names is the set of subject alternative names a certificate carries, each
// written TYPE:value with TYPE one of DNS, IP, URI.
type Names struct {
	DNS  []string
	IPs  []net.IP
	URIs []*url.URL
}

// ParseSANs parses "DNS:host", "IP:addr", "URI:scheme:..." strings, or
// untyped ones as apiv1.SplitSAN reads them.
func ParseSANs(sans []string) (Names, error) {
	var n Names
	for _, s := range sans {
		typ, val, _ := apiv1.SplitSAN(s)
		switch typ {
		case "DNS":
			if err := checkDNSName(val); err != nil {
				return Names{}, err
			}
			n.DNS = append(n.DNS, strings.ToLower(val))
		case "IP":
			ip := net.ParseIP(val)
			if ip == nil {
				return Names{}, fmt.Errorf("SAN %q: not an IP address", s)
			}
			n.IPs = append(n.IPs, ip)
		case "URI":
			u, err := url.Parse(val)
			if err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "") {
				return Names{}, fmt.Errorf("SAN %q: not an absolute URI", s)
			}
			n.URIs = append(n.URIs, u)
		}
	}
	return n, nil
}

// Strings renders names back in TYPE:value form, sorted by type then order.
func (n Names) Strings() []string {
	var out []string
	for _, d := range n.DNS {
		out = append(out, "DNS:"+d)
	}
	for _, ip := range n.IPs {
		out = append(out, "IP:"+ip.String())
	}
	for _, u := range n.URIs {
		out = append(out, "URI:"+u.String())
	}
	return out
}

// Plain renders the names untyped, as step-ca's tokens carry them (its
// CLI puts each in the CSR by its shape): DNS names, IPs, URIs as they are.
// A name whose untyped form ParseSANs would read as another type or not at
// all (a DNS name that looks like an IP, a URI without "://" such as
// urn:uuid:...) keeps its TYPE: prefix, so ParseSANs always reads Plain's
// output back to the same Names.
func (n Names) Plain() []string {
	var out []string
	for _, d := range n.DNS {
		out = append(out, plain("DNS:", d))
	}
	for _, ip := range n.IPs {
		out = append(out, ip.String())
	}
	for _, u := range n.URIs {
		out = append(out, plain("URI:", u.String()))
	}
	return out
}

// plain is v untyped if ParseSANs reads it back as typ, else typ+v.
func plain(typ, v string) string {
	n, err := ParseSANs([]string{v})
	if err == nil && len(n.Strings()) == 1 && n.Strings()[0] == typ+v {
		return v
	}
	return typ + v
}

// Empty reports whether there are no names.
func (n Names) Empty() bool { return len(n.DNS)+len(n.IPs)+len(n.URIs) == 0 }

func checkDNSName(s string) error {
	if s == "" || len(s) > 253 {
		return fmt.Errorf("DNS name %q: empty or longer than 253 characters", s)
	}
	labels := strings.Split(s, ".")
	for i, l := range labels {
		if i == 0 && l == "*" {
			// A bare "*" would match every single-label host name.
			if len(labels) == 1 {
				return fmt.Errorf("DNS name %q: a wildcard needs a domain after it (*.example.internal)", s)
			}
			continue
		}
		if l == "" || len(l) > 63 || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
			return fmt.Errorf("DNS name %q: bad label %q", s, l)
		}
		for _, r := range l {
			if !(r == '-' || r == '_' || r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r))) {
				return fmt.Errorf("DNS name %q: character %q not allowed", s, r)
			}
		}
	}
	return nil
}

// CheckSubject validates a workload name used as subject CN: it becomes the
// Roles Anywhere source identity, so it must be non-empty, short and
// printable.
func CheckSubject(cn string) error {
	if cn == "" {
		return fmt.Errorf("subject name is empty")
	}
	if len(cn) > 64 {
		return fmt.Errorf("subject name %q is longer than 64 characters", cn)
	}
	for _, r := range cn {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return fmt.Errorf("subject name %q: character %q not allowed", cn, r)
		}
	}
	return nil
}
