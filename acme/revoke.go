package acme

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/events"
)

// ACME accepts the revocation reasons a subscriber may state (RFC 5280
// §5.3.1): unspecified, keyCompromise, affiliationChanged, superseded,
// cessationOfOperation, privilegeWithdrawn.
var revocationReasons = map[int]bool{0: true, 1: true, 3: true, 4: true, 5: true, 9: true}

// revokeCert revokes a certificate this provisioner issued (RFC 8555 §7.6),
// when the request is signed by the account that ordered it or by the
// certificate's own key. The revocation goes through the issuing core:
// committed in storage, then a new CRL, then the trust anchors.
func (s *Server) revokeCert(w http.ResponseWriter, r *http.Request, p *provisioner) {
	q, pr := s.authenticate(w, r, p, byEither)
	if pr != nil {
		s.fail(w, r, p, pr)
		return
	}
	var in struct {
		Certificate string `json:"certificate"`
		Reason      *int   `json:"reason"`
	}
	if err := json.Unmarshal(q.payload, &in); err != nil || in.Certificate == "" {
		s.fail(w, r, p, malformed(`revokeCert payload must be {"certificate": "base64url DER", "reason": N}`))
		return
	}
	reason := 0
	if in.Reason != nil {
		reason = *in.Reason
	}
	if !revocationReasons[reason] {
		s.fail(w, r, p, problemf(ErrBadRevocationReason, 400, "reason %d is not accepted (use 0, 1, 3, 4, 5 or 9)", reason))
		return
	}
	der, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(in.Certificate, "="))
	if err != nil {
		s.fail(w, r, p, malformed("certificate is not base64url: %v", err))
		return
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		s.fail(w, r, p, malformed("certificate does not parse: %v", err))
		return
	}
	serial := ca.SerialHex(cert.SerialNumber)
	rec, o, pr := s.orderedCert(r.Context(), serial)
	if pr == nil && !bytes.Equal(rec.DER, der) {
		pr = notFound("certificate %s was not issued by this ACME server", serial)
	}
	if pr != nil {
		s.fail(w, r, p, pr)
		return
	}
	switch {
	case q.acct != nil && q.acct.ID != o.AccountID:
		s.fail(w, r, p, unauthorized("this account did not order certificate %s; sign with the account that did or with the certificate's key", serial))
		return
	case q.jwk != nil:
		if k, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(q.jwk.Key) {
			s.fail(w, r, p, unauthorized("the JWS key is not the key of certificate %s", serial))
			return
		}
	}
	actor := "acme:certificate key"
	if q.acct != nil {
		actor = "acme:account " + q.acct.ID
	}
	res, err := s.auth.Revoke(events.WithWho(r.Context(), events.Who{Actor: actor}), ca.RevokeRequest{Serial: serial, Reason: reason, Method: ca.MethodACME})
	switch {
	case err != nil:
		s.fail(w, r, p, internal(err))
		return
	case len(res.Revoked) == 0:
		s.fail(w, r, p, problemf(ErrAlreadyRevoked, 400, "certificate %s is already revoked", serial))
		return
	}
	if s.crl != nil {
		// Committed already; answer once the CRL relying parties fetch
		// carries it, as the admin API does.
		wctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		if _, err := s.crl.WaitFor(wctx, res.Seq); err != nil {
			s.log.Error("ACME revocation committed; no CRL carries it yet", "serial", serial, "revocation_seq", res.Seq, "err", err)
		}
		cancel()
	}
	by := "certificate key"
	if q.acct != nil {
		by = "account " + q.acct.ID
	}
	s.log.Warn("ACME certificate revoked", "provisioner", p.name, "serial", serial, "reason", ca.ReasonName(reason), "by", by, "revocation_seq", res.Seq)
	w.WriteHeader(http.StatusOK)
}
