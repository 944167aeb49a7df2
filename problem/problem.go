// Package problem writes and reads RFC 7807 problem details, the error shape
// of every anchorage HTTP API. Types are stable URNs callers may branch on.
package problem

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ContentType is the media type of a problem document.
const ContentType = "application/problem+json"

// Stable problem types.
const (
	Malformed        = "urn:anchorage:problem:malformed"
	BadCSR           = "urn:anchorage:problem:bad-csr"
	TokenInvalid     = "urn:anchorage:problem:token-invalid"
	TokenExpired     = "urn:anchorage:problem:token-expired"
	TokenReplayed    = "urn:anchorage:problem:token-replayed"
	TokenAudience    = "urn:anchorage:problem:token-audience"
	NameNotAllowed   = "urn:anchorage:problem:name-not-allowed"
	Unauthenticated  = "urn:anchorage:problem:unauthenticated"
	CertExpired      = "urn:anchorage:problem:certificate-expired"
	CertRevoked      = "urn:anchorage:problem:certificate-revoked"
	CertUnknown      = "urn:anchorage:problem:certificate-unknown"
	CertSuperseded   = "urn:anchorage:problem:certificate-superseded"
	Forbidden        = "urn:anchorage:problem:forbidden"
	NotFound         = "urn:anchorage:problem:not-found"
	MethodNotAllowed = "urn:anchorage:problem:method-not-allowed"
	TooLarge         = "urn:anchorage:problem:request-too-large"
	Internal         = "urn:anchorage:problem:internal"
	Unavailable      = "urn:anchorage:problem:unavailable"
)

// Details is an RFC 7807 problem document.
type Details struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
}

// Error makes Details usable as a Go error on the client side.
func (d *Details) Error() string {
	if d.Detail != "" {
		return d.Detail
	}
	return d.Title
}

// Error is a server-side error that carries its problem type and status.
type Error struct {
	Type   string
	Status int
	Detail string
	Err    error
}

func (e *Error) Error() string {
	if e.Err != nil && e.Detail == "" {
		return e.Err.Error()
	}
	return e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an Error with a formatted detail.
func New(status int, typ, format string, args ...any) *Error {
	return &Error{Type: typ, Status: status, Detail: fmt.Sprintf(format, args...)}
}

// unavailable is an error that says a dependency could not be reached
// (storage.ErrUnavailable has this method), declared here so problem
// imports nothing of the CA's.
type unavailable interface{ Unavailable() bool }

// Write sends err as a problem document. Errors that are not *Error become
// a 503 when they say a dependency is unavailable (Unavailable() true),
// else a 500 whose detail hides internals.
func Write(w http.ResponseWriter, r *http.Request, err error) {
	d := Describe(r, err)
	WriteDetails(w, d, d)
}

// Describe is the problem document err answers r with: its own type and
// status if it is an *Error, a 503 if a dependency is unavailable, else a
// 500 that reveals nothing.
func Describe(r *http.Request, err error) Details {
	var pe *Error
	var un unavailable
	switch {
	case errors.As(err, &pe):
	case errors.As(err, &un) && un.Unavailable():
		// The request was not judged (storage down or restarting): a
		// retry later may succeed. Nothing internal goes in the detail;
		// WriteDetails adds Retry-After.
		pe = &Error{Type: Unavailable, Status: http.StatusServiceUnavailable, Detail: "the CA's storage is unavailable; retry shortly"}
	default:
		pe = &Error{Type: Internal, Status: http.StatusInternalServerError, Detail: "internal error; see the CA log"}
	}
	d := Details{Type: pe.Type, Title: http.StatusText(pe.Status), Status: pe.Status, Detail: pe.Error()}
	if r != nil {
		d.Instance = r.URL.Path
	}
	return d
}

// WriteDetails writes body (d, or a document that embeds d and adds
// extension members, RFC 7807 §3.2) as a problem response with d's status.
func WriteDetails(w http.ResponseWriter, d Details, body any) {
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Cache-Control", "no-store")
	if d.Type == Unavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(d.Status)
	_ = json.NewEncoder(w).Encode(body)
}

// Read turns a non-2xx response into an error: the problem document when the
// server sent one, otherwise the status line and a bounded excerpt.
func Read(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if strings.HasPrefix(resp.Header.Get("Content-Type"), ContentType) {
		d := new(Details)
		if err := json.Unmarshal(body, d); err == nil && d.Type != "" {
			return d
		}
	}
	text := strings.TrimSpace(string(body))
	if len(text) > 200 {
		text = text[:200] + "..."
	}
	return fmt.Errorf("%s: %s", resp.Status, text)
}
