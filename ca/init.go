package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"go.step.sm/crypto/x509util"

	"github.com/anchorage-pki/anchorage/atomicfile"
	"github.com/anchorage-pki/anchorage/signer"
	"github.com/anchorage-pki/anchorage/storage"
)

// Lifetimes of the material init creates.
const (
	RootLifetime    = 10 * 365 * 24 * time.Hour
	IssuerLifetime  = 5 * 365 * 24 * time.Hour
	TLSLifetime     = 365 * 24 * time.Hour
	AdminLifetime   = 365 * 24 * time.Hour
	AdminCommonName = "anchorage-admin"
)

// InitFiles names where Init writes each artifact (absolute or relative to
// the working directory; the caller resolves them).
type InitFiles struct {
	Root, RootKey, CACert, CAKey, TLSCert, TLSKey, AdminCert, AdminKey, ProvisionerKey string
}

// InitOptions describe a new CA.
type InitOptions struct {
	Name     string   // organisation / CA name
	TLSNames []string // DNS names and IPs of the API server
	Files    InitFiles
	Store    interface {
		PutCert(ctx context.Context, c *storage.Cert) error
	}
	Now func() time.Time
}

// InitResult is what was made.
type InitResult struct {
	Root, Issuer, TLS, Admin *x509.Certificate
	AdminFingerprint         string // SHA-256 hex of the admin certificate
}

// Init creates a root CA, an issuing CA (pathlen 0, keyCertSign+cRLSign,
// what a Roles Anywhere trust anchor accepts), the API's TLS certificate,
// an admin client certificate and the enrollment token signing key. It
// refuses to overwrite any existing file and removes what it wrote if it
// fails part way.
func Init(ctx context.Context, o InitOptions) (res *InitResult, err error) {
	if o.Name == "" {
		return nil, errors.New("a CA name is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	f := o.Files
	all := []string{f.Root, f.RootKey, f.CACert, f.CAKey, f.TLSCert, f.TLSKey, f.AdminCert, f.AdminKey, f.ProvisionerKey}
	for _, p := range all {
		if signer.IsHardware(p) {
			continue // signer.Create refuses an existing key object
		}
		if _, err := os.Stat(p); err == nil {
			return nil, fmt.Errorf("%s already exists: refusing to overwrite an existing CA", p)
		}
	}
	var written []string
	defer func() {
		if err != nil {
			for _, p := range written {
				os.Remove(p)
			}
		}
	}()
	writeKey := func(path string, k crypto.Signer) error {
		if err := signer.WriteFile(path, k); err != nil {
			return err
		}
		written = append(written, path)
		return nil
	}
	writeCert := func(path string, certs ...*x509.Certificate) error {
		var b []byte
		for _, c := range certs {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		if err := atomicfile.Write(path, b, 0o644); err != nil {
			return err
		}
		written = append(written, path)
		return nil
	}
	now := o.Now()
	newKey := func() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

	rootKey, err := newKey()
	if err != nil {
		return nil, err
	}
	rootSerial, _ := NewSerial()
	rootTmpl := &x509.Certificate{
		SerialNumber:          rootSerial,
		Subject:               pkix.Name{CommonName: o.Name + " Root CA", Organization: []string{o.Name}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(RootLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	root, err := x509util.CreateCertificate(rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("create root: %w", err)
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
	caSerial, _ := NewSerial()
	caTmpl := &x509.Certificate{
		SerialNumber:          caSerial,
		Subject:               pkix.Name{CommonName: o.Name + " Issuing CA", Organization: []string{o.Name}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(IssuerLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	issuer, err := x509util.CreateCertificate(caTmpl, root, caKey.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("create issuing CA: %w", err)
	}

	leaf := func(parent *x509.Certificate, parentKey crypto.Signer, cn string, names Names, eku x509.ExtKeyUsage, lifetime time.Duration) (*x509.Certificate, crypto.Signer, error) {
		return ServiceCert(parent, parentKey, cn, names, eku, lifetime, now)
	}
	tlsNames := o.TLSNames
	if len(tlsNames) == 0 {
		tlsNames = []string{"localhost", "127.0.0.1"}
	}
	var names Names
	for _, n := range tlsNames {
		if ip := net.ParseIP(n); ip != nil {
			names.IPs = append(names.IPs, ip)
			continue
		}
		if err := checkDNSName(n); err != nil {
			return nil, err
		}
		names.DNS = append(names.DNS, n)
	}
	tlsCert, tlsKey, err := leaf(issuer, caKey, tlsNames[0], names, x509.ExtKeyUsageServerAuth, TLSLifetime)
	if err != nil {
		return nil, fmt.Errorf("create TLS certificate: %w", err)
	}
	// The admin certificate chains to the root, not the issuing CA: it is
	// not a workload identity, so a trust anchor on the issuing CA never
	// turns it into AWS credentials.
	adminCert, adminKey, err := leaf(root, rootKey, AdminCommonName, Names{}, x509.ExtKeyUsageClientAuth, AdminLifetime)
	if err != nil {
		return nil, fmt.Errorf("create admin certificate: %w", err)
	}
	provKey, err := newKey()
	if err != nil {
		return nil, err
	}

	for _, step := range []func() error{
		func() error { return writeCert(f.Root, root) },
		func() error { return writeKey(f.RootKey, rootKey) },
		func() error { return writeCert(f.CACert, issuer) },
		func() error {
			if caPending != nil {
				return caPending.Save()
			}
			return writeKey(f.CAKey, caKey)
		},
		func() error { return writeCert(f.TLSCert, tlsCert, issuer) },
		func() error { return writeKey(f.TLSKey, tlsKey) },
		func() error { return writeCert(f.AdminCert, adminCert, root) },
		func() error { return writeKey(f.AdminKey, adminKey) },
		func() error { return writeKey(f.ProvisionerKey, provKey) },
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if o.Store != nil {
		for _, r := range []struct {
			c      *x509.Certificate
			method storage.Method
		}{{tlsCert, storage.MethodTLS}, {adminCert, storage.MethodAdmin}} {
			rec := &storage.Cert{
				Serial: SerialHex(r.c.SerialNumber), Subject: r.c.Subject.CommonName,
				SANs: names.Strings(), NotBefore: r.c.NotBefore, NotAfter: r.c.NotAfter, IssuedAt: now,
				Method: r.method, Status: storage.StatusValid, DER: r.c.Raw,
			}
			if r.method == storage.MethodAdmin {
				rec.SANs = nil
			}
			if err := o.Store.PutCert(ctx, rec); err != nil {
				return nil, err
			}
		}
	}
	return &InitResult{Root: root, Issuer: issuer, TLS: tlsCert, Admin: adminCert, AdminFingerprint: Fingerprint(adminCert)}, nil
}

// Fingerprint is the SHA-256 of a certificate's DER, lowercase hex.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}
