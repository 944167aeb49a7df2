// Package events is the CA's audit stream: one JSON line per issuance,
// renewal, revocation, admin action, token mint, anchor push and refusal of
// note, each carrying prev, the hex SHA-256 of the line before it, so a
// line edited, dropped or inserted breaks the chain where it happened
// (Verify finds it). The stream goes to a file, rotated by size under a
// lock so that `anchorage-ca token` and a running server can share it, or
// to stdout. Lines never hold keys or tokens, only token ids.
//
// This package is the vocabulary (what the issuing core links); package
// events/stream writes and verifies the stream.
//
// Where events come from: ca.Authority (issue, renew, revoke and the
// refusals it decides), the api handlers (token and client-certificate
// refusals before the core, admin certificates, anchors push), anchorsync
// (each recorded push attempt), and anchorage-ca itself (token mints,
// break-glass admin certificates). Each is emitted once, after its outcome
// is durable. With several replicas each replica writes its own stream.
package events

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Event is one audit line. The first nine fields are always present, in
// this order, so that a line reads the same whatever happened.
type Event struct {
	Time    time.Time `json:"time"`
	Event   string    `json:"event"`
	Serial  string    `json:"serial"`
	Subject string    `json:"subject"`
	Lineage string    `json:"lineage"`
	Method  string    `json:"method"`
	Actor   string    `json:"actor"`
	Remote  string    `json:"remote"`
	Result  string    `json:"result"`
	Reason  string    `json:"reason,omitempty"`
	Error   string    `json:"error,omitempty"`
	// TokenID is an enrollment token's jti, never the token.
	TokenID     string `json:"token_id,omitempty"`
	RenewedFrom string `json:"renewed_from,omitempty"` // a renewal's predecessor
	Anchor      string `json:"anchor,omitempty"`
	CRLNumber   uint64 `json:"crl_number,omitempty"`
	Prev        string `json:"prev"`
}

// Event names.
const (
	Issue        = "issue"         // an issuance (token, acme, admin, tls): ok, or a refusal (token replayed …)
	Renew        = "renew"         // a renewal: result ok, retried, or a refusal
	Revoke       = "revoke"        // a certificate revoked (one line per certificate)
	AdminRefused = "admin_refused" // an admin call refused (bad client certificate)
	AnchorsPush  = "anchors_push"  // an admin asked for a push to every anchor
	TokenMint    = "token_mint"    // anchorage-ca token printed a token
	AnchorPush   = "anchor_push"   // anchorsync pushed (or failed to push) a CRL
)

// Results.
const (
	OK = "ok"
	// Refused is the result of every refusal; Reason says which.
	Refused = "refused"
	Failed  = "error"
)

// Genesis is the prev of the first line of a stream with no predecessor.
var Genesis = hex.EncodeToString(make([]byte, sha256.Size))

// Hash is the prev value the line after line (without its newline) carries.
func Hash(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}

// Sink takes events; a nil Sink drops them.
type Sink interface {
	Emit(ctx context.Context, e Event)
}

// Emit sends e to s, filling Actor and Remote from ctx where e has none
// and Time if zero. s may be nil.
func Emit(ctx context.Context, s Sink, e Event) {
	if s == nil {
		return
	}
	if who, ok := ctx.Value(whoKey{}).(Who); ok {
		if e.Actor == "" {
			e.Actor = who.Actor
		}
		if e.Remote == "" {
			e.Remote = who.Remote
		}
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	s.Emit(ctx, e)
}

// Who is the caller of a request: set by the HTTP layer, read by the
// issuing core when it emits.
type Who struct {
	Actor  string // "admin:CN serial", "cert:serial", "token:jti", "acme:account"
	Remote string // the client's address
}

type whoKey struct{}

// WithWho returns ctx carrying w (merged over what ctx carries).
func WithWho(ctx context.Context, w Who) context.Context {
	if old, ok := ctx.Value(whoKey{}).(Who); ok {
		if w.Actor == "" {
			w.Actor = old.Actor
		}
		if w.Remote == "" {
			w.Remote = old.Remote
		}
	}
	return context.WithValue(ctx, whoKey{}, w)
}

// Encode renders e as one line (no newline) with the given prev.
func Encode(e Event, prev string) ([]byte, error) {
	e.Prev = prev
	return json.Marshal(e)
}
