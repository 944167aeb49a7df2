// Package acme is anchorage's ACME (RFC 8555) front end, so that unmodified
// certbot, lego and other ACME clients get certificates from the CA.
//
// Each configured provisioner has its own directory at
// /acme/{provisioner}/directory and its own policy: which names and IP
// addresses it certifies, the certificate lifetime, whether serverAuth is
// added, which challenges it offers and where its validator connects.
// Accounts, orders and authorizations live in the CA's record of truth
// (Store, the storage package's bbolt file) beside the certificates, which
// are signed and recorded by the issuing core (ca.Authority.Issue, method
// "acme") so that they appear in /v1/certs. A finalize claims the order
// (ready → processing) and passes its id to Issue; storage marks the order
// valid in the commit that stores the certificate, so a crash leaves either
// both or neither, and New settles orders a crash left processing.
// revokeCert goes through ca.Authority.Revoke, so it reaches the CRL and the
// trust anchors like an admin revocation.
//
// Anti-replay nonces (nonce.go) are HMAC tokens that carry their issue
// time, under a key shared through storage: any replica of the CA accepts
// a nonce any replica minted, minting writes nothing, and a nonce is
// consumed in storage, once across replicas, only by a request whose JWS
// passed every other check (structure, signature, url).
//
// What a client can make the CA store before proving control of a name is
// bounded (config "acme.limits"): identifiers per order, unfinished orders
// and authorizations per account, new accounts and orders per client IP per
// minute. Expired orders go in the CA's hourly prune (storage.PruneACME).
//
// Supported: accounts (jwk for newAccount, kid after), optional External
// Account Binding, onlyReturnExisting, contact update, deactivation, key
// rollover; orders for dns and ip identifiers (wildcards through dns-01);
// http-01, dns-01 and tls-alpn-01; finalize; the PEM chain; revokeCert
// signed by the issuing account or by the certificate's key. Not
// supported: pre-authorization (newAuthz), the account's orders list,
// notBefore/notAfter in orders, authorization reuse across orders.
package acme

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/crl"
	"github.com/anchorage-pki/anchorage/storage"
)

// Authority is the issuing core as the ACME front end uses it.
type Authority interface {
	Issue(ctx context.Context, r ca.Request) (*ca.Issued, error)
	Revoke(ctx context.Context, r ca.RevokeRequest) (*ca.RevokeResult, error)
	// Issuer completes the chain a certificate download serves.
	Issuer() *x509.Certificate
}

// Options configure New.
type Options struct {
	Authority Authority
	Store     Store // the CA's storage
	Config    *config.ACME
	// Dir is the CA directory: Config.DB and EAB key files are relative to it.
	Dir string
	// BaseURL is the CA's URL (config "url"). Links in responses use the
	// host the client reached the CA by; BaseURL is the fallback.
	BaseURL string
	Logger  *slog.Logger
	Now     func() time.Time
	// ValidationWait is how long a challenge POST waits for its validation
	// before answering "processing" (default 5s). Clients then poll.
	ValidationWait time.Duration
	// CRL, when set, lets revokeCert answer once a stored CRL carries the
	// revocation (waiting at most 10s; the revocation stands regardless).
	CRL CRLWaiter
}

// CRLWaiter waits for a stored CRL that covers a revocation sequence.
type CRLWaiter interface {
	WaitFor(ctx context.Context, seq uint64) (*crl.CRL, error)
}

