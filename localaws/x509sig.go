package localaws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// AWS4-X509 algorithm names (§3.1). ML-DSA (AWS4-X509-MLDSA) is refused:
// nothing in anchorage issues ML-DSA certificates yet.
const (
	algX509ECDSA = "AWS4-X509-ECDSA-SHA256"
	algX509RSA   = "AWS4-X509-RSA-SHA256"
)

// maxChainCerts is the limit on X-Amz-X509-Chain (§3.2).
const maxChainCerts = 5

// createSessionPath is the canonical path the helper always signs, whatever
// prefix the request was actually sent under (§3.3, ec-endpoint-path-prefix).
const createSessionPath = "/sessions"

// Messages the real service is known to send (§4.2).
const (
	msgInvalidSignature = "Invalid signature"
	msgUntrusted        = "Untrusted Signing Certificate"
)

// signedX509Request is what a verified AWS4-X509 envelope yields.
type signedX509Request struct {
	Algorithm string
	Leaf      *x509.Certificate
	// Intermediates are the X-Amz-X509-Chain certificates without any copy
	// of the leaf (PKCS#12 clients send the leaf first, §3.2).
	Intermediates []*x509.Certificate
	SignedAt      time.Time
}

// verifyX509Request checks the AWS4-X509 envelope of a CreateSession request
// (§3.8 steps 1-4): header syntax, scope, skew, the signed-header set, the
// signature over the canonical request rebuilt from the wire, and that the
// credential names the leaf's serial. Trust in the certificate itself is
// decided later (chain.go).
func verifyX509Request(r *http.Request, body []byte, now time.Time, region string) (*signedX509Request, *apiError) {
	rawAuth, err := singleHeader(r, "Authorization")
	if err != nil {
		return nil, accessDenied("Missing or repeated Authorization header", err.Error())
	}
	auth, err := parseAuthorization(rawAuth)
	if err != nil {
		return nil, validationError("Malformed Authorization header: %v", err)
	}
	if auth.Algorithm != algX509ECDSA && auth.Algorithm != algX509RSA {
		return nil, validationError("Unsupported signing algorithm %q", auth.Algorithm)
	}
	if auth.Service != "rolesanywhere" || auth.Terminator != "aws4_request" {
		return nil, accessDenied(msgInvalidSignature, fmt.Sprintf("credential scope %s is not for rolesanywhere/aws4_request", auth.scope()))
	}
	if auth.Region != region {
		return nil, accessDenied(msgInvalidSignature, fmt.Sprintf("credential scope region %s is not the server region %s", auth.Region, region))
	}
	amzDate, err := singleHeader(r, "X-Amz-Date")
	if err != nil {
		return nil, validationError("%v", err)
	}
	signedAt, err := parseAmzDate(amzDate)
	if err != nil {
		return nil, validationError("%v", err)
	}
	if auth.Date != amzDate[:8] {
		return nil, accessDenied(msgInvalidSignature, fmt.Sprintf("credential scope date %s does not match X-Amz-Date %s", auth.Date, amzDate))
	}
	if err := checkSkew(signedAt, now); err != nil {
		return nil, accessDenied("Signature expired", err.Error())
	}
	must := []string{"host", "x-amz-date", "x-amz-x509"}
	if len(r.Header.Values("X-Amz-X509-Chain")) > 0 {
		must = append(must, "x-amz-x509-chain")
	}
	if err := requireSigned(auth.SignedHeaders, must...); err != nil {
		return nil, accessDenied(msgInvalidSignature, err.Error())
	}

	leafB64, err := singleHeader(r, "X-Amz-X509")
	if err != nil {
		return nil, validationError("%v", err)
	}
	leaf, err := parseBase64Cert(leafB64)
	if err != nil {
		return nil, validationError("X-Amz-X509: %v", err)
	}
	if auth.CredentialID != leaf.SerialNumber.String() {
		return nil, accessDenied(msgInvalidSignature, fmt.Sprintf("credential serial %s is not the certificate serial %s", auth.CredentialID, leaf.SerialNumber))
	}
	intermediates, apiErr := parseChainHeader(r, leaf)
	if apiErr != nil {
		return nil, apiErr
	}

	headers, err := canonicalHeaders(headerValues(r), auth.SignedHeaders)
	if err != nil {
		return nil, accessDenied(msgInvalidSignature, err.Error())
	}
	query, err := canonicalQuery(r.URL.RawQuery)
	if err != nil {
		return nil, validationError("Malformed query string: %v", err)
	}
	canonical := canonicalRequest(http.MethodPost, createSessionPath, query, headers, auth.SignedList, body)
	sts := stringToSign(auth.Algorithm, amzDate, auth.scope(), canonical)
	if err := verifyCertSignature(auth.Algorithm, leaf, []byte(sts), auth.Signature); err != nil {
		return nil, accessDenied(msgInvalidSignature, err.Error())
	}
	return &signedX509Request{Algorithm: auth.Algorithm, Leaf: leaf, Intermediates: intermediates, SignedAt: signedAt}, nil
}

// parseChainHeader decodes X-Amz-X509-Chain: comma-separated standard
// base64 DER, at most five, the leaf tolerated (and dropped) anywhere.
func parseChainHeader(r *http.Request, leaf *x509.Certificate) ([]*x509.Certificate, *apiError) {
	vs := r.Header.Values("X-Amz-X509-Chain")
	if len(vs) == 0 {
		return nil, nil
	}
	if len(vs) > 1 {
		return nil, validationError("header X-Amz-X509-Chain must appear at most once")
	}
	parts := strings.Split(vs[0], ",")
	if len(parts) > maxChainCerts {
		return nil, validationError("X-Amz-X509-Chain holds %d certificates; at most %d are allowed", len(parts), maxChainCerts)
	}
	var out []*x509.Certificate
	for i, p := range parts {
		c, err := parseBase64Cert(p)
		if err != nil {
			return nil, validationError("X-Amz-X509-Chain certificate %d: %v", i+1, err)
		}
		if c.Equal(leaf) {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

func parseBase64Cert(s string) (*x509.Certificate, error) {
	der, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not standard base64: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("not a DER certificate: %w", err)
	}
	return c, nil
}

// verifyCertSignature checks sig over msg with the certificate's key. The
// key type must match the algorithm, and ECDSA signatures must be ASN.1 DER
// (a raw r||s is refused: every real client sends DER, §3.1).
func verifyCertSignature(alg string, cert *x509.Certificate, msg, sig []byte) error {
	digest := sha256.Sum256(msg)
	switch pub := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if alg != algX509ECDSA {
			return fmt.Errorf("algorithm %s does not match the certificate's ECDSA key", alg)
		}
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			if n := (pub.Curve.Params().BitSize + 7) / 8; len(sig) == 2*n && sig[0] != 0x30 {
				return fmt.Errorf("ECDSA signature is raw r||s, not DER")
			}
			return fmt.Errorf("ECDSA signature does not verify")
		}
		return nil
	case *rsa.PublicKey:
		if alg != algX509RSA {
			return fmt.Errorf("algorithm %s does not match the certificate's RSA key", alg)
		}
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
			return fmt.Errorf("RSA signature does not verify: %w", err)
		}
		return nil
	default:
		return fmt.Errorf("certificate key type %T is not RSA or ECDSA", cert.PublicKey)
	}
}
