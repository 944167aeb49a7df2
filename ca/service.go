package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"time"

	"go.step.sm/crypto/x509util"

	"github.com/anchorage-pki/anchorage/events"
	"github.com/anchorage-pki/anchorage/lint"
	"github.com/anchorage-pki/anchorage/storage"
)

// TLSLifetime is the lifetime of the API's own TLS server certificate; the
// server replaces it well before the end (caserver.TLSRenewBefore).
const TLSLifetime = 365 * 24 * time.Hour

// TLSRequest asks for a certificate for the CA's own HTTPS API.
type TLSRequest struct {
	CommonName string
	Names      Names         // DNS names and IPs clients dial
	Lifetime   time.Duration // 0 = TLSLifetime
	// Service is the service intermediate that signs it. Nil only for a
	// CA made before the service intermediate existed, whose root key is
	// offline: the issuing CA signs it then, and its key is an AWS identity
	// wherever the issuing CA is a trust anchor.
	Service *ServiceCA
}

// ServiceCA is the intermediate that signs the certificates of the CA's
// own services (its HTTPS API). Like the admin intermediate it is never a
// Roles Anywhere trust anchor, so those keys are not AWS identities.
type ServiceCA struct {
	cert   *x509.Certificate
	signer crypto.Signer
}

// Certificate is the service intermediate's certificate.
func (c *ServiceCA) Certificate() *x509.Certificate { return c.cert }

// NewServiceCA checks the service intermediate and its key, and lints the
// TLS profile under it once, so a bad one stops the CA at start.
func NewServiceCA(cert *x509.Certificate, key crypto.Signer) (*ServiceCA, error) {
	if cert == nil || key == nil {
		return nil, errors.New("ca: service intermediate and its key are required")
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("ca: service intermediate is not a CA with keyCertSign")
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, errors.New("ca: service intermediate key does not match its certificate")
	}
	sample, err := serviceTemplate(serviceSpec{issuer: cert, now: time.Now(), cn: "localhost", names: Names{DNS: []string{"localhost"}},
		eku: x509.ExtKeyUsageServerAuth, lifetime: TLSLifetime, method: storage.MethodTLS}, key.Public())
	if err != nil {
		return nil, err
	}
	if err := lintTemplate(sample, cert, key.Public()); err != nil {
		return nil, fmt.Errorf("ca: TLS profile under the service intermediate: %w", err)
	}
	return &ServiceCA{cert: cert, signer: key}, nil
}

// Cert is the service intermediate's certificate.
func (s *ServiceCA) Cert() *x509.Certificate { return s.cert }

// ServiceIssued is a signed, stored certificate for one of the CA's own
// services, with the fresh key made for it.
type ServiceIssued struct {
	Cert   *x509.Certificate
	Key    crypto.Signer
	Chain  []*x509.Certificate // leaf, then its issuer
	Record *storage.Cert
}

// IssueTLS makes a serverAuth certificate for the CA's HTTPS API, signed by
// the service intermediate (r.Service; the issuing CA for a legacy CA
// without one) with a fresh P-256 key. It goes through the same steps as
// a workload certificate — lint before signing, record before returning,
// count, log — so the CA's own certificate is never the one nobody checked.
func (a *Authority) IssueTLS(ctx context.Context, r TLSRequest) (*ServiceIssued, error) {
	start := time.Now()
	out, err := a.issueTLS(ctx, r)
	e := events.Event{Event: events.Issue, Subject: r.CommonName, Actor: "ca"}
	if out != nil {
		e.Serial, e.Lineage = out.Record.Serial, out.Record.LineageID()
	}
	a.observe(ctx, OpIssue, string(storage.MethodTLS), start, err, e)
	return out, err
}

