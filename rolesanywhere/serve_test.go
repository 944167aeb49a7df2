package rolesanywhere

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine to write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveWait bounds every wait on a Serve under test: starting, stopping
// and each request.
const serveWait = 10 * time.Second

// startServe runs Serve on a random port and returns its base URL.
func startServe(t *testing.T, opts Options) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncBuffer{}
	addrc := make(chan *net.TCPAddr, 1)
	// done is closed, not sent on, so that both the start-up select and
	// the cleanup can see that Serve returned: a Serve that failed at
	// start-up (a missing certificate, say) used to be received here and
	// then waited for again in the cleanup, forever.
	var serveErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		serveErr = Serve(ctx, opts, ServeConfig{Port: 0, Stderr: stderr, Listening: func(a *net.TCPAddr) { addrc <- a }})
	}()
	started := false
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
			if started && serveErr != nil {
				t.Errorf("Serve: %v", serveErr)
			}
		case <-time.After(serveWait):
			t.Errorf("Serve did not return within %v of its context ending", serveWait)
		}
	})
	select {
	case a := <-addrc:
		started = true
		return fmt.Sprintf("http://127.0.0.1:%d", a.Port), stderr
	case <-done:
		t.Fatalf("Serve ended before listening: %v\n%s", serveErr, stderr)
	case <-time.After(serveWait):
		t.Fatalf("Serve did not start within %v\n%s", serveWait, stderr)
	}
	return "", nil
}

type answer struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url string, header map[string]string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: serveWait}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// TestServeTranscript replays ec-serve/imds-transcript.txt.
func TestServeTranscript(t *testing.T) {
	f := newFakeService(t)
	base, stderr := startServe(t, f.options("ec", false))
	port := strings.TrimPrefix(base, "http://127.0.0.1:")
	for _, want := range []string{
		"Local server started on port: " + port + "\n",
		"Make it available to the sdk by running:\n",
		"export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:" + port + "/\n",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d CreateSession calls at start-up, want 1", n)
	}

	tok := do(t, "PUT", base+"/latest/api/token", map[string]string{"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": "300"})
	if tok.status != 200 || len(tok.body) != 100 || !regexp.MustCompile(`^[A-Za-z0-9+/]{100}$`).MatchString(tok.body) ||
		tok.header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds") != "300" || tok.header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("token answer %+v", tok)
	}
	auth := map[string]string{"X-Aws-Ec2-Metadata-Token": tok.body}

	list := do(t, "GET", base+"/latest/meta-data/iam/security-credentials/", auth)
	ttl, _ := strconv.Atoi(list.header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"))
	if list.status != 200 || list.body != "anchorage-vector-role" || ttl < 298 || ttl > 300 {
		t.Errorf("role list %+v", list)
	}

	creds := do(t, "GET", base+"/latest/meta-data/iam/security-credentials/anchorage-vector-role", auth)
	re := regexp.MustCompile(`^\{"AccessKeyId":"ASIATESTFAKE0001","SecretAccessKey":"secret/[0-9a-f]+","Token":"token-1","Code":"Success","Type":"AWS-HMAC","Expiration":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ","LastUpdated":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"\}\n$`)
	if creds.status != 200 || !re.MatchString(creds.body) || creds.header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds") != "" ||
		creds.header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("credentials %+v", creds)
	}

	tests := []struct {
		name, method, path string
		header             map[string]string
		status             int
		body               string
	}{
		{"no token", "GET", "/latest/meta-data/iam/security-credentials/", nil, 401, "no token provided"},
		{"unknown token", "GET", "/latest/meta-data/iam/security-credentials/anchorage-vector-role", map[string]string{"X-Aws-Ec2-Metadata-Token": "x"}, 401, "invalid token provided"},
		{"forwarded", "PUT", "/latest/api/token", map[string]string{"X-Forwarded-For": "10.0.0.1"}, 400, "unable to process requests with X-Forwarded-For header"},
		{"ttl too big", "PUT", "/latest/api/token", map[string]string{"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": "21601"}, 400, "invalid token TTL"},
		{"ttl zero", "PUT", "/latest/api/token/", map[string]string{"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": "0"}, 400, "invalid token TTL"},
		{"wrong method", "GET", "/latest/api/token", nil, 405, ""},
		{"other role", "GET", "/latest/meta-data/iam/security-credentials/other", auth, 404, "404 page not found\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := do(t, tt.method, base+tt.path, tt.header)
			if got.status != tt.status || got.body != tt.body {
				t.Errorf("got %d %q, want %d %q", got.status, got.body, tt.status, tt.body)
			}
		})
	}
	def := do(t, "PUT", base+"/latest/api/token", nil)
	if def.status != 200 || def.header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds") != "21600" {
		t.Errorf("default TTL answer %d %v", def.status, def.header)
	}
	if !strings.Contains(stderr.String(), "Token validation received error: no token provided") {
		t.Errorf("stderr lacks the token error line:\n%s", stderr)
	}
	// Both reads were served from the cache filled at start-up.
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d CreateSession calls, want 1", n)
	}
}

