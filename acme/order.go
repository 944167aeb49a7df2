package acme

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/events"
	"github.com/anchorage-pki/anchorage/storage"
)

// Lifetimes of pending work. Authorizations are not reused across orders.
const (
	orderTTL     = 24 * time.Hour
	retryAfter   = "1"
	maxSubjectCN = 64
)

func (s *Server) orderJSON(r *http.Request, p *provisioner, o *order) map[string]any {
	authzs := make([]string, len(o.AuthzIDs))
	for i, id := range o.AuthzIDs {
		authzs[i] = s.url(r, p, "authz", id)
	}
	m := map[string]any{
		"status": o.Status, "expires": o.Expires.Format(time.RFC3339), "identifiers": o.Identifiers,
		"authorizations": authzs, "finalize": s.url(r, p, "order", o.ID, "finalize"),
	}
	if o.CertSerial != "" {
		m["certificate"] = s.url(r, p, "cert", o.CertSerial)
	}
	if len(o.Error) > 0 {
		m["error"] = o.Error
	}
	return m
}

func (s *Server) authzJSON(r *http.Request, p *provisioner, a *authz) map[string]any {
	chs := make([]map[string]any, len(a.Challenges))
	for i := range a.Challenges {
		chs[i] = s.challengeJSON(r, p, a, &a.Challenges[i])
	}
	m := map[string]any{"identifier": a.Identifier, "status": a.Status,
		"expires": a.Expires.Format(time.RFC3339), "challenges": chs}
	if a.Wildcard {
		m["wildcard"] = true
	}
	return m
}

func (s *Server) challengeJSON(r *http.Request, p *provisioner, a *authz, c *challenge) map[string]any {
	m := map[string]any{"type": c.Type, "url": s.url(r, p, "chall", a.ID, c.Type), "token": c.Token, "status": c.Status}
	if !c.Validated.IsZero() {
		m["validated"] = c.Validated.Format(time.RFC3339)
	}
	if len(c.Error) > 0 {
		m["error"] = c.Error
	}
	return m
}

