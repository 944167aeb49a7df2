// Package ceremony makes a CA's key material, apart from the online
// issuing core: the root, the issuing CA (the Roles Anywhere trust
// anchor), the admin intermediate, the service intermediate (it signs the
// API's TLS certificate, so that key is no AWS identity), the first TLS and admin certificates and
// the enrollment token key, written to files that it never overwrites and
// removes again if any step fails. `anchorage-ca init` and the test
// environment both run it, so tests exercise the CA a user would have.
//
// The leaves it needs (TLS, first admin) are issued through package ca like
// every later one: linted, recorded in storage, logged.
package ceremony

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"go.step.sm/crypto/x509util"

	"github.com/anchorage-pki/anchorage/atomicfile"
	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/signer"
	"github.com/anchorage-pki/anchorage/tlsfile"
)

// Lifetimes of the CA certificates the ceremony makes.
const (
	RootLifetime    = 10 * 365 * 24 * time.Hour
	IssuerLifetime  = 5 * 365 * 24 * time.Hour
	AdminCALifetime = 5 * 365 * 24 * time.Hour
	// ServiceCALifetime is the service intermediate's, as the admin one's.
	ServiceCALifetime = AdminCALifetime
	// AdminName is the subject of the first admin certificate.
	AdminName = "anchorage-admin"
)

// backdate shifts notBefore into the past for hosts with slow clocks.
const backdate = time.Minute

// Files names where Init writes each artifact (absolute or relative to
// the working directory; the caller resolves them).
type Files struct {
	Root, RootKey               string
	CACert, CAKey               string // CAKey may be a signer reference (pkcs11:, tpm:)
	AdminCACert, AdminCAKey     string
	ServiceCACert, ServiceCAKey string
	TLS                         string // key and chain in one file (tlsfile)
	AdminCert, AdminKey         string
	ProvisionerKey              string
}

func (f Files) all() []string {
	return []string{f.Root, f.RootKey, f.CACert, f.CAKey, f.AdminCACert, f.AdminCAKey, f.ServiceCACert, f.ServiceCAKey, f.TLS, f.AdminCert, f.AdminKey, f.ProvisionerKey}
}

// Options describe a new CA.
type Options struct {
	Name     string   // organisation / CA name
	TLSNames []string // DNS names and IPs of the API server; default localhost, 127.0.0.1
	Files    Files
	Store    ca.Store // records the TLS and admin certificates
	Logger   *slog.Logger
	Now      func() time.Time
}

// Result is what was made.
type Result struct {
	Root, Issuer, AdminCA, ServiceCA, TLS, Admin *x509.Certificate
}

