package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // the RFC 5280 key identifier, as x509util makes it
	"crypto/sha256"
	"crypto/x509"
	"fmt"

	"go.step.sm/crypto/fipsutil"
	"go.step.sm/crypto/x509util"
)

// spkiPrefix is, per curve, what crypto/x509 writes before the point in an
// ECDSA SubjectPublicKeyInfo (algorithm, named curve, BIT STRING header),
// taken from x509.MarshalPKIXPublicKey itself at start.
var spkiPrefix = map[elliptic.Curve][]byte{}

func init() {
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			panic(err)
		}
		der, err := x509.MarshalPKIXPublicKey(k.Public())
		if err != nil {
			panic(err)
		}
		pt, err := k.PublicKey.Bytes()
		if err != nil {
			panic(err)
		}
		spkiPrefix[c] = der[:len(der)-len(pt)]
	}
}

// marshalSPKI is x509.MarshalPKIXPublicKey, without reflection for ECDSA
// P-256 and P-384 keys, and the subjectPublicKey bits within it.
func marshalSPKI(pub crypto.PublicKey) (spki, bits []byte, err error) {
	if k, ok := pub.(*ecdsa.PublicKey); ok {
		if prefix, ok := spkiPrefix[k.Curve]; ok {
			pt, err := k.Bytes()
			if err != nil {
				return nil, nil, err
			}
			spki = make([]byte, 0, len(prefix)+len(pt))
			spki = append(append(spki, prefix...), pt...)
			return spki, spki[len(prefix):], nil
		}
	}
	return nil, nil, fmt.Errorf("no fast encoding for %T", pub)
}

// subjectKeyID is x509util.GenerateSubjectKeyID (SHA-1 of the key bits, or
// the leftmost 160 bits of SHA-256 in FIPS mode) with marshalSPKI's
// encoding where it has one.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	_, bits, err := marshalSPKI(pub)
	if err != nil {
		return x509util.GenerateSubjectKeyID(pub)
	}
	if fipsutil.Enabled() {
		h := sha256.Sum256(bits)
		return h[:20], nil
	}
	h := sha1.Sum(bits) //nolint:gosec // see import
	return h[:], nil
}
