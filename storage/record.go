package storage

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Certificate records in bbolt (schema 2 on) are a compact binary encoding
// with the DER stored raw at the end, instead of JSON with the DER in
// base64 (schema 1: about 4× the DER). Our own versioned encoding with
// encoding/binary rather than protobuf: protobuf is only an indirect
// dependency here, a generated type would duplicate Cert, and the fields
// that make up most of a JSON record (subject, names, validity, key id)
// are not stored at all when the DER says the same — they are read back
// from the DER. Hex serials (lineage, predecessor, successor) are stored
// as their bytes; the record's own serial is not in it but is its key,
// also as bytes since schema 3 (bolt.go).
//
// Layout: recordV2, uvarint flags, then the fields below in this order,
// then the DER (the rest of the value).
//
//	time issuedAt, code method, code status, hexstr tokenID,
//	[hexstr keyID]        unless flagKeyIDFromDER
//	[hexstr lineage]      unless flagLineageSelf
//	hexstr renewedFrom, hexstr renewedTo, hexstr order,
//	time revokedAt, uvarint reason, hexstr revokedWith, hexstr issuedBy,
//	[str subject]         unless flagSubjectFromDER
//	[uvarint n, n × str]  unless namesFromDER (either flag)
//	[time notBefore, time notAfter] unless flagValidityFromDER
//
// A record whose first byte is '{' is schema 1 JSON: readers accept both,
// so a database part-way through its migration (Open) reads correctly.
const recordV2 = 0x02

const (
	flagSubjectFromDER = 1 << iota
	flagSANsFromDER
	flagValidityFromDER
	flagKeyIDFromDER
	flagLineageSelf
	flagUndelivered
	// flagTypedSANsFromDER: the names are the DER's in ca.Names.Strings'
	// TYPE:value form, which is how the CA records them. (flagSANsFromDER
	// is the untyped form, kept so records written with it read back.)
	flagTypedSANsFromDER

	knownFlags = flagTypedSANsFromDER<<1 - 1
	// namesFromDER: the names are read from the DER, in either form.
	namesFromDER = flagSANsFromDER | flagTypedSANsFromDER
	// fieldsFromDER: some field is, so a reader parses the DER.
	fieldsFromDER = flagSubjectFromDER | namesFromDER | flagValidityFromDER | flagKeyIDFromDER
)

var (
	methodCodes = []Method{"", MethodToken, MethodRenew, MethodACME, MethodAdmin, MethodTLS}
	statusCodes = []Status{"", StatusValid, StatusRevoked}
)

// certSANs lists a certificate's names as ca.Names.Strings does: DNS
// names, IP addresses, URIs, e-mail addresses.
func certSANs(x *x509.Certificate) []string {
	var out []string
	out = append(out, x.DNSNames...)
	for _, ip := range x.IPAddresses {
		out = append(out, ip.String())
	}
	for _, u := range x.URIs {
		out = append(out, u.String())
	}
	return append(out, x.EmailAddresses...)
}

// typedSANs lists a certificate's names as ca.Names.Strings renders them
// (DNS:, IP:, URI:, in that order); ok is false when the certificate holds
// a kind of name Names has no form for.
func typedSANs(x *x509.Certificate) (out []string, ok bool) {
	if len(x.EmailAddresses) > 0 {
		return nil, false
	}
	for _, d := range x.DNSNames {
		out = append(out, "DNS:"+d)
	}
	for _, ip := range x.IPAddresses {
		out = append(out, "IP:"+ip.String())
	}
	for _, u := range x.URIs {
		out = append(out, "URI:"+u.String())
	}
	return out, true
}

// parsedDER is c.DER parsed: c.Parsed when it is the parse of these very
// bytes, else a fresh parse.
func parsedDER(c *Cert) (*x509.Certificate, error) {
	if c.Parsed != nil && bytes.Equal(c.Parsed.Raw, c.DER) {
		return c.Parsed, nil
	}
	return x509.ParseCertificate(c.DER)
}

