// Package enroll is one-time-token enrollment: the CA mints a short-lived
// JWT (ES256) naming a workload and the names it may hold; the workload
// posts it with a CSR; the CA verifies signature, issuer, audience, expiry
// and single use, checks the CSR asks for nothing beyond the grant, and
// issues. The token's id is consumed in the same commit that stores the
// certificate, so a token yields at most one certificate even under races
// or a crash. The package holds no HTTP: api.EnrollHandler serves
// POST /v1/enroll with a Verifier and Grant.CheckCSR.
package enroll

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"go.step.sm/crypto/jose"

	"github.com/anchorage-pki/anchorage/ca"
)

// Issuer is the iss claim of every enrollment token.
const Issuer = "anchorage"

// Leeway tolerates clock differences between the host that minted the token
// and the CA that checks it. It is also how long past its expiry a used
// token's id is remembered (Grant.KeepUntil): the verifier accepts a token
// until exp + Leeway, so forgetting its id any sooner would make it
// reusable.
const Leeway = 30 * time.Second

// Token errors, each mapped to its own problem type.
var (
	ErrMalformed = errors.New("token is malformed")
	ErrSignature = errors.New("token signature does not verify")
	ErrExpired   = errors.New("token has expired")
	ErrAudience  = errors.New("token is for a different CA")
	ErrReplayed  = errors.New("token has already been used")
)

// Claims are the token's payload: sub is the workload name (subject CN),
// sans the extra names the certificate may carry, untyped (host, IP, URI)
// as step-ca's tokens carry them, so the step CLI builds the same CSR from
// them. sha is the hex SHA-256 of the root certificate: the step CLI then
// finds the CA at aud and pins its root without --ca-url or --root.
type Claims struct {
	jose.Claims
	SANs []string `json:"sans,omitempty"`
	SHA  string   `json:"sha,omitempty"`
}

// MintOption adds to what Mint puts in a token.
type MintOption func(*Claims)

// WithRootFingerprint adds the sha claim: the root certificate's SHA-256,
// hex, as `step ca certificate` uses it to fetch and pin the root.
func WithRootFingerprint(sha256Hex string) MintOption {
	return func(c *Claims) { c.SHA = strings.ToLower(sha256Hex) }
}

// Grant is a verified token: what the bearer may be issued.
type Grant struct {
	ID      string
	Subject string
	Names   ca.Names
	Expiry  time.Time
}

// KeepUntil is how long the token's id must stay recorded as used: as long
// as Verify could accept the token.
func (g *Grant) KeepUntil() time.Time { return g.Expiry.Add(Leeway) }

// Mint signs a token for name and sans, valid for ttl, bound to audience
// (the CA's URL).
func Mint(key crypto.Signer, audience, name string, sans []string, ttl time.Duration, now time.Time, opts ...MintOption) (string, error) {
	if err := ca.CheckSubject(name); err != nil {
		return "", err
	}
	names, err := ca.ParseSANs(sans)
	if err != nil {
		return "", err
	}
	jwk := jose.JSONWebKey{Key: key.Public()}
	kid, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("token key id: %w", err)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		new(jose.SignerOptions).WithType("JWT").WithHeader("kid", hex.EncodeToString(kid)))
	if err != nil {
		return "", fmt.Errorf("token signer: %w", err)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return "", err
	}
	c := Claims{
		Claims: jose.Claims{
			Issuer:    Issuer,
			Subject:   name,
			Audience:  jose.Audience{audience},
			ID:        hex.EncodeToString(id),
			IssuedAt:  jose.NewNumericDate(now),
			NotBefore: jose.NewNumericDate(now),
			Expiry:    jose.NewNumericDate(now.Add(ttl)),
		},
		SANs: names.Plain(),
	}
	for _, o := range opts {
		o(&c)
	}
	tok, err := jose.Signed(sig).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return tok, nil
}

// UsedChecker reports whether a token id was consumed already.
type UsedChecker interface {
	TokenUsed(ctx context.Context, jti string) (bool, error)
}

