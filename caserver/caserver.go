// Package caserver assembles a running CA from its configuration: it opens
// storage, loads the CA certificates and keys, builds the issuing core, the
// CRL publisher and the HTTP API, and serves them over TLS until its context
// ends. cmd/anchorage-ca and the end-to-end tests both start the CA here.
package caserver

import (
	"context"
	"crypto"
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
	"github.com/anchorage-pki/anchorage/signer"
	"github.com/anchorage-pki/anchorage/storage"
)

// Server is an assembled CA.
type Server struct {
	Config    *config.CA
	Store     *storage.DB
	Authority *ca.Authority
	CRL       *crl.Publisher
	Handler   http.Handler
	TLS       *tls.Config
	Root      *x509.Certificate
	Issuer    *x509.Certificate
	Anchors   *anchorsync.Pusher
	log       *slog.Logger
	caKey     crypto.Signer
	tlsCert   serverCert
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
	tlsCert, err := tls.LoadX509KeyPair(cfg.Path(cfg.Paths.TLSCert), cfg.Path(cfg.Paths.TLSKey))
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	store, err := storage.Open(cfg.Path(cfg.Paths.DB))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			store.Close()
		}
	}()
	if err := checkCRLFile(ctx, store, cfg.Path(cfg.Paths.DB), cfg.Path(cfg.Paths.CRL), log); err != nil {
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
		Issuer: issuer, Signer: caKey, Store: store, CRL: pub,
		Profile: ca.Profile{
			DefaultLifetime: cfg.Leaf.DefaultLifetime.D(), MaxLifetime: cfg.Leaf.MaxLifetime.D(),
			ServerAuth: cfg.Leaf.ServerAuth, CRLURL: cfg.CRL.URL,
		},
		Logger: log,
	})
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	enr := &enroll.Handler{
		Verifier: &enroll.Verifier{Key: provKey.Public(), Audience: cfg.URL, MaxTTL: cfg.Token.MaxTTL.D(), Used: store, Now: time.Now},
		CA:       auth,
		Logger:   log,
	}
	s := &Server{Config: cfg, Store: store, Authority: auth, CRL: pub,
		Root: root, Issuer: issuer, log: log, caKey: caKey}
	s.tlsCert.cur.Store(&tlsCert)
	s.TLS = api.TLSConfig(s.tlsCert.get)
	apiOpts := api.Options{
		Authority: auth, Lister: store, CRL: pub, Enroll: enr, Counter: auth,
		Roots: roots, Issuers: []*x509.Certificate{issuer}, Admins: cfg.Admins, Logger: log,
	}
	if s.Anchors, err = newPusher(ctx, cfg, s); err != nil {
		return nil, err
	}
	apiOpts.Anchors = s.Anchors
	s.Handler = api.New(apiOpts)
	// ACME (package acme): with "acme" in the config, /acme/{provisioner}/...
	// is served on this listener in front of the API; its state file
	// (DIR/acme.db) is closed in Close.
	if cfg.ACME != nil {
		if s.acme, err = acme.New(ctx, acme.Options{Authority: auth, Config: cfg.ACME, Dir: cfg.Dir(), BaseURL: cfg.URL, Logger: log}); err != nil {
			return nil, err
		}
		mux := http.NewServeMux()
		mux.Handle(acme.Prefix, s.acme)
		mux.Handle("/", s.Handler)
		s.Handler = mux
	}
	return s, nil
}

// Close releases storage (and the ACME state file when ACME is on).
func (s *Server) Close() error {
	if s.acme != nil {
		s.acme.Close()
	}
	return s.Store.Close()
}

// Serve publishes a fresh CRL, then serves HTTPS on ln until ctx ends, and
// shuts down gracefully (in-flight requests finish, storage stays
// consistent).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if _, err := s.CRL.Update(ctx); err != nil {
		return fmt.Errorf("initial CRL: %w", err)
	}
	if err := s.renewTLSIfDue(ctx, time.Now()); err != nil {
		// The current certificate still works; say so loudly and go on.
		s.log.Error("API TLS certificate renewal failed", "err", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.CRL.Run(ctx)
	go s.prune(ctx)
	go s.keepTLSFresh(ctx)
	go s.Anchors.Run(ctx)
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
// expired tokens and CRL entries of expired certificates.
func (s *Server) prune(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := s.Store.PruneTokens(ctx, time.Now()); err != nil {
				s.log.Error("pruning used token ids", "err", err)
			} else if n > 0 {
				s.log.Info("pruned expired token ids", "count", n)
			}
			if n, err := s.Store.PruneRevoked(ctx, time.Now()); err != nil {
				s.log.Error("pruning expired revocations", "err", err)
			} else if n > 0 {
				s.log.Info("pruned revocations of expired certificates", "count", n)
			}
		}
	}
}

// WriteReadyFile records the base URL a script should use once the server
// listens (useful with port 0).
func WriteReadyFile(path, url string) error {
	return atomicfile.Write(path, []byte(url+"\n"), 0o644)
}
