// Package ca is anchorage's issuing core. It applies the certificate
// profile (lifetime, key usage, EKU, names), signs with the issuing CA key
// through a crypto.Signer, and records every certificate in storage before
// handing it back; revocations are committed before they are acknowledged
// and then trigger a new CRL. It knows nothing about HTTP.
package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"sync"
	"time"

	"go.step.sm/crypto/x509util"

	"github.com/anchorage-pki/anchorage/lint"
	"github.com/anchorage-pki/anchorage/storage"
)

// Store is what the Authority needs from storage.
type Store interface {
	PutCert(ctx context.Context, c *storage.Cert) error
	PutCertUsingToken(ctx context.Context, c *storage.Cert, jti string, tokenExpiry time.Time) error
	Cert(ctx context.Context, serial string) (*storage.Cert, error)
	RevokeSerial(ctx context.Context, serial string, reason int, at time.Time) (changed, already []*storage.Cert, err error)
	RevokeSubject(ctx context.Context, subject string, reason int, at time.Time) (changed, already []*storage.Cert, err error)
}

// CRLUpdater re-signs the CRL after a revocation and returns its number.
type CRLUpdater interface {
	Update(ctx context.Context) (uint64, error)
}

// Profile is the workload certificate profile.
type Profile struct {
	DefaultLifetime time.Duration
	MaxLifetime     time.Duration
	ServerAuth      bool
	CRLURL          string // CRL distribution point; empty = none
}

// Options configure New.
type Options struct {
	Issuer  *x509.Certificate // issuing CA certificate
	Signer  crypto.Signer     // its key
	Store   Store
	Profile Profile
	CRL     CRLUpdater // may be set later with SetCRLUpdater
	Logger  *slog.Logger
	Now     func() time.Time
}

// Counts are the Authority's running totals since start, for /metrics.
type Counts struct {
	Issued  map[string]uint64 // by method
	Revoked uint64
}

// Authority issues, renews and revokes workload certificates.
type Authority struct {
	countMu sync.Mutex
	counts  Counts

	issuer  *x509.Certificate
	signer  crypto.Signer
	store   Store
	profile Profile
	crl     CRLUpdater
	log     *slog.Logger
	now     func() time.Time
}

// Errors callers map to responses.
var (
	ErrBadCSR      = errors.New("bad certificate request")
	ErrUnknownCert = errors.New("certificate unknown to this CA")
	ErrRevoked     = errors.New("certificate is revoked")
	ErrExpired     = errors.New("certificate has expired")
	ErrNotFound    = errors.New("no matching certificate")
	ErrCRL         = errors.New("CRL update failed")
)

// New checks the issuing CA and its key, lints the leaf profile with a
// throwaway key, and returns the Authority.
func New(o Options) (*Authority, error) {
	if o.Issuer == nil || o.Signer == nil || o.Store == nil {
		return nil, errors.New("ca: issuer, signer and store are required")
	}
	if !o.Issuer.IsCA || o.Issuer.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("ca: issuer certificate is not a CA with keyCertSign")
	}
	if !publicKeysEqual(o.Issuer.PublicKey, o.Signer.Public()) {
		return nil, errors.New("ca: issuing CA key does not match its certificate")
	}
	if o.Profile.DefaultLifetime <= 0 {
		o.Profile.DefaultLifetime = 24 * time.Hour
	}
	if o.Profile.MaxLifetime < o.Profile.DefaultLifetime {
		o.Profile.MaxLifetime = o.Profile.DefaultLifetime
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &Authority{issuer: o.Issuer, signer: o.Signer, store: o.Store,
		profile: o.Profile, crl: o.CRL, log: o.Logger, now: o.Now, counts: Counts{Issued: map[string]uint64{}}}
	if err := a.lintProfile(); err != nil {
		return nil, err
	}
	return a, nil
}

// Counts returns a copy of the running totals.
func (a *Authority) Counts() Counts {
	a.countMu.Lock()
	defer a.countMu.Unlock()
	c := Counts{Issued: make(map[string]uint64, len(a.counts.Issued)), Revoked: a.counts.Revoked}
	for k, v := range a.counts.Issued {
		c.Issued[k] = v
	}
	return c
}

// SetCRLUpdater wires the CRL publisher once both exist.
func (a *Authority) SetCRLUpdater(u CRLUpdater) { a.crl = u }

// Issuer returns the issuing CA certificate.
func (a *Authority) Issuer() *x509.Certificate { return a.issuer }

// Request asks for one certificate. Subject and Names are what the caller
// authorised (token grant, renewed certificate); the CSR only supplies the
// key and proves possession of it.
type Request struct {
	CSR         *x509.CertificateRequest
	Subject     string
	Names       Names
	Lifetime    time.Duration // 0 = profile default
	Method      string        // token, renew, acme, ...
	TokenID     string        // consumed atomically with storing the certificate
	TokenExpiry time.Time
	RenewedFrom string
	Order       string // ACME order id: storage marks the order valid in the certificate's commit
	ClientOnly  bool   // omit serverAuth even if the profile adds it
}

