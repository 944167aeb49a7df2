package localaws

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Pieces of the SigV4 canonical request shared by the AWS4-X509 (CreateSession)
// and AWS4-HMAC-SHA256 (control plane, STS) verifiers. Both rebuild the request
// from what arrived on the wire, never from a re-serialisation.

// amzDateLayout is the X-Amz-Date format: UTC, second precision.
const amzDateLayout = "20060102T150405Z"

// maxClockSkew is SigV4's window; applying it to CreateSession too is a
// choice (AWS's value for Roles Anywhere is unverified, §3.8).
const maxClockSkew = 5 * time.Minute

// authHeader is a parsed Authorization header of either signature family:
// "<alg> Credential=<id>/<date>/<region>/<service>/<terminator>,
// SignedHeaders=<a;b>, Signature=<hex>".
type authHeader struct {
	Algorithm     string
	CredentialID  string // access key id (HMAC) or decimal serial (X.509)
	Date          string
	Region        string
	Service       string
	Terminator    string
	SignedHeaders []string
	SignedList    string // the SignedHeaders value exactly as sent
	Signature     []byte
}

// scope is the credential scope as it enters the string to sign.
func (a *authHeader) scope() string {
	return a.Date + "/" + a.Region + "/" + a.Service + "/" + a.Terminator
}

// parseAuthorization parses the header strictly: the three fields exactly
// once each, a five-part credential, a sorted lower-case header list and a
// lower-case hex signature. Anything looser would let two different wire
// forms verify as one.
func parseAuthorization(v string) (*authHeader, error) {
	alg, rest, ok := strings.Cut(v, " ")
	if !ok || alg == "" {
		return nil, errors.New("authorization header has no algorithm")
	}
	a := &authHeader{Algorithm: alg}
	seen := map[string]bool{}
	for _, field := range strings.Split(rest, ",") {
		key, val, ok := strings.Cut(strings.TrimSpace(field), "=")
		if !ok || val == "" {
			return nil, fmt.Errorf("authorization field %q is not key=value", field)
		}
		if seen[key] {
			return nil, fmt.Errorf("authorization field %s repeated", key)
		}
		seen[key] = true
		switch key {
		case "Credential":
			parts := strings.Split(val, "/")
			if len(parts) != 5 {
				return nil, fmt.Errorf("credential %q does not have 5 parts", val)
			}
			for _, p := range parts {
				if p == "" {
					return nil, fmt.Errorf("credential %q has an empty part", val)
				}
			}
			a.CredentialID, a.Date, a.Region, a.Service, a.Terminator = parts[0], parts[1], parts[2], parts[3], parts[4]
		case "SignedHeaders":
			names := strings.Split(val, ";")
			for i, n := range names {
				if n == "" || n != strings.ToLower(n) || strings.ContainsAny(n, " \t") {
					return nil, fmt.Errorf("signed header name %q is not a lower-case token", n)
				}
				if i > 0 && names[i-1] >= n {
					return nil, errors.New("signed headers are not sorted and unique")
				}
			}
			a.SignedHeaders, a.SignedList = names, val
		case "Signature":
			if val != strings.ToLower(val) {
				return nil, errors.New("signature is not lower-case hex")
			}
			sig, err := hex.DecodeString(val)
			if err != nil || len(sig) == 0 {
				return nil, errors.New("signature is not hex")
			}
			a.Signature = sig
		default:
			return nil, fmt.Errorf("unknown authorization field %q", key)
		}
	}
	if !seen["Credential"] || !seen["SignedHeaders"] || !seen["Signature"] {
		return nil, errors.New("authorization header lacks Credential, SignedHeaders or Signature")
	}
	return a, nil
}

// singleHeader returns the one value of name; zero or several values are an
// error, since a repeated X-Amz-Date or certificate header is ambiguous.
func singleHeader(r *http.Request, name string) (string, error) {
	vs := r.Header.Values(name)
	if len(vs) != 1 || vs[0] == "" {
		return "", fmt.Errorf("header %s must appear exactly once", name)
	}
	return vs[0], nil
}

