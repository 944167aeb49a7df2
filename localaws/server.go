package localaws

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Server is the local Roles Anywhere + STS endpoint. It is an http.Handler;
// serve it on any listener (plain HTTP on loopback is what the helper, the
// SDK and the CLI all accept for a custom endpoint).
type Server struct {
	cfg Config
	log *slog.Logger
	// buckets holds one set of rate-limit buckets per account, as AWS's
	// quotas are per account and region; "" is CreateSession's, which is
	// limited before the request says whose it is.
	buckets map[string]map[string]*bucket
	keys    map[string]Account // admin access key id -> its account

	mu sync.Mutex // guards st and the state file
	st *state
}

// Body size limits. The control plane's must fit an ImportCrl at the 300000
// byte CRL limit after base64 (400000 characters) plus JSON around it.
const (
	maxSessionBody      = 64 << 10
	maxControlPlaneBody = 1 << 20
	maxSTSBody          = 64 << 10
)

// New validates cfg, loads cfg.StateFile if set, and returns a Server.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	st := newState(cfg.accounts())
	if cfg.StateFile != "" {
		if st, err = loadState(cfg.StateFile, cfg.accounts()); err != nil {
			return nil, err
		}
	}
	keys := map[string]Account{}
	for _, a := range cfg.accounts() {
		keys[a.AccessKeyID] = a
	}
	return &Server{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "localaws"),
		buckets: accountBuckets(cfg.RateLimits, cfg.accounts()),
		keys:    keys,
		st:      st,
	}, nil
}

// ServeHTTP routes one request: CreateSession (POST .../sessions under any
// prefix), STS (credential scope service "sts", or a form POST to "/"), and
// otherwise the Roles Anywhere control plane.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := newUUID()
	w.Header().Set("x-amzn-RequestId", reqID)
	switch {
	case r.Method == http.MethodPost && (r.URL.Path == createSessionPath || strings.HasSuffix(r.URL.Path, createSessionPath)):
		body, err := readBody(w, r, maxSessionBody)
		if err != nil {
			s.refuseJSON(w, r, reqID, "CreateSession", validationError("%v", err))
			return
		}
		s.createSession(w, r, reqID, body)
	case isIAMRequest(r):
		body, err := readBody(w, r, maxIAMBody)
		if err != nil {
			writeQueryError(w, iamNamespace, reqID, &apiError{Status: http.StatusBadRequest, Code: "ValidationError", Message: err.Error()})
			return
		}
		s.serveIAM(w, r, reqID, body)
	case isSTSRequest(r):
		body, err := readBody(w, r, maxSTSBody)
		if err != nil {
			s.refuseSTS(w, r, reqID, &apiError{Status: http.StatusBadRequest, Code: "ValidationError", Message: err.Error()})
			return
		}
		s.serveSTS(w, r, reqID, body)
	default:
		body, err := readBody(w, r, maxControlPlaneBody)
		if err != nil {
			s.refuseJSON(w, r, reqID, "ControlPlane", validationError("%v", err))
			return
		}
		s.serveControlPlane(w, r, reqID, body)
	}
}

// isSTSRequest recognises an STS call by its credential scope (the reliable
// signal) or, for unsigned or odd requests, by the awsquery form POST shape.
func isSTSRequest(r *http.Request) bool {
	if a, err := parseAuthorization(r.Header.Get("Authorization")); err == nil && a.Service == "sts" {
		return true
	}
	return r.Method == http.MethodPost && r.URL.Path == "/" &&
		strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
}

// readBody reads the whole body: every signature here covers its exact bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, fmt.Errorf("request body larger than %d bytes", limit)
	}
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	return body, nil
}

// now is the server clock in UTC.
func (s *Server) now() time.Time { return s.cfg.Now().UTC() }

// allow applies the rate limit of group, on real time.
func (s *Server) allow(account, group string) bool {
	b, ok := s.buckets[account][group]
	if !ok {
		b = s.buckets[""][group] // a caller outside the configured accounts
	}
	return b.allow(time.Now())
}

// accountBuckets gives every configured account (and "") its own buckets;
// accounts are fixed at start, so the map never grows.
func accountBuckets(l RateLimits, accounts []Account) map[string]map[string]*bucket {
	out := map[string]map[string]*bucket{"": newBuckets(l)}
	for _, a := range accounts {
		out[a.ID] = newBuckets(l)
	}
	return out
}

// persistLocked writes the state file after a mutation; s.mu must be held.
// On failure the in-memory state keeps the change and the caller answers
// 500, so the operator sees the disk problem at once.
func (s *Server) persistLocked() error {
	if s.cfg.StateFile == "" {
		return nil
	}
	return saveState(s.cfg.StateFile, s.st)
}

// refuseJSON logs a refused REST-JSON request and answers it.
func (s *Server) refuseJSON(w http.ResponseWriter, r *http.Request, reqID, op string, e *apiError, attrs ...any) {
	s.logDecision(r, reqID, op, e, attrs...)
	writeRESTJSONError(w, e)
}

// refuseSTS logs a refused STS request and answers it in awsquery XML.
func (s *Server) refuseSTS(w http.ResponseWriter, r *http.Request, reqID string, e *apiError, attrs ...any) {
	s.logDecision(r, reqID, "GetCallerIdentity", e, attrs...)
	writeSTSError(w, reqID, e)
}

// logDecision writes one record per decision with stable keys: op,
// request_id, decision (allow/deny), status, code, reason, and whatever the
// caller adds (serial, subject, anchor, profile, role, access_key_id).
func (s *Server) logDecision(r *http.Request, reqID, op string, e *apiError, attrs ...any) {
	base := []any{"op", op, "request_id", reqID, "remote", r.RemoteAddr}
	if e == nil {
		s.log.InfoContext(r.Context(), "allow", append(append(base, "decision", "allow"), attrs...)...)
		return
	}
	base = append(base, "decision", "deny", "status", e.Status, "code", e.Code, "reason", e.logReason())
	level := slog.LevelWarn
	if e.Status >= 500 {
		level = slog.LevelError
	}
	s.log.Log(r.Context(), level, "deny", append(base, attrs...)...)
}