// TestServeWithSDK fetches credentials through the token flow with the AWS
// SDK's own IMDS client and default credential chain.
func TestServeWithSDK(t *testing.T) {
	f := newFakeService(t)
	base, _ := startServe(t, f.options("ec", true))
	ctx, cancel := context.WithTimeout(context.Background(), serveWait)
	defer cancel()

	client := imds.New(imds.Options{Endpoint: base})
	out, err := client.GetMetadata(ctx, &imds.GetMetadataInput{Path: "iam/security-credentials/"})
	if err != nil {
		t.Fatal(err)
	}
	role, _ := io.ReadAll(out.Content)
	if string(role) != "anchorage-vector-role" {
		t.Errorf("role %q", role)
	}

	dir := t.TempDir()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", dir+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", base+"/")
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKeyID != "ASIATESTFAKE0001" || creds.SessionToken != "token-1" || !creds.CanExpire ||
		time.Until(creds.Expires) < 50*time.Minute {
		t.Errorf("SDK credentials %+v", creds)
	}
}

// TestServeRefreshesNearExpiry: with under 10 minutes left every request
// refreshes; a refresh that fails with nothing cached is a 500.
func TestServeRefreshesNearExpiry(t *testing.T) {
	f := newFakeService(t)
	f.ttl = 9 * time.Minute
	base, _ := startServe(t, f.options("ec", false))
	tok := do(t, "PUT", base+"/latest/api/token", nil).body
	auth := map[string]string{"X-Aws-Ec2-Metadata-Token": tok}
	for i := 2; i <= 3; i++ {
		got := do(t, "GET", base+"/latest/meta-data/iam/security-credentials/anchorage-vector-role", auth)
		var doc map[string]string
		json.Unmarshal([]byte(got.body), &doc)
		if want := fmt.Sprintf("ASIATESTFAKE%04d", i); doc["AccessKeyId"] != want {
			t.Errorf("request %d: key %q, want %q", i, doc["AccessKeyId"], want)
		}
	}

	g := newFakeService(t)
	g.reply = func(int, seen) (int, http.Header, string) {
		return 403, http.Header{"X-Amzn-Errortype": {"AccessDeniedException"}}, `{"message":"no"}`
	}
	base, stderr := startServe(t, g.options("ec", false))
	tok = do(t, "PUT", base+"/latest/api/token", nil).body
	got := do(t, "GET", base+"/latest/meta-data/iam/security-credentials/anchorage-vector-role", map[string]string{"X-Aws-Ec2-Metadata-Token": tok})
	if got.status != 500 || strings.Contains(got.body, "AccessKeyId") {
		t.Errorf("failed refresh answered %d %q", got.status, got.body)
	}
	if !strings.Contains(stderr.String(), "AccessDeniedException: no") {
		t.Errorf("stderr lacks the refresh error:\n%s", stderr)
	}
}

func TestTokenStore(t *testing.T) {
	s := NewIMDS(nil, "r", nil, nil)
	now := time.Now()
	s.now = func() time.Time { return now }
	for i := range maxTokens + 10 {
		s.addToken(fmt.Sprint(i), now.Add(time.Duration(i+1)*time.Second))
	}
	if len(s.tokens) != maxTokens {
		t.Fatalf("%d tokens stored, want %d", len(s.tokens), maxTokens)
	}
	for i := range 10 {
		if _, ok := s.tokens[fmt.Sprint(i)]; ok {
			t.Errorf("token %d (earliest expiring) not evicted", i)
		}
	}
	req, _ := http.NewRequest("GET", "/", nil)
	req.Header.Set(tokenHeader, "10")
	if _, err := s.checkToken(req); err != nil {
		t.Errorf("live token refused: %v", err)
	}
	now = now.Add(20 * time.Second)
	if _, err := s.checkToken(req); err != errInvalidToken {
		t.Errorf("expired token: %v", err)
	}
	s.sweep()
	if len(s.tokens) != maxTokens-10 {
		t.Errorf("%d tokens after sweep, want %d", len(s.tokens), maxTokens-10)
	}
}

func TestListenTTL(t *testing.T) {
	tests := []struct {
		addr       string
		ttl        int
		level, opt int
	}{
		{"127.0.0.1:0", 1, syscall.IPPROTO_IP, syscall.IP_TTL},
		{"127.0.0.1:0", 64, syscall.IPPROTO_IP, syscall.IP_TTL},
		{"localhost:0", 1, syscall.IPPROTO_IP, syscall.IP_TTL},
		{"[::1]:0", 1, syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS},
	}
	for _, tt := range tests {
		ttl := tt.ttl
		l, err := ListenTTL(context.Background(), tt.addr, ttl)
		if err != nil {
			t.Fatal(err)
		}
		// A dial that fails would leave Accept waiting; closing the
		// listener ends it.
		stop := time.AfterFunc(serveWait, func() { l.Close() })
		go func() {
			c, err := net.Dial("tcp", l.Addr().String())
			if err == nil {
				time.Sleep(100 * time.Millisecond)
				c.Close()
			}
		}()
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := c.(*net.TCPConn).SyscallConn()
		var got int
		raw.Control(func(fd uintptr) { got, _ = syscall.GetsockoptInt(int(fd), tt.level, tt.opt) })
		if got != ttl {
			t.Errorf("%s: accepted connection TTL %d, want %d", tt.addr, got, ttl)
		}
		stop.Stop()
		c.Close()
		l.Close()
	}
	if _, err := ListenTTL(context.Background(), "127.0.0.1:0", 0); err == nil {
		t.Error("hop limit 0 accepted")
	}
}
