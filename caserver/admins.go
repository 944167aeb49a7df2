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
	"github.com/anchorage-pki/anchorage/storage"
)

// adminCA holds the admin intermediate the API issues admin certificates
// with and verifies them against. A CA made before the admin intermediate
// existed has none: the first `admin issue` makes it from the root key if
// that is still in the CA directory, and otherwise says what to do.
type adminCA struct {
	cfg   *config.CA
	root  *x509.Certificate
	store interface {
		PutCert(ctx context.Context, c *storage.Cert) error
	}
	log *slog.Logger

	mu  sync.Mutex // serialises load and create
	cur atomic.Pointer[ca.AdminIssuer]
}

// Issuer returns the admin intermediate, or nil while there is none.
func (h *adminCA) Issuer() *x509.Certificate {
	if i := h.cur.Load(); i != nil {
		return i.Issuer()
	}
	return nil
}

// IssueAdmin signs an admin certificate, making the admin intermediate
// first if there is none yet.
func (h *adminCA) IssueAdmin(ctx context.Context, r ca.AdminRequest) (*ca.Issued, error) {
	i, err := h.ensure(ctx)
	if err != nil {
		return nil, err
	}
	return i.Issue(ctx, r)
}

// load reads the admin intermediate if its files exist; missing files are
// not an error (nil, nil).
func (h *adminCA) load(ctx context.Context) (*ca.AdminIssuer, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	certPath, keyPath := h.cfg.AdminCAPaths()
	cert, key, err := readIntermediate(ctx, "admin intermediate", certPath, keyPath, h.root)
	if cert == nil || err != nil {
		return nil, err
	}
	i, err := ca.NewAdminIssuer(ca.AdminOptions{Issuer: cert, Signer: key, Store: h.store, Logger: h.log})
	if err != nil {
		return nil, err
	}
	h.cur.Store(i)
	return i, nil
}

func (h *adminCA) ensure(ctx context.Context) (*ca.AdminIssuer, error) {
	if i := h.cur.Load(); i != nil {
		return i, nil
	}
	if i, err := h.load(ctx); i != nil || err != nil {
		return i, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if i := h.cur.Load(); i != nil {
		return i, nil
	}
	certPath, keyPath := h.cfg.AdminCAPaths()
	rootKey, rootKeyPath, err := openRootKey(ctx, h.cfg)
	switch {
	case errors.Is(err, errNoRootKeyConfigured):
		return nil, fmt.Errorf("%w (%s) and no root key configured to make one", ca.ErrNoAdminCA, certPath)
	case errors.Is(err, errRootKeyAbsent):
		return nil, fmt.Errorf("%w (%s) and the root key %s is offline: put it back for one `anchorage-ca admin issue`, then move it offline again", ca.ErrNoAdminCA, certPath, rootKeyPath)
	case err != nil:
		return nil, err
	}
	cert, key, err := ceremony.AdminCA(ceremony.AdminCAOptions{Name: h.cfg.Name, Root: h.root, RootKey: rootKey, Cert: certPath, Key: keyPath})
	if err != nil {
		return nil, err
	}
	i, err := ca.NewAdminIssuer(ca.AdminOptions{Issuer: cert, Signer: key, Store: h.store, Logger: h.log})
	if err != nil {
		return nil, err
	}
	h.cur.Store(i)
	h.log.Warn("made the admin intermediate from the root key; move the root key offline again", "cert", certPath)
	return i, nil
}

// reloadAdmins applies what SIGHUP may change about admins: the legacy
// fingerprint list, and an admin intermediate that appeared on disk.
func (s *Server) reloadAdmins(ctx context.Context, cfg *config.CA) error {
	if s.adminCA.cur.Load() == nil {
		if _, err := s.adminCA.load(ctx); err != nil {
			return err
		}
	}
	s.api.SetAdmins(cfg.Admins)
	s.Config.Admins = cfg.Admins
	return nil
}

// AdminIssuer opens the admin intermediate of the CA in cfg's directory
// for issuing outside a running server (`anchorage-ca admin issue --local`
// with serve stopped: the break-glass when every admin certificate has
// expired). Like the first `admin issue` over the API, it makes the admin
// intermediate from the root key if there is none yet.
func AdminIssuer(ctx context.Context, cfg *config.CA, store interface {
	PutCert(ctx context.Context, c *storage.Cert) error
}, log *slog.Logger) (*ca.AdminIssuer, error) {
	if log == nil {
		log = slog.Default()
	}
	root, err := pemutil.ReadCertificate(cfg.Path(cfg.Paths.Root))
	if err != nil {
		return nil, fmt.Errorf("root certificate: %w", err)
	}
	h := &adminCA{cfg: cfg, root: root, store: store, log: log}
	return h.ensure(ctx)
}
