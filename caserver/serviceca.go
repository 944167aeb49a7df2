package caserver

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"go.step.sm/crypto/pemutil"

	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/ceremony"
	"github.com/anchorage-pki/anchorage/config"
)

// ErrRootKeyOffline is returned when an intermediate must be made from the
// root key and the root key is not in the CA directory.
var ErrRootKeyOffline = errors.New("the root key is offline")

// serviceCA holds the service intermediate that signs the API's TLS
// certificate. A CA made before it existed has none: the TLS renewal makes
// it from the root key if that is still in the CA directory, and otherwise
// keeps renewing from the issuing CA, with a warning, until `anchorage-ca
// service-ca` is run with the root key present.
type serviceCA struct {
	cfg  *config.CA
	root *x509.Certificate
	log  *slog.Logger

	mu  sync.Mutex // serialises load and create
	cur atomic.Pointer[ca.ServiceCA]
}

// get returns the service intermediate, reading it from disk if it
// appeared there since; nil, nil while there is none.
func (h *serviceCA) get(ctx context.Context) (*ca.ServiceCA, error) {
	if c := h.cur.Load(); c != nil {
		return c, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.loadLocked(ctx)
}

func (h *serviceCA) loadLocked(ctx context.Context) (*ca.ServiceCA, error) {
	if c := h.cur.Load(); c != nil {
		return c, nil
	}
	certPath, keyPath := h.cfg.ServiceCAPaths()
	cert, key, err := readIntermediate(ctx, "service intermediate", certPath, keyPath, h.root)
	if cert == nil || err != nil {
		return nil, err
	}
	c, err := ca.NewServiceCA(cert, key)
	if err != nil {
		return nil, err
	}
	h.cur.Store(c)
	return c, nil
}

// certificate is the service intermediate's certificate, nil while there
// is none (for the expiry metric).
func (h *serviceCA) certificate() *x509.Certificate {
	if c := h.cur.Load(); c != nil {
		return c.Certificate()
	}
	return nil
}

// ensure returns the service intermediate, making it from the root key if
// there is none; ErrRootKeyOffline if the root key is not in the directory.
func (h *serviceCA) ensure(ctx context.Context) (*ca.ServiceCA, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, err := h.loadLocked(ctx); c != nil || err != nil {
		return c, err
	}
	certPath, keyPath := h.cfg.ServiceCAPaths()
	rootKey, rootKeyPath, err := openRootKey(ctx, h.cfg)
	switch {
	case errors.Is(err, errNoRootKeyConfigured):
		return nil, fmt.Errorf("no service intermediate (%s): %w (none configured)", certPath, ErrRootKeyOffline)
	case errors.Is(err, errRootKeyAbsent):
		return nil, fmt.Errorf("no service intermediate (%s): %w (%s)", certPath, ErrRootKeyOffline, rootKeyPath)
	case err != nil:
		return nil, err
	}
	cert, key, err := ceremony.ServiceCA(ceremony.IntermediateOptions{Name: h.cfg.Name, Root: h.root, RootKey: rootKey, Cert: certPath, Key: keyPath})
	if err != nil {
		return nil, err
	}
	c, err := ca.NewServiceCA(cert, key)
	if err != nil {
		return nil, err
	}
	h.cur.Store(c)
	h.log.Warn("made the service intermediate from the root key; move the root key offline again", "cert", certPath)
	return c, nil
}

// MakeServiceCA makes the service intermediate of the CA in cfg's
// directory from its root key (`anchorage-ca service-ca`, for a CA made
// before it existed). It needs no database, so serve may be running: on
// SIGHUP, its daily check or its next start, serve re-issues tls.pem from
// it. An existing service intermediate is returned as it is (made false).
func MakeServiceCA(ctx context.Context, cfg *config.CA, log *slog.Logger) (cert *x509.Certificate, made bool, err error) {
	if log == nil {
		log = slog.Default()
	}
	root, err := pemutil.ReadCertificate(cfg.Path(cfg.Paths.Root))
	if err != nil {
		return nil, false, fmt.Errorf("root certificate: %w", err)
	}
	h := &serviceCA{cfg: cfg, root: root, log: log}
	if c, err := h.get(ctx); c != nil || err != nil {
		if err != nil {
			return nil, false, err
		}
		return c.Cert(), false, nil
	}
	c, err := h.ensure(ctx)
	if err != nil {
		return nil, false, err
	}
	return c.Cert(), true, nil
}
