package localaws

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The Roles Anywhere control plane (§8): REST-JSON over SigV4.

// cpCall is one authenticated control-plane call as handlers see it.
type cpCall struct {
	caller *principal
	acct   *accountState // the caller's account; read and written under s.mu
	id     string        // the {id} path label, when the route has one
	query  url.Values
	body   []byte
	now    time.Time
}

// cpHandler runs an operation and returns the success status and body, or
// the refusal.
type cpHandler func(s *Server, c *cpCall) (int, any, *apiError)

type cpRoute struct {
	method  string
	path    string // segments; "{id}" matches a label
	op      string
	group   string
	handler cpHandler
}

var cpRoutes = []cpRoute{
	{http.MethodPost, "/trustanchors", "CreateTrustAnchor", groupTrustAnchor, (*Server).createTrustAnchor},
	{http.MethodGet, "/trustanchors", "ListTrustAnchors", groupTrustAnchor, (*Server).listTrustAnchors},
	{http.MethodGet, "/trustanchor/{id}", "GetTrustAnchor", groupTrustAnchor, (*Server).getTrustAnchor},
	{http.MethodPatch, "/trustanchor/{id}", "UpdateTrustAnchor", groupTrustAnchor, (*Server).updateTrustAnchor},
	{http.MethodDelete, "/trustanchor/{id}", "DeleteTrustAnchor", groupTrustAnchor, (*Server).deleteTrustAnchor},
	{http.MethodPost, "/trustanchor/{id}/enable", "EnableTrustAnchor", groupTrustAnchor, enableTrustAnchor(true)},
	{http.MethodPost, "/trustanchor/{id}/disable", "DisableTrustAnchor", groupTrustAnchor, enableTrustAnchor(false)},

	{http.MethodPost, "/profiles", "CreateProfile", groupProfile, (*Server).createProfile},
	{http.MethodGet, "/profiles", "ListProfiles", groupProfile, (*Server).listProfiles},
	{http.MethodGet, "/profile/{id}", "GetProfile", groupProfile, (*Server).getProfile},
	{http.MethodPatch, "/profile/{id}", "UpdateProfile", groupProfile, (*Server).updateProfile},
	{http.MethodDelete, "/profile/{id}", "DeleteProfile", groupProfile, (*Server).deleteProfile},
	{http.MethodPost, "/profile/{id}/enable", "EnableProfile", groupProfile, enableProfile(true)},
	{http.MethodPost, "/profile/{id}/disable", "DisableProfile", groupProfile, enableProfile(false)},
	{http.MethodPut, "/profiles/{id}/mappings", "PutAttributeMapping", groupProfile, (*Server).putAttributeMapping},
	{http.MethodDelete, "/profiles/{id}/mappings", "DeleteAttributeMapping", groupProfile, (*Server).deleteAttributeMapping},

	{http.MethodGet, "/subjects", "ListSubjects", groupSubject, (*Server).listSubjects},
	{http.MethodGet, "/subject/{id}", "GetSubject", groupSubject, (*Server).getSubject},

	{http.MethodPost, "/crls", "ImportCrl", groupCRL, (*Server).importCRL},
	{http.MethodGet, "/crls", "ListCrls", groupCRL, (*Server).listCRLs},
	{http.MethodGet, "/crl/{id}", "GetCrl", groupCRL, (*Server).getCRL},
	{http.MethodPatch, "/crl/{id}", "UpdateCrl", groupCRL, (*Server).updateCRL},
	{http.MethodDelete, "/crl/{id}", "DeleteCrl", groupCRL, (*Server).deleteCRL},
	{http.MethodPost, "/crl/{id}/enable", "EnableCrl", groupCRL, enableCRL(true)},
	{http.MethodPost, "/crl/{id}/disable", "DisableCrl", groupCRL, enableCRL(false)},
}

// matchRoute finds the route for method and path and extracts the label.
func matchRoute(method, path string) (*cpRoute, string, bool) {
	got := strings.Split(path, "/")
	for i := range cpRoutes {
		rt := &cpRoutes[i]
		want := strings.Split(rt.path, "/")
		if rt.method != method || len(want) != len(got) {
			continue
		}
		id, ok := "", true
		for j := range want {
			switch {
			case want[j] == "{id}":
				id = got[j]
			case want[j] != got[j]:
				ok = false
			}
		}
		if ok {
			return rt, id, true
		}
	}
	return nil, "", false
}