// Issued is a signed, stored certificate.
type Issued struct {
	Cert   *x509.Certificate
	Chain  []*x509.Certificate // leaf, then the issuing CA
	Record *storage.Cert
}

// Issue signs and records a certificate.
func (a *Authority) Issue(ctx context.Context, r Request) (*Issued, error) {
	if err := CheckCSR(r.CSR); err != nil {
		return nil, err
	}
	if err := CheckSubject(r.Subject); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	lifetime := r.Lifetime
	if lifetime <= 0 {
		lifetime = a.profile.DefaultLifetime
	}
	lifetime = min(lifetime, a.profile.MaxLifetime)
	now := a.now()
	tmpl, err := a.template(r.Subject, r.Names, r.CSR.PublicKey, now, lifetime, !r.ClientOnly && a.profile.ServerAuth)
	if err != nil {
		return nil, err
	}
	cert, err := x509util.CreateCertificate(tmpl, a.issuer, r.CSR.PublicKey, a.signer)
	if err != nil {
		return nil, fmt.Errorf("ca: sign certificate: %w", err)
	}
	rec := &storage.Cert{
		Serial: SerialHex(cert.SerialNumber), Subject: r.Subject, SANs: r.Names.Strings(),
		NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, IssuedAt: now,
		Method: r.Method, TokenID: r.TokenID, RenewedFrom: r.RenewedFrom, Order: r.Order,
		Status: storage.StatusValid, DER: cert.Raw,
	}
	if r.TokenID != "" {
		err = a.store.PutCertUsingToken(ctx, rec, r.TokenID, r.TokenExpiry)
	} else {
		err = a.store.PutCert(ctx, rec)
	}
	if err != nil {
		return nil, fmt.Errorf("ca: record certificate: %w", err)
	}
	a.countMu.Lock()
	a.counts.Issued[r.Method]++
	a.countMu.Unlock()
	a.log.Info("certificate issued", "serial", rec.Serial, "subject", r.Subject,
		"sans", rec.SANs, "method", r.Method, "not_after", cert.NotAfter.UTC().Format(time.RFC3339))
	// The root stays out of the chain: relying parties hold it already.
	return &Issued{Cert: cert, Chain: []*x509.Certificate{cert, a.issuer}, Record: rec}, nil
}

// Renew issues a successor of current, which the caller has proven
// possession of over mTLS: same subject and names, a fresh lifetime. The
// current certificate must be ours, unrevoked and unexpired.
func (a *Authority) Renew(ctx context.Context, current *x509.Certificate, csr *x509.CertificateRequest) (*Issued, error) {
	rec, err := a.store.Cert(ctx, SerialHex(current.SerialNumber))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrUnknownCert
	}
	if err != nil {
		return nil, fmt.Errorf("ca: look up certificate: %w", err)
	}
	if rec.Status == storage.StatusRevoked {
		return nil, ErrRevoked
	}
	if rec.Expired(a.now()) {
		return nil, ErrExpired
	}
	if rec.Method == "admin" {
		return nil, fmt.Errorf("%w: admin certificates are not renewed over the API", ErrUnknownCert)
	}
	names, err := ParseSANs(rec.SANs)
	if err != nil {
		return nil, fmt.Errorf("ca: stored names of %s: %w", rec.Serial, err)
	}
	return a.Issue(ctx, Request{
		CSR: csr, Subject: rec.Subject, Names: names, Method: "renew", RenewedFrom: rec.Serial,
		Lifetime:   rec.NotAfter.Sub(rec.NotBefore) - backdate,
		ClientOnly: !slices.Contains(current.ExtKeyUsage, x509.ExtKeyUsageServerAuth),
	})
}

// RevokeRequest selects what to revoke: one serial or every live
// certificate of a subject.
type RevokeRequest struct {
	Serial  string // hex, any case, optional colons
	Subject string
	Reason  int
}

// RevokeResult says what changed and which CRL carries it.
type RevokeResult struct {
	Revoked        []*storage.Cert
	AlreadyRevoked []*storage.Cert
	CRLNumber      uint64
}

// Revoke commits the revocation (fsync) and then re-signs the CRL. If the
// CRL update fails the revocation still stands; the error wraps ErrCRL.
func (a *Authority) Revoke(ctx context.Context, r RevokeRequest) (*RevokeResult, error) {
	if (r.Serial == "") == (r.Subject == "") {
		return nil, errors.New("give exactly one of serial or subject")
	}
	if r.Reason < 0 || r.Reason > 10 || r.Reason == 7 || r.Reason == 8 {
		return nil, fmt.Errorf("reason code %d is not an RFC 5280 CRLReason", r.Reason)
	}
	at := a.now().Truncate(time.Second)
	var changed, already []*storage.Cert
	var err error
	if r.Serial != "" {
		serial, perr := NormalizeSerial(r.Serial)
		if perr != nil {
			return nil, perr
		}
		changed, already, err = a.store.RevokeSerial(ctx, serial, r.Reason, at)
	} else {
		changed, already, err = a.store.RevokeSubject(ctx, r.Subject, r.Reason, at)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("ca: revoke: %w", err)
	}
	a.countMu.Lock()
	a.counts.Revoked += uint64(len(changed))
	a.countMu.Unlock()
	for _, c := range changed {
		a.log.Warn("certificate revoked", "serial", c.Serial, "subject", c.Subject, "reason", ReasonName(r.Reason))
	}
	res := &RevokeResult{Revoked: changed, AlreadyRevoked: already}
	if a.crl == nil {
		return res, nil
	}
	n, err := a.crl.Update(ctx)
	if err != nil {
		return res, fmt.Errorf("%w: %v", ErrCRL, err)
	}
	res.CRLNumber = n
	return res, nil
}

