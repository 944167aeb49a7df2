// Package acme is anchorage's ACME (RFC 8555) front end, so that unmodified
// certbot, lego and other ACME clients get certificates from the CA.
//
// Each configured provisioner has its own directory at
// /acme/{provisioner}/directory and its own policy: which names and IP
// addresses it certifies, the certificate lifetime, whether serverAuth is
// added, which challenges it offers and where its validator connects.
// Accounts, orders and authorizations live in a bbolt file of their own
// (DIR/acme.db); certificates are signed and recorded by the issuing core
// (ca.Authority.Issue, method "acme"), so they appear in /v1/certs, and
// revokeCert goes through ca.Authority.Revoke, so it reaches the CRL and the
// trust anchors like an admin revocation.
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
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/config"
)

// Authority is the issuing core as the ACME front end uses it.
type Authority interface {
	Issue(ctx context.Context, r ca.Request) (*ca.Issued, error)
	Revoke(ctx context.Context, r ca.RevokeRequest) (*ca.RevokeResult, error)
}

// Options configure New.
type Options struct {
	Authority Authority
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
}

// Server serves every configured ACME provisioner under /acme/.
type Server struct {
	provs   map[string]*provisioner
	store   *store
	nonces  *nonces
	auth    Authority
	baseURL string
	log     *slog.Logger
	now     func() time.Time
	wait    time.Duration

	ctx    context.Context // validations run under it
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New opens the ACME state file and prepares each provisioner. ctx bounds
// background challenge validations; Close waits for them.
func New(ctx context.Context, o Options) (*Server, error) {
	if o.Authority == nil || o.Config == nil {
		return nil, errors.New("acme: Authority and Config are required")
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
		provs: map[string]*provisioner{}, nonces: newNonces(), auth: o.Authority,
		baseURL: strings.TrimSuffix(o.BaseURL, "/"), log: o.Logger, now: o.Now, wait: o.ValidationWait,
	}
	for i := range o.Config.Provisioners {
		p, err := newProvisioner(&o.Config.Provisioners[i], o.Dir)
		if err != nil {
			return nil, err
		}
		s.provs[p.name] = p
	}
	path := o.Config.DBFile()
	if !filepath.IsAbs(path) {
		path = filepath.Join(o.Dir, path)
	}
	st, err := openStore(path)
	if err != nil {
		return nil, err
	}
	s.store = st
	s.ctx, s.cancel = context.WithCancel(ctx)
	return s, nil
}

// Close stops validations in flight and closes the state file.
func (s *Server) Close() error {
	s.cancel()
	s.wg.Wait()
	return s.store.close()
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
