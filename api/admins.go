package api

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/events"
	"github.com/anchorage-pki/anchorage/problem"
	"github.com/anchorage-pki/anchorage/storage"
)

// AdminCA issues admin client certificates from the admin intermediate.
// Issuer is nil while there is none yet (a CA from before it existed).
type AdminCA interface {
	Issuer() *x509.Certificate
	IssueAdmin(ctx context.Context, r ca.AdminRequest) (*ca.Issued, error)
}

// CertLookup finds the stored record of a certificate by serial; every
// admin call checks it, so a revoked admin is refused on its next request.
type CertLookup interface {
	Cert(ctx context.Context, serial string) (*storage.Cert, error)
}

// SetAdmins replaces the fingerprints of legacy admin certificates (signed
// by the root directly, made before the admin intermediate), as a reload
// of the configuration does.
func (s *Server) SetAdmins(fps []string) {
	c := slices.Clone(fps)
	s.legacyAdmins.Store(&c)
}

// verifyVia verifies leaf for clientAuth through exactly one of the given
// intermediates to the root. Only the CA's own intermediates are used,
// never ones the client sent, so which intermediate a chain went through
// says what the certificate is: issuing CA = workload, admin CA = admin.
func verifyVia(leaf *x509.Certificate, roots *x509.CertPool, via []*x509.Certificate, now time.Time) error {
	inter := x509.NewCertPool()
	for _, c := range via {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return err
	}
	for _, ch := range chains {
		if len(ch) == 3 {
			return nil
		}
	}
	// Straight under the root: a legacy admin certificate, not a workload's.
	return x509.UnknownAuthorityError{Cert: leaf}
}

func expired(err error) bool {
	var ie x509.CertificateInvalidError
	return errors.As(err, &ie) && ie.Reason == x509.Expired
}

// isAdminCert reports whether leaf was signed by an admin intermediate or
// is a listed legacy admin certificate, whatever its state.
func (s *Server) isAdminCert(leaf *x509.Certificate) bool {
	if s.o.AdminCA != nil {
		if a := s.o.AdminCA.Issuer(); a != nil && leaf.CheckSignatureFrom(a) == nil {
			return true
		}
	}
	return slices.Contains(*s.legacyAdmins.Load(), ca.Fingerprint(leaf))
}

// admin authenticates an admin: a client certificate that chains root →
// admin intermediate (or a legacy one listed in "admins", straight under
// the root), whose record in storage is an admin certificate, valid and
// unexpired. The record is read on every call: revocation needs no restart.
func (s *Server) admin(r *http.Request) (*x509.Certificate, error) {
	c, err := s.checkAdmin(r)
	if err != nil {
		e := events.Event{Event: events.AdminRefused, Result: events.Refused, Reason: "bad_client_cert", Error: err.Error()}
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			e.Serial, e.Subject = ca.SerialHex(r.TLS.PeerCertificates[0].SerialNumber), r.TLS.PeerCertificates[0].Subject.CommonName
		}
		events.Emit(r.Context(), s.o.Events, e)
	}
	return c, err
}

