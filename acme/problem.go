package acme

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/anchorage-pki/anchorage/storage"
)

// ACME error types (RFC 8555 §6.7) this server sends.
const (
	ErrAccountDoesNotExist     = "urn:ietf:params:acme:error:accountDoesNotExist"
	ErrAlreadyRevoked          = "urn:ietf:params:acme:error:alreadyRevoked"
	ErrBadCSR                  = "urn:ietf:params:acme:error:badCSR"
	ErrBadNonce                = "urn:ietf:params:acme:error:badNonce"
	ErrBadPublicKey            = "urn:ietf:params:acme:error:badPublicKey"
	ErrBadRevocationReason     = "urn:ietf:params:acme:error:badRevocationReason"
	ErrBadSignatureAlgorithm   = "urn:ietf:params:acme:error:badSignatureAlgorithm"
	ErrConnection              = "urn:ietf:params:acme:error:connection"
	ErrDNS                     = "urn:ietf:params:acme:error:dns"
	ErrExternalAccountRequired = "urn:ietf:params:acme:error:externalAccountRequired"
	ErrIncorrectResponse       = "urn:ietf:params:acme:error:incorrectResponse"
	ErrInvalidContact          = "urn:ietf:params:acme:error:invalidContact"
	ErrMalformed               = "urn:ietf:params:acme:error:malformed"
	ErrOrderNotReady           = "urn:ietf:params:acme:error:orderNotReady"
	ErrRateLimited             = "urn:ietf:params:acme:error:rateLimited"
	ErrRejectedIdentifier      = "urn:ietf:params:acme:error:rejectedIdentifier"
	ErrServerInternal          = "urn:ietf:params:acme:error:serverInternal"
	ErrTLS                     = "urn:ietf:params:acme:error:tls"
	ErrUnauthorized            = "urn:ietf:params:acme:error:unauthorized"
	ErrUnsupportedContact      = "urn:ietf:params:acme:error:unsupportedContact"
	ErrUnsupportedIdentifier   = "urn:ietf:params:acme:error:unsupportedIdentifier"
)

// Problem is an RFC 7807 problem document with an ACME error type. It is
// also stored on failed challenges and orders.
type Problem struct {
	Type        string     `json:"type"`
	Detail      string     `json:"detail,omitempty"`
	Status      int        `json:"status,omitempty"`
	Identifier  *ident     `json:"identifier,omitempty"`
	Subproblems []*Problem `json:"subproblems,omitempty"`
	// cause is the internal error behind a serverInternal problem: logged,
	// never sent (it may name tables, hosts or files).
	cause error
}

func (p *Problem) Error() string { return p.Type + ": " + p.Detail }

func problemf(typ string, status int, format string, args ...any) *Problem {
	return &Problem{Type: typ, Status: status, Detail: fmt.Sprintf(format, args...)}
}

func malformed(format string, args ...any) *Problem {
	return problemf(ErrMalformed, http.StatusBadRequest, format, args...)
}

func unauthorized(format string, args ...any) *Problem {
	return problemf(ErrUnauthorized, http.StatusForbidden, format, args...)
}

func notFound(format string, args ...any) *Problem {
	return problemf(ErrMalformed, http.StatusNotFound, format, args...)
}

// internal answers an error the client did not cause: 503 (retry shortly)
// when storage is unreachable, else 500; the detail names neither, the
// log has the cause.
func internal(err error) *Problem {
	if errors.Is(err, storage.ErrUnavailable) {
		return &Problem{Type: ErrServerInternal, Status: http.StatusServiceUnavailable,
			Detail: "the CA's storage is unavailable; retry shortly", cause: err}
	}
	return &Problem{Type: ErrServerInternal, Status: http.StatusInternalServerError,
		Detail: "internal error; see the CA log", cause: err}
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, p *provisioner, pr *Problem) {
	if pr.Status == 0 {
		pr.Status = http.StatusBadRequest
	}
	level := slogLevel(pr.Status)
	prov := ""
	if p != nil {
		prov = p.name
	}
	attrs := []any{"provisioner", prov, "path", r.URL.Path, "status", pr.Status, "type", pr.Type, "detail", pr.Detail}
	if pr.cause != nil {
		attrs = append(attrs, "err", pr.cause)
	}
	s.log.Log(r.Context(), level, "ACME request refused", attrs...)
	if pr.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(pr.Status)
	json.NewEncoder(w).Encode(pr)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func slogLevel(status int) slog.Level {
	if status >= 500 {
		return slog.LevelError
	}
	return slog.LevelInfo
}
