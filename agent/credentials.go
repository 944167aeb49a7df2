package agent

import (
	"context"
	"crypto"
	"fmt"

	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/anchorage-pki/anchorage/rolesanywhere"
	"github.com/anchorage-pki/anchorage/signer"
)

// sourceConfig points rolesanywhere at the files the agent keeps fresh.
// FileSource re-reads them when they change, so a renewed certificate is
// used for the next CreateSession without a restart.
func (a *Agent) sourceConfig() rolesanywhere.SourceConfig {
	key := a.cfg.Key
	if p, ok := signer.FilePath(key); ok {
		key = p // a TSS2 file is recognised by its content
	}
	return rolesanywhere.SourceConfig{
		Certificate:   a.cfg.Cert,
		PrivateKey:    key,
		Intermediates: a.cfg.Credentials.Intermediates,
		OpenKey: func(ctx context.Context, ref string) (crypto.Signer, error) {
			return signer.Open(ctx, ref, a.opts...)
		},
	}
}

// session builds the CreateSession client and the identity source that
// serve and update share.
func (a *Agent) session(ctx context.Context) (*rolesanywhere.Client, *rolesanywhere.FileSource, error) {
	client, err := rolesanywhere.NewClient(a.clientConfig())
	if err != nil {
		return nil, nil, err
	}
	src, err := rolesanywhere.NewFileSource(ctx, a.sourceConfig())
	if err != nil {
		return nil, nil, err
	}
	return client, src, nil
}

func (a *Agent) clientConfig() rolesanywhere.Config {
	cc := a.cfg.Credentials
	return rolesanywhere.Config{
		TrustAnchorARN: cc.TrustAnchorARN, ProfileARN: cc.ProfileARN, RoleARN: cc.RoleARN,
		Region: cc.Region, Endpoint: cc.Endpoint, SessionDuration: cc.SessionDuration,
		RoleSessionName: cc.RoleSessionName, NoVerifySSL: cc.NoVerifySSL,
		Logger: a.log,
	}
}

// credentials serves until ctx ends or the certificate is revoked.
func (a *Agent) credentials(ctx context.Context) {
	a.update(func(s *Status) { s.Credentials = "starting" })
	var err error
	if mode := a.cfg.Credentials.Mode; mode == "serve" || mode == "ecs" {
		err = a.serve(ctx)
	} else {
		err = a.updateLoop(ctx)
	}
	reason := "stopped"
	switch {
	case a.isRevoked():
		reason = "stopped: certificate revoked"
	case err != nil:
		reason = "stopped: " + err.Error()
		a.log.Error("credential serving stopped", "err", err)
	}
	a.update(func(s *Status) { s.Credentials = reason })
}

func (a *Agent) isRevoked() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.revoked
}

