package localaws

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"time"
)

// AWS4-HMAC-SHA256 verification for the control plane and STS, accepting the
// admin key pair or a session credential issued by CreateSession.

const algHMAC = "AWS4-HMAC-SHA256"

// sigV4Failure classifies why a SigV4 request was refused; each protocol
// maps it to the error code AWS uses there (rolesanywhereAuthError,
// stsAuthError).
type sigV4Failure int

const (
	sigMissing      sigV4Failure = iota // no Authorization header
	sigMalformed                        // unparsable header, wrong algorithm, required header unsigned
	sigUnknownKey                       // unknown access key id, or bad/missing session token
	sigExpiredToken                     // an issued session credential past its expiration
	sigScope                            // wrong region or service in the credential scope
	sigSkew                             // X-Amz-Date outside the ±5 minute window
	sigMismatch                         // the signature does not verify
)

type sigV4Error struct {
	Kind   sigV4Failure
	Reason string
}

func (e *sigV4Error) Error() string { return e.Reason }

// principal is an authenticated caller.
type principal struct {
	AccessKeyID string
	// Account is the account the key belongs to: the admin pair's, or the
	// account of the session's role.
	Account string
	// Session is the issued credential, or nil for the admin key pair.
	Session *issuedCredential
}

// arn is the caller's identity as STS would report it.
func (s *Server) principalArn(p *principal) string {
	if p.Session == nil {
		return fmt.Sprintf("arn:aws:iam::%s:root", p.Account)
	}
	return assumedRoleArn(p.Session.RoleArn, p.Session.RoleSessionName)
}

// verifySigV4 authenticates r for service. The canonical path is the
// request's escaped path URI-encoded once more, as aws-sdk-go-v2's signer
// does for every service but S3; the payload hash is always computed from the
// body (X-Amz-Content-Sha256, if sent, must agree with it).
func (s *Server) verifySigV4(r *http.Request, body []byte, service string, now time.Time) (*principal, *sigV4Error) {
	return s.verifySigV4Region(r, body, service, s.cfg.Region, now)
}

// verifySigV4Region is verifySigV4 with the credential scope's region given:
// IAM is global and always signed for us-east-1.
func (s *Server) verifySigV4Region(r *http.Request, body []byte, service, region string, now time.Time) (*principal, *sigV4Error) {
	fail := func(kind sigV4Failure, format string, args ...any) (*principal, *sigV4Error) {
		return nil, &sigV4Error{Kind: kind, Reason: fmt.Sprintf(format, args...)}
	}
	vs := r.Header.Values("Authorization")
	if len(vs) == 0 {
		return fail(sigMissing, "no Authorization header (presigned URLs are not supported)")
	}
	if len(vs) > 1 {
		return fail(sigMalformed, "Authorization header repeated")
	}
	auth, err := parseAuthorization(vs[0])
	if err != nil {
		return fail(sigMalformed, "%v", err)
	}
	if auth.Algorithm != algHMAC {
		return fail(sigMalformed, "algorithm %q is not %s", auth.Algorithm, algHMAC)
	}
	if len(auth.Signature) != sha256.Size {
		return fail(sigMalformed, "signature is not 32 bytes of hex")
	}
	if auth.Terminator != "aws4_request" || auth.Service != service {
		return fail(sigScope, "credential scope %s is not for %s/aws4_request", auth.scope(), service)
	}
	if auth.Region != region {
		return fail(sigScope, "credential scope region %s is not %s", auth.Region, region)
	}
	amzDate, err := singleHeader(r, "X-Amz-Date")
	if err != nil {
		return fail(sigMalformed, "%v", err)
	}
	signedAt, err := parseAmzDate(amzDate)
	if err != nil {
		return fail(sigMalformed, "%v", err)
	}
	if auth.Date != amzDate[:8] {
		return fail(sigScope, "credential scope date %s does not match X-Amz-Date %s", auth.Date, amzDate)
	}
	must := []string{"host", "x-amz-date"}
	token := r.Header.Values("X-Amz-Security-Token")
	if len(token) > 1 {
		return fail(sigMalformed, "X-Amz-Security-Token repeated")
	}
	if len(token) == 1 {
		must = append(must, "x-amz-security-token")
	}
	if err := requireSigned(auth.SignedHeaders, must...); err != nil {
		return fail(sigMalformed, "%v", err)
	}

	p, secret, sigErr := s.lookupCredential(auth.CredentialID, token, now)
	if sigErr != nil {
		return nil, sigErr
	}
	if err := checkSkew(signedAt, now); err != nil {
		return fail(sigSkew, "%v", err)
	}

	if cs := r.Header.Values("X-Amz-Content-Sha256"); len(cs) > 0 && (len(cs) > 1 || cs[0] != sha256Hex(body)) {
		return fail(sigMismatch, "X-Amz-Content-Sha256 does not match the body")
	}
	headers, err := canonicalHeaders(headerValues(r), auth.SignedHeaders)
	if err != nil {
		return fail(sigMismatch, "%v", err)
	}
	query, err := canonicalQuery(r.URL.RawQuery)
	if err != nil {
		return fail(sigMalformed, "%v", err)
	}
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	canonical := canonicalRequest(r.Method, uriEncode(path, true), query, headers, auth.SignedList, body)
	want := hmacSHA256(signingKey(secret, auth.Date, auth.Region, auth.Service), []byte(stringToSign(algHMAC, amzDate, auth.scope(), canonical)))
	if !hmac.Equal(want, auth.Signature) {
		return fail(sigMismatch, "signature does not match (canonical request hash %s)", sha256Hex([]byte(canonical)))
	}
	return p, nil
}

// lookupCredential finds the secret of an access key id: the admin pair
// (which must not carry a session token) or an issued, unexpired session
// credential presented with its own session token.
func (s *Server) lookupCredential(akid string, token []string, now time.Time) (*principal, string, *sigV4Error) {
	for _, a := range s.cfg.accounts() {
		if subtle.ConstantTimeCompare([]byte(akid), []byte(a.AccessKeyID)) != 1 {
			continue
		}
		if len(token) > 0 {
			return nil, "", &sigV4Error{Kind: sigUnknownKey, Reason: "admin access key sent with a session token"}
		}
		return &principal{AccessKeyID: akid, Account: a.ID}, a.SecretAccessKey, nil
	}
	s.mu.Lock()
	cred := s.st.Credentials[akid]
	s.mu.Unlock()
	switch {
	case cred == nil:
		return nil, "", &sigV4Error{Kind: sigUnknownKey, Reason: "unknown access key id " + akid}
	case len(token) == 0:
		return nil, "", &sigV4Error{Kind: sigUnknownKey, Reason: "session credential " + akid + " sent without its session token"}
	case subtle.ConstantTimeCompare([]byte(token[0]), []byte(cred.SessionToken)) != 1:
		return nil, "", &sigV4Error{Kind: sigUnknownKey, Reason: "session token does not belong to " + akid}
	case !now.Before(cred.Expiration):
		return nil, "", &sigV4Error{Kind: sigExpiredToken, Reason: "session credential " + akid + " expired at " + expirationTime(cred.Expiration)}
	}
	return &principal{AccessKeyID: akid, Account: cred.Account, Session: cred}, cred.SecretAccessKey, nil
}

func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), []byte(date))
	k = hmacSHA256(k, []byte(region))
	k = hmacSHA256(k, []byte(service))
	return hmacSHA256(k, []byte("aws4_request"))
}

func hmacSHA256(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}
