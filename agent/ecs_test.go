package agent_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/anchorage-pki/anchorage/agent"
	"github.com/anchorage-pki/anchorage/internal/testenv"
	"github.com/anchorage-pki/anchorage/rolesanywhere"
)

// sdkEnv points aws-sdk-go-v2 at the container endpoint uri and nothing
// else (t.Setenv restores the environment when t ends).
func sdkEnv(t *testing.T, uri string, env map[string]string) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_REGION", testenv.Region)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri)
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// callerIdentity loads a fresh SDK config (so nothing is cached in the
// SDK) and calls STS GetCallerIdentity at the local endpoint; it returns
// the ARN and the access key the SDK got from the container endpoint.
func callerIdentity(t *testing.T, stsURL string) (arn, keyID string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = awssdk.String(stsURL) }).
		GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", "", err
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return "", "", err
	}
	return awssdk.ToString(out.Arn), creds.AccessKeyID, nil
}

func writeToken(t *testing.T, path string) string {
	t.Helper()
	b := make([]byte, 24)
	rand.Read(b)
	token := hex.EncodeToString(b)
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return token
}

// TestAgentECS runs the real agent in "ecs" mode against a CA issuing
// 6-second certificates and localaws: aws-sdk-go-v2, pointed at it with
// AWS_CONTAINER_CREDENTIALS_FULL_URI and the token, passes STS
// GetCallerIdentity; a wrong or missing token is refused; after the agent
// renews, the credentials come from a new session for the new certificate
// and keep working; a rotated token file is picked up without a restart.
func TestAgentECS(t *testing.T) {
	c := shortCA(t, 6*time.Second)
	aws := testenv.StartAWS(t)
	anchorARN, profileARN := aws.Setup(t, c.CACert(t))
	sessions := func() int64 { return aws.Count("POST", "/sessions") }

	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "ecs-token")
	token := writeToken(t, tokenFile)
	cfg := agent.Config{
		CA: c.URL, Root: filepath.Join(c.Dir, "root.crt"),
		Cert: filepath.Join(dir, "host.crt"), Key: filepath.Join(dir, "host.key"),
		TokenFile: mintToken(t, c, dir, "ecs-agent-host"),
		RetryMin:  agent.Duration(100 * time.Millisecond),
		Credentials: &agent.CredentialsConfig{Mode: "ecs", TrustAnchorARN: anchorARN, ProfileARN: profileARN,
			RoleARN: testenv.RoleARN, Endpoint: aws.URL, SessionDuration: 900,
			Address: "127.0.0.1:0", AuthTokenFile: tokenFile},
	}
	logs := &logBuffer{}
	a, err := agent.New(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var credAddr string
	a.Listening = func(name string, addr net.Addr) {
		if name == "credentials" {
			mu.Lock()
			credAddr = addr.String()
			mu.Unlock()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-runErr:
		case <-time.After(10 * time.Second):
			t.Error("agent did not stop within 10s")
		}
	})
	waitFor(t, "credentials serving", 15*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return credAddr != "" && a.Status().Credentials == "serving"
	})
	mu.Lock()
	uri := "http://" + credAddr + "/v1/credentials"
	mu.Unlock()
	wantArn := regexp.MustCompile(`^arn:aws:sts::123456789012:assumed-role/anchorage-e2e/`)

	tests := []struct {
		name    string
		env     map[string]string
		refusal string // "" passes
	}{
		{"token", map[string]string{"AWS_CONTAINER_AUTHORIZATION_TOKEN": token}, ""},
		{"token file", map[string]string{"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenFile}, ""},
		{"wrong token", map[string]string{"AWS_CONTAINER_AUTHORIZATION_TOKEN": "x" + token}, "AccessDenied"},
		{"no token", nil, "Unauthorized"},
	}
	var firstKey string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sdkEnv(t, uri, tt.env)
			arn, keyID, err := callerIdentity(t, aws.URL)
			if tt.refusal != "" {
				if err == nil || !strings.Contains(err.Error(), tt.refusal) {
					t.Fatalf("got %v (%s), want a refusal %q", err, arn, tt.refusal)
				}
				return
			}
			if err != nil || !wantArn.MatchString(arn) {
				t.Fatalf("GetCallerIdentity: %s %v", arn, err)
			}
			if firstKey == "" {
				firstKey = keyID
			}
		})
	}
	if t.Failed() {
		return
	}

	// The agent renews (6-second certificates, renewed at about 4 s): the
	// next request is answered from a session for the new certificate.
	before, renewals := sessions(), a.Status().Renewals
	waitFor(t, "a renewal", 20*time.Second, func() bool { return a.Status().Renewals > renewals })
	t.Run("after renewal", func(t *testing.T) {
		sdkEnv(t, uri, map[string]string{"AWS_CONTAINER_AUTHORIZATION_TOKEN": token})
		arn, keyID, err := callerIdentity(t, aws.URL)
		if err != nil || !wantArn.MatchString(arn) {
			t.Fatalf("GetCallerIdentity after renewal: %s %v", arn, err)
		}
		if keyID == firstKey || sessions() <= before {
			t.Fatalf("credentials not renewed with the certificate: key %s (first %s), CreateSessions %d → %d", keyID, firstKey, before, sessions())
		}
	})

	// The token file is rotated (replaced by rename): the new token works
	// and the old one is refused, without a restart.
	newToken := writeToken(t, tokenFile)
	for _, tt := range []struct {
		name, token, refusal string
	}{
		{"rotated token", newToken, ""},
		{"retired token", token, "AccessDenied"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sdkEnv(t, uri, map[string]string{"AWS_CONTAINER_AUTHORIZATION_TOKEN": tt.token})
			arn, _, err := callerIdentity(t, aws.URL)
			if tt.refusal != "" {
				if err == nil || !strings.Contains(err.Error(), tt.refusal) {
					t.Fatalf("got %v (%s), want a refusal %q", err, arn, tt.refusal)
				}
				return
			}
			if err != nil || !wantArn.MatchString(arn) {
				t.Fatalf("GetCallerIdentity: %s %v", arn, err)
			}
		})
	}
	// credential-process for the agent's identity asks the agent over its
	// unix socket and makes no CreateSession. (A renewal landing between
	// the two reads of the certificate makes a run miss; hence the tries.)
	t.Run("credential-process over the socket", func(t *testing.T) {
		waitFor(t, "the credential socket", 10*time.Second, func() bool {
			m, _ := filepath.Glob(filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "anchorage", "s-*.sock"))
			return len(m) == 1
		})
		opts := rolesanywhere.Options{
			Client: rolesanywhere.Config{TrustAnchorARN: anchorARN, ProfileARN: profileARN, RoleARN: testenv.RoleARN,
				Endpoint: aws.URL, SessionDuration: 900},
			Source: rolesanywhere.SourceConfig{Certificate: cfg.Cert, PrivateKey: cfg.Key},
		}
		var last string
		for try := 0; try < 3; try++ {
			sdkEnv(t, uri, map[string]string{"AWS_CONTAINER_AUTHORIZATION_TOKEN": newToken})
			_, served, err := callerIdentity(t, aws.URL)
			if err != nil {
				t.Fatal(err)
			}
			before := sessions()
			creds, err := (&rolesanywhere.FileCache{}).Credentials(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			if sessions() == before && creds.AccessKeyID == served {
				return
			}
			last = fmt.Sprintf("%d CreateSession calls, AccessKeyId %s (agent's %s)", sessions()-before, creds.AccessKeyID, served)
		}
		t.Fatalf("credential-process was not answered by the agent: %s", last)
	})
	for _, secret := range []string{token[:12], newToken[:12]} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("the agent logged a token:\n%s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "container credentials request refused") {
		t.Errorf("refusals not logged:\n%s", logs.String())
	}
}

// TestMain keeps the credential sockets the agents under test open (in
// $XDG_RUNTIME_DIR/anchorage) out of the user's directory. The path is
// short: a unix socket path must stay under 108 bytes.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "agt")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_RUNTIME_DIR", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
