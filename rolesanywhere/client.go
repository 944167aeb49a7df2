package rolesanywhere

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"time"
)

// DefaultSessionDuration is what the helper sends when --session-duration is
// not given.
const DefaultSessionDuration = 3600

// defaultMaxAttempts matches the SDK's standard retryer the helper uses.
const defaultMaxAttempts = 3

// maxResponseBytes bounds what we read of a CreateSession answer; a real
// one is a few kilobytes.
const maxResponseBytes = 1 << 20

// ErrNoCredentials is returned when a 2xx answer carries an empty
// credentialSet.
var ErrNoCredentials = errors.New("unable to obtain temporary security credentials from CreateSession")

// Config names the profile, role and trust anchor to use and how to reach
// the service. The zero values of the optional fields give the helper's
// behaviour.
type Config struct {
	TrustAnchorARN string
	ProfileARN     string
	RoleARN        string
	// Region overrides the trust anchor ARN's region for signing and the
	// default endpoint.
	Region string
	// Endpoint replaces the whole base URL; "/sessions" is appended to its
	// path. Default https://rolesanywhere.<region>.amazonaws.com.
	Endpoint string
	// SessionDuration in seconds; 0 means DefaultSessionDuration.
	SessionDuration int
	// RoleSessionName is sent only when non-empty.
	RoleSessionName string
	// InstanceProperties are sent only when non-empty: the service records
	// them on the subject (GetSubject), telling hosts apart.
	InstanceProperties map[string]string
	// NoVerifySSL skips TLS certificate verification (--no-verify-ssl).
	NoVerifySSL bool

	// HTTPClient replaces the default client (TLS ≥ 1.2, proxies from the
	// environment). Tests use it to trust a loopback server.
	HTTPClient *http.Client
	// UserAgent is sent but not signed.
	UserAgent string
	// MaxAttempts bounds tries on 5xx, throttling and transport errors;
	// 0 means 3.
	MaxAttempts int
	// Backoff gives the pause before retry n (1-based); nil means the
	// SDK-like jittered exponential backoff.
	Backoff func(retry int) time.Duration
	// Now is the clock used for X-Amz-Date; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Client calls CreateSession.
type Client struct {
	cfg      Config
	region   string
	endpoint *url.URL
	http     *http.Client
	log      *slog.Logger
}

// NewClient checks the ARNs, resolves region and endpoint and builds the
// HTTP client. Nothing is sent yet.
func NewClient(cfg Config) (*Client, error) {
	if cfg.TrustAnchorARN == "" || cfg.ProfileARN == "" || cfg.RoleARN == "" {
		return nil, errors.New("trust anchor, profile and role ARNs are all required")
	}
	if _, err := ParseARN(cfg.RoleARN); err != nil {
		return nil, fmt.Errorf("failed to parse role arn: %w", err)
	}
	region, partition, err := resolveRegion(cfg.TrustAnchorARN, cfg.ProfileARN, cfg.Region)
	if err != nil {
		return nil, err
	}
	raw := cfg.Endpoint
	if raw == "" {
		raw = defaultEndpoint(region, partition)
	}
	ep, err := url.Parse(raw)
	if err != nil || ep.Host == "" || (ep.Scheme != "https" && ep.Scheme != "http") {
		return nil, fmt.Errorf("invalid endpoint %q: need an http or https URL with a host", raw)
	}
	if cfg.SessionDuration == 0 {
		cfg.SessionDuration = DefaultSessionDuration
	}
	if cfg.SessionDuration < 0 {
		return nil, fmt.Errorf("invalid session duration %d", cfg.SessionDuration)
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = defaultMaxAttempts
	}
	if cfg.Backoff == nil {
		cfg.Backoff = jitterBackoff
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = fmt.Sprintf("anchorage (CredHelper/1.8.0 compatible; %s; %s; %s)",
			runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = newHTTPClient(cfg.NoVerifySSL)
	}
	return &Client{cfg: cfg, region: region, endpoint: ep, http: hc, log: log}, nil
}

// Region is the signing region in use.
func (c *Client) Region() string { return c.region }

// RoleName is the last path element of the role ARN; serve lists it.
func (c *Client) RoleName() string {
	return c.cfg.RoleARN[strings.LastIndex(c.cfg.RoleARN, "/")+1:]
}

func newHTTPClient(noVerify bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// The helper's SDK transport always honours HTTP(S)_PROXY, with or
	// without --with-proxy, so we do as well.
	tr.Proxy = http.ProxyFromEnvironment
	tr.TLSClientConfig = &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: noVerify, //nolint:gosec // only with --no-verify-ssl
	}
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// jitterBackoff is the SDK standard retryer's shape: uniform in
// [0, 2^retry) seconds, capped at 20 s.
func jitterBackoff(retry int) time.Duration {
	limit := time.Duration(1<<min(retry, 5)) * time.Second
	limit = min(limit, 20*time.Second)
	return time.Duration(mrand.Int64N(int64(limit)))
}

// Credentials are temporary AWS credentials.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// Expiration is the service's string, copied verbatim into
	// credential-process output.
	Expiration string
	// Expires is Expiration parsed as RFC 3339; zero if it did not parse.
	Expires time.Time
}

// Session is a successful CreateSession answer (first credential set).
type Session struct {
	Credentials      Credentials
	AssumedRoleARN   string
	AssumedRoleID    string
	RoleARN          string
	SourceIdentity   string
	PackedPolicySize int
	SubjectARN       string
}

// knownCodes are the errors the helper's generated client models; they
// print as "<Code>: <message>", anything else as "api error <Code>: ...".
var knownCodes = map[string]bool{
	"AccessDeniedException":     true,
	"ValidationException":       true,
	"ResourceNotFoundException": true,
}

// APIError is a failed CreateSession. Its text follows the SDK's, which is
// what the helper prints and what people grep their logs for.
type APIError struct {
	StatusCode int
	RequestID  string
	Code       string
	Message    string
	// Attempts made; Exhausted is set when they ran out on a retryable error.
	Attempts  int
	Exhausted bool
	// Err is a transport error (no HTTP answer); StatusCode is then 0.
	Err error
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("operation error RolesAnywhere: CreateSession, ")
	if e.Exhausted {
		fmt.Fprintf(&b, "exceeded maximum number of attempts, %d, ", e.Attempts)
	}
	fmt.Fprintf(&b, "https response error StatusCode: %d, RequestID: %s, ", e.StatusCode, e.RequestID)
	switch {
	case e.Err != nil:
		fmt.Fprintf(&b, "request send failed, %v", e.Err)
	case knownCodes[e.Code]:
		fmt.Fprintf(&b, "%s: %s", e.Code, e.Message)
	default:
		fmt.Fprintf(&b, "api error %s: %s", e.Code, e.Message)
	}
	return b.String()
}

func (e *APIError) Unwrap() error { return e.Err }

// throttleCodes are retried whatever their status, as the SDK does.
var throttleCodes = map[string]bool{
	"Throttling": true, "ThrottlingException": true, "ThrottledException": true,
	"RequestThrottledException": true, "TooManyRequestsException": true,
	"RequestThrottled": true, "RequestLimitExceeded": true, "SlowDown": true,
	"ProvisionedThroughputExceededException": true, "BandwidthLimitExceeded": true,
	"PriorRequestNotComplete": true, "LimitExceededException": true,
}

func (e *APIError) retryable() bool {
	return e.Err != nil || e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests ||
		throttleCodes[e.Code]
}

// CreateSession trades id for temporary credentials. It retries 5xx,
// throttling and transport errors up to MaxAttempts times, re-signing each
// attempt with a fresh date under the same invocation id.
func (c *Client) CreateSession(ctx context.Context, id Identity) (*Session, error) {
	body, err := c.requestBody()
	if err != nil {
		return nil, err
	}
	target := *c.endpoint
	target.Path = strings.TrimSuffix(target.Path, "/") + "/sessions"
	target.RawPath = ""
	target.RawQuery = CanonicalQuery(url.Values{
		"profileArn":     {c.cfg.ProfileARN},
		"roleArn":        {c.cfg.RoleARN},
		"trustAnchorArn": {c.cfg.TrustAnchorARN},
	}.Encode())
	invocationID, err := newUUID()
	if err != nil {
		return nil, err
	}

	var last *APIError
	for attempt := 1; attempt <= c.cfg.MaxAttempts; attempt++ {
		if attempt > 1 {
			if err := sleep(ctx, c.cfg.Backoff(attempt-1)); err != nil {
				return nil, fmt.Errorf("create session: %w (after %v)", err, last)
			}
		}
		sess, apiErr, err := c.attempt(ctx, target.String(), body, id, invocationID, attempt)
		if err != nil {
			return nil, err
		}
		if apiErr == nil {
			return sess, nil
		}
		apiErr.Attempts = attempt
		last = apiErr
		c.log.Debug("CreateSession attempt failed", "attempt", attempt, "status", apiErr.StatusCode,
			"code", apiErr.Code, "request_id", apiErr.RequestID, "err", apiErr.Err)
		if !apiErr.retryable() || ctx.Err() != nil {
			return nil, apiErr
		}
	}
	last.Exhausted = true
	return nil, last
}

// requestBody is compact JSON with the keys in the helper's order.
func (c *Client) requestBody() ([]byte, error) {
	// A struct, not a map, keeps durationSeconds before roleSessionName.
	b, err := json.Marshal(struct {
		DurationSeconds    int               `json:"durationSeconds"`
		InstanceProperties map[string]string `json:"instanceProperties,omitempty"`
		RoleSessionName    string            `json:"roleSessionName,omitempty"`
	}{c.cfg.SessionDuration, c.cfg.InstanceProperties, c.cfg.RoleSessionName})
	if err != nil {
		return nil, fmt.Errorf("encode CreateSession body: %w", err)
	}
	return b, nil
}

// attempt sends one signed request. A non-nil *APIError is a failure the
// caller may retry; a plain error is not retried (bad identity, ctx).
func (c *Client) attempt(ctx context.Context, target string, body []byte, id Identity, invocationID string, n int) (*Session, *APIError, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("create session: build request: %w", err)
	}
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Amz-Sdk-Invocation-Id", invocationID)
	req.Header.Set("Amz-Sdk-Request", fmt.Sprintf("attempt=%d; max=%d", n, c.cfg.MaxAttempts))
	if err := SignRequest(req, body, id, c.region, c.cfg.Now()); err != nil {
		return nil, nil, fmt.Errorf("create session: %w", err)
	}
	c.log.Debug("CreateSession", "attempt", n, "url", target, "serial", id.Certificate.SerialNumber.String())

	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("create session: %w", ctx.Err())
		}
		return nil, &APIError{Err: err}, nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, &APIError{StatusCode: resp.StatusCode, RequestID: resp.Header.Get("X-Amzn-Requestid"), Err: err}, nil
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, parseAPIError(resp, data), nil
	}
	sess, err := parseSession(data)
	if err != nil {
		return nil, nil, err
	}
	return sess, nil, nil
}

