package localaws

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"regexp"
)

// Attribute mappings (§5.5, §11): which certificate attributes become the
// session's principal tags, and the two operations that change them.

// Certificate fields of an attribute mapping.
const (
	fieldSubject = "x509Subject"
	fieldIssuer  = "x509Issuer"
	fieldSAN     = "x509SAN"
)

type putAttributeMappingInput struct {
	CertificateField *string       `json:"certificateField"`
	MappingRules     []mappingRule `json:"mappingRules"`
}

func checkCertificateField(f string) *apiError {
	switch f {
	case fieldSubject, fieldIssuer, fieldSAN:
		return nil
	}
	return validationError("certificateField must be one of x509Subject, x509Issuer, x509SAN")
}

func checkSpecifiers(specs []string) *apiError {
	for _, s := range specs {
		if len(s) > 60 {
			return validationError("mapping rule specifiers are at most 60 characters")
		}
	}
	return nil
}

// putAttributeMapping replaces the rules of one certificate field of the
// profile (the other fields keep theirs).
func (s *Server) putAttributeMapping(c *cpCall) (int, any, *apiError) {
	var in putAttributeMappingInput
	if e := decodeBody(c.body, &in); e != nil {
		return 0, nil, e
	}
	if in.CertificateField == nil || in.MappingRules == nil {
		return 0, nil, validationError("certificateField and mappingRules are required")
	}
	if e := checkCertificateField(*in.CertificateField); e != nil {
		return 0, nil, e
	}
	specs := make([]string, 0, len(in.MappingRules))
	for _, r := range in.MappingRules {
		specs = append(specs, r.Specifier)
	}
	if e := checkSpecifiers(specs); e != nil {
		return 0, nil, e
	}
	if len(specs) > 50 {
		return 0, nil, validationError("at most 50 mapping rules per certificate field")
	}
	return s.mutateProfile(c, func(p *profile) {
		for i := range p.AttributeMappings {
			if p.AttributeMappings[i].CertificateField == *in.CertificateField {
				p.AttributeMappings[i].MappingRules = in.MappingRules
				return
			}
		}
		p.AttributeMappings = append(p.AttributeMappings, attributeMapping{CertificateField: *in.CertificateField, MappingRules: in.MappingRules})
	})
}

// deleteAttributeMapping removes the named specifiers of a field, or the
// whole field's mapping when no specifier is given.
func (s *Server) deleteAttributeMapping(c *cpCall) (int, any, *apiError) {
	for k := range c.query {
		if k != "certificateField" && k != "specifiers" {
			return 0, nil, validationError("Unknown query parameter %q", k)
		}
	}
	field := c.query["certificateField"]
	if len(field) != 1 {
		return 0, nil, validationError("certificateField is required, once")
	}
	if e := checkCertificateField(field[0]); e != nil {
		return 0, nil, e
	}
	specs := c.query["specifiers"]
	if e := checkSpecifiers(specs); e != nil {
		return 0, nil, e
	}
	return s.mutateProfile(c, func(p *profile) {
		out := p.AttributeMappings[:0:0]
		for _, m := range p.AttributeMappings {
			if m.CertificateField != field[0] {
				out = append(out, m)
				continue
			}
			if len(specs) == 0 {
				continue
			}
			var keep []mappingRule
			for _, r := range m.MappingRules {
				if !contains(specs, r.Specifier) {
					keep = append(keep, r)
				}
			}
			if len(keep) > 0 {
				out = append(out, attributeMapping{CertificateField: m.CertificateField, MappingRules: keep})
			}
		}
		p.AttributeMappings = out
	})
}

// rdnNames are the attribute short names Roles Anywhere uses in tag keys.
var rdnNames = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "STREET",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.5":                    "SERIALNUMBER",
	"0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1":  "UID",
	"1.2.840.113549.1.9.1":       "emailAddress",
}

// rdnValues flattens a name into short name -> values joined with "/" in
// certificate order (§5.5: OU=Security,OU=Engineering -> Security/Engineering).
// Attributes without a known short name are skipped.
func rdnValues(names []pkix.AttributeTypeAndValue) map[string]string {
	out := map[string]string{}
	for _, atv := range names {
		short, ok := rdnNames[atv.Type.String()]
		if !ok {
			continue
		}
		v, ok := atv.Value.(string)
		if !ok {
			continue
		}
		if prev, seen := out[short]; seen {
			out[short] = prev + "/" + v
		} else {
			out[short] = v
		}
	}
	return out
}

// firstDirectoryName returns the first directoryName of the leaf's SAN.
func firstDirectoryName(c *x509.Certificate) []pkix.AttributeTypeAndValue {
	for _, ext := range c.Extensions {
		if !ext.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 17}) {
			continue
		}
		var names []asn1.RawValue
		if _, err := asn1.Unmarshal(ext.Value, &names); err != nil {
			return nil
		}
		for _, n := range names {
			if n.Class != asn1.ClassContextSpecific || n.Tag != 4 {
				continue
			}
			var rdns pkix.RDNSequence
			if _, err := asn1.Unmarshal(n.Bytes, &rdns); err != nil {
				return nil
			}
			var name pkix.Name
			name.FillFromRDNSequence(&rdns)
			return name.Names
		}
	}
	return nil
}

// stsTagValue is the STS session-tag value pattern (and its length limit):
// values that do not match are dropped silently (§5.5).
var stsTagValue = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$`)

// principalTags computes the session tags of a certificate under the
// profile's mappings: "x509Subject/CN" -> value, and so on.
func principalTags(c *x509.Certificate, mappings []attributeMapping) map[string]string {
	rules := map[string][]string{}
	for _, m := range mappings {
		for _, r := range m.MappingRules {
			rules[m.CertificateField] = append(rules[m.CertificateField], r.Specifier)
		}
	}
	tags := map[string]string{}
	add := func(key, value string) {
		if value != "" && stsTagValue.MatchString(value) && len(key) <= 128 {
			tags[key] = value
		}
	}
	for _, f := range []struct {
		field string
		names []pkix.AttributeTypeAndValue
	}{{fieldSubject, c.Subject.Names}, {fieldIssuer, c.Issuer.Names}} {
		specs := rules[f.field]
		for short, v := range rdnValues(f.names) {
			if contains(specs, "*") || contains(specs, short) {
				add(f.field+"/"+short, v)
			}
		}
	}
	san := rules[fieldSAN]
	if contains(san, "DNS") && len(c.DNSNames) > 0 {
		add(fieldSAN+"/DNS", c.DNSNames[0])
	}
	if contains(san, "URI") && len(c.URIs) > 0 {
		add(fieldSAN+"/URI", c.URIs[0].String())
	}
	all := contains(san, "Name") || contains(san, "Name/") || contains(san, "Name/*")
	for short, v := range rdnValues(firstDirectoryName(c)) {
		if all || contains(san, "Name/"+short) {
			add(fieldSAN+"/Name/"+short, v)
		}
	}
	return tags
}
