package ca

import (
	"encoding/asn1"
	"math/big"
	"time"
	"unicode/utf8"
)

// derBuf appends DER without a builder per element, which is what made
// cryptobyte cost about a hundred allocations per certificate: open writes
// a tag and a one-byte length, close sets the length, moving the contents
// right when it needs the long form.
type derBuf []byte

// DER tags the leaf profile uses.
const (
	tagBoolean         = 0x01
	tagInteger         = 0x02
	tagBitString       = 0x03
	tagOctetString     = 0x04
	tagUTF8String      = 0x0c
	tagPrintableString = 0x13
	tagUTCTime         = 0x17
	tagGeneralizedTime = 0x18
	tagSequence        = 0x30
	tagSet             = 0x31
)

// ctx is the context-specific tag [n], constructed or not.
func ctx(n byte, constructed bool) byte {
	if constructed {
		return 0xa0 | n
	}
	return 0x80 | n
}

func (d *derBuf) open(tag byte) int {
	*d = append(*d, tag, 0)
	return len(*d)
}

func (d *derBuf) close(start int) {
	n := len(*d) - start
	if n < 0x80 {
		(*d)[start-1] = byte(n)
		return
	}
	l := 0
	for m := n; m > 0; m >>= 8 {
		l++
	}
	for range l {
		*d = append(*d, 0)
	}
	b := *d
	copy(b[start+l:], b[start:start+n])
	b[start-1] = 0x80 | byte(l)
	for i := range l {
		b[start+i] = byte(n >> (8 * (l - 1 - i)))
	}
}

// add appends one element whose contents are the concatenation of parts.
func (d *derBuf) add(tag byte, parts ...[]byte) {
	s := d.open(tag)
	for _, p := range parts {
		*d = append(*d, p...)
	}
	d.close(s)
}

func (d *derBuf) addString(tag byte, s string) {
	st := d.open(tag)
	*d = append(*d, s...)
	d.close(st)
}

// addPositiveInt appends a positive INTEGER as cryptobyte.AddASN1BigInt
// writes it: a leading zero when the top bit is set.
func (d *derBuf) addPositiveInt(n *big.Int) {
	s := d.open(tagInteger)
	if n.BitLen()%8 == 0 {
		*d = append(*d, 0)
	}
	start := len(*d)
	for range (n.BitLen() + 7) / 8 {
		*d = append(*d, 0)
	}
	n.FillBytes((*d)[start:])
	d.close(s)
}

// addTime appends t as encoding/asn1 (and crypto/x509) write a validity
// time: UTCTime from 1950 to 2049, GeneralizedTime otherwise.
func (d *derBuf) addTime(t time.Time) {
	t = t.UTC()
	if y := t.Year(); y >= 1950 && y < 2050 {
		s := d.open(tagUTCTime)
		*d = t.AppendFormat(*d, "060102150405Z0700")
		d.close(s)
		return
	}
	s := d.open(tagGeneralizedTime)
	*d = t.AppendFormat(*d, "20060102150405Z0700")
	d.close(s)
}

// oidDER is the DER of an OBJECT IDENTIFIER, tag and length included.
func oidDER(o asn1.ObjectIdentifier) []byte {
	b, err := asn1.Marshal(o)
	if err != nil {
		panic(err)
	}
	return b
}

// commonNameDER is asn1.Marshal(pkix.Name{CommonName: cn}.ToRDNSequence())
// for a non-empty, valid UTF-8 cn: PrintableString when every character is
// one, UTF8String otherwise, as encoding/asn1 picks.
func commonNameDER(cn string) ([]byte, bool) {
	if cn == "" || !utf8.ValidString(cn) {
		return nil, false
	}
	tag := byte(tagPrintableString)
	for i := 0; i < len(cn); i++ {
		if !printable(cn[i]) {
			tag = tagUTF8String
			break
		}
	}
	d := make(derBuf, 0, len(cn)+16)
	s1 := d.open(tagSequence)
	s2 := d.open(tagSet)
	s3 := d.open(tagSequence)
	d = append(d, derOIDCommonName...)
	d.addString(tag, cn)
	d.close(s3)
	d.close(s2)
	d.close(s1)
	return d, true
}

// printable is encoding/asn1's PrintableString alphabet, without '*' and
// '&' as it marshals.
func printable(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
		'\'' <= b && b <= ')' || '+' <= b && b <= '/' || b == ' ' || b == ':' || b == '=' || b == '?'
}
