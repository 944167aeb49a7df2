// Package lint runs zlint over certificates and CRLs with the lint sources
// that apply to a private PKI (RFC 5280 family and community lints; the
// CA/Browser Forum rules govern publicly trusted TLS CAs, not anchorage).
// The CA lints each profile at start-up; tests lint everything issued.
package lint

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	zl "github.com/zmap/zlint/v3/lint"
)

// Sources are the zlint sources anchorage is held to, the same list as
// ../shared/harness/zlint-check.sh uses by default.
var Sources = zl.SourceList{zl.RFC3279, zl.RFC5280, zl.RFC5480, zl.RFC5891, zl.RFC8813, zl.Community}

var registry = sync.OnceValues(func() (zl.Registry, error) {
	return zl.GlobalRegistry().Filter(zl.FilterOptions{IncludeSources: Sources})
})

// Certificate lints a DER certificate and returns an error naming every lint
// that reported error or fatal.
func Certificate(der []byte) error {
	reg, err := registry()
	if err != nil {
		return err
	}
	c, err := zx509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("lint: parse certificate: %w", err)
	}
	return failures("certificate", zlint.LintCertificateEx(c, reg))
}

// CRL lints a DER certificate revocation list.
func CRL(der []byte) error {
	reg, err := registry()
	if err != nil {
		return err
	}
	r, err := zx509.ParseRevocationList(der)
	if err != nil {
		return fmt.Errorf("lint: parse CRL: %w", err)
	}
	return failures("CRL", zlint.LintRevocationListEx(r, reg))
}

func failures(what string, rs *zlint.ResultSet) error {
	var bad []string
	for name, res := range rs.Results {
		if res.Status == zl.Error || res.Status == zl.Fatal {
			bad = append(bad, fmt.Sprintf("%s (%s)", name, res.Status))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return fmt.Errorf("lint: %s fails %s", what, strings.Join(bad, ", "))
}
