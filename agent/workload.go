package agent

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/atomicfile"
	"github.com/anchorage-pki/anchorage/caclient"
	"github.com/anchorage-pki/anchorage/problem"
	"github.com/anchorage-pki/anchorage/signer"
)

// ErrRevoked means the CA answered that the current certificate is revoked:
// renewal can never succeed again, the host must be enrolled anew.
var ErrRevoked = errors.New("the certificate is revoked")

// IsRevoked reports whether err is the CA's certificate-revoked answer.
func IsRevoked(err error) bool {
	if errors.Is(err, ErrRevoked) {
		return true
	}
	var d *problem.Details
	return errors.As(err, &d) && d.Type == problem.CertRevoked
}

// caError marks an error of the call to the CA (as opposed to a local one
// such as a wrong PIN), so the agent knows a retry may help.
type caError struct{ err error }

func (e caError) Error() string { return e.err.Error() }
func (e caError) Unwrap() error { return e.err }

// isTransient reports whether a retry may succeed: the CA was unreachable
// or answered 5xx/429.
func isTransient(err error) bool {
	var ce caError
	return errors.As(err, &ce) && !isPermanent(err)
}

// isPermanent reports whether retrying the same request cannot help: the
// CA understood it and said no (a 4xx problem document).
func isPermanent(err error) bool {
	var d *problem.Details
	return errors.As(err, &d) && d.Status >= 400 && d.Status < 500 && d.Status != 429
}

// EnrollOptions is what enroll needs.
type EnrollOptions struct {
	CA, Root string // CA URL and its root certificate file
	Token    string // one-time enrollment token
	Cert     string // where the chain goes
	Key      string // key reference: file, pkcs11:, handle:, tpm:PATH
	KeyType  signer.KeyType
	Signer   []signer.Option
}

// Enroll makes a key where o.Key says (in the token or TPM for hardware
// references, where it stays), trades the token and a CSR for a
// certificate and only then commits: the key file and the chain are
// written atomically, the key 0600. If the CA refuses, a key made in a
// device is deleted again and nothing is written.
func Enroll(ctx context.Context, o EnrollOptions) (*apiv1.CertResponse, error) {
	claims, err := caclient.InspectToken(o.Token)
	if err != nil {
		return nil, err
	}
	c, err := caclient.New(o.CA, o.Root, nil)
	if err != nil {
		return nil, err
	}
	key, err := signer.Create(ctx, o.Key, o.KeyType, o.Signer...)
	if err != nil {
		return nil, err
	}
	res, err := func() (*apiv1.CertResponse, error) {
		csr, err := caclient.NewCSR(key, claims.Subject, claims.SANs)
		if err != nil {
			return nil, err
		}
		res, err := c.Enroll(ctx, o.Token, csr)
		if err != nil {
			return nil, fmt.Errorf("enroll: %w", caError{err})
		}
		if err := checkChain(res, key); err != nil {
			return nil, err
		}
		return res, nil
	}()
	if err != nil {
		if derr := key.Discard(); derr != nil {
			return nil, fmt.Errorf("%w (and removing the new key failed: %v)", err, derr)
		}
		return nil, err
	}
	if err := key.Save(); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(o.Cert, []byte(res.Chain), 0o644); err != nil {
		return nil, err
	}
	return res, nil
}

// checkChain makes sure the CA issued for our key before anything is
// written: a mismatched pair on disk would break every reader.
func checkChain(res *apiv1.CertResponse, key crypto.Signer) error {
	certs, err := parseChain([]byte(res.Chain))
	if err != nil {
		return fmt.Errorf("CA answered with an unreadable chain: %w", err)
	}
	if !keyMatches(key, certs[0]) {
		return errors.New("CA issued a certificate for another key")
	}
	return nil
}

func keyMatches(key crypto.Signer, cert *x509.Certificate) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

func parseChain(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificate")
	}
	return certs, nil
}

// Identity is the current certificate chain and its key.
type Identity struct {
	Chain []*x509.Certificate
	Key   crypto.Signer
	// Received is when this host got the certificate (the chain file's
	// modification time when loaded from disk). The CA backdates
	// notBefore, so the useful lifetime is counted from here.
	Received time.Time
}

// Start is the later of notBefore and Received: where the lifetime that
// renewal fractions apply to begins.
func (id *Identity) Start() time.Time {
	nb := id.Chain[0].NotBefore
	if id.Received.After(nb) && id.Received.Before(id.Chain[0].NotAfter) {
		return id.Received
	}
	return nb
}

// TLS returns the pair for mTLS with the CA.
func (id *Identity) TLS() *tls.Certificate {
	c := &tls.Certificate{PrivateKey: id.Key, Leaf: id.Chain[0]}
	for _, x := range id.Chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}

// LoadIdentity reads the chain file and opens the key, and checks they
// belong together.
func LoadIdentity(ctx context.Context, certFile, keyRef string, opts ...signer.Option) (*Identity, error) {
	b, err := os.ReadFile(certFile)
	var received time.Time
	if fi, serr := os.Stat(certFile); serr == nil {
		received = fi.ModTime()
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("certificate %s does not exist (enroll first)", certFile)
		}
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	chain, err := parseChain(b)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", certFile, err)
	}
	key, err := signer.Open(ctx, keyRef, opts...)
	if err != nil {
		return nil, err
	}
	if !keyMatches(key, chain[0]) {
		return nil, fmt.Errorf("key %s does not match certificate %s", signer.Redact(keyRef), certFile)
	}
	return &Identity{Chain: chain, Key: key, Received: received}, nil
}