// backdate shifts notBefore into the past so hosts with slightly slow
// clocks accept a fresh certificate.
const backdate = time.Minute

func (a *Authority) template(subject string, names Names, pub crypto.PublicKey, now time.Time, lifetime time.Duration, serverAuth bool) (*x509.Certificate, error) {
	serial, err := NewSerial()
	if err != nil {
		return nil, err
	}
	skid, err := x509util.GenerateSubjectKeyID(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	notAfter := now.Add(lifetime)
	if notAfter.After(a.issuer.NotAfter) {
		notAfter = a.issuer.NotAfter
	}
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if serverAuth {
		eku = append(eku, x509.ExtKeyUsageServerAuth)
	}
	t := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: subject},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
		IsCA:                  false,
		SubjectKeyId:          skid,
		DNSNames:              names.DNS,
		IPAddresses:           names.IPs,
		URIs:                  names.URIs,
	}
	if a.profile.CRLURL != "" {
		t.CRLDistributionPoints = []string{a.profile.CRLURL}
	}
	return t, nil
}

// lintProfile signs a sample leaf with a throwaway copy of the issuing CA
// and runs zlint on it, so a profile that would produce bad certificates
// stops the CA at start rather than reaching a workload.
func (a *Authority) lintProfile() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	fakeIssuer := *a.issuer
	fakeIssuer.PublicKey = key.Public()
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	names, _ := ParseSANs([]string{"DNS:sample.anchorage.example.com"})
	t, err := a.template("sample-workload", names, leafKey.Public(), a.now(), a.profile.DefaultLifetime, a.profile.ServerAuth)
	if err != nil {
		return err
	}
	t.AuthorityKeyId = a.issuer.SubjectKeyId
	der, err := x509.CreateCertificate(rand.Reader, t, &fakeIssuer, leafKey.Public(), key)
	if err != nil {
		return fmt.Errorf("ca: lint sample: %w", err)
	}
	if err := lint.Certificate(der); err != nil {
		return fmt.Errorf("ca: leaf profile does not pass zlint: %w", err)
	}
	return nil
}

// CheckCSR verifies the request's self-signature and that its key is one
// the CA accepts: ECDSA P-256/P-384 or RSA 2048–4096.
func CheckCSR(csr *x509.CertificateRequest) error {
	if csr == nil {
		return fmt.Errorf("%w: missing", ErrBadCSR)
	}
	if err := csr.CheckSignature(); err != nil {
		return fmt.Errorf("%w: signature does not verify: %v", ErrBadCSR, err)
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("%w: ECDSA curve %s not accepted (use P-256 or P-384)", ErrBadCSR, k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > 4096 {
			return fmt.Errorf("%w: RSA key of %d bits not accepted (use 2048 to 4096)", ErrBadCSR, n)
		}
	default:
		return fmt.Errorf("%w: key type %T not accepted (use ECDSA or RSA)", ErrBadCSR, csr.PublicKey)
	}
	return nil
}

// NewSerial returns a random positive serial of at most 20 octets with 159
// bits of entropy, as RFC 5280 §4.1.2.2 allows.
func NewSerial() (*big.Int, error) {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("ca: serial: %w", err)
	}
	b[0] &= 0x7f
	if b[0] == 0 {
		b[0] = 0x40 // keep the full 20-octet length, and never zero
	}
	return new(big.Int).SetBytes(b), nil
}

// SerialHex is the canonical text form of a serial: lowercase hex of its
// big-endian bytes, so always an even number of digits (the form Roles
// Anywhere uses for session names).
func SerialHex(n *big.Int) string { return fmt.Sprintf("%x", n.Bytes()) }

// NormalizeSerial accepts hex with optional colons, any case, leading zeros.
func NormalizeSerial(s string) (string, error) {
	clean := make([]byte, 0, len(s))
	for _, r := range s {
		if r == ':' {
			continue
		}
		clean = append(clean, byte(r))
	}
	n, ok := new(big.Int).SetString(string(clean), 16)
	if !ok || n.Sign() <= 0 {
		return "", fmt.Errorf("serial %q is not a positive hex number", s)
	}
	return SerialHex(n), nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type eq interface{ Equal(crypto.PublicKey) bool }
	k, ok := a.(eq)
	return ok && k.Equal(b)
}