// encodeCert is the record of c (recordV2, schemas 2 and 3).
func encodeCert(c *Cert) []byte {
	var flags uint64
	if c.Lineage == c.Serial || c.Lineage == "" {
		flags |= flagLineageSelf
	}
	if c.Undelivered {
		flags |= flagUndelivered
	}
	if x, err := parsedDER(c); err == nil {
		if x.Subject.CommonName == c.Subject {
			flags |= flagSubjectFromDER
		}
		if typed, ok := typedSANs(x); ok && slices.Equal(typed, c.SANs) {
			flags |= flagTypedSANsFromDER
		} else if slices.Equal(certSANs(x), c.SANs) {
			flags |= flagSANsFromDER
		}
		if x.NotBefore.Equal(c.NotBefore) && x.NotAfter.Equal(c.NotAfter) {
			flags |= flagValidityFromDER
		}
		if sum := sha256.Sum256(x.RawSubjectPublicKeyInfo); c.KeyID == hex.EncodeToString(sum[:]) {
			flags |= flagKeyIDFromDER
		}
	}
	b := make([]byte, 0, 96+len(c.DER))
	b = append(b, recordV2)
	b = binary.AppendUvarint(b, flags)
	b = appendTime(b, c.IssuedAt)
	b = appendCode(b, methodCodes, c.Method)
	b = appendCode(b, statusCodes, c.Status)
	b = appendHexStr(b, c.TokenID)
	if flags&flagKeyIDFromDER == 0 {
		b = appendHexStr(b, c.KeyID)
	}
	if flags&flagLineageSelf == 0 {
		b = appendHexStr(b, c.Lineage)
	}
	b = appendHexStr(b, c.RenewedFrom)
	b = appendHexStr(b, c.RenewedTo)
	b = appendHexStr(b, c.Order)
	b = appendTime(b, c.RevokedAt)
	b = binary.AppendUvarint(b, uint64(c.Reason))
	b = appendHexStr(b, c.RevokedWith)
	b = appendHexStr(b, c.IssuedBy)
	if flags&flagSubjectFromDER == 0 {
		b = appendStr(b, c.Subject)
	}
	if flags&namesFromDER == 0 {
		b = binary.AppendUvarint(b, uint64(len(c.SANs)))
		for _, s := range c.SANs {
			b = appendStr(b, s)
		}
	}
	if flags&flagValidityFromDER == 0 {
		b = appendTime(b, c.NotBefore)
		b = appendTime(b, c.NotAfter)
	}
	return append(b, c.DER...)
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendHexStr stores a lowercase, even-length hex string as its bytes
// (length<<1|1) and anything else as itself (length<<1).
func appendHexStr(b []byte, s string) []byte {
	if raw, ok := lowerHex(s); ok {
		b = binary.AppendUvarint(b, uint64(len(raw))<<1|1)
		return append(b, raw...)
	}
	b = binary.AppendUvarint(b, uint64(len(s))<<1)
	return append(b, s...)
}

func lowerHex(s string) ([]byte, bool) {
	if s == "" || len(s)%2 != 0 {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return nil, false
		}
	}
	raw, err := hex.DecodeString(s)
	return raw, err == nil
}

func appendCode[T ~string](b []byte, codes []T, v T) []byte {
	if i := slices.Index(codes, v); i > 0 || v == "" {
		return append(b, byte(max(i, 0)))
	}
	b = append(b, 0xff)
	return appendStr(b, string(v))
}

// appendTime stores 0 for the zero time, else 1, unix seconds (varint)
// and nanoseconds.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

var errRecord = errors.New("malformed certificate record")

type recordReader struct {
	b   []byte
	err error
}

func (r *recordReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errRecord
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errRecord
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *recordReader) str() string { return string(r.bytes(r.uvarint())) }

func (r *recordReader) hexStr() string {
	n := r.uvarint()
	v := r.bytes(n >> 1)
	if n&1 == 1 {
		return hex.EncodeToString(v)
	}
	return string(v)
}

func (r *recordReader) byte1() byte {
	v := r.bytes(1)
	if len(v) == 0 {
		return 0
	}
	return v[0]
}

func readCode[T ~string](r *recordReader, codes []T) T {
	i := r.byte1()
	switch {
	case i == 0xff:
		return T(r.str())
	case int(i) < len(codes):
		return codes[i]
	}
	r.err = errRecord
	return ""
}

func (r *recordReader) time() time.Time {
	switch r.byte1() {
	case 0:
		return time.Time{}
	case 1:
	default:
		r.err = errRecord
		return time.Time{}
	}
	if r.err != nil {
		return time.Time{}
	}
	sec, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errRecord
		return time.Time{}
	}
	r.b = r.b[n:]
	ns := r.uvarint()
	if ns >= 1e9 {
		r.err = errRecord
		return time.Time{}
	}
	return time.Unix(sec, int64(ns)).UTC()
}

