package crl

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"github.com/anchorage-pki/anchorage/storage"
)

// The CRL is written as DER by hand, into one buffer sized exactly before
// anything is written: a first pass over the revocations adds up every
// length, a second writes each entry (hex serial straight to INTEGER
// octets, no big.Int, no reflection), the TBSCertList is signed once and
// the outer CertificateList is put around it in place. Memory is the
// output plus a few small values, whatever the entry count.
//
// The bytes are those x509.CreateRevocationList produces for the same
// input (TestBuildMatchesStandardLibrary compares them): version v2, the
// signature algorithm Go picks for the key, the issuer's raw subject,
// thisUpdate and nextUpdate (UTCTime for 1950–2049, else GeneralizedTime),
// revokedCertificates (absent when empty) with a reasonCode entry extension
// when the reason is not 0, and crlExtensions authorityKeyIdentifier (the
// issuer's subject key ID) and cRLNumber. One difference: the standard
// library checks the signature with the signer's own public key right
// after signing; here Check verifies it with the issuer certificate's key,
// which is the stronger test and is done once.

var (
	oidReasonCode = []byte{0x06, 0x03, 0x55, 0x1d, 0x15} // 2.5.29.21
	oidAKI        = []byte{0x06, 0x03, 0x55, 0x1d, 0x23} // 2.5.29.35
	oidCRLNumber  = []byte{0x06, 0x03, 0x55, 0x1d, 0x14} // 2.5.29.20
)

const (
	tagInteger     = 0x02
	tagBitString   = 0x03
	tagOctetString = 0x04
	tagEnumerated  = 0x0a
	tagUTCTime     = 0x17
	tagGenTime     = 0x18
	tagSequence    = 0x30
	tagContext0    = 0xa0 // [0] EXPLICIT, constructed
	tagImplicit0   = 0x80 // [0] IMPLICIT, primitive
)

// sigAlg is how a key signs: the AlgorithmIdentifier DER, the x509 name
// (for verification) and the signer options.
type sigAlg struct {
	der  []byte
	algo x509.SignatureAlgorithm
	opts crypto.SignerOpts
	// maxSig bounds the signature length, to size the buffer.
	maxSig int
}

var (
	oidECDSASHA256   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSASHA384   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSASHA512   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidSHA256WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidEd25519       = asn1.ObjectIdentifier{1, 3, 101, 112}
)

func algID(oid asn1.ObjectIdentifier, params []byte) []byte {
	o, _ := asn1.Marshal(oid)
	return appendTLV(nil, tagSequence, append(o, params...))
}

// signingAlg picks the algorithm x509.CreateRevocationList picks for pub
// when the template names none.
func signingAlg(pub crypto.PublicKey) (sigAlg, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		maxSig := 2*(size+3) + 3
		switch k.Curve {
		case elliptic.P224(), elliptic.P256():
			return sigAlg{algID(oidECDSASHA256, nil), x509.ECDSAWithSHA256, crypto.SHA256, maxSig}, nil
		case elliptic.P384():
			return sigAlg{algID(oidECDSASHA384, nil), x509.ECDSAWithSHA384, crypto.SHA384, maxSig}, nil
		case elliptic.P521():
			return sigAlg{algID(oidECDSASHA512, nil), x509.ECDSAWithSHA512, crypto.SHA512, maxSig}, nil
		}
		return sigAlg{}, errors.New("crl: unsupported elliptic curve")
	case *rsa.PublicKey:
		return sigAlg{algID(oidSHA256WithRSA, asn1.NullBytes), x509.SHA256WithRSA, crypto.SHA256, k.Size()}, nil
	case ed25519.PublicKey:
		return sigAlg{algID(oidEd25519, nil), x509.PureEd25519, crypto.Hash(0), ed25519.SignatureSize}, nil
	}
	return sigAlg{}, fmt.Errorf("crl: unsupported signing key %T (RSA, ECDSA and Ed25519 are)", pub)
}

// Build signs a CRL over revs, with thisUpdate now - Backdate and
// nextUpdate now + validity. Revocation times later than thisUpdate are
// clamped to it (a clock step must not produce an invalid list). Serials
// are the hex strings storage keeps (positive, any case, any length).
func Build(issuer *x509.Certificate, signer crypto.Signer, number uint64, revs []storage.Revocation, now time.Time, validity time.Duration) ([]byte, error) {
	return build(issuer, signer, number, revs, now.Add(-Backdate).UTC(), now.Add(validity).UTC())
}

