package rolesanywhere

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Algorithm names of the AWS4-X509 signature (rolesanywhere.md §3.1).
const (
	AlgorithmECDSA = "AWS4-X509-ECDSA-SHA256"
	AlgorithmRSA   = "AWS4-X509-RSA-SHA256"
)

// Header names the signature adds.
const (
	HeaderDate  = "X-Amz-Date"
	HeaderX509  = "X-Amz-X509"
	HeaderChain = "X-Amz-X509-Chain"
)

// CanonicalPath is what the helper signs as the path. It is hard-coded there
// (even when --endpoint carries a path prefix and the wire path is
// /prefix/sessions), so we must sign the same string or the service, which
// verifies what the helper sends, would not match ours.
const CanonicalPath = "/sessions"

// service is the signing name in the credential scope.
const service = "rolesanywhere"

// amzDateFormat is X-Amz-Date: UTC, second precision.
const amzDateFormat = "20060102T150405Z"

// Identity is what signs a CreateSession request: the private key, its
// certificate and the intermediates sent along with it. Signer is an
// interface so that keys living in a PKCS#11 token or a TPM can be used
// without this package knowing about them.
type Identity struct {
	Signer      crypto.Signer
	Certificate *x509.Certificate
	// Chain is sent as X-Amz-X509-Chain in this order; nil means no header.
	Chain []*x509.Certificate
}

// AlgorithmFor returns the Authorization algorithm for a public key.
func AlgorithmFor(pub crypto.PublicKey) (string, error) {
	switch pub.(type) {
	case *ecdsa.PublicKey:
		return AlgorithmECDSA, nil
	case *rsa.PublicKey:
		return AlgorithmRSA, nil
	default:
		return "", fmt.Errorf("unsupported key type %T: need an EC or RSA key", pub)
	}
}

// CredentialScope is <YYYYMMDD>/<region>/rolesanywhere/aws4_request.
func CredentialScope(t time.Time, region string) string {
	return t.UTC().Format("20060102") + "/" + region + "/" + service + "/aws4_request"
}

// PayloadHash is the lowercase hex SHA-256 of the exact body bytes.
func PayloadHash(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// unsignedHeaders are left out of the signature: Authorization carries it,
// and proxies or the SDK may rewrite the other two in flight.
var unsignedHeaders = map[string]bool{
	"authorization":   true,
	"user-agent":      true,
	"x-amzn-trace-id": true,
}

// CanonicalRequest builds the canonical request of req as the helper does
// (§3.3) and returns it with the signed-header list. Every header present at
// signing time is signed except Authorization, User-Agent and
// X-Amzn-Trace-Id; the Host comes from req.Host or the URL. payloadHash is
// PayloadHash of the body.
func CanonicalRequest(req *http.Request, payloadHash string) (canonical, signedHeaders string) {
	values := map[string][]string{}
	for name, vs := range req.Header {
		lname := strings.ToLower(name)
		if unsignedHeaders[lname] {
			continue
		}
		values[lname] = append(values[lname], vs...)
	}
	host := req.Host
	if host == "" && req.URL != nil {
		host = req.URL.Host
	}
	if host != "" {
		values["host"] = []string{host}
	}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	sort.Strings(names)

	var headers strings.Builder
	for _, name := range names {
		vs := make([]string, len(values[name]))
		for i, v := range values[name] {
			vs[i] = collapseSpaces(v)
		}
		headers.WriteString(name + ":" + strings.Join(vs, ",") + "\n")
	}
	signedHeaders = strings.Join(names, ";")

	rawQuery := ""
	if req.URL != nil {
		rawQuery = req.URL.RawQuery
	}
	canonical = strings.Join([]string{
		"POST", // the helper hard-codes the method too
		CanonicalPath,
		CanonicalQuery(rawQuery),
		headers.String(),
		signedHeaders,
		payloadHash,
	}, "\n")
	return canonical, signedHeaders
}

// collapseSpaces trims leading and trailing spaces and folds runs of spaces
// into one. Only ' ' counts: tabs are left alone, as the helper does.
func collapseSpaces(v string) string {
	v = strings.Trim(v, " ")
	for strings.Contains(v, "  ") {
		v = strings.ReplaceAll(v, "  ", " ")
	}
	return v
}

// CanonicalQuery sorts the query by key (values of one key keep their
// order) and percent-encodes keys and values with the RFC 3986 unreserved
// set. An unparsable query yields what could be parsed.
func CanonicalQuery(rawQuery string) string {
	if rawQuery == "" {
		return ""
	}
	type pair struct{ k, v string }
	var pairs []pair
	for part := range strings.SplitSeq(rawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			continue
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			continue
		}
		pairs = append(pairs, pair{dk, dv})
	}
	sort.SliceStable(pairs, func(i, j int) bool { return pairs[i].k < pairs[j].k })
	out := make([]string, len(pairs))
	for i, p := range pairs {
		out[i] = uriEncode(p.k) + "=" + uriEncode(p.v)
	}
	return strings.Join(out, "&")
}

// uriEncode escapes everything but A–Z a–z 0–9 - _ . ~ with uppercase hex.
func uriEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// StringToSign joins the algorithm, X-Amz-Date, scope and the hex SHA-256 of
// the canonical request with "\n" (no trailing newline).
func StringToSign(algorithm, amzDate, scope, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

// SignString signs the string to sign with the identity's key: SHA-256 then
// PKCS#1 v1.5 for RSA, SHA-256 then ECDSA (DER) for EC. The helper uses
// SHA-256 for every key size, P-384 included, so we do too.
func SignString(signer crypto.Signer, stringToSign string) ([]byte, error) {
	sum := sha256.Sum256([]byte(stringToSign))
	sig, err := signer.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("sign request: %w", err)
	}
	return sig, nil
}

// SignRequest adds X-Amz-Date, X-Amz-X509, X-Amz-X509-Chain (when id has a
// chain) and Authorization to req. body must be the exact bytes that will be
// sent. Headers set on req before the call (Content-Type, the SDK's
// Amz-Sdk-*) are signed too, so set them first.
func SignRequest(req *http.Request, body []byte, id Identity, region string, t time.Time) error {
	if id.Signer == nil || id.Certificate == nil {
		return errors.New("sign request: identity needs a key and a certificate")
	}
	if region == "" {
		return errors.New("sign request: no region")
	}
	alg, err := AlgorithmFor(id.Signer.Public())
	if err != nil {
		return fmt.Errorf("sign request: %w", err)
	}
	t = t.UTC()
	amzDate := t.Format(amzDateFormat)

	req.Header.Del("Authorization")
	req.Header.Set(HeaderDate, amzDate)
	req.Header.Set(HeaderX509, base64.StdEncoding.EncodeToString(id.Certificate.Raw))
	if len(id.Chain) > 0 {
		parts := make([]string, len(id.Chain))
		for i, c := range id.Chain {
			parts[i] = base64.StdEncoding.EncodeToString(c.Raw)
		}
		req.Header.Set(HeaderChain, strings.Join(parts, ","))
	} else {
		req.Header.Del(HeaderChain)
	}

	canonical, signed := CanonicalRequest(req, PayloadHash(body))
	scope := CredentialScope(t, region)
	sig, err := SignString(id.Signer, StringToSign(alg, amzDate, scope, canonical))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", fmt.Sprintf("%s Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		alg, id.Certificate.SerialNumber.String(), scope, signed, hex.EncodeToString(sig)))
	return nil
}
