package rolesanywhere

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"
)

// ContainerCredentialsPath is where serve --ecs answers; clients are
// pointed at it with AWS_CONTAINER_CREDENTIALS_FULL_URI.
const ContainerCredentialsPath = "/v1/credentials"

// maxAuthTokenBytes bounds the token file; real ones are a few dozen bytes.
const maxAuthTokenBytes = 4096

// ContainerEndpoint answers the container credentials protocol the AWS
// SDKs and CLI speak when AWS_CONTAINER_CREDENTIALS_FULL_URI is set (as on
// ECS and EKS Pod Identity): GET with an Authorization header that must
// equal the token, answered with one JSON document.
//
// The SDKs accept an http:// FULL_URI only on a loopback address or the
// ECS/EKS link-local addresses (169.254.170.2, 169.254.170.23,
// fd00:ec2::23); aws-sdk-go-v2 also takes a host name whose addresses are
// all loopback. Any https:// URL is accepted, but this endpoint has no TLS.
type ContainerEndpoint struct {
	cache     *Cache
	tokens    TokenSource
	roleARN   string
	accountID string
	out       *log.Logger
	log       *slog.Logger
}

// NewContainerEndpoint serves credentials from cache to callers presenting
// the token of tokens (StaticToken, or AuthTokenFile to pick up a rotated
// file). out gets one line per refusal or failed refresh (nil: discarded).
func NewContainerEndpoint(cache *Cache, tokens TokenSource, roleARN string, out *log.Logger, logger *slog.Logger) *ContainerEndpoint {
	if out == nil {
		out = log.New(io.Discard, "", 0)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &ContainerEndpoint{cache: cache, tokens: tokens, roleARN: roleARN, out: out, log: logger}
	if a, err := ParseARN(roleARN); err == nil {
		e.accountID = a.Account
	}
	return e
}

// containerCredentials is the document the SDKs decode.
type containerCredentials struct {
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	Token           string `json:"Token"`
	Expiration      string `json:"Expiration"`
	RoleArn         string `json:"RoleArn,omitempty"`
	AccountID       string `json:"AccountId,omitempty"`
}

// writeJSONError answers in the shape aws-sdk-go-v2's endpointcreds
// client decodes into its error ({"code","message"}).
func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{code, msg})
}

// ServeHTTP implements http.Handler.
func (e *ContainerEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != ContainerCredentialsPath {
		writeJSONError(w, http.StatusNotFound, "NotFound", "no such path; credentials are at "+ContainerCredentialsPath)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeJSONError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "use GET")
		return
	}
	got, ok := r.Header["Authorization"]
	if !ok || len(got) == 0 || got[0] == "" {
		e.refuse(w, r, http.StatusUnauthorized, "Unauthorized", "missing Authorization header")
		return
	}
	token, err := e.tokens.Token()
	if err != nil || len(token) == 0 {
		// Fail closed: without a usable token file nobody is let in.
		e.out.Printf("container credentials request from %s refused: authorization token unusable: %v", r.RemoteAddr, err)
		e.log.Error("container credentials request refused: authorization token unusable", "remote", r.RemoteAddr, "err", err)
		writeJSONError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "the server's authorization token file is unusable; see its log")
		return
	}
	if len(got) != 1 || subtle.ConstantTimeCompare([]byte(got[0]), token) != 1 {
		e.refuse(w, r, http.StatusForbidden, "AccessDenied", "wrong authorization token")
		return
	}
	creds, _, err := e.cache.Credentials(r.Context())
	if err != nil {
		e.out.Printf("failed to refresh credentials: %v", err)
		if creds.AccessKeyID == "" {
			writeJSONError(w, http.StatusInternalServerError, "InternalError", "unable to obtain credentials")
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(containerCredentials{
		AccessKeyID:     creds.AccessKeyID,
		SecretAccessKey: creds.SecretAccessKey,
		Token:           creds.SessionToken,
		Expiration:      creds.Expires.UTC().Format(time.RFC3339),
		RoleArn:         e.roleARN,
		AccountID:       e.accountID,
	})
}

// refuse answers 401/403 and logs who asked, never what they sent.
func (e *ContainerEndpoint) refuse(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	e.out.Printf("container credentials request from %s refused: %s", r.RemoteAddr, msg)
	e.log.Warn("container credentials request refused", "remote", r.RemoteAddr, "reason", msg)
	writeJSONError(w, status, code, msg)
}

// ReadAuthToken reads the token file of serve --ecs. It must be a regular
// file of this user that no one else can read (the token is the only thing between a caller
// and the role's credentials), non-empty, and free of CR and LF: the SDKs
// send the file verbatim and refuse a token containing either, so a
// trailing newline from `echo` would lock every client out.
func ReadAuthToken(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth token file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("auth token file: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("auth token file %s: not a regular file", path)
	case !ok || int(st.Uid) != os.Geteuid():
		// Its owner can read and replace the token whatever the mode.
		return nil, fmt.Errorf("auth token file %s: owned by another user; it must belong to the user serve runs as (uid %d)", path, os.Geteuid())
	case fi.Mode().Perm()&0o077 != 0:
		return nil, fmt.Errorf("auth token file %s: mode %04o lets others read it; chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxAuthTokenBytes+1))
	if err != nil {
		return nil, fmt.Errorf("auth token file: %w", err)
	}
	switch {
	case len(b) == 0:
		return nil, fmt.Errorf("auth token file %s is empty", path)
	case len(b) > maxAuthTokenBytes:
		return nil, fmt.Errorf("auth token file %s: longer than %d bytes", path, maxAuthTokenBytes)
	case bytes.ContainsAny(b, "\r\n"):
		return nil, fmt.Errorf("auth token file %s contains a newline, which the AWS SDKs refuse to send; write it without one (printf '%%s' TOKEN)", path)
	}
	return b, nil
}

// ErrNonLoopback is returned for a serve address off this host without
// the explicit opt-in.
var ErrNonLoopback = errors.New("not a loopback address")

// CheckServeAddress accepts host:port on a loopback address (127.0.0.0/8,
// ::1, localhost) and, only with allowNonLoopback, anything else: whoever
// can reach the port gets the role's credentials.
func CheckServeAddress(addr string, allowNonLoopback bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid address %q: want HOST:PORT, e.g. 127.0.0.1:9911", addr)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("invalid address %q: bad port", addr)
	}
	if allowNonLoopback || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%s is %w: anyone who can reach it gets the role's credentials; pass --allow-non-loopback if you mean it (and prefer --ecs with a token)", addr, ErrNonLoopback)
}
