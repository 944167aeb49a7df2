package enroll

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrNameNotGranted is returned when a CSR asks for a name the token did
// not grant.
var ErrNameNotGranted = errors.New("CSR asks for a name the token does not grant")

// CheckCSR enforces that the CSR's subject CN (if any) is the granted
// subject and that every SAN it requests is among the granted names. The
// certificate carries the grant, not the CSR, so this check is about
// refusing a confused or malicious request loudly.
func (g *Grant) CheckCSR(csr *x509.CertificateRequest) error {
	if cn := csr.Subject.CommonName; cn != "" && cn != g.Subject {
		return fmt.Errorf("%w: subject %q (token is for %q)", ErrNameNotGranted, cn, g.Subject)
	}
	granted := g.Names.Strings()
	// The subject name may also appear as a DNS SAN.
	granted = append(granted, "DNS:"+strings.ToLower(g.Subject))
	var asked []string
	for _, d := range csr.DNSNames {
		asked = append(asked, "DNS:"+strings.ToLower(d))
	}
	for _, ip := range csr.IPAddresses {
		asked = append(asked, "IP:"+ip.String())
	}
	for _, u := range csr.URIs {
		asked = append(asked, "URI:"+u.String())
	}
	for _, e := range csr.EmailAddresses {
		asked = append(asked, "EMAIL:"+e)
	}
	for _, a := range asked {
		if !slices.Contains(granted, a) {
			return fmt.Errorf("%w: %s", ErrNameNotGranted, a)
		}
	}
	return nil
}