// newOrder checks every identifier against the provisioner's policy and
// creates one authorization per identifier (RFC 8555 §7.4). Everything it
// stores is made before the account proved anything, so it is bounded: per
// client address by a token bucket, per account by the unfinished orders
// and authorizations storage counts in the same commit.
func (s *Server) newOrder(w http.ResponseWriter, r *http.Request, p *provisioner) {
	q, pr := s.authenticate(w, r, p, byKID)
	if pr != nil {
		s.fail(w, r, p, pr)
		return
	}
	if ok, wait := s.newOrders.allow(r.RemoteAddr); !ok {
		s.fail(w, r, p, rateLimited(w, wait, "at most %d new orders per minute from one address", s.limits.NewOrdersPerIPPerMinute))
		return
	}
	var in struct {
		Identifiers []ident `json:"identifiers"`
		NotBefore   string  `json:"notBefore"`
		NotAfter    string  `json:"notAfter"`
	}
	if err := json.Unmarshal(q.payload, &in); err != nil {
		s.fail(w, r, p, malformed("newOrder payload: %v", err))
		return
	}
	switch {
	case len(in.Identifiers) == 0:
		pr = malformed("newOrder needs at least one identifier")
	case len(in.Identifiers) > s.limits.IdentifiersPerOrder:
		// Not rateLimited and no Retry-After: the same order never passes.
		pr = problemf(ErrRejectedIdentifier, 400, "%d identifiers; at most %d per order", len(in.Identifiers), s.limits.IdentifiersPerOrder)
	case in.NotBefore != "" || in.NotAfter != "":
		pr = malformed("notBefore/notAfter are not supported: provisioner %q sets the lifetime", p.name)
	}
	if pr != nil {
		s.fail(w, r, p, pr)
		return
	}
	now := s.now().UTC().Truncate(time.Second)
	o := &order{ID: newID(), AccountID: q.acct.ID, Status: statusPending, Expires: now.Add(orderTTL)}
	var authzs []*authz
	var rejected []*Problem
	seen := map[ident]bool{}
	for _, raw := range in.Identifiers {
		id, pr := normalize(raw)
		if pr != nil {
			s.fail(w, r, p, pr)
			return
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		types := p.challengesFor(id)
		if zone, bare := p.bareWildcard(id); bare || !p.allows(id) || len(types) == 0 {
			why := "is not allowed by provisioner " + p.name + "'s policy"
			switch {
			case bare:
				why = "would cover every name directly under " + zone + ", which the provisioner allows one by one; order names below it"
			case len(types) == 0:
				why = "has no challenge this provisioner offers"
			}
			rejected = append(rejected, &Problem{Type: ErrRejectedIdentifier, Status: 400,
				Detail: fmt.Sprintf("%s %q %s", id.Type, id.Value, why), Identifier: &id})
			continue
		}
		o.Identifiers = append(o.Identifiers, id)
		az := &authz{ID: newID(), AccountID: q.acct.ID, OrderID: o.ID, Identifier: id,
			Status: statusPending, Expires: o.Expires}
		if v, ok := strings.CutPrefix(id.Value, "*."); ok {
			az.Identifier.Value, az.Wildcard = v, true
		}
		for _, t := range types {
			az.Challenges = append(az.Challenges, challenge{Type: t, Token: newToken(), Status: statusPending})
		}
		authzs = append(authzs, az)
		o.AuthzIDs = append(o.AuthzIDs, az.ID)
	}
	if len(rejected) > 0 {
		pr := &Problem{Type: ErrRejectedIdentifier, Status: 400, Subproblems: rejected, Detail: rejected[0].Detail}
		if len(rejected) > 1 {
			pr.Detail = fmt.Sprintf("%d identifiers are not allowed, first: %s", len(rejected), rejected[0].Detail)
		}
		s.fail(w, r, p, pr)
		return
	}
	err := s.store.CreateACMEOrder(r.Context(), o, authzs, storage.ACMEOrderLimits{
		Orders: s.limits.PendingOrdersPerAccount, Authzs: s.limits.PendingAuthorizationsPerAccount, Now: s.now()})
	if pr := s.limitProblem(w, err); pr != nil {
		s.fail(w, r, p, pr)
		return
	}
	if err != nil {
		s.fail(w, r, p, internal(err))
		return
	}
	w.Header().Set("Location", s.url(r, p, "order", o.ID))
	writeJSON(w, http.StatusCreated, s.orderJSON(r, p, o))
}

func newToken() string {
	return newID() + newID() // 256 bits, base64url (RFC 8555 §8.1 wants ≥128)
}

// loadOrder reads an order the requesting account owns, with expiry applied.
func (s *Server) loadOrder(ctx context.Context, acct *account, id string) (*order, *Problem) {
	o, err := s.store.ACMEOrder(ctx, id)
	if errors.Is(err, storage.ErrNotFound) || err == nil && o.AccountID != acct.ID {
		return nil, notFound("no order %q for this account", id)
	}
	if err != nil {
		return nil, internal(err)
	}
	if (o.Status == statusPending || o.Status == statusReady) && s.now().After(o.Expires) {
		o.Status = statusInvalid
		o.Error = malformed("order expired").raw()
	}
	return o, nil
}

func (s *Server) order(w http.ResponseWriter, r *http.Request, p *provisioner, id string) {
	q, pr := s.authenticate(w, r, p, byKID)
	if pr != nil {
		s.fail(w, r, p, pr)
		return
	}
	o, pr := s.loadOrder(r.Context(), q.acct, id)
	if pr != nil {
		s.fail(w, r, p, pr)
		return
	}
	if o.Status == statusPending || o.Status == statusProcessing {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeJSON(w, http.StatusOK, s.orderJSON(r, p, o))
}

func (s *Server) loadAuthz(ctx context.Context, acct *account, id string) (*authz, *Problem) {
	a, err := s.store.ACMEAuthz(ctx, id)
	if errors.Is(err, storage.ErrNotFound) || err == nil && a.AccountID != acct.ID {
		return nil, notFound("no authorization %q for this account", id)
	}
	if err != nil {
		return nil, internal(err)
	}
	if a.Status == statusPending && s.now().After(a.Expires) {
		a.Status = statusExpired
	}
	return a, nil
}

// authz returns an authorization, or deactivates it (RFC 8555 §7.5, §7.5.2).
func (s *Server) authz(w http.ResponseWriter, r *http.Request, p *provisioner, id string) {
	q, pr := s.authenticate(w, r, p, byKID)
	if pr != nil {
		s.fail(w, r, p, pr)
		return
	}
	a, pr := s.loadAuthz(r.Context(), q.acct, id)
	if pr != nil {
		s.fail(w, r, p, pr)
		return
	}
	if !q.postAsGet() {
		var in struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(q.payload, &in); err != nil || in.Status != statusDeactivated {
			s.fail(w, r, p, malformed(`an authorization can only be updated to {"status":"deactivated"}`))
			return
		}
		if a.Status != statusPending && a.Status != statusValid {
			s.fail(w, r, p, malformed("authorization is %s", a.Status))
			return
		}
		err := s.store.UpdateACMEAuthz(r.Context(), id, func(a *authz, o *order, all []*authz) error {
			a.Status = statusDeactivated
			settle(o, all)
			return nil
		})
		if err != nil {
			s.fail(w, r, p, internal(err))
			return
		}
		a.Status = statusDeactivated
	}
	if a.Status == statusPending {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeJSON(w, http.StatusOK, s.authzJSON(r, p, a))
}

// settle moves an order on after one of its authorizations changed: ready
// once every authorization is valid, invalid as soon as one is not — also
// when the order was ready already, so a deactivated authorization no
// longer backs a finalize (RFC 8555 §7.5.2). all holds the changed
// authorization as it is now.
func settle(o *order, all []*authz) {
	if o.Status != statusPending && o.Status != statusReady {
		return
	}
	ready := true
	for _, other := range all {
		switch other.Status {
		case statusValid:
		case statusPending:
			ready = false
		default:
			o.Status = statusInvalid
			o.Error = (&Problem{Type: ErrUnauthorized, Status: 403, Detail: fmt.Sprintf("authorization for %s is %s", other.Identifier.Value, other.Status)}).raw()
			for _, c := range other.Challenges {
				if len(c.Error) > 0 {
					o.Error = c.Error
				}
			}
			return
		}
	}
	if ready {
		o.Status = statusReady
	}
}

// challenge starts validation on {} and returns the challenge; it waits a
// moment for the result so most clients see "valid" at once (RFC 8555
// §7.5.1). The Link rel="up" to the authorization is what certbot and lego
// follow to poll.
func (s *Server) challenge(w http.ResponseWriter, r *http.Request, p *provisioner, authzID, typ string) {
	q, pr := s.authenticate(w, r, p, byKID)
	if pr != nil {
		s.fail(w, r, p, pr)
		return
	}
	a, pr := s.loadAuthz(r.Context(), q.acct, authzID)
	if pr != nil {
		s.fail(w, r, p, pr)
		return
	}
	i := slices.IndexFunc(a.Challenges, func(c challenge) bool { return c.Type == typ })
	if i < 0 {
		s.fail(w, r, p, notFound("no %s challenge in authorization %q", typ, authzID))
		return
	}
	if !q.postAsGet() && a.Status == statusPending && a.Challenges[i].Status == statusPending {
		err := s.store.UpdateACMEAuthz(r.Context(), authzID, func(cur *authz, _ *order, _ []*authz) error {
			if cur.Status != statusPending || slices.ContainsFunc(cur.Challenges, func(c challenge) bool { return c.Status != statusPending }) {
				return errStarted
			}
			cur.Challenges[i].Status = statusProcessing
			return nil
		})
		started := err == nil
		if err != nil && !errors.Is(err, errStarted) {
			s.fail(w, r, p, internal(err))
			return
		}
		if started {
			done := s.validate(p, q.acct, a, i)
			select {
			case <-done:
			case <-time.After(s.wait):
			case <-r.Context().Done():
			}
		}
		if a, pr = s.loadAuthz(r.Context(), q.acct, authzID); pr != nil {
			s.fail(w, r, p, pr)
			return
		}
	}
	c := &a.Challenges[i]
	if c.Status == statusProcessing || c.Status == statusPending && a.Status == statusPending {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Add("Link", link(s.url(r, p, "authz", authzID), "up"))
	writeJSON(w, http.StatusOK, s.challengeJSON(r, p, a, c))
}

// errStarted: another request started this authorization's validation.
var errStarted = errors.New("validation already started")

// finalize checks the CSR against the order and has the issuing core sign
// and record the certificate (RFC 8555 §7.4). A bad CSR leaves the order
// ready for another try.
func (s *Server) finalize(w http.ResponseWriter, r *http.Request, p *provisioner, id string) {
	q, pr := s.authenticate(w, r, p, byKID)
	if pr != nil {
		s.fail(w, r, p, pr)
		return
	}
	o, pr := s.loadOrder(r.Context(), q.acct, id)
	if pr != nil {
		s.fail(w, r, p, pr)
		return
	}
	if o.Status != statusReady {
		s.fail(w, r, p, problemf(ErrOrderNotReady, http.StatusForbidden, "order is %s, not ready", o.Status))
		return
	}
	var in struct {
		CSR string `json:"csr"`
	}
	if err := json.Unmarshal(q.payload, &in); err != nil || in.CSR == "" {
		s.fail(w, r, p, malformed(`finalize payload must be {"csr": "base64url DER"}`))
		return
	}
	req, pr := parseCSR(in.CSR, o.Identifiers)
	if pr != nil {
		s.fail(w, r, p, pr)
		return
	}
	// Claim the order so a concurrent finalize cannot issue twice; storage
	// marks it valid in the commit that stores the certificate.
	if _, err := s.store.ClaimACMEOrder(r.Context(), id, s.now()); errors.Is(err, storage.ErrACMEOrderState) {
		s.fail(w, r, p, problemf(ErrOrderNotReady, http.StatusForbidden, "order is no longer ready"))
		return
	} else if err != nil {
		s.fail(w, r, p, internal(err))
		return
	}
	fault("claimed")
	req.Lifetime, req.ClientOnly, req.Order = p.lifetime, p.clientOnly, id
	// The order is claimed: finish issuing even if the client goes away,
	// so a stored certificate never sits behind an order marked invalid.
	ctx := events.WithWho(context.WithoutCancel(r.Context()), events.Who{Actor: "acme:account " + q.acct.ID})
	issued, err := s.auth.Issue(ctx, req)
	if err != nil {
		pr := internal(fmt.Errorf("issuing: %w", err))
		next := statusInvalid
		if errors.Is(err, ca.ErrBadCSR) {
			pr, next = problemf(ErrBadCSR, 400, "%v", err), statusReady
		}
		var stored json.RawMessage
		if next == statusInvalid {
			stored = pr.raw()
		}
		if rerr := s.store.ReleaseACMEOrder(ctx, id, next, stored); rerr != nil {
			s.log.Error("ACME order stays processing until restart", "order", id, "err", rerr)
		}
		s.fail(w, r, p, pr)
		return
	}
	fault("issued")
	s.log.Info("ACME certificate issued", "provisioner", p.name, "account", q.acct.ID, "order", id, "serial", issued.Record.Serial)
	if o, pr = s.loadOrder(ctx, q.acct, id); pr != nil {
		s.fail(w, r, p, pr)
		return
	}
	w.Header().Set("Location", s.url(r, p, "order", o.ID))
	writeJSON(w, http.StatusOK, s.orderJSON(r, p, o))
}

// parseCSR decodes the CSR and requires that its names — SANs and a CN if
// any — are exactly the order's identifiers. The certificate's subject CN
// is the CSR's CN, or else the first DNS name (then IP) that fits.
func parseCSR(b64 string, ids []ident) (ca.Request, *Problem) {
	der, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(b64, "="))
	if err != nil {
		return ca.Request{}, problemf(ErrBadCSR, 400, "csr is not base64url: %v", err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return ca.Request{}, problemf(ErrBadCSR, 400, "csr does not parse: %v", err)
	}
	if len(csr.URIs) > 0 || len(csr.EmailAddresses) > 0 {
		return ca.Request{}, problemf(ErrBadCSR, 400, "CSR asks for URI or e-mail names; ACME orders carry DNS names and IPs only")
	}
	got := map[ident]bool{}
	var sans []string
	for _, d := range csr.DNSNames {
		id, _ := normalize(ident{Type: "dns", Value: d})
		got[id] = true
	}
	for _, ip := range csr.IPAddresses {
		id, _ := normalize(ident{Type: "ip", Value: ip.String()})
		got[id] = true
	}
	cn := strings.ToLower(csr.Subject.CommonName)
	if cn != "" {
		id, _ := normalize(ident{Type: "dns", Value: cn})
		got[id] = true
	}
	want := map[ident]bool{}
	for _, id := range ids {
		want[id] = true
	}
	if !mapsEqual(got, want) {
		return ca.Request{}, problemf(ErrBadCSR, 400, "CSR names %s differ from the order's identifiers %s", identList(got), identList(want))
	}
	subject := cn
	for _, id := range ids {
		if id.Type == "dns" {
			sans = append(sans, "DNS:"+id.Value)
		} else {
			sans = append(sans, "IP:"+id.Value)
		}
	}
	if subject == "" {
		for _, typ := range []string{"dns", "ip"} {
			for _, id := range ids {
				if subject == "" && id.Type == typ && len(id.Value) <= maxSubjectCN {
					subject = id.Value
				}
			}
		}
	}
	if subject == "" || len(subject) > maxSubjectCN {
		return ca.Request{}, problemf(ErrBadCSR, 400, "no name of %d characters or fewer to use as the subject CN", maxSubjectCN)
	}
	names, err := ca.ParseSANs(sans)
	if err != nil {
		return ca.Request{}, problemf(ErrBadCSR, 400, "%v", err)
	}
	return ca.Request{CSR: csr, Subject: subject, Names: names, Method: storage.MethodACME}, nil
}

func mapsEqual(a, b map[ident]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func identList(m map[ident]bool) string {
	var s []string
	for id := range m {
		s = append(s, id.Value)
	}
	slices.Sort(s)
	return "[" + strings.Join(s, " ") + "]"
}

// certificate serves the PEM chain, leaf first, to the account that
// ordered it (RFC 8555 §7.4.2): the leaf from the CA's record, then the
// issuing CA.
func (s *Server) certificate(w http.ResponseWriter, r *http.Request, p *provisioner, serial string) {
	q, pr := s.authenticate(w, r, p, byKID)
	if pr != nil {
		s.fail(w, r, p, pr)
		return
	}
	rec, o, pr := s.orderedCert(r.Context(), serial)
	if pr == nil && o.AccountID != q.acct.ID {
		pr = notFound("no certificate %q for this account", serial)
	}
	if pr != nil {
		s.fail(w, r, p, pr)
		return
	}
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	w.WriteHeader(http.StatusOK)
	w.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rec.DER}))
	w.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.auth.Issuer().Raw}))
}

// orderedCert returns a certificate issued through an ACME order, and the
// order; a 404 problem for any other serial.
func (s *Server) orderedCert(ctx context.Context, serial string) (*storage.Cert, *order, *Problem) {
	rec, err := s.store.Cert(ctx, serial)
	if errors.Is(err, storage.ErrNotFound) || err == nil && rec.Order == "" {
		return nil, nil, notFound("no certificate %q from this ACME server", serial)
	}
	if err != nil {
		return nil, nil, internal(err)
	}
	o, err := s.store.ACMEOrder(ctx, rec.Order)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, notFound("certificate %q: its order is gone (pruned after expiry)", serial)
	}
	if err != nil {
		return nil, nil, internal(err)
	}
	return rec, o, nil
}
