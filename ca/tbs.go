package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"net"
	"time"
	"unicode/utf8"

	"go.step.sm/crypto/x509util"
)

// createCertificate signs tmpl under the issuing CA. For an in-memory ECDSA
// key it assembles the TBSCertificate itself (the leaf profile's handful of
// fields, byte for byte what crypto/x509 would encode: TestFastTBSMatchesStdlib)
// and signs it once. crypto/x509.CreateCertificate verifies every signature
// it makes, which costs a second ECDSA operation per certificate; that check
// guards against a crypto.Signer that returns garbage (a token or TPM that
// fails silently), which an in-memory key whose public half New compared to
// the issuing certificate cannot do. Every other key (PKCS#11, TPM, RSA) and
// any template outside the fast path's shape takes x509util.CreateCertificate
// and keeps the self-check. The fast path also builds the *x509.Certificate
// from what it encoded (leafCert) instead of parsing the DER it just made.
func (a *Authority) createCertificate(tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	if k, ok := a.signer.(*ecdsa.PrivateKey); ok {
		if s, ok := signFast(tmpl, a.issuer, pub, k); ok {
			if c, ok := a.leafCert(s, tmpl, pub); ok {
				return c, nil
			}
			return x509.ParseCertificate(s.der)
		}
	}
	return x509util.CreateCertificate(tmpl, a.issuer, pub, a.signer)
}

// leafCert is what x509.ParseCertificate returns for s.der, built from
// the parts signFast encoded rather than parsed back out of them
// (TestFastTBSMatchesStdlib holds the two equal, field for field). It
// returns false for what it does not build exactly (URI names, an empty
// subject, a key other than ECDSA or RSA, an issuer name that does not
// parse); the caller then parses.
func (a *Authority) leafCert(s *signed, tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, bool) {
	var alg x509.PublicKeyAlgorithm
	switch pub.(type) {
	case *ecdsa.PublicKey:
		alg = x509.ECDSA
	case *rsa.PublicKey:
		alg = x509.RSA
	default:
		return nil, false
	}
	cn := tmpl.Subject.CommonName
	if len(tmpl.URIs) > 0 || cn == "" {
		// crypto/x509 checks a URI's host as it parses it.
		return nil, false
	}
	if !a.issuerNameOK {
		return nil, false
	}
	c := &x509.Certificate{
		Raw: s.der, RawTBSCertificate: s.tbs.raw, RawSubjectPublicKeyInfo: s.tbs.spki,
		RawSubject: s.tbs.subject, RawIssuer: a.issuer.RawSubject,
		Signature: s.sig, SignatureAlgorithm: s.sigAlg, PublicKeyAlgorithm: alg, PublicKey: pub,
		Version: 3, SerialNumber: tmpl.SerialNumber,
		Issuer:    a.issuerName,
		Subject:   pkix.Name{CommonName: cn, Names: []pkix.AttributeTypeAndValue{{Type: oidCommonName, Value: cn}}},
		NotBefore: tmpl.NotBefore.UTC().Truncate(time.Second), NotAfter: tmpl.NotAfter.UTC().Truncate(time.Second),
		KeyUsage:    tmpl.KeyUsage,
		Extensions:  s.tbs.exts,
		ExtKeyUsage: tmpl.ExtKeyUsage, BasicConstraintsValid: true, MaxPathLen: -1,
		SubjectKeyId: tmpl.SubjectKeyId, AuthorityKeyId: s.tbs.akid,
		IPAddresses:           s.tbs.ips,
		CRLDistributionPoints: tmpl.CRLDistributionPoints,
	}
	if len(tmpl.ExtKeyUsage) == 0 {
		c.ExtKeyUsage = nil
	}
	if len(tmpl.DNSNames) > 0 {
		c.DNSNames = tmpl.DNSNames
	}
	if len(tmpl.CRLDistributionPoints) == 0 {
		c.CRLDistributionPoints = nil
	}
	return c, true
}