// Server serves every configured ACME provisioner under /acme/.
type Server struct {
	provs                  map[string]*provisioner
	store                  Store
	limits                 config.ACMELimits
	newAccounts, newOrders *ipLimiter
	newAccountsAll         *globalLimiter // newAccounts across every address
	nonces                 *nonces
	auth                   Authority
	baseURL                string
	log                    *slog.Logger
	now                    func() time.Time
	wait                   time.Duration
	crl                    CRLWaiter

	ctx    context.Context // validations run under it
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New prepares each provisioner and settles orders a crash left
// processing. ctx bounds background challenge validations; Close waits for
// them.
func New(ctx context.Context, o Options) (*Server, error) {
	if o.Authority == nil || o.Store == nil || o.Config == nil {
		return nil, errors.New("acme: Authority, Store and Config are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ValidationWait <= 0 {
		o.ValidationWait = 5 * time.Second
	}
	s := &Server{
		provs: map[string]*provisioner{}, auth: o.Authority, store: o.Store,
		baseURL: strings.TrimSuffix(o.BaseURL, "/"), log: o.Logger, now: o.Now, wait: o.ValidationWait, crl: o.CRL,
		limits: o.Config.Limits.WithDefaults(),
	}
	s.newAccounts = newIPLimiter(s.limits.NewAccountsPerIPPerMinute, o.Now)
	s.newOrders = newIPLimiter(s.limits.NewOrdersPerIPPerMinute, o.Now)
	s.newAccountsAll = newGlobalLimiter(s.limits.NewAccountsPerMinute, o.Now)
	for i := range o.Config.Provisioners {
		p, err := newProvisioner(&o.Config.Provisioners[i], o.Dir)
		if err != nil {
			return nil, err
		}
		s.provs[p.name] = p
	}
	n, err := newNonceMinter(ctx, o.Store, o.Now)
	if err != nil {
		return nil, err
	}
	s.nonces = n
	if err := s.importLegacy(ctx, o); err != nil {
		return nil, err
	}
	if err := s.resolve(ctx); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.nonces.prune(s.ctx, s.log, noncePruneEvery)
	}()
	return s, nil
}

// importLegacy takes over the acme.db where this package kept its state
// before it moved into the CA's storage: accounts with their key and EAB
// bindings are imported once (then the file is renamed *.imported), so
// clients keep their accounts and an EAB key stays bound to one.
func (s *Server) importLegacy(ctx context.Context, o Options) error {
	path := o.Config.DBFile()
	if !filepath.IsAbs(path) {
		path = filepath.Join(o.Dir, path)
	}
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	imp, ok := o.Store.(legacyImporter)
	if !ok {
		s.log.Warn("ACME: old state file ignored; this store cannot import it", "path", path)
		return nil
	}
	n, err := imp.ImportLegacyACME(ctx, path)
	if err != nil {
		return fmt.Errorf("acme: %w", err)
	}
	s.log.Info("ACME: accounts imported from the old state file; its orders were not (clients make new ones)",
		"path", path, "accounts", n, "renamed_to", path+".imported")
	return nil
}

// resolve settles orders left processing by a finalize that never
// finished (the process died after the claim): valid if a certificate was
// recorded for the order, else ready for another finalize, or invalid if
// the order has expired meanwhile.
func (s *Server) resolve(ctx context.Context) error {
	now := s.now()
	n, err := s.store.ResolveACMEOrders(ctx, func(o *order, c *storage.Cert) {
		switch {
		case c != nil:
			o.Status, o.CertSerial, o.CertNotAfter, o.Error = statusValid, c.Serial, c.NotAfter, nil
		case now.Before(o.Expires):
			o.Status = statusReady
		default:
			o.Status = statusInvalid
			o.Error = problemf(ErrServerInternal, http.StatusInternalServerError, "the CA stopped while finalizing and the order has expired since").raw()
		}
		s.log.Warn("ACME order left processing by an interrupted finalize", "order", o.ID, "account", o.AccountID, "now", o.Status, "serial", o.CertSerial)
	})
	if err != nil {
		return fmt.Errorf("acme: %w", err)
	}
	if n > 0 {
		s.log.Info("ACME orders resolved at start", "count", n)
	}
	return nil
}

// Close stops validations in flight. The store belongs to the caller.
func (s *Server) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// Prefix is where the handler expects to be mounted.
const Prefix = "/acme/"

// ServeHTTP routes /acme/{provisioner}/{resource}[/{id}[/{sub}]].
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	rest, ok := strings.CutPrefix(r.URL.Path, Prefix)
	name, rest, _ := strings.Cut(rest, "/")
	p := s.provs[name]
	if !ok || p == nil {
		s.fail(w, r, nil, notFound("no ACME provisioner %q here", name))
		return
	}
	// Every response carries a fresh nonce (RFC 8555 §6.5): certbot
	// insists on one, also on errors and the certificate download.
	w.Header().Set("Replay-Nonce", s.nonces.issue())
	w.Header().Add("Link", link(s.url(r, p, "directory"), "index"))
	parts := strings.Split(rest, "/")
	switch {
	case rest == "directory":
		if s.method(w, r, p, http.MethodGet) {
			s.directory(w, r, p)
		}
	case rest == "new-nonce":
		switch r.Method {
		case http.MethodHead:
			w.WriteHeader(http.StatusOK)
		case http.MethodGet:
			w.WriteHeader(http.StatusNoContent)
		default:
			s.method(w, r, p, http.MethodGet, http.MethodHead)
		}
	case !s.method(w, r, p, http.MethodPost):
	case rest == "new-account":
		s.newAccount(w, r, p)
	case rest == "key-change":
		s.keyChange(w, r, p)
	case rest == "new-order":
		s.newOrder(w, r, p)
	case rest == "revoke-cert":
		s.revokeCert(w, r, p)
	case len(parts) == 2 && parts[0] == "account":
		s.account(w, r, p, parts[1])
	case len(parts) == 2 && parts[0] == "order":
		s.order(w, r, p, parts[1])
	case len(parts) == 3 && parts[0] == "order" && parts[2] == "finalize":
		s.finalize(w, r, p, parts[1])
	case len(parts) == 2 && parts[0] == "authz":
		s.authz(w, r, p, parts[1])
	case len(parts) == 3 && parts[0] == "chall":
		s.challenge(w, r, p, parts[1], parts[2])
	case len(parts) == 2 && parts[0] == "cert":
		s.certificate(w, r, p, parts[1])
	default:
		s.fail(w, r, p, notFound("no ACME resource %s", r.URL.Path))
	}
}

func (s *Server) method(w http.ResponseWriter, r *http.Request, p *provisioner, allowed ...string) bool {
	for _, m := range allowed {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	s.fail(w, r, p, &Problem{Type: ErrMalformed, Status: http.StatusMethodNotAllowed,
		Detail: fmt.Sprintf("use %s for %s (ACME fetches resources with POST-as-GET)", strings.Join(allowed, " or "), r.URL.Path)})
	return false
}

// base is the URL prefix of provisioner p as the client reached it.
func (s *Server) base(r *http.Request, p *provisioner) string {
	host := s.baseURL
	if r.Host != "" {
		scheme := "https"
		if r.TLS == nil {
			scheme = "http"
		}
		host = scheme + "://" + r.Host
	}
	return host + Prefix + p.name
}

func (s *Server) url(r *http.Request, p *provisioner, path ...string) string {
	return s.base(r, p) + "/" + strings.Join(path, "/")
}

func link(url, rel string) string { return "<" + url + `>;rel="` + rel + `"` }

func (s *Server) directory(w http.ResponseWriter, r *http.Request, p *provisioner) {
	writeJSON(w, http.StatusOK, map[string]any{
		"newNonce":   s.url(r, p, "new-nonce"),
		"newAccount": s.url(r, p, "new-account"),
		"newOrder":   s.url(r, p, "new-order"),
		"revokeCert": s.url(r, p, "revoke-cert"),
		"keyChange":  s.url(r, p, "key-change"),
		"meta":       map[string]any{"externalAccountRequired": p.eab != nil},
	})
}
