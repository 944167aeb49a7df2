package acme

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"go.step.sm/crypto/jose"

	"github.com/anchorage-pki/anchorage/storage"
)

// maxBody bounds every request body: the largest legitimate one, a finalize
// with an RSA-4096 CSR, is a few kilobytes.
const maxBody = 64 << 10

// Account key algorithms (RFC 8555 §6.2: RS256 and ES256 at least).
var accountAlgs = []string{"RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"}

// request is an authenticated ACME POST.
type request struct {
	payload []byte
	acct    *account         // when signed with "kid"
	jwk     *jose.JSONWebKey // when signed with "jwk"
	jws     *jose.JSONWebSignature
}

// postAsGet reports whether the payload is empty: a POST-as-GET.
func (q *request) postAsGet() bool { return len(q.payload) == 0 }

type keyMode int

const (
	byKID keyMode = iota
	byJWK
	byEither
)

// authenticate reads and checks the JWS of an ACME POST (RFC 8555 §6.2–6.5):
// content type, size, flattened JSON serialization, algorithm, nonce
// (MAC and age), signature and url, and then consumes the nonce.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, p *provisioner, mode keyMode) (*request, *Problem) {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/jose+json" {
		return nil, problemf(ErrMalformed, http.StatusUnsupportedMediaType, "Content-Type must be application/jose+json, not %q", r.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, problemf(ErrMalformed, http.StatusRequestEntityTooLarge, "request body larger than %d bytes", maxBody)
		}
		return nil, malformed("reading request body: %v", err)
	}
	jws, pr := parseJWS(body, accountAlgs)
	if pr != nil {
		return nil, pr
	}
	h := jws.Signatures[0].Protected
	// The nonce's MAC and age are checked before anything else reads
	// storage; it is consumed — a storage write — only once the JWS has
	// passed every other check.
	nonceID, nonceKeep, pr := s.nonces.check(h.Nonce)
	if pr != nil {
		return nil, pr
	}
	q := &request{jws: jws}
	var key *jose.JSONWebKey
	switch {
	case h.JSONWebKey != nil && h.KeyID != "":
		return nil, malformed(`JWS header has both "jwk" and "kid"; use exactly one`)
	case h.JSONWebKey != nil:
		if mode == byKID {
			return nil, malformed(`this request must be signed by an account: use "kid", not "jwk"`)
		}
		if pr := checkAccountKey(h.JSONWebKey); pr != nil {
			return nil, pr
		}
		q.jwk, key = h.JSONWebKey, h.JSONWebKey
	case h.KeyID != "":
		if mode == byJWK {
			return nil, malformed(`newAccount must be signed with "jwk", not "kid"`)
		}
		acct, pr := s.lookupKID(r, p, h.KeyID)
		if pr != nil {
			return nil, pr
		}
		k, err := accountKey(acct)
		if err != nil {
			return nil, internal(fmt.Errorf("stored key of account %s: %w", acct.ID, err))
		}
		q.acct, key = acct, k
	default:
		return nil, malformed(`JWS header has neither "jwk" nor "kid"`)
	}
	q.payload, err = jws.Verify(key)
	if err != nil {
		return nil, malformed("JWS signature does not verify with the %s", map[bool]string{true: "account's key", false: "embedded key"}[q.acct != nil])
	}
	want := s.base(r, p) + strings.TrimPrefix(r.URL.Path, Prefix+p.name)
	if got, _ := h.ExtraHeaders["url"].(string); got != want {
		return nil, unauthorized("JWS url %q does not match the request URL %q", got, want)
	}
	if pr := s.nonces.use(r.Context(), nonceID, nonceKeep); pr != nil {
		return nil, pr
	}
	return q, nil
}

// parseJWS accepts only the flattened JSON serialization with everything
// in the protected header, as RFC 8555 §6.2 requires.
func parseJWS(body []byte, algs []string) (*jose.JSONWebSignature, *Problem) {
	var raw struct {
		Protected  *string         `json:"protected"`
		Payload    *string         `json:"payload"`
		Signature  *string         `json:"signature"`
		Header     json.RawMessage `json:"header"`
		Signatures json.RawMessage `json:"signatures"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, malformed("request body is not a JWS in flattened JSON serialization: %v", err)
	}
	if raw.Protected == nil || raw.Payload == nil || raw.Signature == nil || raw.Header != nil || raw.Signatures != nil {
		return nil, malformed(`JWS must be flattened JSON with "protected", "payload" and "signature" only`)
	}
	jws, err := jose.ParseJWS(string(body))
	if err != nil {
		return nil, malformed("JWS: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, malformed("JWS must have exactly one signature")
	}
	if alg := jws.Signatures[0].Protected.Algorithm; !slices.Contains(algs, alg) {
		pr := problemf(ErrBadSignatureAlgorithm, http.StatusBadRequest, "JWS algorithm %q not accepted (use one of %s)", alg, strings.Join(algs, ", "))
		return nil, pr
	}
	return jws, nil
}

func (s *Server) lookupKID(r *http.Request, p *provisioner, kid string) (*account, *Problem) {
	id, ok := strings.CutPrefix(kid, s.url(r, p, "account")+"/")
	if !ok {
		return nil, problemf(ErrAccountDoesNotExist, http.StatusBadRequest, "kid %q is not an account URL of this provisioner", kid)
	}
	acct, err := s.store.ACMEAccount(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) || err == nil && acct.Provisioner != p.name {
		return nil, problemf(ErrAccountDoesNotExist, http.StatusBadRequest, "no account %q", kid)
	}
	if err != nil {
		return nil, internal(err)
	}
	if acct.Status != statusValid {
		return nil, unauthorized("account is %s", acct.Status)
	}
	return acct, nil
}

// checkAccountKey accepts RSA 2048–8192, ECDSA P-256/384/521 and Ed25519.
func checkAccountKey(k *jose.JSONWebKey) *Problem {
	if !k.Valid() || !k.IsPublic() {
		return problemf(ErrBadPublicKey, http.StatusBadRequest, "JWK is not a valid public key")
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		if n := pub.N.BitLen(); n < 2048 || n > 8192 {
			return problemf(ErrBadPublicKey, http.StatusBadRequest, "RSA account key of %d bits (use 2048 to 8192)", n)
		}
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() && pub.Curve != elliptic.P384() && pub.Curve != elliptic.P521() {
			return problemf(ErrBadPublicKey, http.StatusBadRequest, "ECDSA account key on an unsupported curve")
		}
	case ed25519.PublicKey:
	default:
		return problemf(ErrBadPublicKey, http.StatusBadRequest, "account key type %T not supported", k.Key)
	}
	return nil
}

// thumbprint is the RFC 7638 SHA-256 thumbprint, base64url.
func thumbprint(k *jose.JSONWebKey) (string, error) {
	b, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