func build(issuer *x509.Certificate, signer crypto.Signer, number uint64, revs []storage.Revocation, thisUpdate, nextUpdate time.Time) ([]byte, error) {
	if issuer.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return nil, errors.New("crl: the issuer lacks the cRLSign key usage")
	}
	if len(issuer.SubjectKeyId) == 0 {
		return nil, errors.New("crl: the issuer has no subject key identifier")
	}
	if len(issuer.RawSubject) == 0 {
		return nil, errors.New("crl: the issuer certificate was not parsed (no raw subject)")
	}
	if nextUpdate.Before(thisUpdate) {
		return nil, errors.New("crl: nextUpdate before thisUpdate")
	}
	alg, err := signingAlg(signer.Public())
	if err != nil {
		return nil, err
	}

	// Pass 1: lengths.
	revokedLen := 0
	for i := range revs {
		n, err := entryLen(&revs[i], thisUpdate)
		if err != nil {
			return nil, err
		}
		revokedLen += n
	}
	head := make([]byte, 0, 256+len(issuer.RawSubject))
	head = append(head, tagInteger, 1, 1) // version v2
	head = append(head, alg.der...)
	head = append(head, issuer.RawSubject...)
	head = appendTime(head, thisUpdate)
	head = appendTime(head, nextUpdate)
	exts := crlExtensions(issuer.SubjectKeyId, number)
	tbsContent := len(head) + len(exts)
	if len(revs) > 0 {
		tbsContent += tlvLen(revokedLen)
	}
	tbsLen := tlvLen(tbsContent)
	sigLen := tlvLen(1 + alg.maxSig)
	outerContent := tbsLen + len(alg.der) + sigLen
	outerHead := 1 + lenLen(outerContent)

	// Pass 2: the TBSCertList, written after room for the outer header.
	buf := make([]byte, outerHead, outerHead+outerContent)
	buf = appendHeader(buf, tagSequence, tbsContent)
	buf = append(buf, head...)
	if len(revs) > 0 {
		buf = appendHeader(buf, tagSequence, revokedLen)
		for i := range revs {
			if buf, err = appendEntry(buf, &revs[i], thisUpdate); err != nil {
				return nil, err
			}
		}
	}
	buf = append(buf, exts...)
	if len(buf) != outerHead+tbsLen {
		return nil, fmt.Errorf("crl: internal error: TBSCertList is %d bytes, computed %d", len(buf)-outerHead, tbsLen)
	}
	tbs := buf[outerHead:]

	sig, err := crypto.SignMessage(signer, rand.Reader, tbs, alg.opts)
	if err != nil {
		return nil, fmt.Errorf("crl: sign %d: %w", number, err)
	}
	buf = append(buf, alg.der...)
	buf = appendHeader(buf, tagBitString, 1+len(sig))
	buf = append(buf, 0) // no unused bits
	buf = append(buf, sig...)

	// The outer SEQUENCE header goes right before the TBS; with the
	// signature's real length it may be shorter than the room kept.
	content := len(buf) - outerHead
	start := outerHead - (1 + lenLen(content))
	appendHeader(buf[start:start], tagSequence, content)
	return buf[start:], nil
}

// crlExtensions is [0] EXPLICIT SEQUENCE { authorityKeyIdentifier,
// cRLNumber }, neither critical.
func crlExtensions(ski []byte, number uint64) []byte {
	aki := appendTLV(nil, tagSequence, appendTLV(nil, tagImplicit0, ski))
	akiExt := appendTLV(nil, tagSequence, appendTLV(append([]byte(nil), oidAKI...), tagOctetString, aki))
	num := appendTLV(nil, tagInteger, uintContent(number))
	numExt := appendTLV(nil, tagSequence, appendTLV(append([]byte(nil), oidCRLNumber...), tagOctetString, num))
	return appendTLV(nil, tagContext0, appendTLV(nil, tagSequence, append(akiExt, numExt...)))
}

// revocationTime is the entry's time: in UTC, clamped to thisUpdate.
func revocationTime(r *storage.Revocation, thisUpdate time.Time) time.Time {
	at := r.RevokedAt.UTC()
	if at.After(thisUpdate) {
		at = thisUpdate
	}
	return at
}

// reasonExtLen is the length of the entry's extensions SEQUENCE, 0 for
// reason 0 (unspecified, which RFC 5280 §5.3.1 says to leave out).
func reasonExtLen(reason int) int {
	if reason == 0 {
		return 0
	}
	enum := tlvLen(len(intContent(int64(reason))))
	ext := tlvLen(len(oidReasonCode) + tlvLen(enum))
	return tlvLen(ext)
}

func entryLen(r *storage.Revocation, thisUpdate time.Time) (int, error) {
	n, _, _, err := serialDigits(r.Serial)
	if err != nil {
		return 0, err
	}
	return tlvLen(tlvLen(n) + timeLen(revocationTime(r, thisUpdate)) + reasonExtLen(r.Reason)), nil
}