// RenewOptions is what renew needs.
type RenewOptions struct {
	CA, Root string
	Cert     string
	Key      string
	// Rekey makes a new key (key files only) and replaces both files:
	// the key first, then the chain. See the package comment for what a
	// reader of the two files must tolerate then.
	Rekey   bool
	KeyType signer.KeyType
	Signer  []signer.Option
}

// Renew asks the CA for a successor of the current certificate over mTLS
// and replaces the chain file atomically; with Rekey, the key as well.
func Renew(ctx context.Context, o RenewOptions) (*apiv1.CertResponse, error) {
	if o.Rekey && signer.IsHardware(o.Key) {
		return nil, fmt.Errorf("--rekey works with key files only; a %s key stays in its device (enroll a new key object instead)", signer.KindOf(o.Key))
	}
	id, err := LoadIdentity(ctx, o.Cert, o.Key, o.Signer...)
	if err != nil {
		return nil, err
	}
	_, res, err := renewWith(ctx, o, id)
	return res, err
}

// renewWith renews id and returns the new identity.
func renewWith(ctx context.Context, o RenewOptions, id *Identity) (*Identity, *apiv1.CertResponse, error) {
	newKey := id.Key
	if o.Rekey {
		// The reference may be a plain path to a TSS2 file (a TPM key,
		// told by content): only a software key may be replaced by one.
		switch id.Key.(type) {
		case *ecdsa.PrivateKey, *rsa.PrivateKey, ed25519.PrivateKey:
		default:
			return nil, nil, fmt.Errorf("rekey works with software key files only; %s holds a key that stays in its device (enroll a new key instead)", signer.Redact(o.Key))
		}
		k, err := pendingKey(ctx, o)
		if err != nil {
			return nil, nil, err
		}
		newKey = k
	}
	// Subject and names come from the current certificate on the CA side;
	// the CSR only proves possession of the (new) key.
	csr, err := caclient.NewCSR(newKey, id.Chain[0].Subject.CommonName, nil)
	if err != nil {
		return nil, nil, err
	}
	c, err := caclient.New(o.CA, o.Root, id.TLS())
	if err != nil {
		return nil, nil, err
	}
	res, err := c.Renew(ctx, csr)
	if err != nil {
		if o.Rekey && isPermanent(err) {
			os.Remove(pendingKeyPath(o.Key)) // refused for good: the next attempt starts afresh
		}
		if IsRevoked(err) {
			return nil, nil, fmt.Errorf("renew: %w: %v", ErrRevoked, err)
		}
		return nil, nil, fmt.Errorf("renew: %w", caError{err})
	}
	if err := checkChain(res, newKey); err != nil {
		return nil, nil, err
	}
	chain, _ := parseChain([]byte(res.Chain))
	next := &Identity{Chain: chain, Key: newKey, Received: time.Now()}
	if !o.Rekey {
		return next, res, atomicfile.Write(o.Cert, []byte(res.Chain), 0o644)
	}
	keyPEM, err := signer.Encode(newKey)
	if err != nil {
		return nil, nil, err
	}
	if err := writePair(o.Cert, []byte(res.Chain), o.Key, keyPEM); err != nil {
		return nil, nil, err
	}
	os.Remove(pendingKeyPath(o.Key))
	return next, res, nil
}

func pendingKeyPath(key string) string { return key + ".next" }

// pendingKey is the new key of a rekeying renewal. It is written (0600)
// before the CA is asked and reused until the renewal lands: the CA lets
// only the newest certificate of a lineage renew, and answers a repeated
// renewal with the successor it already issued only for the same key, so
// a renewal whose answer was lost must be retried with the same new key —
// a fresh one would find the certificate superseded and lock the host out.
func pendingKey(ctx context.Context, o RenewOptions) (crypto.Signer, error) {
	path := pendingKeyPath(o.Key)
	if _, err := os.Stat(path); err == nil {
		k, err := signer.Open(ctx, path)
		if err == nil {
			return k, nil
		}
		return nil, fmt.Errorf("pending renewal key %s: %w (remove it to start a new rekey)", path, err)
	}
	k, err := signer.Generate(o.KeyType)
	if err != nil {
		return nil, err
	}
	if err := signer.WriteFile(path, k); err != nil {
		return nil, fmt.Errorf("pending renewal key: %w", err)
	}
	return k, nil
}

// writePair replaces key and chain with the window between them as short
// as it can be: both temp files are written and synced first, then the key
// is renamed into place and the chain right after, then the directories
// are synced. A reader that sees the new chain always finds the new key.
func writePair(certPath string, cert []byte, keyPath string, key []byte) error {
	tmpKey, err := writeTemp(keyPath, key, 0o600)
	if err != nil {
		return err
	}
	tmpCert, err := writeTemp(certPath, cert, 0o644)
	if err != nil {
		os.Remove(tmpKey)
		return err
	}
	if err := os.Rename(tmpKey, keyPath); err != nil {
		os.Remove(tmpKey)
		os.Remove(tmpCert)
		return fmt.Errorf("write %s: %w", keyPath, err)
	}
	if err := os.Rename(tmpCert, certPath); err != nil {
		os.Remove(tmpCert)
		return fmt.Errorf("write %s: %w", certPath, err)
	}
	for _, d := range []string{filepath.Dir(keyPath), filepath.Dir(certPath)} {
		if f, err := os.Open(d); err == nil {
			f.Sync()
			f.Close()
		}
	}
	return nil
}

func writeTemp(path string, data []byte, perm os.FileMode) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return f.Name(), nil
}
