// Package caserver assembles a running CA from its configuration: it opens
// storage, loads the CA certificates and keys, builds the issuing core, the
// CRL publisher and the HTTP API, and serves them over TLS until its context
// ends. cmd/anchorage-ca and the end-to-end tests both start the CA here.
package caserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"go.step.sm/crypto/pemutil"

	"github.com/anchorage-pki/anchorage/acme"
	"github.com/anchorage-pki/anchorage/anchorsync"
	"github.com/anchorage-pki/anchorage/api"
	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/atomicfile"
	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/crl"
	"github.com/anchorage-pki/anchorage/enroll"
	"github.com/anchorage-pki/anchorage/events/stream"
	"github.com/anchorage-pki/anchorage/metrics"
	"github.com/anchorage-pki/anchorage/signer"
	"github.com/anchorage-pki/anchorage/storage"
	"github.com/anchorage-pki/anchorage/tlsfile"
)

// Server is an assembled CA.
type Server struct {
	Config    *config.CA
	Store     Store
	Authority *ca.Authority
	CRL       *crl.Updater
	Handler   http.Handler
	TLS       *tls.Config
	Root      *x509.Certificate
	Issuer    *x509.Certificate
	Anchors   *anchorsync.Pusher
	Metrics   *metrics.CA // this server's registry, served at /metrics
	Events    *stream.Log // the audit stream; nil if none is configured
	log       *slog.Logger
	tlsCert   serverCert
	adminCA   *adminCA
	serviceCA *serviceCA
	api       *api.Server
	acme      *acme.Server // nil unless the config has "acme"
}

// Open builds the CA described by cfg. The caller must Close it.
func Open(ctx context.Context, cfg *config.CA, log *slog.Logger) (_ *Server, err error) {
	if log == nil {
		log = slog.Default()
	}
	root, err := pemutil.ReadCertificate(cfg.Path(cfg.Paths.Root))
	if err != nil {
		return nil, fmt.Errorf("root certificate: %w", err)
	}
	issuer, err := pemutil.ReadCertificate(cfg.Path(cfg.Paths.CACert))
	if err != nil {
		return nil, fmt.Errorf("issuing CA certificate: %w", err)
	}
	if err := issuer.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("issuing CA %s is not signed by root %s: %w", cfg.Paths.CACert, cfg.Paths.Root, err)
	}
	caKey, err := signer.Open(ctx, cfg.Path(cfg.Paths.CAKey))
	if err != nil {
		return nil, fmt.Errorf("issuing CA key: %w", err)
	}
	provKey, err := signer.Open(ctx, cfg.Path(cfg.Paths.ProvisionerKey))
	if err != nil {
		return nil, fmt.Errorf("provisioner key: %w", err)
	}
	tlsCert, err := tlsfile.Load(cfg.TLSPaths())
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	store, where, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			store.Close()
		}
	}()
	if err := checkCRLFile(ctx, store, where, cfg.Path(cfg.Paths.CRL), log); err != nil {
		return nil, err
	}
	ev, err := OpenEvents(cfg, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			ev.Close()
		}
	}()
	m := metrics.NewCA()
	if err := registerEvents(m, ev); err != nil {
		return nil, err
	}
	pub, err := crl.New(ctx, crl.Options{
		Issuer: issuer, Signer: caKey, Store: store, File: cfg.Path(cfg.Paths.CRL),
		NextUpdate: cfg.CRL.NextUpdate.D(), Resign: cfg.CRL.Resign.D(), Logger: log,
	})
	if err != nil {
		return nil, err
	}
	auth, err := ca.New(ca.Options{
		Issuer: issuer, Signer: caKey, Store: store,
		Profile: ca.Profile{
			DefaultLifetime: cfg.Leaf.DefaultLifetime.D(), MaxLifetime: cfg.Leaf.MaxLifetime.D(),
			ServerAuth: cfg.Leaf.ServerAuth, CRLURL: cfg.CRL.URL,
		},
		Logger: log, Meter: m, Events: sink(ev),
	})
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	enr := &api.EnrollHandler{
		Verifier: &enroll.Verifier{Key: provKey.Public(), Audience: cfg.URL, MaxTTL: cfg.Token.MaxTTL.D(), Used: store, Now: time.Now},
		CA:       auth,
		Logger:   log,
		Meter:    m,
		Events:   sink(ev),
	}
	s := &Server{Config: cfg, Store: store, Authority: auth, CRL: pub,
		Root: root, Issuer: issuer, Metrics: m, Events: ev, log: log}
	s.tlsCert.set(tlsCert, issuer)
	s.TLS = api.TLSConfig(s.tlsCert.get)
	s.adminCA = &adminCA{cfg: cfg, root: root, store: store, log: log}
	if _, err := s.adminCA.load(ctx); err != nil {
		return nil, err
	}
	s.serviceCA = &serviceCA{cfg: cfg, root: root, log: log}
	if _, err := s.serviceCA.get(ctx); err != nil {
		return nil, err
	}
	if s.tlsCert.fromIssuer.Load() {
		log.Warn("the API's TLS certificate is signed by the issuing CA: its key is an AWS identity wherever that CA is a trust anchor; "+
			"fix with the root key in the directory: "+s.serviceCACommand(), "serial", ca.SerialHex(tlsCert.Leaf.SerialNumber))
	}
	apiOpts := api.Options{
		Authority: auth, Lister: store, CRL: pub, Enroll: enr, Counter: auth, Leases: store, Storage: store,
		Roots: roots, Issuers: []*x509.Certificate{issuer}, Admins: cfg.Admins, Logger: log,
		AdminCA: s.adminCA, Certs: store, Metrics: m, Root: root, Events: sink(ev), Notices: s.tlsNotices,
		ServiceCA: s.serviceCA.certificate,
		Step:      &api.StepOptions{Enroll: enr, Renew: auth, Roots: []*x509.Certificate{root}},
	}
	if s.Anchors, err = newPusher(ctx, cfg, s); err != nil {
		return nil, err
	}
	apiOpts.Anchors = s.Anchors
	s.api = api.New(apiOpts)
	s.Handler = s.api
	// ACME (package acme): with "acme" in the config, /acme/{provisioner}/...
	// is served on this listener in front of the API; its state is in store.
	if cfg.ACME != nil {
		if s.acme, err = acme.New(ctx, acme.Options{Authority: auth, Store: store, CRL: pub, Config: cfg.ACME, Dir: cfg.Dir(), BaseURL: cfg.URL, Logger: log}); err != nil {
			return nil, err
		}
		mux := http.NewServeMux()
		mux.Handle(acme.Prefix, s.acme)
		mux.Handle("/", s.Handler)
		s.Handler = withRemote(mux)
	}
	return s, nil
}

