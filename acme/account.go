package acme

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/mail"
	"strings"

	"go.step.sm/crypto/jose"

	"github.com/anchorage-pki/anchorage/storage"
)

func (s *Server) accountJSON(a *account) map[string]any {
	m := map[string]any{"status": a.Status}
	if len(a.Contact) > 0 {
		m["contact"] = a.Contact
	}
	return m
}

// newAccount creates an account for the JWS key, or finds the existing one
// (RFC 8555 §7.3, §7.3.1, §7.3.4).
func (s *Server) newAccount(w http.ResponseWriter, r *http.Request, p *provisioner) {
	q, pr := s.authenticate(w, r, p, byJWK)
	if pr != nil {
		s.fail(w, r, p, pr)
		return
	}
	var in struct {
		Contact                []string        `json:"contact"`
		OnlyReturnExisting     bool            `json:"onlyReturnExisting"`
		ExternalAccountBinding json.RawMessage `json:"externalAccountBinding"`
	}
	if err := json.Unmarshal(q.payload, &in); err != nil {
		s.fail(w, r, p, malformed("newAccount payload: %v", err))
		return
	}
	tp, err := thumbprint(q.jwk)
	if err != nil {
		s.fail(w, r, p, problemf(ErrBadPublicKey, 400, "JWK thumbprint: %v", err))
		return
	}
	acct, err := s.store.ACMEAccountByKey(r.Context(), p.name, tp)
	switch {
	case err == nil:
		s.replyExisting(w, r, p, acct)
		return
	case !errors.Is(err, storage.ErrNotFound):
		s.fail(w, r, p, internal(err))
		return
	case in.OnlyReturnExisting:
		s.fail(w, r, p, problemf(ErrAccountDoesNotExist, 400, "no account for this key"))
		return
	}
	if ok, wait := s.newAccounts.allow(r.RemoteAddr); !ok {
		s.fail(w, r, p, rateLimited(w, wait, "at most %d new accounts per minute from one address", s.limits.NewAccountsPerIPPerMinute))
		return
	}
	if ok, wait := s.newAccountsAll.allow(); !ok {
		s.fail(w, r, p, rateLimited(w, wait, "at most %d new accounts per minute from all addresses together", s.limits.NewAccountsPerMinute))
		return
	}
	if pr := checkContacts(in.Contact); pr != nil {
		s.fail(w, r, p, pr)
		return
	}
	key, err := marshalKey(q.jwk)
	if err != nil {
		s.fail(w, r, p, problemf(ErrBadPublicKey, 400, "JWK: %v", err))
		return
	}
	acct = &account{ID: newID(), Provisioner: p.name, Key: key, Thumbprint: tp,
		Status: statusValid, Contact: in.Contact, CreatedAt: s.now().UTC()}
	if p.eab != nil {
		if in.ExternalAccountBinding == nil {
			s.fail(w, r, p, problemf(ErrExternalAccountRequired, 400, "provisioner %q requires an external account binding (kid and HMAC key from the CA operator)", p.name))
			return
		}
		if acct.EABKeyID, pr = s.checkEAB(r, p, in.ExternalAccountBinding, q.jwk); pr != nil {
			s.fail(w, r, p, pr)
			return
		}
	}
	stored, err := s.store.CreateACMEAccount(r.Context(), acct)
	if errors.Is(err, storage.ErrACMEEABBound) {
		s.fail(w, r, p, unauthorized("external account key %q is already bound to an account", acct.EABKeyID))
		return
	}
	if err != nil {
		s.fail(w, r, p, internal(err))
		return
	}
	if stored.ID != acct.ID { // lost a race with the same key
		s.replyExisting(w, r, p, stored)
		return
	}
	s.log.Info("ACME account created", "provisioner", p.name, "account", acct.ID, "contact", acct.Contact, "eab", acct.EABKeyID)
	w.Header().Set("Location", s.url(r, p, "account", acct.ID))
	writeJSON(w, http.StatusCreated, s.accountJSON(acct))
}

