// Package api is the CA's HTTPS API: renewal over mTLS, admin revocation and
// listing, the CRL, health, and enrollment with package enroll's tokens.
// Every error is an RFC 7807 problem document. The issuing core (ca) does
// the work; this package only speaks HTTP and authenticates callers.
package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/crl"
	"github.com/anchorage-pki/anchorage/events"
	"github.com/anchorage-pki/anchorage/metrics"
	"github.com/anchorage-pki/anchorage/problem"
	"github.com/anchorage-pki/anchorage/storage"
)

// Authority is the issuing core as the API uses it.
type Authority interface {
	Renew(ctx context.Context, current *x509.Certificate, csr *x509.CertificateRequest) (*ca.Issued, error)
	Revoke(ctx context.Context, r ca.RevokeRequest) (*ca.RevokeResult, error)
}

// Lister lists stored certificates for admins.
type Lister interface {
	ListCerts(ctx context.Context, f storage.Filter, now time.Time) ([]*storage.Cert, error)
	ListCertsPage(ctx context.Context, f storage.Filter, now time.Time) (storage.CertPage, error)
}

// CRLSource gives the newest stored CRL, and waits for one that covers a
// revocation.
type CRLSource interface {
	Current() *crl.CRL
	WaitFor(ctx context.Context, seq uint64) (*crl.CRL, error)
}

// CRLFileSource is implemented by a CRLSource that also writes each CRL to
// a file outside the database (crl.Updater); /health and /metrics show a
// failed write.
type CRLFileSource interface {
	FileError() error
}

// crlFileError is the CRL source's last file write error, nil if none or
// if the source writes no file.
func (s *Server) crlFileError() error {
	if f, ok := s.o.CRL.(CRLFileSource); ok {
		return f.FileError()
	}
	return nil
}

// Anchors is anchorsync as the API shows it: status read from storage.
type Anchors interface {
	Status(ctx context.Context) ([]storage.AnchorStatus, error)
	Kick()
}

// Leases says which process holds the CRL and push leases.
type Leases interface {
	Leases(ctx context.Context) ([]storage.LeaseInfo, error)
}

// Options configure the server.
type Options struct {
	Authority Authority
	Lister    Lister
	CRL       CRLSource
	Enroll    http.Handler
	Anchors   Anchors                      // may be nil: no trust anchors configured
	Counter   Counter                      // issuance totals for /metrics; may be nil
	Leases    Leases                       // who runs the CRL updater and pusher; may be nil
	Storage   interface{ Damaged() error } // storage's own health; may be nil
	Roots     *x509.CertPool               // client certificates must chain here
	Issuers   []*x509.Certificate          // issuing CAs: a workload certificate must chain through one
	Admins    []string                     // SHA-256 fingerprints of legacy root-signed admin certificates (SetAdmins replaces)
	AdminCA   AdminCA                      // issues and anchors admin certificates; may be nil
	Certs     CertLookup                   // every admin call checks the caller's record here
	Logger    *slog.Logger
	Now       func() time.Time
	// Step turns on step-ca's wire shapes (/sign, /renew, /roots,
	// /root/{sha}, each also under /1.0) for the step CLI; nil: off.
	Step *StepOptions
	// CRLWait bounds how long a revoke waits for the CRL that carries it
	// before answering without its number (default 10s).
	CRLWait time.Duration
	// Metrics is this server's registry and instruments (the issuing
	// core and anchorsync report into the same); nil: a new one.
	Metrics *metrics.CA
	Root    *x509.Certificate // for anchorage_ca_expires_in_seconds; may be nil
	// ExpiryCache is how long a count of expiring certificates is
	// reused (default 30s): it reads every live certificate.
	ExpiryCache time.Duration
	Events      events.Sink // audit stream; may be nil
	// Notices are /health warnings about the CA's own setup that want an
	// operator but leave the status "ok" (a legacy TLS certificate from
	// the issuing CA); may be nil.
	Notices func() []string
	// ServiceCA returns the service intermediate that signs the API's TLS
	// certificate (nil while a legacy CA has none); its expiry is a
	// metric like the other CAs'. May be nil.
	ServiceCA func() *x509.Certificate
}