// serve is `anchorage serve` inside the agent: IMDSv2 on 127.0.0.1, or
// with mode "ecs" the container credentials endpoint of serve --ecs. The
// FileSource re-reads the renewed certificate and the Cache drops
// credentials issued for the old one. After a revocation every request
// gets 503 and the listener closes.
func (a *Agent) serve(ctx context.Context) error {
	cc := a.cfg.Credentials
	var tokens *rolesanywhere.AuthTokenFile
	if cc.Mode == "ecs" {
		var err error
		if tokens, err = rolesanywhere.OpenAuthTokenFile(cc.AuthTokenFile); err != nil {
			return fmt.Errorf(`key "credentials.authTokenFile": %w`, err)
		}
	}
	client, src, err := a.session(ctx)
	if err != nil {
		return err
	}
	cache := rolesanywhere.NewCache(a.recording(client), src, rolesanywhere.DefaultRefreshWindow)
	if _, _, err := cache.Refresh(ctx); err != nil {
		a.log.Warn("initial credential fetch failed (will retry on request)", "err", err)
	}
	if !cc.NoSocket {
		// credential-process runs for this identity ask here first; the
		// socket closes when serving stops (revocation included).
		var socketDone sync.WaitGroup
		defer socketDone.Wait()
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		socketDone.Go(func() { rolesanywhere.ServeSocket(sctx, client, a.sourceConfig().PrivateKey, cache, a.log) })
	}
	address := cc.Address
	if address == "" {
		address = net.JoinHostPort("127.0.0.1", strconv.Itoa(cc.Port))
	}
	l, err := rolesanywhere.ListenTTL(ctx, address, cc.HopLimit)
	if err != nil {
		return err
	}
	if ta, ok := l.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
		a.log.Warn("serving AWS credentials off this host (allowNonLoopback): anyone who can reach it gets the role's credentials", "address", ta.String())
	}
	if a.Listening != nil {
		a.Listening("credentials", l.Addr())
	}
	out := log.New(slogWriter{a.log}, "", 0)
	var handler http.Handler
	if tokens != nil {
		a.log.Info("serving AWS container credentials", "endpoint", "http://"+l.Addr().String()+rolesanywhere.ContainerCredentialsPath,
			"auth_token_file", tokens.Path(), "role_arn", cc.RoleARN)
		handler = rolesanywhere.NewContainerEndpoint(cache, tokens, cc.RoleARN, out, a.log)
	} else {
		a.log.Info("serving AWS credentials", "endpoint", "http://"+l.Addr().String()+"/", "role_arn", cc.RoleARN)
		imds := rolesanywhere.NewIMDS(cache, client.RoleName(), out, a.log)
		ictx, cancel := context.WithCancel(ctx)
		defer cancel()
		go imds.Run(ictx)
		handler = imds
	}
	gate := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.isRevoked() {
			http.Error(w, "certificate revoked: this host no longer gets AWS credentials", http.StatusServiceUnavailable)
			return
		}
		handler.ServeHTTP(w, r)
	})
	a.update(func(s *Status) { s.Credentials = "serving" })
	srv := &http.Server{Handler: gate, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	case <-a.revokeC:
	}
	sctx, done := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer done()
	srv.Shutdown(sctx)
	return nil
}

// updateLoop is `anchorage update` inside the agent: it rewrites the
// profile 5 minutes before the credentials expire. Unlike the helper it
// does not exit on a failed CreateSession: it retries with backoff.
func (a *Agent) updateLoop(ctx context.Context) error {
	cc := a.cfg.Credentials
	client, src, err := a.session(ctx)
	if err != nil {
		return err
	}
	path := cc.CredentialsFile
	if path == "" {
		if path, err = rolesanywhere.CredentialsFilePath(); err != nil {
			return err
		}
	}
	a.update(func(s *Status) { s.Credentials = "serving" })
	failures := 0
	for {
		var wait time.Duration
		id, err := src.Identity(ctx)
		var sess *rolesanywhere.Session
		if err == nil {
			sess, err = a.recording(client).CreateSession(ctx, id)
		}
		if err == nil {
			err = rolesanywhere.UpdateCredentialsFile(path, cc.Profile, sess.Credentials)
		}
		if err != nil {
			failures++
			wait = min(a.cfg.RetryMin.D()<<min(failures-1, 16), a.cfg.RetryMax.D())
			a.log.Warn("credentials update failed; retrying", "err", err, "retry_in", wait)
		} else {
			failures = 0
			wait = max(time.Until(sess.Credentials.Expires.Add(-rolesanywhere.UpdateMargin)), 10*time.Second)
			a.log.Info("credentials written", "file", path, "profile", cc.Profile, "expires", sess.Credentials.Expiration)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.revokeC:
			return nil
		case <-time.After(wait):
		}
	}
}

// recording counts CreateSession outcomes and remembers when the newest
// credentials expire, for Status and metrics.
func (a *Agent) recording(c rolesanywhere.SessionCreator) rolesanywhere.SessionCreator {
	return recorder{c: c, a: a}
}

type recorder struct {
	c rolesanywhere.SessionCreator
	a *Agent
}

func (r recorder) CreateSession(ctx context.Context, id rolesanywhere.Identity) (*rolesanywhere.Session, error) {
	sess, err := r.c.CreateSession(ctx, id)
	r.a.update(func(s *Status) {
		if err != nil {
			s.CredentialFailures++
			return
		}
		s.CredentialRefreshes++
		s.CredentialsExpire = sess.Credentials.Expires
	})
	return sess, err
}

// slogWriter turns the helper-style log lines of rolesanywhere into slog.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Info(string(trimNL(p)))
	return len(p), nil
}

func trimNL(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}