// Verifier checks tokens minted with the provisioner key.
type Verifier struct {
	Key      crypto.PublicKey
	Audience string
	MaxTTL   time.Duration
	Used     UsedChecker
	Now      func() time.Time

	// header is the last protected header the ES256 path accepted: every
	// token of one provisioner key carries the same one, so it is decoded
	// once. headerES256 depends on the header text alone, so this is a memo,
	// not a shortcut past a check.
	header atomic.Pointer[string]
}

// Verify returns the grant of a valid, unused token.
func (v *Verifier) Verify(ctx context.Context, token string) (*Grant, error) {
	token = strings.TrimSpace(token)
	if token == "" || len(token) > 8192 {
		return nil, fmt.Errorf("%w: empty or oversized", ErrMalformed)
	}
	c, err := v.claims(token)
	if err != nil {
		return nil, unverifiedError{err}
	}
	now := v.Now()
	if c.Issuer != Issuer || c.Subject == "" || c.ID == "" || c.Expiry == nil || c.IssuedAt == nil {
		return nil, fmt.Errorf("%w: missing iss, sub, jti, iat or exp", ErrMalformed)
	}
	if !c.Audience.Contains(v.Audience) {
		return nil, fmt.Errorf("%w (audience %v, this CA is %s)", ErrAudience, []string(c.Audience), v.Audience)
	}
	if err := c.Claims.ValidateWithLeeway(jose.Expected{Time: now}, Leeway); err != nil {
		if errors.Is(err, jose.ErrExpired) {
			return nil, fmt.Errorf("%w at %s", ErrExpired, c.Expiry.Time().UTC().Format(time.RFC3339))
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if v.MaxTTL > 0 && c.Expiry.Time().Sub(c.IssuedAt.Time()) > v.MaxTTL+Leeway {
		return nil, fmt.Errorf("%w: lifetime longer than the CA allows (%s)", ErrMalformed, v.MaxTTL)
	}
	if err := ca.CheckSubject(c.Subject); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	names, err := ca.ParseSANs(c.SANs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	used, err := v.Used.TokenUsed(ctx, c.ID)
	if err != nil {
		return nil, fmt.Errorf("check token id: %w", err)
	}
	if used {
		return nil, ErrReplayed
	}
	return &Grant{ID: c.ID, Subject: c.Subject, Names: names, Expiry: c.Expiry.Time()}, nil
}

// claims returns the verified claims of token: the dedicated ES256 path
// for tokens shaped as Mint makes them, the JOSE library for the rest (and
// for every refusal, so each keeps its error).
func (v *Verifier) claims(token string) (*Claims, error) {
	if k, ok := v.Key.(*ecdsa.PublicKey); ok {
		if c, ok := verifyES256(k, token, &v.header); ok {
			return c, nil
		}
	}
	return v.claimsJOSE(token)
}

// claimsJOSE is the general path: go-jose parses and verifies.
func (v *Verifier) claimsJOSE(token string) (*Claims, error) {
	tok, err := jose.ParseSigned(token)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(tok.Headers) != 1 || tok.Headers[0].Algorithm != string(jose.ES256) {
		return nil, fmt.Errorf("%w: want one ES256 signature", ErrMalformed)
	}
	var c Claims
	if err := tok.Claims(v.Key, &c); err != nil {
		return nil, ErrSignature
	}
	return &c, nil
}

// unverifiedError marks a refusal made before the token's signature was
// verified: whatever the token claims (its jti above all) is the caller's
// word. The message and errors.Is are those of the wrapped error.
type unverifiedError struct{ err error }

func (e unverifiedError) Error() string { return e.err.Error() }
func (e unverifiedError) Unwrap() error { return e.err }

// Unverified reports whether Verify refused the token before its signature
// verified, so that nothing it claims may be recorded as fact: an audit
// event must not name a real token id a forger typed in.
func Unverified(err error) bool {
	var u unverifiedError
	return errors.As(err, &u)
}

// ClaimedID is the jti a token claims, read without verifying anything:
// only for naming a token in logs and audit events (which never carry the
// token itself). "" if the token has no readable id.
func ClaimedID(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		ID string `json:"jti"`
	}
	if json.Unmarshal(b, &c) != nil || len(c.ID) > 128 {
		return ""
	}
	return c.ID
}