func (a *Authority) issueTLS(ctx context.Context, r TLSRequest) (*ServiceIssued, error) {
	if r.Names.Empty() {
		return nil, errors.New("ca: a TLS certificate needs at least one DNS name or IP")
	}
	lifetime := r.Lifetime
	if lifetime <= 0 {
		lifetime = TLSLifetime
	}
	now := a.now()
	issuer, sign := a.issuer, a.signer
	if r.Service != nil {
		issuer, sign = r.Service.cert, r.Service.signer
	}
	out, err := signService(ctx, serviceSpec{
		issuer: issuer, signer: sign, store: a.store, now: now,
		cn: r.CommonName, names: r.Names, eku: x509.ExtKeyUsageServerAuth, lifetime: lifetime, method: storage.MethodTLS,
	})
	if err != nil {
		return nil, err
	}
	a.countMu.Lock()
	a.counts.Issued[storage.MethodTLS]++
	a.countMu.Unlock()
	a.log.Info("certificate issued", "serial", out.Record.Serial, "subject", r.CommonName,
		"sans", out.Record.SANs, "method", storage.MethodTLS, "not_after", out.Cert.NotAfter.UTC().Format(time.RFC3339))
	return out, nil
}

// serviceSpec is one certificate for a service of the CA itself (its API,
// an admin): one EKU, a fresh key, no workload policy.
type serviceSpec struct {
	issuer *x509.Certificate
	signer crypto.Signer
	store  interface {
		PutCert(context.Context, *storage.Cert) error
	}
	now      time.Time
	cn       string
	names    Names
	eku      x509.ExtKeyUsage
	lifetime time.Duration
	method   storage.Method
	issuedBy string // storage.Cert.IssuedBy
}

// signService makes the key and template, lints the template signed by a
// throwaway copy of the issuer (what Boulder's linter does: a bad profile
// is caught before the real key signs anything), signs and records it.
func signService(ctx context.Context, s serviceSpec) (*ServiceIssued, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	out, err := signServiceKey(ctx, s, k.Public())
	if err != nil {
		return nil, err
	}
	out.Key = k
	return out, nil
}

// signServiceKey is signService for a key the caller holds (a CSR's).
func signServiceKey(ctx context.Context, s serviceSpec, pub crypto.PublicKey) (*ServiceIssued, error) {
	t, err := serviceTemplate(s, pub)
	if err != nil {
		return nil, err
	}
	if err := lintTemplate(t, s.issuer, pub); err != nil {
		return nil, fmt.Errorf("ca: %s certificate for %q: %w", s.method, s.cn, err)
	}
	c, err := x509util.CreateCertificate(t, s.issuer, pub, s.signer)
	if err != nil {
		return nil, fmt.Errorf("ca: sign %s certificate for %q: %w", s.method, s.cn, err)
	}
	rec := &storage.Cert{
		Serial: SerialHex(c.SerialNumber), Subject: s.cn, SANs: s.names.Strings(),
		NotBefore: c.NotBefore, NotAfter: c.NotAfter, IssuedAt: s.now,
		Method: s.method, KeyID: KeyID(c), Status: storage.StatusValid, IssuedBy: s.issuedBy, DER: c.Raw,
	}
	if err := s.store.PutCert(ctx, rec); err != nil {
		return nil, fmt.Errorf("ca: record %s certificate: %w", s.method, err)
	}
	return &ServiceIssued{Cert: c, Chain: []*x509.Certificate{c, s.issuer}, Record: rec}, nil
}

func serviceTemplate(s serviceSpec, pub crypto.PublicKey) (*x509.Certificate, error) {
	if err := CheckSubject(s.cn); err != nil {
		return nil, fmt.Errorf("ca: %v", err)
	}
	serial, err := NewSerial()
	if err != nil {
		return nil, err
	}
	skid, err := x509util.GenerateSubjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	notAfter := s.now.Add(s.lifetime)
	if notAfter.After(s.issuer.NotAfter) {
		notAfter = s.issuer.NotAfter
	}
	return &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: s.cn},
		NotBefore: s.now.Add(-backdate), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{s.eku},
		BasicConstraintsValid: true, SubjectKeyId: skid,
		DNSNames: s.names.DNS, IPAddresses: s.names.IPs,
	}, nil
}

// lintTemplate signs t with a throwaway key standing in for issuer and runs
// zlint on the result.
func lintTemplate(t, issuer *x509.Certificate, pub crypto.PublicKey) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	fake := *issuer
	fake.PublicKey = key.Public()
	tt := *t
	tt.AuthorityKeyId = issuer.SubjectKeyId
	der, err := x509.CreateCertificate(rand.Reader, &tt, &fake, pub, key)
	if err != nil {
		return fmt.Errorf("lint sample: %w", err)
	}
	if err := lint.Certificate(der); err != nil {
		return fmt.Errorf("does not pass zlint: %w", err)
	}
	return nil
}
