package crl

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"hash/maphash"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/anchorage-pki/anchorage/lint"
	"github.com/anchorage-pki/anchorage/storage"
)

// LintFullMax is the largest CRL (in entries) zlint reads whole. zlint
// parses into big.Int and reflective structures, ≈ 13 µs per entry here,
// so at 1M entries it alone would take over 10 s. Above this size Check
// lints a CRL built by the same code from a bounded sample of the entries
// (lintSample) and checks every entry of the real CRL itself
// (walkEntries): DER form, serial, time and reason against storage,
// uniqueness. Every CRL Roles Anywhere can import (at most 5,673 entries
// with 20-octet serials, 4,174 with reason codes) is below it, so whatever
// reaches a trust anchor has been linted whole.
const LintFullMax = 8192

// LintSampleSize is how many entries the lint copy of a larger CRL holds.
const LintSampleSize = 4096

// Checked is what Check read from a CRL it accepted.
type Checked struct {
	Number     uint64
	ThisUpdate time.Time
	NextUpdate time.Time
	Entries    int
	PEMSize    int
	// Linted is how many entries zlint saw: all of them up to LintFullMax,
	// else a sample of LintSampleSize (the rest checked by Check itself).
	Linted int
}

// Check parses a built CRL back and verifies what a relying party will and
// what storage says it must hold: the DER structure, the signature by the
// issuer's key (and that the issuer may sign CRLs), the issuer name, the
// signature algorithm, a number above prev, thisUpdate ≤ nextUpdate with
// nextUpdate after now, the authority key identifier, and every entry
// against want in order (serial, time clamped to thisUpdate, reason code,
// DER form, no serial twice); then zlint (whole, or a sample above
// LintFullMax); then the Roles Anywhere size cap. A CRL that passes
// everything but the cap is returned with an error wrapping ErrTooLarge:
// it is correct and complete, only no trust anchor will import it.
func Check(der []byte, issuer *x509.Certificate, prev uint64, now time.Time, want []storage.Revocation) (*Checked, error) {
	in := cryptobyte.String(der)
	var outer, tbsRaw, tbs, outerAlg, sigBits cryptobyte.String
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, errors.New("crl: check: not one DER SEQUENCE")
	}
	if !outer.ReadASN1Element(&tbsRaw, cbasn1.SEQUENCE) ||
		!outer.ReadASN1Element(&outerAlg, cbasn1.SEQUENCE) ||
		!outer.ReadASN1(&sigBits, cbasn1.BIT_STRING) || !outer.Empty() {
		return nil, errors.New("crl: check: malformed CertificateList")
	}
	alg, err := signingAlg(issuer.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("crl: check: %w", err)
	}
	if !bytes.Equal(outerAlg, alg.der) {
		return nil, errors.New("crl: check: signature algorithm is not the issuer key's")
	}
	if len(sigBits) < 1 || sigBits[0] != 0 {
		return nil, errors.New("crl: check: signature BIT STRING has unused bits")
	}
	if issuer.Version == 3 && !issuer.BasicConstraintsValid || issuer.BasicConstraintsValid && !issuer.IsCA ||
		issuer.KeyUsage != 0 && issuer.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return nil, errors.New("crl: check: signature: the issuer may not sign CRLs")
	}
	if err := issuer.CheckSignature(alg.algo, tbsRaw, sigBits[1:]); err != nil {
		return nil, fmt.Errorf("crl: check: signature: %w", err)
	}

	c := &Checked{}
	tbsIn := tbsRaw
	var version int64
	var tbsAlg, name cryptobyte.String
	if !tbsIn.ReadASN1(&tbs, cbasn1.SEQUENCE) || !tbs.ReadASN1Int64WithTag(&version, cbasn1.INTEGER) || version != 1 {
		return nil, errors.New("crl: check: not a v2 TBSCertList")
	}
	if !tbs.ReadASN1Element(&tbsAlg, cbasn1.SEQUENCE) || !bytes.Equal(tbsAlg, outerAlg) {
		return nil, errors.New("crl: check: inner and outer signature algorithms differ")
	}
	if !tbs.ReadASN1Element(&name, cbasn1.SEQUENCE) || !bytes.Equal(name, issuer.RawSubject) {
		return nil, errors.New("crl: check: issuer name differs from the issuing CA subject")
	}
	if c.ThisUpdate, err = readTime(&tbs); err != nil {
		return nil, fmt.Errorf("crl: check: thisUpdate: %w", err)
	}
	if c.NextUpdate, err = readTime(&tbs); err != nil {
		return nil, fmt.Errorf("crl: check: nextUpdate: %w", err)
	}
	if c.NextUpdate.Before(c.ThisUpdate) {
		return nil, errors.New("crl: check: nextUpdate is before thisUpdate")
	}
	if !c.NextUpdate.After(now) {
		return nil, errors.New("crl: check: nextUpdate is not in the future")
	}
	var revoked cryptobyte.String
	hasRevoked := false
	if tbs.PeekASN1Tag(cbasn1.SEQUENCE) {
		if !tbs.ReadASN1(&revoked, cbasn1.SEQUENCE) || revoked.Empty() {
			return nil, errors.New("crl: check: revokedCertificates present but empty or malformed")
		}
		hasRevoked = true
	}
	if c.Number, err = readCRLExtensions(&tbs, issuer.SubjectKeyId); err != nil {
		return nil, fmt.Errorf("crl: check: %w", err)
	}
	if !tbs.Empty() || !tbsIn.Empty() {
		return nil, errors.New("crl: check: trailing data in TBSCertList")
	}
	if c.Number <= prev {
		return nil, fmt.Errorf("crl: check: number %d does not exceed previous %d", c.Number, prev)
	}
	if hasRevoked {
		if c.Entries, err = walkEntries(revoked, c.ThisUpdate, want); err != nil {
			return nil, fmt.Errorf("crl: check: %w", err)
		}
	}
	if c.Entries != len(want) {
		return nil, fmt.Errorf("crl: check: %d entries, want %d", c.Entries, len(want))
	}

	if len(want) <= LintFullMax {
		if err := lint.CRL(der); err != nil {
			return nil, fmt.Errorf("crl: check: %w", err)
		}
		c.Linted = len(want)
	} else {
		n, err := lintSample(issuer, c, want)
		if err != nil {
			return nil, fmt.Errorf("crl: check: lint copy of %d sampled entries: %w", n, err)
		}
		c.Linted = n
	}

	c.PEMSize = PEMSize(len(der))
	if c.PEMSize > MaxPEMSize {
		return c, fmt.Errorf("crl: check: %w: %d bytes of PEM, the cap is %d", ErrTooLarge, c.PEMSize, MaxPEMSize)
	}
	return c, nil
}