func appendEntry(b []byte, r *storage.Revocation, thisUpdate time.Time) ([]byte, error) {
	n, digits, pad, err := serialDigits(r.Serial)
	if err != nil {
		return nil, err
	}
	at := revocationTime(r, thisUpdate)
	b = appendHeader(b, tagSequence, tlvLen(n)+timeLen(at)+reasonExtLen(r.Reason))
	b = appendHeader(b, tagInteger, n)
	if b, err = appendSerial(b, digits, pad, r.Serial); err != nil {
		return nil, err
	}
	b = appendTime(b, at)
	if r.Reason != 0 {
		enum := intContent(int64(r.Reason))
		encLen := tlvLen(len(enum))
		extLen := len(oidReasonCode) + tlvLen(encLen)
		b = appendHeader(b, tagSequence, tlvLen(extLen))
		b = appendHeader(b, tagSequence, extLen)
		b = append(b, oidReasonCode...)
		b = appendHeader(b, tagOctetString, encLen)
		b = appendTLV(b, tagEnumerated, enum)
	}
	return b, nil
}

// serialDigits returns the DER INTEGER content length of hex serial s,
// the hex digits left after leading zeros, and whether a 0x00 octet goes
// first (the top bit would otherwise make it negative).
func serialDigits(s string) (n int, digits string, pad bool, err error) {
	if s == "" {
		return 0, "", false, errors.New("crl: stored serial is empty")
	}
	i := 0
	for i < len(s) && s[i] == '0' {
		i++
	}
	digits = s[i:]
	if digits == "" {
		return 1, "", true, nil // zero: one 0x00 octet
	}
	n = (len(digits) + 1) / 2
	top := hexVal(digits[0])
	if len(digits)%2 == 0 {
		pad = top >= 8
	}
	if top > 15 {
		return 0, "", false, fmt.Errorf("crl: stored serial %q is not hex", s)
	}
	if pad {
		n++
	}
	return n, digits, pad, nil
}

func appendSerial(b []byte, digits string, pad bool, serial string) ([]byte, error) {
	if pad {
		b = append(b, 0)
	}
	i := 0
	if len(digits)%2 == 1 {
		v := hexVal(digits[0])
		if v > 15 {
			return nil, fmt.Errorf("crl: stored serial %q is not hex", serial)
		}
		b = append(b, v)
		i = 1
	}
	for ; i < len(digits); i += 2 {
		hi, lo := hexVal(digits[i]), hexVal(digits[i+1])
		if hi|lo > 15 {
			return nil, fmt.Errorf("crl: stored serial %q is not hex", serial)
		}
		b = append(b, hi<<4|lo)
	}
	return b, nil
}

// hexVal is a hex digit's value, 0xff for any other byte.
func hexVal(c byte) byte { return hexTable[c] }

var hexTable = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c-'a') + 10
		t[c-'a'+'A'] = byte(c-'a') + 10
	}
	return t
}()

// intContent is the minimal two's-complement content of a DER INTEGER or
// ENUMERATED.
func intContent(v int64) []byte {
	n := 1
	for x := v; x > 127 || x < -128; x >>= 8 {
		n++
	}
	out := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		out[i] = byte(v)
		v >>= 8
	}
	return out
}

// uintContent is the DER INTEGER content of a non-negative v.
func uintContent(v uint64) []byte {
	var b []byte
	for x := v; ; x >>= 8 {
		b = append([]byte{byte(x)}, b...)
		if x < 0x100 {
			break
		}
	}
	if b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return b
}

// timeLen and appendTime follow encoding/asn1: UTCTime (YYMMDDHHMMSSZ) for
// years 1950–2049, GeneralizedTime (YYYYMMDDHHMMSSZ) otherwise, seconds
// only, always in UTC here.
func timeLen(t time.Time) int {
	if y := t.Year(); y < 1950 || y >= 2050 {
		return 2 + 15
	}
	return 2 + 13
}

func appendTime(b []byte, t time.Time) []byte {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	if y < 1950 || y >= 2050 {
		b = append(b, tagGenTime, 15)
		b = appendDigits(b, y/100)
	} else {
		b = append(b, tagUTCTime, 13)
	}
	b = appendDigits(b, y%100)
	b = appendDigits(b, int(mo))
	b = appendDigits(b, d)
	b = appendDigits(b, h)
	b = appendDigits(b, mi)
	b = appendDigits(b, s)
	return append(b, 'Z')
}

func appendDigits(b []byte, v int) []byte {
	return append(b, byte('0'+v/10%10), byte('0'+v%10))
}

// lenLen is the size of a DER length field for n content octets.
func lenLen(n int) int {
	switch {
	case n < 0x80:
		return 1
	case n < 0x100:
		return 2
	case n < 0x10000:
		return 3
	case n < 0x1000000:
		return 4
	}
	return 5
}

// tlvLen is the size of a TLV with n content octets (one-octet tag).
func tlvLen(n int) int { return 1 + lenLen(n) + n }

func appendHeader(b []byte, tag byte, n int) []byte {
	b = append(b, tag)
	switch l := lenLen(n); l {
	case 1:
		return append(b, byte(n))
	default:
		b = append(b, 0x80|byte(l-1))
		for i := l - 2; i >= 0; i-- {
			b = append(b, byte(n>>(8*i)))
		}
		return b
	}
}

func appendTLV(b []byte, tag byte, content []byte) []byte {
	return append(appendHeader(b, tag, len(content)), content...)
}