// Server routes the API.
type Server struct {
	o            Options
	mux          *http.ServeMux
	legacyAdmins atomic.Pointer[[]string]

	metricsHandler http.Handler
}

// New builds the router.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CRLWait <= 0 {
		o.CRLWait = 10 * time.Second
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewCA()
	}
	if o.ExpiryCache <= 0 {
		o.ExpiryCache = 30 * time.Second
	}
	s := &Server{o: o, mux: http.NewServeMux()}
	if err := o.Metrics.Register(&state{s: s}); err != nil {
		// Only a second api.Server on one registry gets here: a wiring bug.
		panic(err)
	}
	s.metricsHandler = metrics.Handler(o.Metrics.Registry)
	s.SetAdmins(o.Admins)
	s.mux.Handle(apiv1.PathEnroll, o.Enroll)
	s.mux.HandleFunc(apiv1.PathRenew, s.post(s.renew))
	s.mux.HandleFunc(apiv1.PathRevoke, s.post(s.revoke))
	s.mux.HandleFunc(apiv1.PathCerts, s.get(s.certs))
	s.mux.HandleFunc(apiv1.PathAdmins, s.admins)
	s.mux.HandleFunc(apiv1.PathAnchors, s.get(s.anchors))
	s.mux.HandleFunc(apiv1.PathAnchorsPush, s.post(s.anchorsPush))
	s.mux.HandleFunc(apiv1.PathCRL, s.get(s.crl(false)))
	s.mux.HandleFunc(apiv1.PathCRLPEM, s.get(s.crl(true)))
	s.mux.HandleFunc(apiv1.PathHealth, s.get(s.health))
	s.mux.HandleFunc(apiv1.PathMetrics, s.get(s.metrics))
	if o.Step != nil {
		s.stepRoutes(o.Step)
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, r, problem.New(http.StatusNotFound, problem.NotFound, "no such endpoint %s", r.URL.Path))
	})
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r.WithContext(events.WithWho(r.Context(), events.Who{Remote: r.RemoteAddr})))
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) { s.metricsHandler.ServeHTTP(w, r) }

// refused records a request turned away before it reached the issuing
// core: in the operation's metrics and as an audit event.
func (s *Server) refused(r *http.Request, op, method string, start time.Time, e events.Event, err error) {
	reason := e.Reason
	s.o.Metrics.Observe(op, method, reason, time.Since(start))
	e.Method, e.Result = method, events.Refused
	if err != nil {
		e.Error = err.Error()
	}
	events.Emit(r.Context(), s.o.Events, e)
}

// actor names an authenticated admin for events.
func adminActor(c *x509.Certificate) string {
	return "admin:" + c.Subject.CommonName + " " + ca.SerialHex(c.SerialNumber)
}

// TLSConfig is the server side of the API's TLS: 1.2 or newer, and a client
// certificate requested but verified per endpoint, so a bad one gets a
// readable problem instead of a failed handshake.
// The certificate comes from get, so it can be replaced without a restart.
func TLSConfig(get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: get,
		ClientAuth:     tls.RequestClientCert,
	}
}

func (s *Server) post(h http.HandlerFunc) http.HandlerFunc { return s.method(http.MethodPost, h) }
func (s *Server) get(h http.HandlerFunc) http.HandlerFunc  { return s.method(http.MethodGet, h) }

func (s *Server) method(m string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != m && !(m == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", m)
			problem.Write(w, r, problem.New(http.StatusMethodNotAllowed, problem.MethodNotAllowed, "use %s", m))
			return
		}
		h(w, r)
	}
}