// tokenPruneMargin is how long a used token id outlives its keep-until
// time (see the prune loop).
const tokenPruneMargin = 5 * time.Minute

// Close stops ACME validations and releases storage.
func (s *Server) Close() error {
	if s.acme != nil {
		s.acme.Close()
	}
	s.Events.Close()
	return s.Store.Close()
}

// Serve makes sure a current CRL is stored, then serves HTTPS on ln until
// ctx ends, and shuts down gracefully (in-flight requests finish, storage
// stays consistent). The revocation path runs from storage: the CRL
// updater builds when the revocation sequence is ahead of the newest
// stored CRL, anchorsync pushes the newest stored CRL. With one bbolt file
// this process holds both roles; they are the two leases a replicated
// store will hand to one replica each.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if _, err := s.CRL.Sync(ctx); err != nil {
		return fmt.Errorf("initial CRL: %w", err)
	}
	if err := s.renewTLSIfDue(ctx, time.Now()); err != nil {
		// The current certificate still works; say so loudly and go on.
		s.log.Error("API TLS certificate renewal failed", "err", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.Store.Hold(ctx, storage.LeaseCRL, s.CRL.Run)
	go s.Store.Hold(ctx, storage.LeasePush, s.Anchors.Run)
	go s.prune(ctx)
	go s.keepTLSFresh(ctx)
	if s.Config.CRL.Listen != "" {
		if err := s.serveCRL(ctx); err != nil {
			return err
		}
	}
	srv := &http.Server{
		Handler:           s.Handler,
		TLSConfig:         s.TLS,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shut, c := context.WithTimeout(context.Background(), 10*time.Second)
	defer c()
	if err := srv.Shutdown(shut); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// serveCRL serves /crl and /crl.pem over plain HTTP, as CRL distribution
// points usually are (a CRL is signed; TLS adds nothing but a bootstrap
// problem for relying parties).
func (s *Server) serveCRL(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.Config.CRL.Listen)
	if err != nil {
		return fmt.Errorf("crl.listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(apiv1.PathCRL, s.Handler)
	mux.Handle(apiv1.PathCRLPEM, s.Handler)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	s.log.Info("CRL distribution point listening", "addr", ln.Addr().String())
	return nil
}

// prune forgets, hourly, what expiry has made moot: used token ids of
// expired tokens, CRL entries of expired certificates, and expired ACME
// orders with their authorizations.
func (s *Server) prune(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Token ids are stored with their keep-until time (expiry
			// plus the verifier's leeway). They are kept a margin past
			// it: an enrollment checks keep-until just before its commit
			// is sent, and a prune on another replica (another clock)
			// must not forget a use while such a commit is in flight.
			if n, err := s.Store.PruneTokens(ctx, time.Now().Add(-tokenPruneMargin)); err != nil {
				s.log.Error("pruning used token ids", "err", err)
			} else if n > 0 {
				s.log.Info("pruned expired token ids", "count", n)
			}
			if n, err := s.Store.PruneRevoked(ctx, time.Now()); err != nil {
				s.log.Error("pruning expired revocations", "err", err)
			} else if n > 0 {
				s.log.Info("pruned revocations of expired certificates", "count", n)
			}
			if o, a, err := s.Store.PruneACME(ctx, time.Now()); err != nil {
				s.log.Error("pruning expired ACME orders", "err", err)
			} else if o > 0 {
				s.log.Info("pruned expired ACME orders", "orders", o, "authorizations", a)
			}
		}
	}
}

// WriteReadyFile records the base URL a script should use once the server
// listens (useful with port 0).
func WriteReadyFile(path, url string) error {
	return atomicfile.Write(path, []byte(url+"\n"), 0o644)
}