// recordOrder is the ACME order id of a record, read without decoding the
// rest of it (ResolveACMEOrders looks through every record for a few).
func recordOrder(v []byte) string {
	if len(v) > 0 && v[0] == '{' {
		var probe struct{ Order string }
		json.Unmarshal(v, &probe)
		return probe.Order
	}
	if len(v) == 0 || v[0] != recordV2 {
		return ""
	}
	r := &recordReader{b: v[1:]}
	flags := r.uvarint()
	r.time()
	readCode(r, methodCodes)
	readCode(r, statusCodes)
	r.hexStr() // token id
	if flags&flagKeyIDFromDER == 0 {
		r.hexStr()
	}
	if flags&flagLineageSelf == 0 {
		r.hexStr()
	}
	r.hexStr() // renewed from
	r.hexStr() // renewed to
	o := r.hexStr()
	if r.err != nil {
		return ""
	}
	return o
}

// decodeCert reads the record of serial in either encoding.
func decodeCert(serial string, v []byte) (*Cert, error) {
	c := new(Cert)
	if len(v) > 0 && v[0] == '{' {
		if err := json.Unmarshal(v, c); err != nil {
			return nil, fmt.Errorf("certificate %s: %w", serial, err)
		}
		return c, nil
	}
	if len(v) == 0 || v[0] != recordV2 {
		return nil, fmt.Errorf("certificate %s: %w (unknown encoding)", serial, errRecord)
	}
	r := &recordReader{b: v[1:]}
	flags := r.uvarint()
	if flags&^knownFlags != 0 {
		// A newer release's field layout: refuse rather than misread it.
		return nil, fmt.Errorf("certificate %s: %w (flags %#x: written by a newer anchorage)", serial, errRecord, flags)
	}
	c.Serial = serial
	c.IssuedAt = r.time()
	c.Method = readCode(r, methodCodes)
	c.Status = readCode(r, statusCodes)
	c.TokenID = r.hexStr()
	if flags&flagKeyIDFromDER == 0 {
		c.KeyID = r.hexStr()
	}
	if flags&flagLineageSelf == 0 {
		c.Lineage = r.hexStr()
	}
	if c.Lineage == "" {
		c.Lineage = serial
	}
	c.RenewedFrom = r.hexStr()
	c.RenewedTo = r.hexStr()
	c.Order = r.hexStr()
	c.RevokedAt = r.time()
	c.Reason = int(r.uvarint())
	c.RevokedWith = r.hexStr()
	c.IssuedBy = r.hexStr()
	c.Undelivered = flags&flagUndelivered != 0
	if flags&flagSubjectFromDER == 0 {
		c.Subject = r.str()
	}
	if flags&namesFromDER == 0 {
		n := r.uvarint()
		if n > uint64(len(r.b)) {
			r.err = errRecord
		}
		for i := uint64(0); i < n && r.err == nil; i++ {
			c.SANs = append(c.SANs, r.str())
		}
	}
	if flags&flagValidityFromDER == 0 {
		c.NotBefore = r.time()
		c.NotAfter = r.time()
	}
	if r.err != nil {
		return nil, fmt.Errorf("certificate %s: %w", serial, r.err)
	}
	c.DER = bytes.Clone(r.b)
	if flags&fieldsFromDER != 0 {
		x, err := x509.ParseCertificate(c.DER)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w (DER: %v)", serial, errRecord, err)
		}
		if flags&flagSubjectFromDER != 0 {
			c.Subject = x.Subject.CommonName
		}
		if flags&flagSANsFromDER != 0 {
			c.SANs = certSANs(x)
		}
		if flags&flagTypedSANsFromDER != 0 {
			c.SANs, _ = typedSANs(x)
		}
		if flags&flagValidityFromDER != 0 {
			c.NotBefore, c.NotAfter = x.NotBefore.UTC(), x.NotAfter.UTC()
		}
		if flags&flagKeyIDFromDER != 0 {
			sum := sha256.Sum256(x.RawSubjectPublicKeyInfo)
			c.KeyID = hex.EncodeToString(sum[:])
		}
	}
	return c, nil
}