// clientCert verifies the TLS client certificate as a workload's: it
// must chain to the root through an issuing CA. An admin certificate never
// passes, so it cannot renew as a workload.
func (s *Server) clientCert(r *http.Request) (*x509.Certificate, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, problem.New(http.StatusUnauthorized, problem.Unauthenticated, "this endpoint needs a client certificate (mTLS)")
	}
	leaf := r.TLS.PeerCertificates[0]
	err := verifyVia(leaf, s.o.Roots, s.o.Issuers, s.o.Now())
	switch {
	case err == nil:
		return leaf, nil
	case s.isAdminCert(leaf):
		return nil, problem.New(http.StatusForbidden, problem.CertUnknown,
			"certificate %s is an admin certificate: it does not renew (ask for a new one with anchorage-ca admin issue)", ca.SerialHex(leaf.SerialNumber))
	case expired(err):
		return nil, problem.New(http.StatusUnauthorized, problem.CertExpired,
			"client certificate %s expired at %s; enroll again with a new token", ca.SerialHex(leaf.SerialNumber), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil, problem.New(http.StatusUnauthorized, problem.Unauthenticated, "client certificate not issued by this CA: %v", err)
}

// renewingCert is the client certificate of a renewal (/v1/renew and
// step's /renew alike) and r with that certificate as the actor; a
// certificate that cannot renew is counted and recorded as refused.
func (s *Server) renewingCert(r *http.Request) (*x509.Certificate, *http.Request, error) {
	start := time.Now()
	cur, err := s.clientCert(r)
	if err != nil {
		e := events.Event{Event: events.Renew, Reason: "bad_client_cert"}
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			e.Serial, e.Subject = ca.SerialHex(r.TLS.PeerCertificates[0].SerialNumber), r.TLS.PeerCertificates[0].Subject.CommonName
		}
		s.refused(r, ca.OpRenew, ca.MethodMTLS, start, e, err)
		return nil, r, err
	}
	return cur, r.WithContext(events.WithWho(r.Context(), events.Who{Actor: "cert:" + ca.SerialHex(cur.SerialNumber)})), nil
}

func (s *Server) renew(w http.ResponseWriter, r *http.Request) {
	cur, r, err := s.renewingCert(r)
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	_, csr, err := decodeWithCSR(w, r, func(q *apiv1.RenewRequest) string { return q.CSR })
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	iss, err := s.o.Authority.Renew(r.Context(), cur, csr)
	if err != nil {
		problem.Write(w, r, s.renewProblem(cur, err))
		return
	}
	WriteJSON(w, http.StatusCreated, CertResponse(iss))
}

