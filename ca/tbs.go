package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"time"
	"unicode/utf8"

	"go.step.sm/crypto/x509util"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
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
// and keeps the self-check.
func (a *Authority) createCertificate(tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	if k, ok := a.signer.(*ecdsa.PrivateKey); ok {
		if der, ok := signFast(tmpl, a.issuer, pub, k); ok {
			return x509.ParseCertificate(der)
		}
	}
	return x509util.CreateCertificate(tmpl, a.issuer, pub, a.signer)
}

var (
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
)

// signFast returns the signed DER of tmpl, or false when tmpl or the key is
// outside what buildTBS encodes (the caller then takes the standard library).
func signFast(tmpl, issuer *x509.Certificate, pub crypto.PublicKey, key *ecdsa.PrivateKey) ([]byte, bool) {
	var alg []byte
	var digest []byte
	switch key.Curve {
	case elliptic.P256():
		alg = algECDSAWithSHA256
	case elliptic.P384():
		alg = algECDSAWithSHA384
	default:
		return nil, false
	}
	tbs, ok := buildTBS(tmpl, issuer, pub, alg)
	if !ok {
		return nil, false
	}
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
	b := cryptobyte.NewBuilder(make([]byte, 0, len(tbs)+len(alg)+len(sig)+16))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		b.AddBytes(alg)
		b.AddASN1BitString(sig)
	})
	der, err := b.Bytes()
	return der, err == nil
}