// readTime reads a UTCTime or GeneralizedTime.
func readTime(s *cryptobyte.String) (time.Time, error) {
	var t time.Time
	switch {
	case s.PeekASN1Tag(cbasn1.UTCTime):
		if !s.ReadASN1UTCTime(&t) {
			return t, errors.New("malformed UTCTime")
		}
	case s.PeekASN1Tag(cbasn1.GeneralizedTime):
		if !s.ReadASN1GeneralizedTime(&t) {
			return t, errors.New("malformed GeneralizedTime")
		}
	default:
		return t, errors.New("missing")
	}
	return t, nil
}

// readCRLExtensions reads [0] { authorityKeyIdentifier, cRLNumber }, both
// non-critical, the AKI naming ski (any key for nil), and returns the
// number.
func readCRLExtensions(s *cryptobyte.String, ski []byte) (uint64, error) {
	var wrap, exts cryptobyte.String
	if !s.ReadASN1(&wrap, cbasn1.Tag(0).Constructed().ContextSpecific()) || !wrap.ReadASN1(&exts, cbasn1.SEQUENCE) || !wrap.Empty() {
		return 0, errors.New("crlExtensions missing or malformed")
	}
	var number uint64
	seenAKI, seenNumber := false, false
	for !exts.Empty() {
		var ext, oid, value cryptobyte.String
		if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) {
			return 0, errors.New("malformed CRL extension")
		}
		if ext.PeekASN1Tag(cbasn1.BOOLEAN) {
			return 0, errors.New("a CRL extension is marked critical")
		}
		if !ext.ReadASN1(&value, cbasn1.OCTET_STRING) || !ext.Empty() {
			return 0, errors.New("malformed CRL extension")
		}
		switch {
		case bytes.Equal(oid, oidAKI[2:]) && !seenAKI:
			seenAKI = true
			var aki, id cryptobyte.String
			if !value.ReadASN1(&aki, cbasn1.SEQUENCE) || !value.Empty() ||
				!aki.ReadASN1(&id, cbasn1.Tag(0).ContextSpecific()) || !aki.Empty() || ski != nil && !bytes.Equal(id, ski) {
				return 0, errors.New("authorityKeyIdentifier does not name the issuer's key")
			}
		case bytes.Equal(oid, oidCRLNumber[2:]) && !seenNumber:
			seenNumber = true
			var raw cryptobyte.String
			if !value.ReadASN1(&raw, cbasn1.INTEGER) || !value.Empty() || !minimalPositive(raw) || len(raw) > 9 || len(raw) == 9 && raw[0] != 0 {
				return 0, errors.New("cRLNumber is not a positive integer of at most 64 bits")
			}
			for _, b := range raw {
				number = number<<8 | uint64(b)
			}
		default:
			return 0, fmt.Errorf("unexpected or repeated CRL extension %x", []byte(oid))
		}
	}
	if !seenAKI || !seenNumber {
		return 0, errors.New("authorityKeyIdentifier or cRLNumber missing")
	}
	return number, nil
}