// parseAPIError reads a rest-json error the way the SDK does: the code from
// x-amzn-ErrorType (anything after ':' dropped), else __type or code in the
// body; the message from message or Message.
func parseAPIError(resp *http.Response, body []byte) *APIError {
	e := &APIError{StatusCode: resp.StatusCode, RequestID: resp.Header.Get("X-Amzn-Requestid")}
	var doc struct {
		Type     string `json:"__type"`
		Code     string `json:"code"`
		Message  string `json:"message"`
		MessageU string `json:"Message"`
	}
	_ = json.Unmarshal(body, &doc) // a non-JSON body still has a status code
	e.Code = resp.Header.Get("X-Amzn-Errortype")
	if e.Code == "" {
		e.Code = doc.Type
	}
	if e.Code == "" {
		e.Code = doc.Code
	}
	e.Code = sanitizeCode(e.Code)
	e.Message = doc.Message
	if e.Message == "" {
		e.Message = doc.MessageU
	}
	if e.Code == "" {
		e.Code = "UnknownError"
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
	}
	return e
}

// sanitizeCode drops ":<extra>" and a "namespace#" prefix.
func sanitizeCode(code string) string {
	if i := strings.IndexByte(code, ':'); i >= 0 {
		code = code[:i]
	}
	if i := strings.LastIndexByte(code, '#'); i >= 0 {
		code = code[i+1:]
	}
	return strings.TrimSpace(code)
}