func (s *Server) checkAdmin(r *http.Request) (*x509.Certificate, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, problem.New(http.StatusUnauthorized, problem.Unauthenticated, "this endpoint needs an admin client certificate (mTLS)")
	}
	leaf := r.TLS.PeerCertificates[0]
	serial := ca.SerialHex(leaf.SerialNumber)
	now := s.o.Now()
	var err error
	switch {
	case s.o.AdminCA != nil && s.o.AdminCA.Issuer() != nil && leaf.CheckSignatureFrom(s.o.AdminCA.Issuer()) == nil:
		err = verifyVia(leaf, s.o.Roots, []*x509.Certificate{s.o.AdminCA.Issuer()}, now)
	case slices.Contains(*s.legacyAdmins.Load(), ca.Fingerprint(leaf)):
		_, err = leaf.Verify(x509.VerifyOptions{Roots: s.o.Roots, CurrentTime: now, Intermediates: x509.NewCertPool(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	default:
		if verifyVia(leaf, s.o.Roots, s.o.Issuers, now) == nil {
			return nil, problem.New(http.StatusForbidden, problem.Forbidden, "certificate %q is not an admin of this CA", leaf.Subject.CommonName)
		}
		return nil, problem.New(http.StatusUnauthorized, problem.Unauthenticated, "client certificate %q is not an admin certificate of this CA", leaf.Subject.CommonName)
	}
	if expired(err) {
		return nil, problem.New(http.StatusUnauthorized, problem.CertExpired,
			"admin certificate %s expired at %s; ask another admin for a new one (anchorage-ca admin issue)", serial, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if err != nil {
		return nil, problem.New(http.StatusUnauthorized, problem.Unauthenticated, "admin certificate %s does not verify: %v", serial, err)
	}
	if s.o.Certs == nil {
		// Fail closed: without the record there is no revocation check.
		return nil, problem.New(http.StatusServiceUnavailable, problem.Unavailable, "admin records are not available")
	}
	rec, err := s.o.Certs.Cert(r.Context(), serial)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, problem.New(http.StatusForbidden, problem.CertUnknown, "admin certificate %s is not on record at this CA", serial)
	case err != nil:
		return nil, err
	case rec.Method != storage.MethodAdmin || !bytes.Equal(rec.DER, leaf.Raw):
		return nil, problem.New(http.StatusForbidden, problem.Forbidden, "certificate %q is not an admin of this CA", leaf.Subject.CommonName)
	case rec.Status == storage.StatusRevoked:
		return nil, problem.New(http.StatusForbidden, problem.CertRevoked, "admin certificate %s (%s) was revoked at %s",
			serial, rec.Subject, rec.RevokedAt.UTC().Format(time.RFC3339))
	case rec.Expired(now):
		return nil, problem.New(http.StatusUnauthorized, problem.CertExpired, "admin certificate %s has expired", serial)
	}
	return leaf, nil
}

// admins serves /v1/admins: POST issues an admin certificate, GET lists them.
func (s *Server) admins(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		s.issueAdmin(w, r)
	case http.MethodGet, http.MethodHead:
		s.listAdmins(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		problem.Write(w, r, problem.New(http.StatusMethodNotAllowed, problem.MethodNotAllowed, "use GET or POST"))
	}
}

func (s *Server) issueAdmin(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	adm, err := s.admin(r)
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	req, csr, err := decodeWithCSR(w, r, func(q *apiv1.AdminRequest) string { return q.CSR })
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	var lifetime time.Duration
	if req.Lifetime != "" {
		if lifetime, err = time.ParseDuration(req.Lifetime); err != nil || lifetime <= 0 {
			problem.Write(w, r, problem.New(http.StatusBadRequest, problem.Malformed, "lifetime %q: want a positive duration like 720h", req.Lifetime))
			return
		}
	}
	if s.o.AdminCA == nil {
		problem.Write(w, r, problem.New(http.StatusNotFound, problem.NotFound, "this CA does not issue admin certificates"))
		return
	}
	iss, err := s.o.AdminCA.IssueAdmin(r.Context(), ca.AdminRequest{Name: req.Name, CSR: csr, Lifetime: lifetime,
		By: adm.Subject.CommonName + " " + ca.SerialHex(adm.SerialNumber), IssuedBy: ca.SerialHex(adm.SerialNumber)})
	// Admin certificates are issued by the admin intermediate, not the
	// Authority: this is the one place they are recorded as events.
	e := events.Event{Event: events.Issue, Subject: req.Name, Actor: adminActor(adm)}
	if iss != nil {
		e.Serial, e.Lineage = iss.Record.Serial, iss.Record.LineageID()
	}
	if err != nil && (errors.Is(err, ca.ErrBadCSR) || errors.Is(err, ca.ErrAdminRequest) || errors.Is(err, ca.ErrNoAdminCA)) {
		e.Reason = "bad_request"
		s.refused(r, ca.OpIssue, string(storage.MethodAdmin), start, e, err)
	} else {
		result := ca.Result(err)
		s.o.Metrics.Observe(ca.OpIssue, string(storage.MethodAdmin), result, time.Since(start))
		e.Method, e.Result = string(storage.MethodAdmin), result
		if err != nil {
			e.Error = err.Error()
		}
		events.Emit(r.Context(), s.o.Events, e)
	}
	switch {
	case errors.Is(err, ca.ErrBadCSR):
		problem.Write(w, r, problem.New(http.StatusBadRequest, problem.BadCSR, "%v", err))
		return
	case errors.Is(err, ca.ErrAdminRequest):
		problem.Write(w, r, problem.New(http.StatusBadRequest, problem.Malformed, "%v", err))
		return
	case errors.Is(err, ca.ErrNoAdminCA):
		problem.Write(w, r, problem.New(http.StatusConflict, problem.Unavailable, "%v", err))
		return
	case err != nil:
		s.o.Logger.Error("admin certificate issuing failed", "err", err)
		problem.Write(w, r, err)
		return
	}
	WriteJSON(w, http.StatusCreated, CertResponse(iss))
}

func (s *Server) listAdmins(w http.ResponseWriter, r *http.Request) {
	if _, err := s.admin(r); err != nil {
		problem.Write(w, r, err)
		return
	}
	now := s.o.Now()
	list, err := s.adminRecords(r.Context(), now)
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	bySerial := make(map[string]*storage.Cert, len(list))
	for _, c := range list {
		bySerial[c.Serial] = c
	}
	out := apiv1.CertList{Certs: []apiv1.CertInfo{}}
	for _, c := range list {
		info := Info(c, now)
		if info.Status == string(storage.StatusValid) {
			info.IssuerRevoked = revokedIssuer(c, bySerial, func(p *storage.Cert) bool { return p.Status == storage.StatusRevoked })
		}
		out.Certs = append(out.Certs, info)
	}
	WriteJSON(w, http.StatusOK, out)
}

// adminRecords lists every admin certificate record. ListCerts has no
// method filter: admin certificates are few, and this is an interactive
// call (a list, or a revocation that named an admin).
func (s *Server) adminRecords(ctx context.Context, now time.Time) ([]*storage.Cert, error) {
	if s.o.Lister == nil {
		return nil, errors.New("no certificate lister")
	}
	list, err := s.o.Lister.ListCerts(ctx, storage.Filter{}, now)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(list, func(c *storage.Cert) bool { return c.Method != storage.MethodAdmin }), nil
}

// revokedIssuer follows c's IssuedBy through the admin records and returns
// the first admin on the way for which revoked is true, or "": an admin
// made by an admin that a leaked one made is as suspect as a direct one.
func revokedIssuer(c *storage.Cert, bySerial map[string]*storage.Cert, revoked func(*storage.Cert) bool) string {
	seen := map[string]bool{c.Serial: true}
	for by := c.IssuedBy; ; {
		p := bySerial[by]
		if p == nil || seen[by] {
			return "" // "init", "local:HOST", empty, not an admin record, or a loop
		}
		if revoked(p) {
			return p.Serial
		}
		seen[by] = true
		by = p.IssuedBy
	}
}

// issuedByRevoked lists the still-valid admin certificates that one of the
// admin certificates this revocation named (revoked now or before) issued,
// directly or through other admins. The revocation is committed already:
// a failure to list is logged, not returned.
func (s *Server) issuedByRevoked(ctx context.Context, res *ca.RevokeResult, now time.Time) []apiv1.CertInfo {
	named := map[string]bool{}
	for _, c := range slices.Concat(res.Revoked, res.AlreadyRevoked) {
		if c.Method == storage.MethodAdmin {
			named[c.Serial] = true
		}
	}
	if len(named) == 0 {
		return nil // a workload revocation: no scan
	}
	list, err := s.adminRecords(ctx, now)
	if err != nil {
		s.o.Logger.Error("admin revoked; cannot list the admin certificates it issued", "err", err)
		return nil
	}
	bySerial := make(map[string]*storage.Cert, len(list))
	for _, c := range list {
		bySerial[c.Serial] = c
	}
	var out []apiv1.CertInfo
	for _, c := range list {
		if c.Status != storage.StatusValid || c.Expired(now) {
			continue
		}
		if root := revokedIssuer(c, bySerial, func(p *storage.Cert) bool { return named[p.Serial] }); root != "" {
			info := Info(c, now)
			info.IssuerRevoked = root
			out = append(out, info)
		}
	}
	return out
}