// minimalPositive reports whether INTEGER content b is in DER's minimal
// form and not negative.
func minimalPositive(b []byte) bool {
	if len(b) == 0 || b[0]&0x80 != 0 {
		return false
	}
	return len(b) == 1 || b[0] != 0 || b[1]&0x80 != 0
}

var serialSeed = maphash.MakeSeed()

// rfc2459 is the earliest revocation time zlint's
// e_crl_revocation_date_too_early accepts; walkEntries holds every entry
// of a sampled CRL to it as zlint holds a whole one.
var rfc2459 = time.Date(1999, time.January, 1, 0, 0, 0, 0, time.UTC)

// walkEntries checks every revokedCertificates entry against want, in
// order, and that no serial is listed twice, without building a value
// per entry. Both stores hand out revocations ordered by serial; when
// want's serials are strictly ascending in canonical form (no leading
// zeros, one case), they are distinct and no set of them is needed.
func walkEntries(s cryptobyte.String, thisUpdate time.Time, want []storage.Revocation) (int, error) {
	var seen map[uint64]int32
	if !ascending(want) {
		seen = make(map[uint64]int32, len(want))
	}
	var tb [17]byte
	n := 0
	for !s.Empty() {
		var e, serial, at, exts cryptobyte.String
		var tag cbasn1.Tag
		if !s.ReadASN1(&e, cbasn1.SEQUENCE) || !e.ReadASN1(&serial, cbasn1.INTEGER) ||
			!e.ReadAnyASN1Element(&at, &tag) || tag != cbasn1.UTCTime && tag != cbasn1.GeneralizedTime {
			return n, fmt.Errorf("entry %d malformed", n)
		}
		if n >= len(want) {
			return n + 1 + countRest(s), fmt.Errorf("more entries than the %d in storage", len(want))
		}
		w := &want[n]
		if !minimalPositive(serial) {
			return n, fmt.Errorf("entry %d: serial is negative or not minimally encoded", n)
		}
		v := []byte(serial)
		if len(v) > 1 && v[0] == 0 {
			v = v[1:]
		}
		if !serialEqual(v, w.Serial) {
			return n, fmt.Errorf("entry %d: serial %x, storage has %s", n, v, w.Serial)
		}
		if seen != nil {
			h := maphash.Bytes(serialSeed, v)
			if j, dup := seen[h]; dup && serialEqual(v, want[j].Serial) {
				return n, fmt.Errorf("serial %x listed twice (entries %d and %d)", v, j, n)
			}
			seen[h] = int32(n)
		}
		rt := revocationTime(w, thisUpdate)
		if rt.Before(rfc2459) {
			return n, fmt.Errorf("entry %d (serial %s): revocation time %s is before RFC 2459 (an unset time?)", n, w.Serial, rt)
		}
		if rt.After(thisUpdate) || !bytes.Equal(at, appendTime(tb[:0], rt)) {
			return n, fmt.Errorf("entry %d (serial %s): revocation time differs from storage's %s", n, w.Serial, rt)
		}
		if e.Empty() {
			if w.Reason != 0 {
				return n, fmt.Errorf("entry %d (serial %s): reason code missing", n, w.Serial)
			}
		} else {
			var ext, oid, value, enum cryptobyte.String
			if !e.ReadASN1(&exts, cbasn1.SEQUENCE) || !e.Empty() || !exts.ReadASN1(&ext, cbasn1.SEQUENCE) || !exts.Empty() ||
				!ext.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) || !bytes.Equal(oid, oidReasonCode[2:]) ||
				!ext.ReadASN1(&value, cbasn1.OCTET_STRING) || !ext.Empty() ||
				!value.ReadASN1(&enum, cbasn1.ENUM) || !value.Empty() {
				return n, fmt.Errorf("entry %d (serial %s): extensions other than one non-critical reasonCode", n, w.Serial)
			}
			if !validReason(enum) || int(enum[0]) != w.Reason {
				return n, fmt.Errorf("entry %d (serial %s): reason code %x, storage has %d", n, w.Serial, []byte(enum), w.Reason)
			}
		}
		n++
	}
	return n, nil
}

