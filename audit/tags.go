package audit

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"regexp"
	"strings"
)

// The certificate fields Roles Anywhere maps to session tags.
const (
	FieldSubject = "x509Subject"
	FieldIssuer  = "x509Issuer"
	FieldSAN     = "x509SAN"
)

// DefaultMappings are AWS's attribute mappings of a new profile (§5.5):
// every subject and issuer RDN, the first DNS and URI SAN and every
// directoryName RDN.
var DefaultMappings = []Mapping{
	{Field: FieldSubject, Specifiers: []string{"*"}},
	{Field: FieldIssuer, Specifiers: []string{"*"}},
	{Field: FieldSAN, Specifiers: []string{"DNS", "URI", "Name/*"}},
}

// rdnNames are the short names AWS uses for RDN attribute types.
var rdnNames = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.11":                   "OU",
	"2.5.4.10":                   "O",
	"2.5.4.6":                    "C",
	"2.5.4.8":                    "ST",
	"2.5.4.7":                    "L",
	"2.5.4.9":                    "STREET",
	"2.5.4.5":                    "SERIALNUMBER",
	"0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1":  "UID",
	"1.2.840.113549.1.9.1":       "emailAddress",
}

// tagValue is what STS accepts in a session tag value; others are dropped.
var tagValue = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$`)

// rdnTags returns RDN name → value for a distinguished name, multi-valued
// RDNs joined with '/' in certificate order.
func rdnTags(raw []byte) map[string]string {
	var seq pkix.RDNSequence
	if _, err := asn1.Unmarshal(raw, &seq); err != nil {
		return nil
	}
	out := map[string]string{}
	var order []string
	for _, set := range seq {
		for _, atv := range set {
			name, ok := rdnNames[atv.Type.String()]
			if !ok {
				continue
			}
			v, ok := atv.Value.(string)
			if !ok {
				continue
			}
			if _, seen := out[name]; seen {
				out[name] += "/" + v
			} else {
				out[name] = v
				order = append(order, name)
			}
		}
	}
	return out
}

// SessionTags are the principal tags Roles Anywhere gives a session made
// with c under a profile with these attribute mappings (nil: AWS's
// defaults), as condition keys "aws:PrincipalTag/x509Subject/CN" → value.
func SessionTags(c *x509.Certificate, mappings []Mapping) map[string]string {
	if mappings == nil {
		mappings = DefaultMappings
	}
	spec := map[string]map[string]bool{}
	for _, m := range mappings {
		s := map[string]bool{}
		for _, v := range m.Specifiers {
			if m.Field == FieldSAN && (v == "Name" || v == "Name/") {
				v = "Name/*"
			}
			s[v] = true
		}
		spec[m.Field] = s
	}
	out := map[string]string{}
	add := func(key, v string) {
		if v != "" && tagValue.MatchString(v) {
			out["aws:PrincipalTag/"+key] = v
		}
	}
	for _, f := range []struct {
		field string
		raw   []byte
	}{{FieldSubject, c.RawSubject}, {FieldIssuer, c.RawIssuer}} {
		s := spec[f.field]
		for name, v := range rdnTags(f.raw) {
			if s["*"] || s[name] {
				add(f.field+"/"+name, v)
			}
		}
	}
	s := spec[FieldSAN]
	if len(c.DNSNames) > 0 && s["DNS"] {
		add(FieldSAN+"/DNS", c.DNSNames[0])
	}
	if len(c.URIs) > 0 && s["URI"] {
		add(FieldSAN+"/URI", c.URIs[0].String())
	}
	for name, v := range rdnTags(firstDirectoryName(c)) {
		if s["Name/*"] || s["Name/"+name] {
			add(FieldSAN+"/Name/"+name, v)
		}
	}
	return out
}

// firstDirectoryName returns the DER of the first directoryName in the
// certificate's SAN extension (Go's x509 does not parse those).
func firstDirectoryName(c *x509.Certificate) []byte {
	for _, ext := range c.Extensions {
		if !ext.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 17}) {
			continue
		}
		var seq asn1.RawValue
		if _, err := asn1.Unmarshal(ext.Value, &seq); err != nil {
			return nil
		}
		rest := seq.Bytes
		for len(rest) > 0 {
			var gn asn1.RawValue
			var err error
			if rest, err = asn1.Unmarshal(rest, &gn); err != nil {
				return nil
			}
			if gn.Class == asn1.ClassContextSpecific && gn.Tag == 4 {
				return gn.Bytes // [4] EXPLICIT Name: the Name's own DER
			}
		}
	}
	return nil
}

// SANs lists a certificate's subject alternative names as "DNS:x",
// "URI:x", "IP:x", "email:x".
func SANs(c *x509.Certificate) []string {
	var out []string
	for _, d := range c.DNSNames {
		out = append(out, "DNS:"+d)
	}
	for _, u := range c.URIs {
		out = append(out, "URI:"+u.String())
	}
	for _, ip := range c.IPAddresses {
		out = append(out, "IP:"+ip.String())
	}
	for _, e := range c.EmailAddresses {
		out = append(out, "email:"+e)
	}
	return out
}

// isSubjectOrSANKey reports whether a condition key pins the certificate:
// a principal tag from its subject or SAN (the issuer alone admits every
// certificate the CA ever signed).
func isSubjectOrSANKey(key string) bool {
	k := strings.ToLower(key)
	return strings.HasPrefix(k, "aws:principaltag/x509subject/") || strings.HasPrefix(k, "aws:principaltag/x509san/")
}
