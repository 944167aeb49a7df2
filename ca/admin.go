package ca

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/anchorage-pki/anchorage/storage"
)

// Admin certificate lifetimes. Short by default: an admin key that leaks
// is cut by revocation at once, and by expiry within a month even if
// nobody notices.
const (
	AdminLifetime    = 30 * 24 * time.Hour
	AdminMaxLifetime = 90 * 24 * time.Hour
)

// ErrAdminRequest is a request for an admin certificate the CA refuses.
var ErrAdminRequest = errors.New("bad admin certificate request")

// AdminIssuer signs admin client certificates with the admin intermediate,
// a CA under the root that is never a Roles Anywhere trust anchor, so an
// admin never becomes an AWS identity and a workload never an admin.
type AdminIssuer struct {
	issuer *x509.Certificate
	signer crypto.Signer
	store  interface {
		PutCert(ctx context.Context, c *storage.Cert) error
	}
	log *slog.Logger
	now func() time.Time
}

// AdminOptions configure NewAdminIssuer.
type AdminOptions struct {
	Issuer *x509.Certificate // the admin intermediate
	Signer crypto.Signer     // its key
	Store  interface {
		PutCert(ctx context.Context, c *storage.Cert) error
	}
	Logger *slog.Logger
	Now    func() time.Time
}

// NewAdminIssuer checks the admin intermediate and its key.
func NewAdminIssuer(o AdminOptions) (*AdminIssuer, error) {
	if o.Issuer == nil || o.Signer == nil || o.Store == nil {
		return nil, errors.New("ca: admin issuer, signer and store are required")
	}
	if !o.Issuer.IsCA || o.Issuer.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("ca: admin intermediate is not a CA with keyCertSign")
	}
	if !publicKeysEqual(o.Issuer.PublicKey, o.Signer.Public()) {
		return nil, errors.New("ca: admin intermediate key does not match its certificate")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	// Lint the profile once at start, as New does for workloads, so a bad
	// admin profile stops the CA rather than the first incident.
	sample, err := serviceTemplate(serviceSpec{issuer: o.Issuer, now: o.Now(), cn: "sample-admin",
		eku: x509.ExtKeyUsageClientAuth, lifetime: AdminLifetime, method: storage.MethodAdmin}, o.Signer.Public())
	if err != nil {
		return nil, err
	}
	if err := lintTemplate(sample, o.Issuer, o.Signer.Public()); err != nil {
		return nil, fmt.Errorf("ca: admin profile: %w", err)
	}
	return &AdminIssuer{issuer: o.Issuer, signer: o.Signer, store: o.Store, log: o.Logger, now: o.Now}, nil
}

// Issuer returns the admin intermediate certificate.
func (a *AdminIssuer) Issuer() *x509.Certificate { return a.issuer }

// AdminRequest asks for one admin certificate. The key is the caller's:
// with a CSR the private key never leaves the admin's machine.
type AdminRequest struct {
	Name     string                   // who: the subject CN, shown in logs
	CSR      *x509.CertificateRequest // proves possession of the key
	Lifetime time.Duration            // 0 = AdminLifetime; at most AdminMaxLifetime
	By       string                   // the admin who asked, for the log
	// IssuedBy is recorded with the certificate (storage.Cert.IssuedBy):
	// the asking admin certificate's serial, or "init" / "local:HOST"
	// when no admin certificate asked. Required: an admin certificate
	// nobody can trace back is what a leaked admin would leave behind.
	IssuedBy string
}

// Issue signs and records an admin client certificate.
func (a *AdminIssuer) Issue(ctx context.Context, r AdminRequest) (*Issued, error) {
	if err := CheckCSR(r.CSR); err != nil {
		return nil, err
	}
	if err := CheckSubject(r.Name); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAdminRequest, err)
	}
	if r.IssuedBy == "" {
		return nil, fmt.Errorf("%w: no issuer recorded for %q", ErrAdminRequest, r.Name)
	}
	lifetime := r.Lifetime
	if lifetime == 0 {
		lifetime = AdminLifetime
	}
	if lifetime < time.Minute || lifetime > AdminMaxLifetime {
		return nil, fmt.Errorf("%w: lifetime %s: want between 1m and %s", ErrAdminRequest, lifetime, AdminMaxLifetime)
	}
	iss, err := signServiceKey(ctx, serviceSpec{
		issuer: a.issuer, signer: a.signer, store: a.store, now: a.now(),
		cn: r.Name, eku: x509.ExtKeyUsageClientAuth, lifetime: lifetime, method: storage.MethodAdmin, issuedBy: r.IssuedBy,
	}, r.CSR.PublicKey)
	if err != nil {
		return nil, err
	}
	a.log.Warn("admin certificate issued", "serial", iss.Record.Serial, "subject", r.Name, "by", r.By,
		"issued_by", r.IssuedBy, "not_after", iss.Cert.NotAfter.UTC().Format(time.RFC3339))
	return &Issued{Cert: iss.Cert, Chain: iss.Chain, Record: iss.Record}, nil
}

// Fingerprint is the SHA-256 of a certificate's DER, lowercase hex.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// ErrNoAdminCA means there is no admin intermediate yet and nothing to make
// one with (the root key is offline).
var ErrNoAdminCA = errors.New("no admin intermediate")