var (
	oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

	// AlgorithmIdentifiers as crypto/x509 writes them (no parameters).
	algECDSAWithSHA256 = []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}
	algECDSAWithSHA384 = []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03}

	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidSubjectKeyID     = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidAuthorityKeyID   = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidSubjectAltName   = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidCRLDistribution  = asn1.ObjectIdentifier{2, 5, 29, 31}

	oidEKUClientAuth = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}
	oidEKUServerAuth = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}

	// The same, encoded once.
	derOIDCommonName       = oidDER(oidCommonName)
	derOIDKeyUsage         = oidDER(oidKeyUsage)
	derOIDExtKeyUsage      = oidDER(oidExtKeyUsage)
	derOIDBasicConstraints = oidDER(oidBasicConstraints)
	derOIDSubjectKeyID     = oidDER(oidSubjectKeyID)
	derOIDAuthorityKeyID   = oidDER(oidAuthorityKeyID)
	derOIDSubjectAltName   = oidDER(oidSubjectAltName)
	derOIDCRLDistribution  = oidDER(oidCRLDistribution)
	derOIDEKUClientAuth    = oidDER(oidEKUClientAuth)
	derOIDEKUServerAuth    = oidDER(oidEKUServerAuth)
)

// signed is a certificate signFast made, with the parts of it leafCert
// needs.
type signed struct {
	der    []byte
	tbs    tbsParts
	sigAlg x509.SignatureAlgorithm
	sig    []byte
}

// signFast signs tmpl, or returns false when tmpl or the key is outside
// what buildTBS encodes (the caller then takes the standard library).
func signFast(tmpl, issuer *x509.Certificate, pub crypto.PublicKey, key *ecdsa.PrivateKey) (*signed, bool) {
	s := new(signed)
	var alg []byte
	var digest []byte
	switch key.Curve {
	case elliptic.P256():
		alg, s.sigAlg = algECDSAWithSHA256, x509.ECDSAWithSHA256
	case elliptic.P384():
		alg, s.sigAlg = algECDSAWithSHA384, x509.ECDSAWithSHA384
	default:
		return nil, false
	}
	var ok bool
	if s.tbs, ok = encodeTBS(tmpl, issuer, pub, alg); !ok {
		return nil, false
	}
	tbs := s.tbs.raw
	if key.Curve == elliptic.P256() {
		h := sha256.Sum256(tbs)
		digest = h[:]
	} else {
		h := sha512.Sum384(tbs)
		digest = h[:]
	}
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest)
	if err != nil {
		return nil, false
	}
	s.sig = sig
	d := make(derBuf, 0, len(tbs)+len(alg)+len(sig)+16)
	c := d.open(tagSequence)
	d = append(d, tbs...)
	d = append(d, alg...)
	d.add(tagBitString, []byte{0}, sig)
	d.close(c)
	s.der = d
	return s, true
}

// tbsParts is a TBSCertificate encodeTBS made and the encodings within it.
type tbsParts struct {
	raw, spki, subject []byte
	akid               []byte
	ips                []net.IP // as encoded: 4 bytes for IPv4
	exts               []pkix.Extension
}