// Init creates a root CA, an issuing CA (pathlen 0, keyCertSign+cRLSign,
// what a Roles Anywhere trust anchor accepts), the admin intermediate, the
// service intermediate and the API's TLS certificate under it, a first admin client certificate and the
// enrollment token signing key. It refuses to overwrite any existing file
// and removes what it wrote if it fails part way.
func Init(ctx context.Context, o Options) (res *Result, err error) {
	if o.Name == "" {
		return nil, errors.New("a CA name is required")
	}
	if o.Store == nil {
		return nil, errors.New("ceremony: a store is required to record the first certificates")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	f := o.Files
	for _, p := range f.all() {
		if p == "" {
			return nil, errors.New("ceremony: every file must be named")
		}
		if signer.IsHardware(p) {
			continue // signer.Create refuses an existing key object
		}
		if _, err := os.Stat(p); err == nil {
			return nil, fmt.Errorf("%s already exists: refusing to overwrite an existing CA", p)
		}
	}
	names, err := tlsNames(o.TLSNames)
	if err != nil {
		return nil, err
	}
	var w writer
	defer func() {
		if err != nil {
			w.undo()
		}
	}()
	now := o.Now()

	rootKey, err := newKey()
	if err != nil {
		return nil, err
	}
	root, err := selfSign(o.Name+" Root CA", o.Name, rootKey, now)
	if err != nil {
		return nil, err
	}

	// The issuing CA key may live in a PKCS#11 token or a TPM (Files.CAKey
	// is then a signer reference): it is made there, never leaves, and is
	// deleted again if init fails.
	var caKey crypto.Signer
	var caPending *signer.Pending
	if signer.IsHardware(f.CAKey) {
		if caPending, err = signer.Create(ctx, f.CAKey, signer.EC); err != nil {
			return nil, fmt.Errorf("issuing CA key: %w", err)
		}
		defer func() {
			if err != nil {
				caPending.Discard()
			}
		}()
		caKey = caPending.Signer
	} else if caKey, err = newKey(); err != nil {
		return nil, err
	}
	issuer, err := intermediate(root, rootKey, caKey.Public(), o.Name+" Issuing CA", o.Name, IssuerLifetime, now)
	if err != nil {
		return nil, fmt.Errorf("create issuing CA: %w", err)
	}
	adminCAKey, err := newKey()
	if err != nil {
		return nil, err
	}
	adminCA, err := intermediate(root, rootKey, adminCAKey.Public(), o.Name+" Admin CA", o.Name, AdminCALifetime, now)
	if err != nil {
		return nil, fmt.Errorf("create admin intermediate: %w", err)
	}

	serviceCAKey, err := newKey()
	if err != nil {
		return nil, err
	}
	serviceCACert, err := intermediate(root, rootKey, serviceCAKey.Public(), o.Name+" Service CA", o.Name, ServiceCALifetime, now)
	if err != nil {
		return nil, fmt.Errorf("create service intermediate: %w", err)
	}
	serviceCA, err := ca.NewServiceCA(serviceCACert, serviceCAKey)
	if err != nil {
		return nil, err
	}

	auth, err := ca.New(ca.Options{Issuer: issuer, Signer: caKey, Store: o.Store, Logger: o.Logger, Now: o.Now})
	if err != nil {
		return nil, err
	}
	tlsCN := o.TLSNames
	if len(tlsCN) == 0 {
		tlsCN = []string{"localhost"}
	}
	tlsCert, err := auth.IssueTLS(ctx, ca.TLSRequest{CommonName: tlsCN[0], Names: names, Service: serviceCA})
	if err != nil {
		return nil, fmt.Errorf("create TLS certificate: %w", err)
	}
	admins, err := ca.NewAdminIssuer(ca.AdminOptions{Issuer: adminCA, Signer: adminCAKey, Store: o.Store, Logger: o.Logger, Now: o.Now})
	if err != nil {
		return nil, err
	}
	adminKey, err := newKey()
	if err != nil {
		return nil, err
	}
	csr, err := newCSR(adminKey, AdminName)
	if err != nil {
		return nil, err
	}
	admin, err := admins.Issue(ctx, ca.AdminRequest{Name: AdminName, CSR: csr, By: "init", IssuedBy: "init"})
	if err != nil {
		return nil, fmt.Errorf("create admin certificate: %w", err)
	}
	provKey, err := newKey()
	if err != nil {
		return nil, err
	}

	for _, step := range []func() error{
		func() error { return w.cert(f.Root, root) },
		func() error { return w.key(f.RootKey, rootKey) },
		func() error { return w.cert(f.CACert, issuer) },
		func() error {
			if caPending != nil {
				return caPending.Save()
			}
			return w.key(f.CAKey, caKey)
		},
		func() error { return w.cert(f.AdminCACert, adminCA) },
		func() error { return w.key(f.AdminCAKey, adminCAKey) },
		func() error { return w.cert(f.ServiceCACert, serviceCACert) },
		func() error { return w.key(f.ServiceCAKey, serviceCAKey) },
		func() error { return w.pair(f.TLS, tlsCert.Key, tlsCert.Chain...) },
		func() error { return w.cert(f.AdminCert, admin.Chain...) },
		func() error { return w.key(f.AdminKey, adminKey) },
		func() error { return w.key(f.ProvisionerKey, provKey) },
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return &Result{Root: root, Issuer: issuer, AdminCA: adminCA, ServiceCA: serviceCACert, TLS: tlsCert.Cert, Admin: admin.Cert}, nil
}

// IntermediateOptions describe an intermediate made later for an existing
// CA (one initialised before that intermediate existed).
type IntermediateOptions struct {
	Name      string // CA name: the intermediate is "<Name> Admin CA" or "<Name> Service CA"
	Root      *x509.Certificate
	RootKey   crypto.Signer
	Cert, Key string // where to write it; neither may exist
	Now       func() time.Time
}

// AdminCAOptions describe the admin intermediate made for an existing CA.
type AdminCAOptions = IntermediateOptions

// AdminCA makes the admin intermediate under an existing root and writes
// its certificate and key, refusing to overwrite either and removing what
// it wrote on failure.
func AdminCA(o AdminCAOptions) (*x509.Certificate, crypto.Signer, error) {
	return laterIntermediate(o, "Admin CA", "admin intermediate", AdminCALifetime)
}

// ServiceCA makes the service intermediate (it signs the API's TLS
// certificate) under an existing root, as AdminCA does the admin one.
func ServiceCA(o IntermediateOptions) (*x509.Certificate, crypto.Signer, error) {
	return laterIntermediate(o, "Service CA", "service intermediate", ServiceCALifetime)
}

func laterIntermediate(o IntermediateOptions, suffix, what string, lifetime time.Duration) (_ *x509.Certificate, _ crypto.Signer, err error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	for _, p := range []string{o.Cert, o.Key} {
		if _, err := os.Stat(p); err == nil {
			return nil, nil, fmt.Errorf("%s already exists: refusing to overwrite the %s", p, what)
		}
	}
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	org := o.Name
	if len(o.Root.Subject.Organization) > 0 {
		org = o.Root.Subject.Organization[0]
	}
	if o.Name == "" {
		o.Name = org
	}
	cert, err := intermediate(o.Root, o.RootKey, key.Public(), o.Name+" "+suffix, org, lifetime, o.Now())
	if err != nil {
		return nil, nil, fmt.Errorf("create %s: %w", what, err)
	}
	var w writer
	defer func() {
		if err != nil {
			w.undo()
		}
	}()
	if err := w.key(o.Key, key); err != nil {
		return nil, nil, err
	}
	if err := w.cert(o.Cert, cert); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// writer remembers what it wrote so a failed ceremony can take it back.
type writer struct{ written []string }

func (w *writer) undo() {
	for _, p := range w.written {
		os.Remove(p)
	}
}

func (w *writer) key(path string, k crypto.Signer) error {
	if err := signer.WriteFile(path, k); err != nil {
		return err
	}
	w.written = append(w.written, path)
	return nil
}

func (w *writer) cert(path string, certs ...*x509.Certificate) error {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := atomicfile.Write(path, b, 0o644); err != nil {
		return err
	}
	w.written = append(w.written, path)
	return nil
}

func (w *writer) pair(path string, k crypto.Signer, chain ...*x509.Certificate) error {
	if err := tlsfile.Write(path, k, chain...); err != nil {
		return err
	}
	w.written = append(w.written, path)
	return nil
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func selfSign(cn, org string, key crypto.Signer, now time.Time) (*x509.Certificate, error) {
	serial, err := ca.NewSerial()
	if err != nil {
		return nil, err
	}
	t := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{org}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(RootLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	c, err := x509util.CreateCertificate(t, t, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create root: %w", err)
	}
	return c, nil
}

// intermediate makes a CA under root that may only sign leaves (pathlen 0,
// keyCertSign+cRLSign): the issuing CA, the admin and the service
// intermediates.
func intermediate(root *x509.Certificate, rootKey crypto.Signer, pub crypto.PublicKey, cn, org string, lifetime time.Duration, now time.Time) (*x509.Certificate, error) {
	serial, err := ca.NewSerial()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(lifetime)
	if notAfter.After(root.NotAfter) {
		notAfter = root.NotAfter
	}
	t := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{org}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	return x509util.CreateCertificate(t, root, pub, rootKey)
}

func tlsNames(in []string) (ca.Names, error) {
	if len(in) == 0 {
		in = []string{"localhost", "127.0.0.1"}
	}
	var sans []string
	for _, n := range in {
		if net.ParseIP(n) != nil {
			sans = append(sans, "IP:"+n)
		} else {
			sans = append(sans, "DNS:"+n)
		}
	}
	return ca.ParseSANs(sans)
}

func newCSR(key crypto.Signer, cn string) (*x509.CertificateRequest, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificateRequest(der)
}