// ascending reports whether the serials of revs, each without leading
// zeros and in lower case, are strictly ascending (so pairwise distinct).
func ascending(revs []storage.Revocation) bool {
	for i := 1; i < len(revs); i++ {
		if compareHex(revs[i-1].Serial, revs[i].Serial) >= 0 {
			return false
		}
	}
	return true
}

// compareHex compares two hex strings by their canonical form: leading
// zeros dropped (one kept for zero), letters folded to lower case.
func compareHex(a, b string) int {
	a, b = trimZeros(a), trimZeros(b)
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := a[i]|0x20, b[i]|0x20 // digits already have 0x20 set
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return len(a) - len(b)
}

func trimZeros(s string) string {
	for len(s) > 1 && s[0] == '0' {
		s = s[1:]
	}
	return s
}

// validReason: RFC 5280 §5.3.1 CRLReason, without unspecified (0, left
// out instead) and the unassigned 7.
func validReason(enum []byte) bool {
	return len(enum) == 1 && enum[0] >= 1 && enum[0] <= 10 && enum[0] != 7
}

func countRest(s cryptobyte.String) int {
	n := 0
	for !s.Empty() {
		var e cryptobyte.String
		if !s.ReadASN1(&e, cbasn1.SEQUENCE) {
			break
		}
		n++
	}
	return n
}

// serialEqual reports whether big-endian value v (no leading zero octet
// unless v is zero) equals hex serial s (any leading zeros, any case).
func serialEqual(v []byte, s string) bool {
	for len(s) > 1 && s[0] == '0' {
		s = s[1:]
	}
	if len(v) == 1 && v[0] == 0 {
		return s == "0"
	}
	if len(s) != 2*len(v) && len(s) != 2*len(v)-1 {
		return false
	}
	i := 0
	if len(s)%2 == 1 {
		if hexVal(s[0]) != v[0] {
			return false
		}
		v, i = v[1:], 1
	}
	for k := range v {
		hi, lo := hexVal(s[i+2*k]), hexVal(s[i+2*k+1])
		if hi|lo > 15 || hi<<4|lo != v[k] {
			return false
		}
	}
	return true
}

