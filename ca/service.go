package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"time"

	"go.step.sm/crypto/x509util"
)

// ServiceCert makes a certificate for one of the CA's own services (the
// API's TLS server, the admin client) with a fresh P-256 key: one EKU, the
// given names, signed by parent.
func ServiceCert(parent *x509.Certificate, parentKey crypto.Signer, cn string, names Names, eku x509.ExtKeyUsage, lifetime time.Duration, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := NewSerial()
	if err != nil {
		return nil, nil, err
	}
	skid, err := x509util.GenerateSubjectKeyID(k.Public())
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(lifetime)
	if notAfter.After(parent.NotAfter) {
		notAfter = parent.NotAfter
	}
	t := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-backdate), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{eku},
		BasicConstraintsValid: true, SubjectKeyId: skid,
		DNSNames: names.DNS, IPAddresses: names.IPs,
	}
	c, err := x509util.CreateCertificate(t, parent, k.Public(), parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("sign %s certificate: %w", cn, err)
	}
	return c, k, nil
}