// renewProblem maps a refused renewal of cur to its problem, and logs it.
func (s *Server) renewProblem(cur *x509.Certificate, err error) error {
	serial := ca.SerialHex(cur.SerialNumber)
	s.o.Logger.Warn("renewal refused", "serial", serial, "subject", cur.Subject.CommonName, "err", err)
	switch {
	case errors.Is(err, ca.ErrRevoked):
		return problem.New(http.StatusForbidden, problem.CertRevoked, "certificate %s (or its lineage) is revoked; it cannot be renewed", serial)
	case errors.Is(err, ca.ErrSuperseded):
		return problem.New(http.StatusConflict, problem.CertSuperseded,
			"certificate %s was renewed already by another key; only the newest certificate of a lineage renews (enroll again if this host lost its key)", serial)
	case errors.Is(err, ca.ErrExpired):
		return problem.New(http.StatusUnauthorized, problem.CertExpired, "certificate %s has expired", serial)
	case errors.Is(err, ca.ErrUnknownCert):
		return problem.New(http.StatusForbidden, problem.CertUnknown, "certificate %s: %v", serial, err)
	}
	return IssueProblem(err, s.o.Logger)
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	adm, err := s.admin(r)
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	var req apiv1.RevokeRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		problem.Write(w, r, err)
		return
	}
	reason, err := ca.ParseReason(req.Reason)
	if err != nil {
		problem.Write(w, r, problem.New(http.StatusBadRequest, problem.Malformed, "%v", err))
		return
	}
	if (req.Serial == "") == (req.Subject == "") {
		problem.Write(w, r, problem.New(http.StatusBadRequest, problem.Malformed, "give exactly one of serial or subject"))
		return
	}
	if req.Serial != "" {
		if _, err := ca.NormalizeSerial(req.Serial); err != nil {
			problem.Write(w, r, problem.New(http.StatusBadRequest, problem.Malformed, "%v", err))
			return
		}
	}
	s.o.Logger.Warn("revocation requested", "admin", adm.Subject.CommonName, "serial", req.Serial, "subject", req.Subject, "reason", ca.ReasonName(reason))
	ctx := events.WithWho(r.Context(), events.Who{Actor: adminActor(adm)})
	res, err := s.o.Authority.Revoke(ctx, ca.RevokeRequest{Serial: req.Serial, Subject: req.Subject, Reason: reason, Method: ca.MethodAdmin})
	switch {
	case errors.Is(err, ca.ErrNotFound):
		what := "serial " + req.Serial
		if req.Subject != "" {
			what = "live certificate with subject " + strconv.Quote(req.Subject)
		}
		problem.Write(w, r, problem.New(http.StatusNotFound, problem.NotFound, "no %s", what))
		return
	case err != nil:
		problem.Write(w, r, err)
		return
	}
	// The revocation is durable now. The CRL updater builds from storage;
	// waiting briefly lets the answer name the CRL that carries it.
	out := apiv1.RevokeResponse{RevocationSeq: res.Seq, Revoked: []apiv1.CertInfo{}}
	wctx, cancel := context.WithTimeout(r.Context(), s.o.CRLWait)
	c, werr := s.o.CRL.WaitFor(wctx, res.Seq)
	cancel()
	if werr != nil {
		s.o.Logger.Error("revocation committed; no CRL carries it yet", "revocation_seq", res.Seq, "err", werr)
	} else {
		out.CRLNumber = c.Number
	}
	now := s.o.Now()
	for _, c := range res.Revoked {
		out.Revoked = append(out.Revoked, Info(c, now))
	}
	for _, c := range res.AlreadyRevoked {
		out.AlreadyRevoked = append(out.AlreadyRevoked, Info(c, now))
	}
	out.IssuedByRevoked = s.issuedByRevoked(r.Context(), res, now)
	WriteJSON(w, http.StatusOK, out)
}

func (s *Server) certs(w http.ResponseWriter, r *http.Request) {
	if _, err := s.admin(r); err != nil {
		problem.Write(w, r, err)
		return
	}
	q := r.URL.Query()
	f := storage.Filter{Subject: q.Get("subject"), Cursor: q.Get("cursor"), Limit: apiv1.CertsDefaultLimit}
	now := s.o.Now()
	switch st := q.Get("status"); st {
	case "":
	case "valid":
		f.Status, f.Live = storage.StatusValid, true
	case "revoked":
		f.Status = storage.StatusRevoked
	case "expired":
		f.Status, f.Expired = storage.StatusValid, true
	default:
		problem.Write(w, r, problem.New(http.StatusBadRequest, problem.Malformed, "status %q: want valid, revoked or expired", st))
		return
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > apiv1.CertsMaxLimit {
			problem.Write(w, r, problem.New(http.StatusBadRequest, problem.Malformed, "limit %q: want a number from 1 to %d", l, apiv1.CertsMaxLimit))
			return
		}
		f.Limit = n
	}
	page, err := s.o.Lister.ListCertsPage(r.Context(), f, now)
	if errors.Is(err, storage.ErrBadCursor) {
		problem.Write(w, r, problem.New(http.StatusBadRequest, problem.Malformed, "cursor %q: not one a listing returned", f.Cursor))
		return
	}
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	out := apiv1.CertList{Certs: make([]apiv1.CertInfo, 0, len(page.Certs)), Next: page.Next}
	for _, c := range page.Certs {
		out.Certs = append(out.Certs, Info(c, now))
	}
	WriteJSON(w, http.StatusOK, out)
}

