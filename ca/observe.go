package ca

import (
	"context"
	"errors"
	"time"

	"github.com/anchorage-pki/anchorage/events"
	"github.com/anchorage-pki/anchorage/storage"
)

// Operations a Meter sees.
const (
	OpIssue  = "issue"
	OpRenew  = "renew"
	OpRevoke = "revoke"
)

// Renewal and revocation methods (issuance uses storage.Method).
const (
	MethodMTLS  = "mtls"  // renewal over mTLS by the certificate itself
	MethodAdmin = "admin" // revocation by an admin over the API
	MethodACME  = "acme"  // revocation by an ACME client
)

// Meter records the outcome and latency of every issue, renew and revoke;
// package metrics implements it with Prometheus. nil records nothing.
type Meter interface {
	Observe(op, method, result string, d time.Duration)
}

// Result names the outcome of an operation for metrics and events: "ok",
// "retried" (a renewal answered with the successor already issued), or
// the refusal.
func Result(err error) string {
	switch {
	case err == nil:
		return events.OK
	case errors.Is(err, ErrBadCSR):
		return "bad_csr"
	case errors.Is(err, storage.ErrTokenUsed):
		return "token_replayed"
	case errors.Is(err, storage.ErrTokenExpired):
		return "token_expired"
	case errors.Is(err, ErrSuperseded):
		return "superseded"
	case errors.Is(err, ErrRevoked):
		return "revoked"
	case errors.Is(err, ErrExpired):
		return "expired"
	case errors.Is(err, ErrUnknownCert):
		return "unknown_cert"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	}
	return events.Failed
}

const resultRetried = "retried"

// observe records one operation with the meter and the event stream. An
// error result carries its error text; a refusal carries it as reason.
func (a *Authority) observe(ctx context.Context, op, method string, start time.Time, err error, e events.Event) {
	result := Result(err)
	if e.Result == resultRetried {
		result = resultRetried
	}
	if a.meter != nil {
		a.meter.Observe(op, method, result, time.Since(start))
	}
	e.Method = method
	switch result {
	case events.OK, resultRetried:
		e.Result = result
	case events.Failed:
		e.Result, e.Error = events.Failed, err.Error()
	default:
		e.Result, e.Reason, e.Error = events.Refused, result, err.Error()
	}
	events.Emit(ctx, a.events, e)
}