// buildTBS encodes the TBSCertificate crypto/x509.CreateCertificate would
// for tmpl under issuer, for the fields the leaf profile (Authority.template)
// sets: serial, validity, subject, key, key usage, EKU (client/server auth),
// basic constraints (not a CA), key ids, DNS/IP/URI names and one or more
// CRL distribution points. Anything else set in tmpl returns false.
func buildTBS(tmpl, issuer *x509.Certificate, pub crypto.PublicKey, alg []byte) ([]byte, bool) {
	if tmpl.SerialNumber == nil || tmpl.SerialNumber.Sign() <= 0 || !tmpl.BasicConstraintsValid || tmpl.IsCA ||
		tmpl.MaxPathLen != 0 || tmpl.MaxPathLenZero || len(tmpl.SubjectKeyId) == 0 ||
		len(tmpl.ExtraExtensions) > 0 || len(tmpl.EmailAddresses) > 0 || len(tmpl.UnknownExtKeyUsage) > 0 ||
		len(tmpl.OCSPServer) > 0 || len(tmpl.IssuingCertificateURL) > 0 || len(tmpl.Policies) > 0 ||
		len(tmpl.PolicyIdentifiers) > 0 || len(tmpl.RawSubject) > 0 || tmpl.SignatureAlgorithm != x509.UnknownSignatureAlgorithm ||
		tmpl.PermittedDNSDomainsCritical || len(tmpl.PermittedDNSDomains) > 0 || len(tmpl.ExcludedDNSDomains) > 0 ||
		len(tmpl.PermittedIPRanges) > 0 || len(tmpl.ExcludedIPRanges) > 0 || len(tmpl.PermittedEmailAddresses) > 0 ||
		len(tmpl.ExcludedEmailAddresses) > 0 || len(tmpl.PermittedURIDomains) > 0 || len(tmpl.ExcludedURIDomains) > 0 ||
		tmpl.KeyUsage <= 0 || tmpl.KeyUsage > 0xffff || len(issuer.RawSubject) == 0 {
		return nil, false
	}
	spki, _, err := marshalSPKI(pub)
	if err != nil {
		if spki, err = x509.MarshalPKIXPublicKey(pub); err != nil {
			return nil, false
		}
	}
	subject, err := asn1.Marshal(pkix.Name{CommonName: tmpl.Subject.CommonName}.ToRDNSequence())
	if err != nil || !sameName(tmpl.Subject, tmpl.Subject.CommonName) {
		return nil, false
	}
	var ekus []asn1.ObjectIdentifier
	for _, u := range tmpl.ExtKeyUsage {
		switch u {
		case x509.ExtKeyUsageClientAuth:
			ekus = append(ekus, oidEKUClientAuth)
		case x509.ExtKeyUsageServerAuth:
			ekus = append(ekus, oidEKUServerAuth)
		default:
			return nil, false
		}
	}
	// crypto/x509 takes the parent's key id unless the certificate is
	// self-issued by name.
	akid := tmpl.AuthorityKeyId
	if !bytes.Equal(issuer.RawSubject, subject) && len(issuer.SubjectKeyId) > 0 {
		akid = issuer.SubjectKeyId
	}
	for _, n := range tmpl.DNSNames {
		if !isIA5(n) {
			return nil, false
		}
	}
	for _, u := range tmpl.URIs {
		if !isIA5(u.String()) {
			return nil, false
		}
	}
	validity := [2]time.Time{tmpl.NotBefore.UTC(), tmpl.NotAfter.UTC()}

	b := cryptobyte.NewBuilder(make([]byte, 0, 1024)) // a leaf TBS is 400-700 bytes
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddASN1Int64(2) })
		b.AddASN1BigInt(tmpl.SerialNumber)
		b.AddBytes(alg)
		b.AddBytes(issuer.RawSubject)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, t := range validity {
				// encoding/asn1's rule, as RFC 5280 §4.1.2.5 has it.
				if y := t.Year(); y >= 1950 && y < 2050 {
					b.AddASN1UTCTime(t)
				} else {
					b.AddASN1GeneralizedTime(t)
				}
			}
		})
		b.AddBytes(subject)
		b.AddBytes(spki)
		b.AddASN1(cbasn1.Tag(3).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				addExtension(b, oidKeyUsage, true, func(b *cryptobyte.Builder) {
					bits := []byte{reverseBits(byte(tmpl.KeyUsage)), reverseBits(byte(tmpl.KeyUsage >> 8))}
					if bits[1] == 0 {
						bits = bits[:1]
					}
					addBitString(b, bits)
				})
				if len(ekus) > 0 {
					addExtension(b, oidExtKeyUsage, false, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							for _, o := range ekus {
								b.AddASN1ObjectIdentifier(o)
							}
						})
					})
				}
				addExtension(b, oidBasicConstraints, true, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(*cryptobyte.Builder) {})
				})
				addExtension(b, oidSubjectKeyID, false, func(b *cryptobyte.Builder) {
					b.AddASN1OctetString(tmpl.SubjectKeyId)
				})
				if len(akid) > 0 {
					addExtension(b, oidAuthorityKeyID, false, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(akid) })
						})
					})
				}
				if len(tmpl.DNSNames) > 0 || len(tmpl.IPAddresses) > 0 || len(tmpl.URIs) > 0 {
					addExtension(b, oidSubjectAltName, false, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							for _, n := range tmpl.DNSNames {
								b.AddASN1(cbasn1.Tag(2).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(n)) })
							}
							for _, raw := range tmpl.IPAddresses {
								ip := raw.To4()
								if ip == nil {
									ip = raw
								}
								b.AddASN1(cbasn1.Tag(7).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(ip) })
							}
							for _, u := range tmpl.URIs {
								b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(u.String())) })
							}
						})
					})
				}
				if len(tmpl.CRLDistributionPoints) > 0 {
					addExtension(b, oidCRLDistribution, false, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							for _, u := range tmpl.CRLDistributionPoints {
								b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
									b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
										b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
											b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(u)) })
										})
									})
								})
							}
						})
					})
				}
			})
		})
	})
	tbs, err := b.Bytes()
	return tbs, err == nil
}

func addExtension(b *cryptobyte.Builder, id asn1.ObjectIdentifier, critical bool, value func(*cryptobyte.Builder)) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(id)
		if critical {
			b.AddASN1Boolean(true)
		}
		b.AddASN1(cbasn1.OCTET_STRING, value)
	})
}

// addBitString writes bits as encoding/asn1 writes asn1.BitString{Bytes:
// bits, BitLength: up to the last set bit}, the way crypto/x509 encodes key
// usage.
func addBitString(b *cryptobyte.Builder, bits []byte) {
	unused := byte(0)
	if last := bits[len(bits)-1]; last != 0 {
		for last&1 == 0 {
			unused++
			last >>= 1
		}
	}
	b.AddASN1(cbasn1.BIT_STRING, func(b *cryptobyte.Builder) {
		b.AddUint8(unused)
		b.AddBytes(bits)
	})
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
