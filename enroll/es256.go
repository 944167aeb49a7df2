package enroll

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strings"
	"sync/atomic"

	"github.com/go-jose/go-jose/v4/json"
)

// strictB64 refuses padding, line breaks and non-zero trailing bits, so a
// decoded part re-encodes to exactly the text that was signed: the JOSE
// library verifies the signature over the re-encoded payload, and this
// path over the text itself; with canonical text the two are the same.
var strictB64 = base64.RawURLEncoding.Strict()

// verifyES256 is the fast path of Verify for the tokens Mint writes: a
// compact JWS whose protected header holds alg "ES256" and at most typ and
// kid (strings), signed by key (P-256) with a 64-byte r||s signature. It
// returns the token's claims, decoded by the JOSE library's own JSON
// package as the general path decodes them, and true only if the signature
// verifies. Anything else — another shape, a bad signature, claims that do
// not decode — returns false, and Verify hands the token to go-jose, whose
// answer (and error) stands. So this path can only accept what the general
// path accepts (FuzzVerifyES256 holds it to that), and every refusal keeps
// its error.
// known, if not nil, holds a header text accepted before (see Verifier).
func verifyES256(key *ecdsa.PublicKey, token string, known *atomic.Pointer[string]) (*Claims, bool) {
	if key == nil || key.Curve != elliptic.P256() {
		return nil, false
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return nil, false
		}
	}
	h, rest, ok := strings.Cut(token, ".")
	if !ok {
		return nil, false
	}
	p, s, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(s, ".") || p == "" {
		return nil, false
	}
	seen := false
	if known != nil {
		if k := known.Load(); k != nil && *k == h {
			seen = true
		}
	}
	if !seen {
		header, err := strictB64.DecodeString(h)
		if err != nil || !headerES256(header) {
			return nil, false
		}
	}
	sig, err := strictB64.DecodeString(s)
	if err != nil || len(sig) != 64 {
		return nil, false
	}
	digest := sha256.Sum256([]byte(token[:len(h)+1+len(p)]))
	r, ss := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(key, digest[:], r, ss) {
		return nil, false
	}
	payload, err := strictB64.DecodeString(p)
	if err != nil {
		return nil, false
	}
	var c Claims
	if json.Unmarshal(payload, &c) != nil {
		return nil, false
	}
	if known != nil && !seen {
		known.Store(&h)
	}
	return &c, true
}

// headerES256 reports whether a protected header is the one Mint writes:
// alg "ES256", optional typ and kid, all strings, nothing else (no crit, no
// jwk, no b64).
func headerES256(b []byte) bool {
	var m map[string]*json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return false
	}
	alg := false
	for k, v := range m {
		if v == nil || len(*v) == 0 || (*v)[0] != '"' {
			return false
		}
		var s string
		if json.Unmarshal(*v, &s) != nil {
			return false
		}
		switch k {
		case "alg":
			alg = s == "ES256"
		case "typ", "kid":
		default:
			return false
		}
	}
	return alg
}
