package api

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/enroll"
	"github.com/anchorage-pki/anchorage/events"
	"github.com/anchorage-pki/anchorage/problem"
	"github.com/anchorage-pki/anchorage/storage"
)

// TokenVerifier checks an enrollment token; *enroll.Verifier implements it.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*enroll.Grant, error)
}

// CertIssuer issues certificates; ca.Authority implements it.
type CertIssuer interface {
	Issue(ctx context.Context, r ca.Request) (*ca.Issued, error)
}

// EnrollHandler serves POST /v1/enroll: package enroll decides what a token
// grants, this handler speaks HTTP and hands the grant to the issuing core.
type EnrollHandler struct {
	Verifier TokenVerifier
	CA       CertIssuer
	Logger   *slog.Logger
	Meter    ca.Meter    // refusals before the issuing core; may be nil
	Events   events.Sink // may be nil
}

// refused records an enrollment turned away before the issuing core (which
// records the rest).
func (h *EnrollHandler) refused(r *http.Request, start time.Time, e events.Event, err error) {
	if h.Meter != nil {
		h.Meter.Observe(ca.OpIssue, string(storage.MethodToken), e.Reason, time.Since(start))
	}
	e.Event, e.Method, e.Result, e.Error = events.Issue, string(storage.MethodToken), events.Refused, err.Error()
	events.Emit(r.Context(), h.Events, e)
}

// tokenReason names a token refusal for metrics and events.
func tokenReason(err error) string {
	switch {
	case errors.Is(err, enroll.ErrReplayed):
		return "token_replayed"
	case errors.Is(err, enroll.ErrExpired):
		return "token_expired"
	case errors.Is(err, enroll.ErrAudience):
		return "token_audience"
	case errors.Is(err, enroll.ErrSignature), errors.Is(err, enroll.ErrMalformed):
		return "token_invalid"
	}
	return events.Failed
}

func (h *EnrollHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		problem.Write(w, r, problem.New(http.StatusMethodNotAllowed, problem.MethodNotAllowed, "use POST"))
		return
	}
	req, csr, err := decodeWithCSR(w, r, func(q *apiv1.EnrollRequest) string { return q.CSR })
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	iss, err := h.Enroll(r, req.Token, csr, 0)
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	WriteJSON(w, http.StatusCreated, CertResponse(iss))
}

// Enroll verifies token, checks csr against its grant, and issues a
// certificate of lifetime (0: the CA's default; never past its maximum).
// Errors are problem errors. /v1/enroll and step-ca's /1.0/sign both come
// here, so name binding, single use, recording, metrics and events are one
// code path.
func (h *EnrollHandler) Enroll(r *http.Request, token string, csr *x509.CertificateRequest, lifetime time.Duration) (*ca.Issued, error) {
	start := time.Now()
	grant, err := h.Verifier.Verify(r.Context(), token)
	if err != nil {
		h.Logger.Warn("enrollment refused", "err", err, "remote", r.RemoteAddr)
		id := enroll.ClaimedID(token)
		e := events.Event{TokenID: id, Actor: "token:" + id, Reason: tokenReason(err)}
		recorded := err
		if enroll.Unverified(err) {
			// Its signature did not verify: the jti is the sender's word,
			// kept only as a quoted claim, never as the token's id.
			e.TokenID, e.Actor = "", "unverified-token"
			if id != "" {
				recorded = fmt.Errorf("%w (claimed jti %q)", err, id)
			}
		}
		h.refused(r, start, e, recorded)
		return nil, tokenProblem(err)
	}
	ctx := events.WithWho(r.Context(), events.Who{Actor: "token:" + grant.ID})
	if err := grant.CheckCSR(csr); err != nil {
		h.Logger.Warn("enrollment refused", "err", err, "subject", grant.Subject)
		h.refused(r.WithContext(ctx), start, events.Event{TokenID: grant.ID, Subject: grant.Subject, Reason: "name_not_allowed"}, err)
		return nil, problem.New(http.StatusForbidden, problem.NameNotAllowed, "%v", err)
	}
	iss, err := h.CA.Issue(ctx, ca.Request{
		CSR: csr, Subject: grant.Subject, Names: grant.Names, Method: storage.MethodToken,
		TokenID: grant.ID, TokenKeepUntil: grant.KeepUntil(), Lifetime: lifetime,
	})
	if err != nil {
		// Verify saw the token unused, but another request consumed it
		// in the commit that stored its certificate.
		if errors.Is(err, storage.ErrTokenExpired) {
			return nil, tokenProblem(enroll.ErrExpired)
		}
		if errors.Is(err, storage.ErrTokenUsed) {
			return nil, tokenProblem(enroll.ErrReplayed)
		}
		return nil, IssueProblem(err, h.Logger)
	}
	return iss, nil
}

// tokenProblem gives each enroll token error its own problem type.
func tokenProblem(err error) error {
	switch {
	case errors.Is(err, enroll.ErrReplayed):
		return problem.New(http.StatusForbidden, problem.TokenReplayed, "%v", err)
	case errors.Is(err, enroll.ErrExpired):
		return problem.New(http.StatusUnauthorized, problem.TokenExpired, "%v", err)
	case errors.Is(err, enroll.ErrAudience):
		return problem.New(http.StatusUnauthorized, problem.TokenAudience, "%v", err)
	case errors.Is(err, enroll.ErrSignature), errors.Is(err, enroll.ErrMalformed):
		return problem.New(http.StatusUnauthorized, problem.TokenInvalid, "%v", err)
	}
	return err
}
