package rolesanywhere

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestCredentialProcessEndToEnd runs credential-process against a loopback
// service that verifies the signature itself.
func TestCredentialProcessEndToEnd(t *testing.T) {
	tests := []struct {
		name      string
		kind      string
		chain     bool
		duration  int
		session   string
		props     map[string]string
		wantBody  string
		wantChain bool
	}{
		{"ec with chain", "ec", true, 900, "", nil, `{"durationSeconds":900}`, true},
		{"rsa with session name", "rsa", false, 0, "vector-session", nil, `{"durationSeconds":3600,"roleSessionName":"vector-session"}`, false},
		{"instance properties between duration and session name", "ec", false, 900, "s", map[string]string{"host": "web-01"}, `{"durationSeconds":900,"instanceProperties":{"host":"web-01"},"roleSessionName":"s"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeService(t)
			opts := f.options(tt.kind, tt.chain)
			opts.Client.SessionDuration = tt.duration
			opts.Client.RoleSessionName = tt.session
			opts.Client.InstanceProperties = tt.props
			var stdout, stderr bytes.Buffer
			if code := CredentialProcess(context.Background(), opts, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d, stderr %q", code, stderr.String())
			}
			if stderr.Len() != 0 {
				t.Errorf("stderr %q", stderr.String())
			}
			out := stdout.String()
			re := regexp.MustCompile(`^\{"Version":1,"AccessKeyId":"ASIATESTFAKE0001","SecretAccessKey":"secret/[0-9a-f]+","SessionToken":"token-1","Expiration":"[0-9-]+T[0-9:]+Z"\}$`)
			if !re.MatchString(out) {
				t.Errorf("stdout %q does not have the helper's shape", out)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.err != nil {
				t.Fatalf("service rejected the signature: %v", r.err)
			}
			if string(r.body) != tt.wantBody {
				t.Errorf("body %s, want %s", r.body, tt.wantBody)
			}
			wantQuery := "profileArn=arn%3Aaws%3Arolesanywhere%3Aus-east-1%3A123456789012%3Aprofile%2F9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d&roleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fanchorage-vector-role&trustAnchorArn=arn%3Aaws%3Arolesanywhere%3Aus-east-1%3A123456789012%3Atrust-anchor%2F4f0c1d2e-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
			if r.req.URL.Path != "/sessions" || r.req.URL.RawQuery != wantQuery {
				t.Errorf("target %s?%s", r.req.URL.Path, r.req.URL.RawQuery)
			}
			if ct := r.req.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if got := r.req.Header.Get("X-Amz-X509-Chain") != ""; got != tt.wantChain {
				t.Errorf("chain header present = %v, want %v", got, tt.wantChain)
			}
			if !strings.Contains(r.req.Header.Get("Authorization"), "SignedHeaders=amz-sdk-invocation-id;amz-sdk-request;content-type;host;x-amz-date;x-amz-x509") {
				t.Errorf("Authorization %q", r.req.Header.Get("Authorization"))
			}
		})
	}
}

// TestCredentialProcessOutputFormat pins the exact bytes against the capture.
func TestCredentialProcessOutputFormat(t *testing.T) {
	sess, err := parseSession(readFile(t, vec("ec-credential-process", "reply.json")))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := WriteCredentialProcess(&out, sess.Credentials); err != nil {
		t.Fatal(err)
	}
	if want := string(readFile(t, vec("ec-credential-process", "stdout.txt"))); out.String() != want {
		t.Errorf("output\n%s\nwant\n%s", out.String(), want)
	}
	if sess.Credentials.Expires.IsZero() || sess.SourceIdentity != "CN=vector-host" {
		t.Errorf("session %+v", sess)
	}
}

func TestRetry500(t *testing.T) {
	f := newFakeService(t)
	f.reply = func(int, seen) (int, http.Header, string) {
		return 500, http.Header{"X-Amzn-Errortype": {"InternalServerException"}, "X-Amzn-Requestid": {"265362ae"}}, `{"message":"internal"}`
	}
	cfg := f.config()
	// Space the attempts so each gets its own X-Amz-Date second.
	cfg.Backoff = func(int) time.Duration { return 1100 * time.Millisecond }
	client, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.CreateSession(context.Background(), vectorIdentity(t, "ec", false))
	want := "operation error RolesAnywhere: CreateSession, exceeded maximum number of attempts, 3, https response error StatusCode: 500, RequestID: 265362ae, api error InternalServerException: internal"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant %s", err, want)
	}
	reqs := f.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d attempts, want 3", len(reqs))
	}
	dates := map[string]bool{}
	for i, r := range reqs {
		if r.err != nil {
			t.Errorf("attempt %d: bad signature: %v", i+1, r.err)
		}
		if got, want := r.req.Header.Get("Amz-Sdk-Request"), "attempt="+string(rune('1'+i))+"; max=3"; got != want {
			t.Errorf("attempt %d: Amz-Sdk-Request %q, want %q", i+1, got, want)
		}
		if id := r.req.Header.Get("Amz-Sdk-Invocation-Id"); id != reqs[0].req.Header.Get("Amz-Sdk-Invocation-Id") || len(id) != 36 {
			t.Errorf("attempt %d: invocation id %q", i+1, id)
		}
		dates[r.req.Header.Get("X-Amz-Date")] = true
	}
	if len(dates) != 3 {
		t.Errorf("X-Amz-Date not fresh per attempt: %v", dates)
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Code != "InternalServerException" || apiErr.Attempts != 3 {
		t.Errorf("typed error %+v", apiErr)
	}
}

func TestNoRetryOn403(t *testing.T) {
	f := newFakeService(t)
	f.reply = func(int, seen) (int, http.Header, string) {
		return 403, http.Header{"X-Amzn-Errortype": {"AccessDeniedException:http://internal/"}, "X-Amzn-Requestid": {"d6c02da5-872a-45bd-a21d-fb223fee5538"}},
			string(readFile(t, vec("ec-access-denied", "reply.json")))
	}
	var stdout, stderr bytes.Buffer
	code := CredentialProcess(context.Background(), f.options("ec", true), &stdout, &stderr)
	if code != 1 || stdout.Len() != 0 {
		t.Fatalf("exit %d, stdout %q", code, stdout.String())
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
	// stderr is the helper's line: "<date> <time> <error>\n".
	want := string(readFile(t, vec("ec-access-denied", "stderr.txt")))
	wantMsg := want[len("2026/11/23 12:16:17 "):]
	got := stderr.String()
	if !regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d `).MatchString(got) || got[20:] != wantMsg {
		t.Errorf("stderr %q\nwant  %q", got, want)
	}
}

func TestRetryThrottlingThenSuccess(t *testing.T) {
	tests := []struct {
		name   string
		status int
		code   string
	}{
		{"429", 429, "ThrottlingException"},
		{"400 throttling code", 400, "ThrottlingException"},
		{"503", 503, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeService(t)
			f.reply = func(n int, _ seen) (int, http.Header, string) {
				if n == 1 {
					return tt.status, http.Header{}, `{"__type":"` + tt.code + `","message":"slow down"}`
				}
				return 0, nil, ""
			}
			client, err := NewClient(f.config())
			if err != nil {
				t.Fatal(err)
			}
			sess, err := client.CreateSession(context.Background(), vectorIdentity(t, "ec", false))
			if err != nil {
				t.Fatal(err)
			}
			if sess.Credentials.AccessKeyID != "ASIATESTFAKE0002" || len(f.requests()) != 2 {
				t.Errorf("got %q after %d requests", sess.Credentials.AccessKeyID, len(f.requests()))
			}
		})
	}
}

