package rolesanywhere

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/pkcs12"
)

// KeyOpener opens a private key that is not a PEM file this package can
// read: a "pkcs11:" URI, a TPM "handle:0x81…" or a TSS2 PRIVATE KEY file.
// It is the seam where token and TPM support plug in later.
type KeyOpener func(ctx context.Context, ref string) (crypto.Signer, error)

// ErrUnsupportedKey is returned for key references no opener handles yet.
var ErrUnsupportedKey = errors.New("unsupported private key source")

// SourceConfig names where the certificate and key come from; the fields
// mirror the helper's flags.
type SourceConfig struct {
	// Certificate is a PEM file (first CERTIFICATE block) or, with no
	// PrivateKey, an unencrypted PKCS#12 file.
	Certificate string
	// PrivateKey is a PEM file (PKCS#8, encrypted PKCS#8, SEC1, PKCS#1) or
	// a reference for OpenKey.
	PrivateKey string
	// Intermediates is a PEM bundle of CERTIFICATE blocks, sent in order.
	Intermediates string
	// PKCS8Password decrypts an ENCRYPTED PRIVATE KEY.
	PKCS8Password []byte
	// OpenKey handles pkcs11:, handle: and TSS2 key references; nil means
	// they are refused with ErrUnsupportedKey.
	OpenKey KeyOpener
}

// FileSource loads an Identity from files and loads it again when any of
// them changes (mtime, size or inode), so a renewed certificate is used
// without a restart. It is safe for concurrent use.
type FileSource struct {
	cfg SourceConfig

	mu     sync.Mutex
	stamps []fileStamp
	id     Identity
}

// NewFileSource checks the flag combination and loads the files once, so
// mistakes show at start-up rather than at the first request.
func NewFileSource(ctx context.Context, cfg SourceConfig) (*FileSource, error) {
	switch {
	case cfg.Certificate == "":
		return nil, errors.New("no certificate: --certificate is required")
	case strings.HasPrefix(cfg.Certificate, "pkcs11:"):
		return nil, fmt.Errorf("%w: certificates in a PKCS#11 token (%q) are not supported yet", ErrUnsupportedKey, redactURI(cfg.Certificate))
	}
	s := &FileSource{cfg: cfg}
	if _, err := s.Identity(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Identity returns the current identity, re-reading the files if they
// changed since the last call.
func (s *FileSource) Identity(ctx context.Context) (Identity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stamps, err := s.stampFiles()
	if err != nil {
		return Identity{}, err
	}
	if s.id.Signer != nil && stampsEqual(stamps, s.stamps) {
		return s.id, nil
	}
	id, err := s.load(ctx)
	if err != nil {
		return Identity{}, err
	}
	s.id, s.stamps = id, stamps
	return id, nil
}

// fileStamp identifies one version of a file without reading it.
type fileStamp struct {
	path  string
	mtime time.Time
	size  int64
	ino   uint64
}

func (s *FileSource) stampFiles() ([]fileStamp, error) {
	paths := []string{s.cfg.Certificate}
	if s.cfg.PrivateKey != "" && !isKeyReference(s.cfg.PrivateKey) {
		paths = append(paths, s.cfg.PrivateKey)
	}
	if s.cfg.Intermediates != "" {
		paths = append(paths, s.cfg.Intermediates)
	}
	stamps := make([]fileStamp, 0, len(paths))
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("read credentials: %w", err)
		}
		st := fileStamp{path: p, mtime: fi.ModTime(), size: fi.Size()}
		if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
			st.ino = sys.Ino
		}
		stamps = append(stamps, st)
	}
	return stamps, nil
}

func stampsEqual(a, b []fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].path != b[i].path || !a[i].mtime.Equal(b[i].mtime) || a[i].size != b[i].size || a[i].ino != b[i].ino {
			return false
		}
	}
	return true
}

// isKeyReference tells references for OpenKey from file paths.
func isKeyReference(ref string) bool {
	return strings.HasPrefix(ref, "pkcs11:") || strings.HasPrefix(ref, "handle:")
}

func (s *FileSource) load(ctx context.Context) (Identity, error) {
	certData, err := os.ReadFile(s.cfg.Certificate)
	if err != nil {
		return Identity{}, fmt.Errorf("read certificate: %w", err)
	}
	if s.cfg.PrivateKey == "" {
		if block, _ := pem.Decode(certData); block != nil {
			return Identity{}, errors.New("no private key: --private-key is required with a PEM certificate")
		}
		if s.cfg.Intermediates != "" {
			return Identity{}, errors.New("--intermediates cannot be used with a PKCS#12 certificate file")
		}
		return loadPKCS12(certData)
	}

	cert, err := firstCertificate(certData)
	if err != nil {
		return Identity{}, fmt.Errorf("read certificate %s: %w", s.cfg.Certificate, err)
	}
	var chain []*x509.Certificate
	if s.cfg.Intermediates != "" {
		data, err := os.ReadFile(s.cfg.Intermediates)
		if err != nil {
			return Identity{}, fmt.Errorf("read intermediates: %w", err)
		}
		if chain, err = parseChain(data); err != nil {
			return Identity{}, fmt.Errorf("read intermediates %s: %w", s.cfg.Intermediates, err)
		}
	}
	signer, err := s.openKey(ctx)
	if err != nil {
		return Identity{}, err
	}
	if err := checkKeyMatches(signer, cert); err != nil {
		return Identity{}, err
	}
	return Identity{Signer: signer, Certificate: cert, Chain: chain}, nil
}