// encodeTBS encodes the TBSCertificate crypto/x509.CreateCertificate would
// for tmpl under issuer, for the fields the leaf profile (Authority.template)
// sets: serial, validity, subject, key, key usage, EKU (client/server auth),
// basic constraints (not a CA), key ids, DNS/IP/URI names and one or more
// CRL distribution points. Anything else set in tmpl returns false.
func encodeTBS(tmpl, issuer *x509.Certificate, pub crypto.PublicKey, alg []byte) (tbsParts, bool) {
	var p tbsParts
	if tmpl.SerialNumber == nil || tmpl.SerialNumber.Sign() <= 0 || !tmpl.BasicConstraintsValid || tmpl.IsCA ||
		tmpl.MaxPathLen != 0 || tmpl.MaxPathLenZero || len(tmpl.SubjectKeyId) == 0 ||
		len(tmpl.ExtraExtensions) > 0 || len(tmpl.EmailAddresses) > 0 || len(tmpl.UnknownExtKeyUsage) > 0 ||
		len(tmpl.OCSPServer) > 0 || len(tmpl.IssuingCertificateURL) > 0 || len(tmpl.Policies) > 0 ||
		len(tmpl.PolicyIdentifiers) > 0 || len(tmpl.RawSubject) > 0 || tmpl.SignatureAlgorithm != x509.UnknownSignatureAlgorithm ||
		tmpl.PermittedDNSDomainsCritical || len(tmpl.PermittedDNSDomains) > 0 || len(tmpl.ExcludedDNSDomains) > 0 ||
		len(tmpl.PermittedIPRanges) > 0 || len(tmpl.ExcludedIPRanges) > 0 || len(tmpl.PermittedEmailAddresses) > 0 ||
		len(tmpl.ExcludedEmailAddresses) > 0 || len(tmpl.PermittedURIDomains) > 0 || len(tmpl.ExcludedURIDomains) > 0 ||
		tmpl.KeyUsage <= 0 || tmpl.KeyUsage > 0xffff || len(issuer.RawSubject) == 0 {
		return p, false
	}
	spki, _, err := marshalSPKI(pub)
	if err != nil {
		if spki, err = x509.MarshalPKIXPublicKey(pub); err != nil {
			return p, false
		}
	}
	if !sameName(tmpl.Subject, tmpl.Subject.CommonName) {
		return p, false
	}
	subject, ok := commonNameDER(tmpl.Subject.CommonName)
	if !ok {
		if subject, err = asn1.Marshal(pkix.Name{CommonName: tmpl.Subject.CommonName}.ToRDNSequence()); err != nil {
			return p, false
		}
	}
	p.spki, p.subject = spki, subject
	var ekus [][]byte
	for _, u := range tmpl.ExtKeyUsage {
		switch u {
		case x509.ExtKeyUsageClientAuth:
			ekus = append(ekus, derOIDEKUClientAuth)
		case x509.ExtKeyUsageServerAuth:
			ekus = append(ekus, derOIDEKUServerAuth)
		default:
			return p, false
		}
	}
	// crypto/x509 takes the parent's key id unless the certificate is
	// self-issued by name.
	akid := tmpl.AuthorityKeyId
	if !bytes.Equal(issuer.RawSubject, subject) && len(issuer.SubjectKeyId) > 0 {
		akid = issuer.SubjectKeyId
	}
	if len(akid) > 0 {
		p.akid = akid
	}
	for _, n := range tmpl.DNSNames {
		if !isIA5(n) {
			return p, false
		}
	}
	uris := make([]string, len(tmpl.URIs))
	for i, u := range tmpl.URIs {
		if uris[i] = u.String(); !isIA5(uris[i]) {
			return p, false
		}
	}
	for _, raw := range tmpl.IPAddresses {
		ip := raw.To4()
		if ip == nil {
			ip = raw
		}
		p.ips = append(p.ips, ip)
	}

	// The extensions' values first, in the order crypto/x509 writes
	// them: the TBS carries them, and the parsed certificate lists them.
	ev := make(derBuf, 0, 256)
	var ends [7]int // where each value ends in ev; the next one starts there
	var ids [7]asn1.ObjectIdentifier
	var ders [7][]byte
	var crit [7]bool
	next := 0
	ext := func(id asn1.ObjectIdentifier, der []byte, critical bool) {
		ends[next], ids[next], ders[next], crit[next] = len(ev), id, der, critical
		next++
	}
	bits := []byte{reverseBits(byte(tmpl.KeyUsage)), reverseBits(byte(tmpl.KeyUsage >> 8))}
	if bits[1] == 0 {
		bits = bits[:1]
	}
	ev.add(tagBitString, []byte{unusedBits(bits)}, bits)
	ext(oidKeyUsage, derOIDKeyUsage, true)
	if len(ekus) > 0 {
		ev.add(tagSequence, ekus...)
		ext(oidExtKeyUsage, derOIDExtKeyUsage, false)
	}
	ev = append(ev, tagSequence, 0)
	ext(oidBasicConstraints, derOIDBasicConstraints, true)
	ev.add(tagOctetString, tmpl.SubjectKeyId)
	ext(oidSubjectKeyID, derOIDSubjectKeyID, false)
	if len(akid) > 0 {
		s := ev.open(tagSequence)
		ev.add(ctx(0, false), akid)
		ev.close(s)
		ext(oidAuthorityKeyID, derOIDAuthorityKeyID, false)
	}
	if len(tmpl.DNSNames) > 0 || len(p.ips) > 0 || len(uris) > 0 {
		s := ev.open(tagSequence)
		for _, n := range tmpl.DNSNames {
			ev.addString(ctx(2, false), n)
		}
		for _, ip := range p.ips {
			ev.add(ctx(7, false), ip)
		}
		for _, u := range uris {
			ev.addString(ctx(6, false), u)
		}
		ev.close(s)
		ext(oidSubjectAltName, derOIDSubjectAltName, false)
	}
	if len(tmpl.CRLDistributionPoints) > 0 {
		s := ev.open(tagSequence)
		for _, u := range tmpl.CRLDistributionPoints {
			s1 := ev.open(tagSequence)
			s2 := ev.open(ctx(0, true))
			s3 := ev.open(ctx(0, true))
			ev.addString(ctx(6, false), u)
			ev.close(s3)
			ev.close(s2)
			ev.close(s1)
		}
		ev.close(s)
		ext(oidCRLDistribution, derOIDCRLDistribution, false)
	}
	p.exts = make([]pkix.Extension, next)
	for i := range next {
		begin, end := 0, ends[i]
		if i > 0 {
			begin = ends[i-1]
		}
		p.exts[i] = pkix.Extension{Id: ids[i], Critical: crit[i], Value: ev[begin:end:end]}
	}

	d := make(derBuf, 0, 128+len(issuer.RawSubject)+len(subject)+len(spki)+len(ev)+16*next) // a leaf TBS is 400-700 bytes
	tbs := d.open(tagSequence)
	d = append(d, ctx(0, true), 3, tagInteger, 1, 2) // version 3
	d.addPositiveInt(tmpl.SerialNumber)
	d = append(d, alg...)
	d = append(d, issuer.RawSubject...)
	v := d.open(tagSequence)
	d.addTime(tmpl.NotBefore)
	d.addTime(tmpl.NotAfter)
	d.close(v)
	d = append(d, subject...)
	d = append(d, spki...)
	x := d.open(ctx(3, true))
	xs := d.open(tagSequence)
	for i, e := range p.exts {
		s := d.open(tagSequence)
		d = append(d, ders[i]...)
		if e.Critical {
			d = append(d, tagBoolean, 1, 0xff)
		}
		d.add(tagOctetString, e.Value)
		d.close(s)
	}
	d.close(xs)
	d.close(x)
	d.close(tbs)
	p.raw = d
	return p, true
}

// unusedBits is the unused-bits octet encoding/asn1 writes for
// asn1.BitString{Bytes: bits, BitLength: up to the last set bit}, the way
// crypto/x509 encodes key usage.
func unusedBits(bits []byte) byte {
	unused := byte(0)
	if last := bits[len(bits)-1]; last != 0 {
		for last&1 == 0 {
			unused++
			last >>= 1
		}
	}
	return unused
}

func reverseBits(in byte) byte {
	var out byte
	for i := 0; i < 8; i++ {
		out = out<<1 | in&1
		in >>= 1
	}
	return out
}

func isIA5(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// sameName reports whether n holds nothing but the common name cn.
func sameName(n pkix.Name, cn string) bool {
	return n.CommonName == cn && len(n.Country) == 0 && len(n.Organization) == 0 && len(n.OrganizationalUnit) == 0 &&
		len(n.Locality) == 0 && len(n.Province) == 0 && len(n.StreetAddress) == 0 && len(n.PostalCode) == 0 &&
		n.SerialNumber == "" && len(n.Names) == 0 && len(n.ExtraNames) == 0
}