func TestAPIErrorParsing(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		want   string
	}{
		{"header code", 400, http.Header{"X-Amzn-Errortype": {"ValidationException"}, "X-Amzn-Requestid": {"r1"}}, `{"message":"bad duration"}`,
			"operation error RolesAnywhere: CreateSession, https response error StatusCode: 400, RequestID: r1, ValidationException: bad duration"},
		{"body __type with namespace, Message", 404, http.Header{}, `{"__type":"com.amazon#ResourceNotFoundException","Message":"no profile"}`,
			"operation error RolesAnywhere: CreateSession, https response error StatusCode: 404, RequestID: , ResourceNotFoundException: no profile"},
		{"body code", 409, http.Header{}, `{"code":"ConflictException","message":"busy"}`,
			"operation error RolesAnywhere: CreateSession, https response error StatusCode: 409, RequestID: , api error ConflictException: busy"},
		{"no code", 418, http.Header{}, `not json`,
			"operation error RolesAnywhere: CreateSession, https response error StatusCode: 418, RequestID: , api error UnknownError: I'm a teapot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeService(t)
			f.reply = func(int, seen) (int, http.Header, string) { return tt.status, tt.header, tt.body }
			client, err := NewClient(f.config())
			if err != nil {
				t.Fatal(err)
			}
			_, err = client.CreateSession(context.Background(), vectorIdentity(t, "ec", false))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v\nwant  %s", err, tt.want)
			}
			if n := len(f.requests()); n != 1 {
				t.Errorf("%d attempts, want 1", n)
			}
		})
	}
}