// PEMSize is the length of the PEM ("X509 CRL" block, 64-character lines)
// of a DER CRL of derLen bytes, as pem.EncodeToMemory writes it.
func PEMSize(derLen int) int {
	b64 := (derLen + 2) / 3 * 4
	lines := (b64 + 63) / 64
	return len("-----BEGIN X509 CRL-----\n") + b64 + lines + len("-----END X509 CRL-----\n")
}

// lintSample lints a CRL built by Build's own code from at most
// LintSampleSize of want's entries — evenly spaced, the first and the
// last, and one of each reason code present — with the checked CRL's
// issuer, number and dates. It is signed with a throwaway key of the same
// kind (zlint does not verify signatures), so no second list under the
// CA's key, incomplete by design, ever exists. Returns how many entries
// the copy held.
func lintSample(issuer *x509.Certificate, c *Checked, want []storage.Revocation) (int, error) {
	stride := (len(want) + LintSampleSize - 2) / (LintSampleSize - 1)
	sample := make([]storage.Revocation, 0, LintSampleSize+11)
	picked := map[int]bool{}
	for i := 0; i < len(want); i += stride {
		sample = append(sample, want[i])
		picked[want[i].Reason] = true
	}
	if last := want[len(want)-1]; (len(want)-1)%stride != 0 {
		sample = append(sample, last)
		picked[last.Reason] = true
	}
	for i := range want {
		if r := want[i].Reason; !picked[r] {
			picked[r] = true
			sample = append(sample, want[i])
		}
	}
	key, err := throwaway(issuer.PublicKey)
	if err != nil {
		return len(sample), err
	}
	der, err := build(issuer, key, c.Number, sample, c.ThisUpdate, c.NextUpdate)
	if err != nil {
		return len(sample), err
	}
	return len(sample), lint.CRL(der)
}

// summarize reads a CRL's number, dates and entry count without a value
// per entry (x509.ParseRevocationList builds a big.Int and more for each
// one: at a million entries, seconds and gigabytes). For CRLs this CA
// built and checked: the signature is not verified here.
func summarize(der []byte) (*Checked, error) {
	in := cryptobyte.String(der)
	var outer, tbs, skip cryptobyte.String
	var version int64
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) || !in.Empty() || !outer.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.ReadASN1Int64WithTag(&version, cbasn1.INTEGER) || version != 1 ||
		!tbs.ReadASN1(&skip, cbasn1.SEQUENCE) || !tbs.ReadASN1(&skip, cbasn1.SEQUENCE) {
		return nil, errors.New("not a v2 CRL")
	}
	c := &Checked{}
	var err error
	if c.ThisUpdate, err = readTime(&tbs); err != nil {
		return nil, fmt.Errorf("thisUpdate: %w", err)
	}
	if c.NextUpdate, err = readTime(&tbs); err != nil {
		return nil, fmt.Errorf("nextUpdate: %w", err)
	}
	if tbs.PeekASN1Tag(cbasn1.SEQUENCE) {
		var revoked cryptobyte.String
		if !tbs.ReadASN1(&revoked, cbasn1.SEQUENCE) {
			return nil, errors.New("malformed revokedCertificates")
		}
		for !revoked.Empty() {
			if !revoked.ReadASN1(&skip, cbasn1.SEQUENCE) {
				return nil, errors.New("malformed revokedCertificates")
			}
			c.Entries++
		}
	}
	if c.Number, err = readCRLExtensions(&tbs, nil); err != nil {
		return nil, err
	}
	c.PEMSize = PEMSize(len(der))
	return c, nil
}