func (s *Server) replyExisting(w http.ResponseWriter, r *http.Request, p *provisioner, a *account) {
	if a.Status != statusValid {
		s.fail(w, r, p, unauthorized("the account of this key is %s", a.Status))
		return
	}
	w.Header().Set("Location", s.url(r, p, "account", a.ID))
	writeJSON(w, http.StatusOK, s.accountJSON(a))
}

func checkContacts(cs []string) *Problem {
	if len(cs) > 10 {
		return problemf(ErrInvalidContact, 400, "at most 10 contacts")
	}
	for _, c := range cs {
		addr, ok := strings.CutPrefix(c, "mailto:")
		if !ok {
			return problemf(ErrUnsupportedContact, 400, "contact %q: only mailto: is supported", c)
		}
		if a, err := mail.ParseAddress(addr); err != nil || a.Address != addr || strings.ContainsAny(addr, "?,") {
			return problemf(ErrInvalidContact, 400, "contact %q is not one plain e-mail address", c)
		}
	}
	return nil
}

// checkEAB verifies an external account binding (RFC 8555 §7.3.4): an
// HMAC-signed JWS over the account key, naming a key id the operator handed
// out, for this very newAccount URL. It returns the key id.
func (s *Server) checkEAB(r *http.Request, p *provisioner, raw json.RawMessage, accountKey *jose.JSONWebKey) (string, *Problem) {
	jws, pr := parseJWS(raw, []string{"HS256", "HS384", "HS512"})
	if pr != nil {
		pr.Type, pr.Status = ErrMalformed, 400
		pr.Detail = "externalAccountBinding: " + pr.Detail
		return "", pr
	}
	h := jws.Signatures[0].Protected
	key, ok := p.eab[h.KeyID]
	if !ok {
		return "", unauthorized("externalAccountBinding: unknown key id %q", h.KeyID)
	}
	if h.Nonce != "" {
		return "", malformed("externalAccountBinding must not carry a nonce")
	}
	if u, _ := h.ExtraHeaders["url"].(string); u != s.url(r, p, "new-account") {
		return "", unauthorized("externalAccountBinding url %q is not this newAccount URL", u)
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return "", unauthorized("externalAccountBinding: HMAC does not verify with key %q", h.KeyID)
	}
	var bound jose.JSONWebKey
	if err := json.Unmarshal(payload, &bound); err != nil {
		return "", malformed("externalAccountBinding payload is not a JWK: %v", err)
	}
	want, _ := thumbprint(accountKey)
	if got, err := thumbprint(&bound); err != nil || got != want {
		return "", unauthorized("externalAccountBinding binds a different key than the one signing newAccount")
	}
	return h.KeyID, nil
}

// account updates contacts or deactivates (RFC 8555 §7.3.2, §7.3.6), or
// just returns the account for a POST-as-GET.
func (s *Server) account(w http.ResponseWriter, r *http.Request, p *provisioner, id string) {
	q, pr := s.authenticate(w, r, p, byKID)
	if pr != nil {
		s.fail(w, r, p, pr)
		return
	}
	if q.acct.ID != id {
		s.fail(w, r, p, unauthorized("the JWS is signed by another account"))
		return
	}
	var in struct {
		Contact *[]string `json:"contact"`
		Status  string    `json:"status"`
	}
	if !q.postAsGet() {
		if err := json.Unmarshal(q.payload, &in); err != nil {
			s.fail(w, r, p, malformed("account payload: %v", err))
			return
		}
	}
	if in.Status != "" && in.Status != statusDeactivated && in.Status != statusValid {
		s.fail(w, r, p, malformed("an account's status can only be set to %q", statusDeactivated))
		return
	}
	if in.Contact != nil {
		if pr := checkContacts(*in.Contact); pr != nil {
			s.fail(w, r, p, pr)
			return
		}
	}
	var acct *account
	if in.Contact != nil || in.Status == statusDeactivated {
		var err error
		acct, err = s.store.UpdateACMEAccount(r.Context(), id, func(a *account) error {
			if in.Contact != nil {
				a.Contact = *in.Contact
			}
			if in.Status == statusDeactivated {
				a.Status = statusDeactivated
			}
			return nil
		})
		if err != nil {
			s.fail(w, r, p, internal(err))
			return
		}
		if in.Status == statusDeactivated {
			s.log.Info("ACME account deactivated", "provisioner", p.name, "account", id)
		}
	} else {
		acct = q.acct
	}
	w.Header().Set("Location", s.url(r, p, "account", id))
	writeJSON(w, http.StatusOK, s.accountJSON(acct))
}