func TestEmptyCredentialSet(t *testing.T) {
	f := newFakeService(t)
	f.reply = func(int, seen) (int, http.Header, string) { return 201, http.Header{}, `{"credentialSet":[]}` }
	client, _ := NewClient(f.config())
	_, err := client.CreateSession(context.Background(), vectorIdentity(t, "ec", false))
	if !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("error %v, want ErrNoCredentials", err)
	}
}

// TestEndpointPrefixAndRegion drives the real client through the two
// quirks the captures show.
func TestEndpointPrefixAndRegion(t *testing.T) {
	tests := []struct {
		name       string
		suffix     string
		region     string
		wantPath   string
		wantRegion string
	}{
		{"path prefix", "/prefix/", "", "/prefix/sessions", "us-east-1"},
		{"path prefix without slash", "/prefix", "", "/prefix/sessions", "us-east-1"},
		{"region override", "", "eu-west-1", "/sessions", "eu-west-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeService(t)
			cfg := f.config()
			cfg.Endpoint += tt.suffix
			cfg.Region = tt.region
			client, err := NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := client.CreateSession(context.Background(), vectorIdentity(t, "ec", false)); err != nil {
				t.Fatal(err)
			}
			r := f.requests()[0]
			if r.req.URL.Path != tt.wantPath || r.region != tt.wantRegion {
				t.Errorf("path %s region %s, want %s %s", r.req.URL.Path, r.region, tt.wantPath, tt.wantRegion)
			}
		})
	}
}

func TestNewClientValidation(t *testing.T) {
	euProfile := strings.Replace(vecProfile, "us-east-1", "eu-west-1", 1)
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
		region  string
		url     string
	}{
		{"defaults", Config{TrustAnchorARN: vecTrustAnchor, ProfileARN: vecProfile, RoleARN: vecRole}, "", "us-east-1", "https://rolesanywhere.us-east-1.amazonaws.com"},
		{"override", Config{TrustAnchorARN: vecTrustAnchor, ProfileARN: vecProfile, RoleARN: vecRole, Region: "eu-west-1"}, "", "eu-west-1", "https://rolesanywhere.eu-west-1.amazonaws.com"},
		{"china", Config{TrustAnchorARN: "arn:aws-cn:rolesanywhere:cn-north-1:1:trust-anchor/x", ProfileARN: "arn:aws-cn:rolesanywhere:cn-north-1:1:profile/y", RoleARN: vecRole}, "", "cn-north-1", "https://rolesanywhere.cn-north-1.amazonaws.com.cn"},
		{"mismatch", Config{TrustAnchorARN: vecTrustAnchor, ProfileARN: euProfile, RoleARN: vecRole}, "trust anchor and profile regions don't match", "", ""},
		{"bad anchor", Config{TrustAnchorARN: "nope", ProfileARN: vecProfile, RoleARN: vecRole}, "failed to parse trust anchor arn", "", ""},
		{"bad endpoint", Config{TrustAnchorARN: vecTrustAnchor, ProfileARN: vecProfile, RoleARN: vecRole, Endpoint: "ftp://x"}, "invalid endpoint", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Region() != tt.region || c.endpoint.String() != tt.url || c.RoleName() != "anchorage-vector-role" {
				t.Errorf("region %s endpoint %s role %s", c.Region(), c.endpoint, c.RoleName())
			}
			tr := c.http.Transport.(*http.Transport)
			if tr.TLSClientConfig.MinVersion != 0x0303 || tr.Proxy == nil {
				t.Error("default transport must require TLS 1.2 and honour proxies")
			}
		})
	}
}
