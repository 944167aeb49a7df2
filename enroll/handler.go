package enroll

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/anchorage-pki/anchorage/api"
	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/problem"
	"github.com/anchorage-pki/anchorage/storage"
)

// Issuer issues certificates; ca.Authority implements it.
type CertIssuer interface {
	Issue(ctx context.Context, r ca.Request) (*ca.Issued, error)
}

// Handler serves POST /v1/enroll.
type Handler struct {
	Verifier *Verifier
	CA       CertIssuer
	Logger   *slog.Logger
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		problem.Write(w, r, problem.New(http.StatusMethodNotAllowed, problem.MethodNotAllowed, "use POST"))
		return
	}
	var req apiv1.EnrollRequest
	if err := api.DecodeJSON(w, r, &req); err != nil {
		problem.Write(w, r, err)
		return
	}
	csr, err := api.ParseCSR(req.CSR)
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	grant, err := h.Verifier.Verify(r.Context(), req.Token)
	if err != nil {
		h.Logger.Warn("enrollment refused", "err", err, "remote", r.RemoteAddr)
		problem.Write(w, r, tokenProblem(err))
		return
	}
	if err := grant.CheckCSR(csr); err != nil {
		h.Logger.Warn("enrollment refused", "err", err, "subject", grant.Subject)
		problem.Write(w, r, problem.New(http.StatusForbidden, problem.NameNotAllowed, "%v", err))
		return
	}
	iss, err := h.CA.Issue(r.Context(), ca.Request{
		CSR: csr, Subject: grant.Subject, Names: grant.Names, Method: storage.MethodToken,
		TokenID: grant.ID, TokenKeepUntil: grant.KeepUntil(),
	})
	if err != nil {
		if errors.Is(err, storage.ErrTokenUsed) {
			problem.Write(w, r, tokenProblem(ErrReplayed))
			return
		}
		problem.Write(w, r, api.IssueProblem(err, h.Logger))
		return
	}
	api.WriteJSON(w, http.StatusCreated, api.CertResponse(iss))
}

func tokenProblem(err error) error {
	switch {
	case errors.Is(err, ErrReplayed):
		return problem.New(http.StatusForbidden, problem.TokenReplayed, "%v", err)
	case errors.Is(err, ErrExpired):
		return problem.New(http.StatusUnauthorized, problem.TokenExpired, "%v", err)
	case errors.Is(err, ErrAudience):
		return problem.New(http.StatusUnauthorized, problem.TokenAudience, "%v", err)
	case errors.Is(err, ErrSignature), errors.Is(err, ErrMalformed):
		return problem.New(http.StatusUnauthorized, problem.TokenInvalid, "%v", err)
	}
	return err
}