func (s *FileSource) openKey(ctx context.Context) (crypto.Signer, error) {
	ref := s.cfg.PrivateKey
	if isKeyReference(ref) {
		return s.external(ctx, ref)
	}
	data, err := os.ReadFile(ref)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	if bytes.Contains(data, []byte("-----BEGIN TSS2 PRIVATE KEY-----")) {
		return s.external(ctx, ref)
	}
	signer, err := parsePrivateKey(data, s.cfg.PKCS8Password)
	if err != nil {
		return nil, fmt.Errorf("read private key %s: %w", ref, err)
	}
	return signer, nil
}

func (s *FileSource) external(ctx context.Context, ref string) (crypto.Signer, error) {
	if s.cfg.OpenKey == nil {
		kind := "TPM keys"
		if strings.HasPrefix(ref, "pkcs11:") {
			kind = "PKCS#11 keys"
		}
		return nil, fmt.Errorf("%w: %s (%q) are not supported yet", ErrUnsupportedKey, kind, redactURI(ref))
	}
	signer, err := s.cfg.OpenKey(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("open private key %q: %w", redactURI(ref), err)
	}
	return signer, nil
}

// redactURI hides a pin-value so errors can be logged.
func redactURI(ref string) string {
	if i := strings.Index(ref, "pin-value="); i >= 0 {
		end := strings.IndexAny(ref[i:], "&;")
		if end < 0 {
			return ref[:i] + "pin-value=REDACTED"
		}
		return ref[:i] + "pin-value=REDACTED" + ref[i+end:]
	}
	return ref
}

// firstCertificate returns the first CERTIFICATE block, skipping others.
func firstCertificate(data []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no CERTIFICATE PEM block")
		}
		if block.Type == "CERTIFICATE" {
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse certificate: %w", err)
			}
			return cert, nil
		}
	}
}

// parseChain reads a bundle where every block must be a certificate; the
// order is kept because it is the order sent in X-Amz-X509-Chain.
func parseChain(data []byte) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("invalid certificate chain: unexpected %s block", block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("invalid certificate chain: %w", err)
		}
		chain = append(chain, cert)
	}
	if len(chain) == 0 {
		return nil, errors.New("invalid certificate chain: no certificates")
	}
	return chain, nil
}

// parsePrivateKey reads the first key block of a PEM file.
func parsePrivateKey(data, password []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no private key PEM block")
		}
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			if len(password) == 0 {
				return nil, errors.New("the private key is encrypted: pass --pkcs8-password")
			}
			der, derr := decryptPKCS8(block.Bytes, password)
			if derr != nil {
				return nil, derr
			}
			key, err = x509.ParsePKCS8PrivateKey(der)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			if _, legacy := block.Headers["Proc-Type"]; legacy {
				return nil, errors.New("legacy PEM encryption is not supported: convert the key to encrypted PKCS#8")
			}
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", block.Type, err)
		}
		switch k := key.(type) {
		case *ecdsa.PrivateKey:
			return k, nil
		case *rsa.PrivateKey:
			return k, nil
		default:
			return nil, fmt.Errorf("unsupported key type %T: need an EC or RSA key", key)
		}
	}
}

// parseKeyDER reads a PKCS#8, SEC1 or PKCS#1 key of unknown encoding.
func parseKeyDER(der []byte) (crypto.Signer, error) {
	for _, typ := range []string{"PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"} {
		if s, err := parsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), nil); err == nil {
			return s, nil
		}
	}
	return nil, errors.New("unreadable private key")
}

// checkKeyMatches refuses a key that is not the certificate's: the service
// would answer "Invalid signature", which is much harder to act on.
func checkKeyMatches(signer crypto.Signer, cert *x509.Certificate) error {
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return errors.New("the private key does not match the certificate's public key")
	}
	return nil
}

// loadPKCS12 reads an unencrypted PKCS#12 file. The leaf is the certificate
// that issued no other certificate in the file; like the helper, the chain
// header then carries every certificate of the file, leaf first.
func loadPKCS12(data []byte) (Identity, error) {
	blocks, err := pkcs12.ToPEM(data, "")
	if err != nil {
		return Identity{}, fmt.Errorf("read PKCS#12 certificate (only unencrypted files are supported): %w", err)
	}
	var certs []*x509.Certificate
	var signer crypto.Signer
	for _, b := range blocks {
		switch b.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return Identity{}, fmt.Errorf("read PKCS#12 certificate: %w", err)
			}
			certs = append(certs, c)
		default:
			if signer != nil {
				return Identity{}, errors.New("read PKCS#12: more than one private key")
			}
			// ToPEM labels every key "PRIVATE KEY" but encodes EC keys as
			// SEC1, so try the encodings in turn.
			if signer, err = parseKeyDER(b.Bytes); err != nil {
				return Identity{}, fmt.Errorf("read PKCS#12 key: %w", err)
			}
		}
	}
	if signer == nil || len(certs) == 0 {
		return Identity{}, errors.New("read PKCS#12: need a private key and a certificate")
	}
	leafIdx := -1
	for i, c := range certs {
		issues := false
		for j, o := range certs {
			if i != j && bytes.Equal(o.RawIssuer, c.RawSubject) {
				issues = true
				break
			}
		}
		if !issues {
			leafIdx = i
			break
		}
	}
	if leafIdx < 0 {
		return Identity{}, errors.New("read PKCS#12: cannot tell the end-entity certificate")
	}
	leaf := certs[leafIdx]
	if err := checkKeyMatches(signer, leaf); err != nil {
		return Identity{}, err
	}
	chain := []*x509.Certificate{leaf}
	for i, c := range certs {
		if i != leafIdx {
			chain = append(chain, c)
		}
	}
	return Identity{Signer: signer, Certificate: leaf, Chain: chain}, nil
}