func (s *Server) anchors(w http.ResponseWriter, r *http.Request) {
	if _, err := s.admin(r); err != nil {
		problem.Write(w, r, err)
		return
	}
	out := apiv1.AnchorList{Anchors: []apiv1.AnchorStatus{}}
	if c := s.o.CRL.Current(); c != nil {
		out.CRLNumber, out.CRLSeq = c.Number, c.Seq
	}
	st, err := s.anchorStatus(r.Context())
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	for _, a := range st {
		out.Anchors = append(out.Anchors, apiv1.AnchorStatus{ARN: a.ARN, CRLID: a.CRLID, CRLNumber: a.CRLNumber,
			PushedAt: a.PushedAt, LastTry: a.LastTry, LastError: a.LastError, Attempts: a.Attempts, Throttled: a.Throttled,
			Regressed: a.Regressed, HeldNumber: a.HeldNumber, Recovered: a.Recovered})
	}
	WriteJSON(w, http.StatusOK, out)
}

func (s *Server) anchorStatus(ctx context.Context) ([]storage.AnchorStatus, error) {
	if s.o.Anchors == nil {
		return nil, nil
	}
	return s.o.Anchors.Status(ctx)
}

func (s *Server) anchorsPush(w http.ResponseWriter, r *http.Request) {
	adm, err := s.admin(r)
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	if st, err := s.anchorStatus(r.Context()); err != nil || len(st) == 0 {
		problem.Write(w, r, problem.New(http.StatusConflict, problem.NotFound, "no trust anchors are configured (anchorage-ca anchors add)"))
		return
	}
	s.o.Anchors.Kick()
	events.Emit(r.Context(), s.o.Events, events.Event{Event: events.AnchorsPush, Actor: adminActor(adm), Method: ca.MethodAdmin, Result: events.OK})
	s.anchors(w, r)
}