// createSessionResponse is §4.1.
type createSessionResponse struct {
	CredentialSet []struct {
		AssumedRoleUser struct {
			ARN           string `json:"arn"`
			AssumedRoleID string `json:"assumedRoleId"`
		} `json:"assumedRoleUser"`
		Credentials struct {
			AccessKeyID     string `json:"accessKeyId"`
			SecretAccessKey string `json:"secretAccessKey"`
			SessionToken    string `json:"sessionToken"`
			Expiration      string `json:"expiration"`
		} `json:"credentials"`
		PackedPolicySize int    `json:"packedPolicySize"`
		RoleARN          string `json:"roleArn"`
		SourceIdentity   string `json:"sourceIdentity"`
	} `json:"credentialSet"`
	SubjectARN string `json:"subjectArn"`
}

func parseSession(data []byte) (*Session, error) {
	var r createSessionResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("create session: decode response: %w", err)
	}
	if len(r.CredentialSet) == 0 {
		return nil, ErrNoCredentials
	}
	cs := r.CredentialSet[0]
	creds := Credentials{
		AccessKeyID:     cs.Credentials.AccessKeyID,
		SecretAccessKey: cs.Credentials.SecretAccessKey,
		SessionToken:    cs.Credentials.SessionToken,
		Expiration:      cs.Credentials.Expiration,
	}
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return nil, fmt.Errorf("%w: credentials are empty", ErrNoCredentials)
	}
	if t, err := time.Parse(time.RFC3339, creds.Expiration); err == nil {
		creds.Expires = t
	}
	return &Session{
		Credentials:      creds,
		AssumedRoleARN:   cs.AssumedRoleUser.ARN,
		AssumedRoleID:    cs.AssumedRoleUser.AssumedRoleID,
		RoleARN:          cs.RoleARN,
		SourceIdentity:   cs.SourceIdentity,
		PackedPolicySize: cs.PackedPolicySize,
		SubjectARN:       r.SubjectARN,
	}, nil
}

// newUUID is a random (version 4) UUID for Amz-Sdk-Invocation-Id.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("invocation id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]), nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
