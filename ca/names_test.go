package ca_test

import (
	"slices"
	"testing"

	"github.com/anchorage-pki/anchorage/ca"
)

// TestPlainRoundTrip: what Plain writes into a token, ParseSANs (the
// verifier) must read back as the same names. A DNS name shaped like an IP
// used to come back as an IP SAN, and an opaque URI (urn:...) as an invalid
// DNS name that made the token unusable.
func TestPlainRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		san   string
		plain string
	}{
		{"DNS:web-01.internal", "web-01.internal"},
		{"DNS:*.x.internal", "*.x.internal"},
		{"DNS:1.2.3.4", "DNS:1.2.3.4"},
		{"DNS:10.0.0.1", "DNS:10.0.0.1"},
		{"IP:1.2.3.4", "1.2.3.4"},
		{"IP:::1", "::1"},
		{"IP:fd00::23", "fd00::23"},
		{"URI:spiffe://example.org/web", "spiffe://example.org/web"},
		{"URI:urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", "URI:urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"},
		{"URI:IP:1.2.3.4", "URI:ip:1.2.3.4"},
	} {
		t.Run(tc.san, func(t *testing.T) {
			n, err := ca.ParseSANs([]string{tc.san})
			if err != nil {
				t.Fatal(err)
			}
			p := n.Plain()
			if len(p) != 1 || p[0] != tc.plain {
				t.Fatalf("Plain = %q, want [%q]", p, tc.plain)
			}
			back, err := ca.ParseSANs(p)
			if err != nil {
				t.Fatalf("ParseSANs(Plain) = %v", err)
			}
			if !slices.Equal(back.Strings(), n.Strings()) {
				t.Fatalf("round trip: %q became %q", n.Strings(), back.Strings())
			}
		})
	}
}

// TestParseSANsRefuses: names no certificate should carry. A bare "*" was
// accepted, and Go's and most TLS clients' matching lets it stand for any
// single-label host (localhost, db).
func TestParseSANsRefuses(t *testing.T) {
	for _, san := range []string{"DNS:*", "*", "DNS:*.*.example.com", "DNS:a.*.example.com", "dns:web.internal",
		"DNS:web.internal.", "DNS:", "IP:[::1]", "IP:fe80::1%eth0", "URI:/relative", "DNS:web_01 .internal"} {
		t.Run(san, func(t *testing.T) {
			if n, err := ca.ParseSANs([]string{san}); err == nil {
				t.Fatalf("ParseSANs(%q) = %v, want an error", san, n.Strings())
			}
		})
	}
}
