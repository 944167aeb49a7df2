package localaws

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// Certificate trust for CreateSession (§3.8 step 5, §5.2, §5.3): a path from
// the leaf to a CA of the named trust anchor, the certificate rules, then the
// anchor's enabled CRLs.

// strongSignatureAlgorithms is "SHA-256 or stronger" (§5.2); MD5, SHA-1 and
// everything else are refused.
var strongSignatureAlgorithms = map[x509.SignatureAlgorithm]bool{
	x509.SHA256WithRSA: true, x509.SHA384WithRSA: true, x509.SHA512WithRSA: true,
	x509.SHA256WithRSAPSS: true, x509.SHA384WithRSAPSS: true, x509.SHA512WithRSAPSS: true,
	x509.ECDSAWithSHA256: true, x509.ECDSAWithSHA384: true, x509.ECDSAWithSHA512: true,
}

// maxAnchorCerts is the "certificates per trust anchor" quota (§5.2, §5.6).
const maxAnchorCerts = 2

// parseAnchorBundle parses x509CertificateData: PEM CERTIFICATE blocks only,
// nothing else around them, 1-2 certificates, each a CA fit to anchor.
func parseAnchorBundle(data string) ([]*x509.Certificate, error) {
	rest := []byte(data)
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q is not a CERTIFICATE", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		if err := checkCA(c); err != nil {
			return nil, fmt.Errorf("certificate %d (%s): %w", len(certs)+1, c.Subject, err)
		}
		certs = append(certs, c)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("data after the last PEM certificate")
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	if len(certs) > maxAnchorCerts {
		return nil, fmt.Errorf("%d certificates; a trust anchor holds at most %d", len(certs), maxAnchorCerts)
	}
	return certs, nil
}

// checkCA applies the CA rules: basicConstraints CA:true, keyUsage with
// keyCertSign, a strong signature algorithm.
func checkCA(c *x509.Certificate) error {
	if !c.BasicConstraintsValid || !c.IsCA {
		return errors.New("not a CA (basicConstraints CA:true required)")
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 {
		return errors.New("keyUsage lacks keyCertSign")
	}
	if !strongSignatureAlgorithms[c.SignatureAlgorithm] {
		return fmt.Errorf("signature algorithm %s is weaker than SHA-256", c.SignatureAlgorithm)
	}
	return nil
}

// checkLeaf applies the end-entity rules (§5.2). A leaf without a keyUsage
// extension is refused: whether AWS accepts one is unverified, and refusing
// is the strict reading of "must include digitalSignature".
func checkLeaf(c *x509.Certificate) error {
	switch {
	case c.Version != 3:
		return fmt.Errorf("certificate is X.509 v%d, not v3", c.Version)
	case c.BasicConstraintsValid && c.IsCA:
		return errors.New("end-entity certificate is a CA")
	case c.KeyUsage&x509.KeyUsageDigitalSignature == 0:
		return errors.New("keyUsage lacks digitalSignature")
	case !strongSignatureAlgorithms[c.SignatureAlgorithm]:
		return fmt.Errorf("signature algorithm %s is weaker than SHA-256", c.SignatureAlgorithm)
	case len(c.Subject.Names) == 0:
		return errors.New("subject is empty")
	}
	return nil
}

// trustDecision is the outcome of verifyTrust: the accepted path (leaf
// first, anchor CA last) or the refusal.
type trustDecision struct {
	Chain []*x509.Certificate
}

// verifyTrust builds a path from leaf to one of anchorCerts through
// intermediates, valid at now, applying the certificate rules to every
// certificate and the CRLs to every non-anchor certificate of the path.
func verifyTrust(leaf *x509.Certificate, intermediates, anchorCerts []*x509.Certificate, crls []*x509.RevocationList, now time.Time) (*trustDecision, *apiError) {
	if err := checkLeaf(leaf); err != nil {
		return nil, accessDenied(msgUntrusted+": "+err.Error(), "leaf: "+err.Error())
	}
	roots := x509.NewCertPool()
	for _, c := range anchorCerts {
		roots.AddCert(c)
	}
	inter := x509.NewCertPool()
	for _, c := range intermediates {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		// Roles Anywhere documents no extended key usage requirement.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		var invalid x509.CertificateInvalidError
		if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
			return nil, accessDenied(msgUntrusted+": certificate expired or not yet valid", err.Error())
		}
		return nil, accessDenied(msgUntrusted, "no path to the trust anchor: "+err.Error())
	}
	var firstErr *apiError
	for _, chain := range chains {
		d, e := checkPath(chain, crls)
		if e == nil {
			return d, nil
		}
		if firstErr == nil || e.Code == "AccessDeniedException" && e.Message == msgRevoked {
			firstErr = e // a revocation anywhere beats other reasons
		}
	}
	return nil, firstErr
}

// msgRevoked is the CreateSession message for a revoked certificate.
const msgRevoked = "Certificate is revoked"

// checkPath applies the CA rules to every CA of one verified chain and the
// revocation check to every certificate that has an issuer in the chain.
func checkPath(chain []*x509.Certificate, crls []*x509.RevocationList) (*trustDecision, *apiError) {
	for _, c := range chain[1:] {
		if err := checkCA(c); err != nil {
			return nil, accessDenied(msgUntrusted+": CA "+c.Subject.String()+": "+err.Error(), "")
		}
	}
	for i := 0; i+1 < len(chain); i++ {
		if crl := revokedBy(chain[i], chain[i+1], crls); crl != nil {
			return nil, accessDenied(msgRevoked, fmt.Sprintf("serial %s (%s) is listed in a CRL of %s (number %v)",
				chain[i].SerialNumber.Text(16), chain[i].Subject, crl.Issuer, crl.Number))
		}
	}
	return &trustDecision{Chain: chain}, nil
}

// revokedBy returns the CRL that revokes cert, following RFC 5280 §6.3: the
// CRL's issuer is the certificate's issuer and its signature verifies with
// the issuer's key. CRLs that fail either test do not apply (they may belong
// to another CA of the anchor). An expired CRL still applies: a revocation
// does not lapse, and ignoring it would fail open.
func revokedBy(cert, issuer *x509.Certificate, crls []*x509.RevocationList) *x509.RevocationList {
	for _, crl := range crls {
		if !bytes.Equal(crl.RawIssuer, cert.RawIssuer) && crl.Issuer.String() != cert.Issuer.String() {
			continue
		}
		if err := crl.CheckSignatureFrom(issuer); err != nil {
			continue
		}
		for _, entry := range crl.RevokedCertificateEntries {
			if entry.SerialNumber.Cmp(cert.SerialNumber) == 0 {
				return crl
			}
		}
	}
	return nil
}

// parseCRLPEM parses the PEM text of one X509 CRL, nothing else around it.
func parseCRLPEM(data []byte) (*x509.RevocationList, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("not PEM")
	}
	if block.Type != "X509 CRL" {
		return nil, fmt.Errorf("PEM block %q is not an X509 CRL", block.Type)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("data after the PEM X509 CRL block")
	}
	crl, err := x509.ParseRevocationList(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse CRL: %w", err)
	}
	return crl, nil
}