func (s *Server) crl(asPEM bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := s.o.CRL.Current()
		if c == nil {
			problem.Write(w, r, problem.New(http.StatusServiceUnavailable, problem.Unavailable, "no CRL published yet"))
			return
		}
		w.Header().Set("Last-Modified", c.ThisUpdate.UTC().Format(http.TimeFormat))
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.Header().Set("ETag", strconv.Quote("crl-"+strconv.FormatUint(c.Number, 10)))
		if asPEM {
			w.Header().Set("Content-Type", "application/x-pem-file")
			w.Write(c.PEM)
			return
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Write(c.DER)
	}
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	h := apiv1.Health{Status: "ok"}
	if c := s.o.CRL.Current(); c != nil {
		h.CRL = &apiv1.CRLHealth{Number: c.Number, ThisUpdate: c.ThisUpdate, NextUpdate: c.NextUpdate,
			Entries: c.Entries, PEMBytes: len(c.PEM), NearCap: c.NearCap(), OverCap: c.OverCap()}
		// Warned well before the cap (crl.WarnPEMSize, 80%); degraded past it: no
		// trust anchor imports a new CRL, so revocations stop reaching
		// Roles Anywhere. Nothing is dropped from the CRL to fit and no
		// lifetime is shortened; the way out is a second issuing CA.
		switch {
		case c.OverCap():
			h.Status = "degraded"
			h.Warnings = append(h.Warnings, "CRL "+strconv.FormatUint(c.Number, 10)+" ("+strconv.Itoa(c.Entries)+" entries) is "+strconv.Itoa(len(c.PEM))+
				" bytes of PEM, over the Roles Anywhere import cap of "+strconv.Itoa(crl.MaxPEMSize)+": trust anchors keep their last CRL and revocations since are not enforced there; issue new certificates from a second CA (README: CRL size)")
		case c.NearCap():
			// A warning, not "degraded": /health answers 503 when degraded,
			// and the CRL is the same on every replica, so a load balancer
			// would take every one out of rotation at once while issuing,
			// renewing and revoking still work.
			h.Warnings = append(h.Warnings, "CRL PEM is "+strconv.Itoa(len(c.PEM))+" bytes ("+strconv.Itoa(c.Entries)+" entries), near the Roles Anywhere import cap of "+
				strconv.Itoa(crl.MaxPEMSize)+"; plan a second issuing CA (README: CRL size)")
		}
		if !c.NextUpdate.After(s.o.Now()) {
			h.Status = "degraded"
			h.Warnings = append(h.Warnings, "CRL is past its nextUpdate")
		}
	} else {
		h.Status = "degraded"
		h.Warnings = append(h.Warnings, "no CRL published yet")
	}
	if err := s.crlFileError(); err != nil {
		// Published, but the copy outside the database is behind it: a
		// restore of an older database would go unnoticed.
		h.Status = "degraded"
		h.Warnings = append(h.Warnings, "CRL file not written (a restored older database would go unnoticed): "+err.Error())
	}
	st, err := s.anchorStatus(r.Context())
	if err != nil {
		h.Status = "unhealthy"
		h.Warnings = append(h.Warnings, "trust anchor status unreadable: "+err.Error())
	}
	for _, a := range st {
		if a.Recovered > 0 {
			h.Warnings = append(h.Warnings, "trust anchor "+a.ARN+" enforced "+strconv.Itoa(a.Recovered)+
				" revocation(s) this database had lost (restored from an older backup?); they were recovered — used token ids and admin revocations since the backup cannot be: rotate provisioner.key and the admin intermediate")
		}
		if a.Regressed {
			// The CA is behind what AWS enforces: its revocation record
			// may be incomplete. Nothing about that is "degraded".
			h.Status = "unhealthy"
			h.Warnings = append(h.Warnings, "trust anchor "+a.ARN+" holds CRL "+strconv.FormatUint(a.HeldNumber, 10)+
				", newer than the CA's; pushes to it are stopped (is this database an old backup?)")
		}
	}
	if s.o.Storage != nil {
		if err := s.o.Storage.Damaged(); err != nil {
			h.Status = "unhealthy"
			h.Warnings = append(h.Warnings, "storage: "+err.Error())
		}
	}
	if s.o.Notices != nil {
		h.Warnings = append(h.Warnings, s.o.Notices()...)
	}
	if s.o.Leases != nil {
		ls, err := s.o.Leases.Leases(r.Context())
		if err != nil {
			h.Warnings = append(h.Warnings, "leases unreadable: "+err.Error())
		}
		for _, l := range ls {
			h.Leases = append(h.Leases, apiv1.Lease{Name: l.Name, Holder: l.Holder, Since: l.Since})
		}
	}
	status := http.StatusOK
	if h.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	WriteJSON(w, status, h)
}

// IssueProblem maps an issuing error to a problem; unexpected errors are
// logged and hidden.
func IssueProblem(err error, log *slog.Logger) error {
	if errors.Is(err, ca.ErrBadCSR) {
		return problem.New(http.StatusBadRequest, problem.BadCSR, "%v", err)
	}
	log.Error("issuing failed", "err", err)
	return err
}

// CertResponse renders an issued certificate.
func CertResponse(iss *ca.Issued) apiv1.CertResponse {
	return apiv1.CertResponse{
		Serial: iss.Record.Serial, Subject: iss.Record.Subject,
		NotBefore: iss.Cert.NotBefore, NotAfter: iss.Cert.NotAfter, Chain: ChainPEM(iss.Chain),
	}
}

// Info renders a stored certificate for listing.
func Info(c *storage.Cert, now time.Time) apiv1.CertInfo {
	info := apiv1.CertInfo{
		Serial: c.Serial, Subject: c.Subject, SANs: c.SANs, NotBefore: c.NotBefore, NotAfter: c.NotAfter,
		Method: string(c.Method), Status: string(c.Status), RevokedAt: c.RevokedAt,
		Lineage: c.LineageID(), RenewedFrom: c.RenewedFrom, RenewedTo: c.RenewedTo, RevokedWith: c.RevokedWith,
		Undelivered: c.Undelivered,
		IssuedBy:    c.IssuedBy,
	}
	if c.Status == storage.StatusRevoked {
		info.Reason = ca.ReasonName(c.Reason)
	} else if c.Expired(now) {
		info.Status = "expired"
	}
	return info
}