func (s *Server) serveControlPlane(w http.ResponseWriter, r *http.Request, reqID string, body []byte) {
	now := s.now()
	caller, sigErr := s.verifySigV4(r, body, "rolesanywhere", now)
	rt, id, found := matchRoute(r.Method, r.URL.Path)
	op := "UnknownOperation"
	if found {
		op = rt.op
	}
	if sigErr != nil {
		s.refuseJSON(w, r, reqID, op, rolesAnywhereAuthError(sigErr))
		return
	}
	who := []any{"access_key_id", caller.AccessKeyID, "caller", s.principalArn(caller)}
	if !found {
		s.refuseJSON(w, r, reqID, op, &apiError{Status: http.StatusNotFound, Code: "UnknownOperationException",
			Message: "Unknown operation " + r.Method + " " + r.URL.Path}, who...)
		return
	}
	if !s.allow(caller.Account, rt.group) {
		s.refuseJSON(w, r, reqID, op, throttled(rt.group), who...)
		return
	}
	if id != "" && !uuidPattern.MatchString(id) {
		s.refuseJSON(w, r, reqID, op, validationError("Resource id %q is not a UUID", id), who...)
		return
	}
	s.mu.Lock()
	acct := s.st.account(caller.Account)
	s.mu.Unlock()
	status, out, apiErr := rt.handler(s, &cpCall{caller: caller, acct: acct, id: id, query: r.URL.Query(), body: body, now: now})
	if apiErr != nil {
		s.refuseJSON(w, r, reqID, op, apiErr, append(who, "id", id)...)
		return
	}
	s.logDecision(r, reqID, op, nil, append(who, "id", id)...)
	writeJSON(w, status, out)
}

// rolesAnywhereAuthError maps a SigV4 failure to the codes AWS's REST-JSON
// services use: MissingAuthenticationTokenException (no signature),
// IncompleteSignatureException (malformed), UnrecognizedClientException
// (unknown key or token), ExpiredTokenException, InvalidSignatureException
// (scope, skew, mismatch). All are 403 here, including
// IncompleteSignatureException, which some AWS services send as 400.
func rolesAnywhereAuthError(e *sigV4Error) *apiError {
	out := &apiError{Status: http.StatusForbidden, Reason: e.Reason}
	switch e.Kind {
	case sigMissing:
		out.Code, out.Message = "MissingAuthenticationTokenException", "Missing Authentication Token"
	case sigMalformed:
		out.Code, out.Message = "IncompleteSignatureException", "Authorization header requires a valid AWS4-HMAC-SHA256 signature: "+e.Reason
	case sigUnknownKey:
		out.Code, out.Message = "UnrecognizedClientException", "The security token included in the request is invalid."
	case sigExpiredToken:
		out.Code, out.Message = "ExpiredTokenException", "The security token included in the request is expired"
	case sigScope:
		out.Code, out.Message = "InvalidSignatureException", "Credential should be scoped to a valid region and service: "+e.Reason
	case sigSkew:
		out.Code, out.Message = "InvalidSignatureException", "Signature expired: "+e.Reason
	default:
		out.Code, out.Message = "InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	}
	return out
}

// decodeBody decodes a JSON request body strictly: unknown keys, wrong
// types and trailing data are ValidationExceptions. An empty body is {}.
func decodeBody(body []byte, v any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return validationError("Invalid request body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return validationError("Invalid request body: data after the JSON document")
	}
	return nil
}

var (
	namePattern    = regexp.MustCompile(`^[ a-zA-Z0-9-_]*$`)
	tagPattern     = regexp.MustCompile(`^[ a-zA-Z0-9_.:/=+@-]*$`)
	maxTags        = 200
	maxListResults = 1000
)

func checkName(name string) *apiError {
	if len(name) < 1 || len(name) > 255 || !namePattern.MatchString(name) {
		return validationError("name must be 1-255 characters of [ a-zA-Z0-9-_]")
	}
	return nil
}

func checkTags(tags []tag) *apiError {
	if len(tags) > maxTags {
		return validationError("at most %d tags are allowed", maxTags)
	}
	for _, t := range tags {
		if len(t.Key) < 1 || len(t.Key) > 128 || len(t.Value) > 256 || !tagPattern.MatchString(t.Key) || !tagPattern.MatchString(t.Value) {
			return validationError("tag %q: keys are 1-128 and values 0-256 characters of [ a-zA-Z0-9_.:/=+@-]", t.Key)
		}
	}
	return nil
}

// page slices ids (already sorted) by the pageSize and nextToken query
// parameters. nextToken is the opaque base64 of the next offset.
func page(q url.Values, ids []string) ([]string, *string, *apiError) {
	size := 50
	if v := q.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListResults {
			return nil, nil, validationError("pageSize must be an integer between 1 and %d", maxListResults)
		}
		size = n
	}
	start := 0
	if tok := q.Get("nextToken"); tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		n, convErr := strconv.Atoi(string(raw))
		if len(tok) > 10000 || err != nil || convErr != nil || n < 0 || n > len(ids) {
			return nil, nil, validationError("nextToken is not valid")
		}
		start = n
	}
	end := start + size
	if end >= len(ids) {
		return ids[start:], nil, nil
	}
	next := base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end)))
	return ids[start:end], &next, nil
}

// sortedIDs orders resources by creation time, then id, so pages are stable.
func sortedIDs[T any](m map[string]*T, created func(*T) time.Time) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := created(m[ids[i]]), created(m[ids[j]])
		if !a.Equal(b) {
			return a.Before(b)
		}
		return ids[i] < ids[j]
	})
	return ids
}

// boolOr returns *p or def when the field was not sent. enabled defaults to
// false when omitted: AWS's default is unverified (§8), and a resource that
// needs an explicit enable fails safe.
func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}
