package caserver

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"go.step.sm/crypto/pemutil"

	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/signer"
)

// readIntermediate reads one of the root's intermediates (admin, service)
// from the CA directory: nil, nil, nil when its certificate file does not
// exist; an error when it is unreadable, not signed by root, or its key
// cannot be opened. what names it in errors ("admin intermediate").
func readIntermediate(ctx context.Context, what, certPath, keyPath string, root *x509.Certificate) (*x509.Certificate, crypto.Signer, error) {
	cert, err := pemutil.ReadCertificate(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := cert.CheckSignatureFrom(root); err != nil {
		return nil, nil, fmt.Errorf("%s %s is not signed by the root: %w", what, certPath, err)
	}
	key, err := signer.Open(ctx, keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("%s key: %w", what, err)
	}
	return cert, key, nil
}

// Why openRootKey could not open the root key; callers say what to do.
var (
	errNoRootKeyConfigured = errors.New("no root key configured")
	errRootKeyAbsent       = errors.New("the root key is not in the CA directory")
)

// openRootKey opens the root key to make an intermediate for a CA made
// before it existed. It returns the key's path for messages, and
// errNoRootKeyConfigured or errRootKeyAbsent when there is no key to open.
func openRootKey(ctx context.Context, cfg *config.CA) (crypto.Signer, string, error) {
	if cfg.Paths.RootKey == "" {
		return nil, "", errNoRootKeyConfigured
	}
	path := cfg.Path(cfg.Paths.RootKey)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, path, errRootKeyAbsent
	}
	key, err := signer.Open(ctx, path)
	if err != nil {
		return nil, path, fmt.Errorf("root key: %w", err)
	}
	return key, path, nil
}