// keyChange rolls an account over to a new key (RFC 8555 §7.3.5): the outer
// JWS is signed by the account, the inner one by the new key.
func (s *Server) keyChange(w http.ResponseWriter, r *http.Request, p *provisioner) {
	q, pr := s.authenticate(w, r, p, byKID)
	if pr != nil {
		s.fail(w, r, p, pr)
		return
	}
	inner, pr := parseJWS(q.payload, accountAlgs)
	if pr != nil {
		pr.Detail = "keyChange inner JWS: " + pr.Detail
		s.fail(w, r, p, pr)
		return
	}
	outer := q.jws.Signatures[0].Protected
	ih := inner.Signatures[0].Protected
	switch {
	case ih.JSONWebKey == nil || ih.KeyID != "":
		pr = malformed(`keyChange inner JWS must carry the new key as "jwk"`)
	case ih.Nonce != "":
		pr = malformed("keyChange inner JWS must not carry a nonce")
	case ih.ExtraHeaders["url"] != outer.ExtraHeaders["url"]:
		pr = malformed("keyChange inner and outer JWS url differ")
	default:
		pr = checkAccountKey(ih.JSONWebKey)
	}
	if pr != nil {
		s.fail(w, r, p, pr)
		return
	}
	payload, err := inner.Verify(ih.JSONWebKey)
	if err != nil {
		s.fail(w, r, p, malformed("keyChange inner JWS signature does not verify with its jwk"))
		return
	}
	var in struct {
		Account string          `json:"account"`
		OldKey  jose.JSONWebKey `json:"oldKey"`
	}
	if err := json.Unmarshal(payload, &in); err != nil {
		s.fail(w, r, p, malformed("keyChange inner payload: %v", err))
		return
	}
	oldTP, err := thumbprint(&in.OldKey)
	if in.Account != outer.KeyID || err != nil || oldTP != q.acct.Thumbprint {
		s.fail(w, r, p, unauthorized("keyChange: account or oldKey does not match the signing account"))
		return
	}
	newTP, err := thumbprint(ih.JSONWebKey)
	if err != nil || newTP == oldTP {
		s.fail(w, r, p, problemf(ErrBadPublicKey, 400, "keyChange: the new key must differ from the old one"))
		return
	}
	newKey, err := marshalKey(ih.JSONWebKey)
	if err != nil {
		s.fail(w, r, p, problemf(ErrBadPublicKey, 400, "keyChange: new JWK: %v", err))
		return
	}
	acct, err := s.store.RekeyACMEAccount(r.Context(), q.acct.ID, oldTP, newTP, newKey)
	var inUse *storage.ACMEKeyInUseError
	switch {
	case errors.As(err, &inUse):
		w.Header().Set("Location", s.url(r, p, "account", inUse.AccountID))
		s.fail(w, r, p, problemf(ErrMalformed, http.StatusConflict, "the new key already belongs to an account"))
		return
	case errors.Is(err, storage.ErrACMEStale):
		s.fail(w, r, p, unauthorized("keyChange: the account's key changed meanwhile"))
		return
	case err != nil:
		s.fail(w, r, p, internal(err))
		return
	}
	s.log.Info("ACME account key rolled over", "provisioner", p.name, "account", acct.ID)
	w.Header().Set("Location", s.url(r, p, "account", acct.ID))
	writeJSON(w, http.StatusOK, s.accountJSON(acct))
}