// parseAmzDate parses an X-Amz-Date value in its one legal layout.
func parseAmzDate(v string) (time.Time, error) {
	t, err := time.Parse(amzDateLayout, v)
	if err != nil || len(v) != len(amzDateLayout) {
		return time.Time{}, fmt.Errorf("X-Amz-Date %q is not YYYYMMDDTHHMMSSZ", v)
	}
	return t, nil
}

// checkSkew refuses a signing time more than maxClockSkew from now.
func checkSkew(signed, now time.Time) error {
	if d := now.Sub(signed); d > maxClockSkew || d < -maxClockSkew {
		return fmt.Errorf("signing time %s is more than %s from server time %s",
			signed.Format(amzDateLayout), maxClockSkew, now.UTC().Format(amzDateLayout))
	}
	return nil
}

// headerValues collects the request's headers by lower-case name, with Host
// (which net/http moves out of Header) put back.
func headerValues(r *http.Request) map[string][]string {
	m := make(map[string][]string, len(r.Header)+1)
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		m[lk] = append(m[lk], vs...)
	}
	if r.Host != "" {
		m["host"] = []string{r.Host}
	}
	return m
}

// canonicalHeaders renders the signed headers block (each line ending in \n):
// values trimmed, inner runs of spaces collapsed (tabs kept), repeats joined
// with ",". A signed header that is absent is an error.
func canonicalHeaders(values map[string][]string, signed []string) (string, error) {
	var b strings.Builder
	for _, name := range signed {
		vs, ok := values[name]
		if !ok {
			return "", fmt.Errorf("signed header %q is not in the request", name)
		}
		norm := make([]string, len(vs))
		for i, v := range vs {
			norm[i] = collapseSpaces(strings.Trim(v, " "))
		}
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(strings.Join(norm, ","))
		b.WriteByte('\n')
	}
	return b.String(), nil
}

func collapseSpaces(s string) string {
	for strings.Contains(s, "  ") {
		s = strings.ReplaceAll(s, "  ", " ")
	}
	return s
}

// canonicalQuery decodes the raw query and re-encodes it the SigV4 way:
// RFC 3986 unreserved characters kept, everything else %XX upper-case, pairs
// sorted by name then value.
func canonicalQuery(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	type pair struct{ k, v string }
	var pairs []pair
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			return "", fmt.Errorf("query name %q: %w", k, err)
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			return "", fmt.Errorf("query value of %q: %w", dk, err)
		}
		pairs = append(pairs, pair{uriEncode(dk, false), uriEncode(dv, false)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	out := make([]string, len(pairs))
	for i, p := range pairs {
		out[i] = p.k + "=" + p.v
	}
	return strings.Join(out, "&"), nil
}

// uriEncode percent-encodes every byte outside A-Z a-z 0-9 - _ . ~ (and
// outside "/" when keepSlash), with upper-case hex.
func uriEncode(s string, keepSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '~', keepSlash && c == '/':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0x0f])
		}
	}
	return b.String()
}

// canonicalRequest joins the six parts of §3.3.
func canonicalRequest(method, path, query, headers, signedList string, body []byte) string {
	return strings.Join([]string{method, path, query, headers, signedList, sha256Hex(body)}, "\n")
}

// stringToSign joins the four lines of §3.4 (no trailing newline).
func stringToSign(alg, amzDate, scope, canonical string) string {
	return alg + "\n" + amzDate + "\n" + scope + "\n" + sha256Hex([]byte(canonical))
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// requireSigned checks that every name in must is among the signed headers.
func requireSigned(signed []string, must ...string) error {
	for _, m := range must {
		found := false
		for _, s := range signed {
			if s == m {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("header %q must be signed", m)
		}
	}
	return nil
}
