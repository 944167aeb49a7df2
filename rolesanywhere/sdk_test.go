package rolesanywhere

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
)

// TestMain doubles as a credential_process command: when the SDK runs this
// test binary with ANCHORAGE_RA_TEST_HELPER set, it behaves like
// `anchorage credential-process` against ANCHORAGE_RA_TEST_ENDPOINT. That
// keeps the SDK round trip independent of whether cmd/anchorage builds.
func TestMain(m *testing.M) {
	if os.Getenv("ANCHORAGE_RA_TEST_HELPER") == "credential-process" {
		opts := Options{
			Client: Config{
				TrustAnchorARN: vecTrustAnchor,
				ProfileARN:     vecProfile,
				RoleARN:        vecRole,
				Endpoint:       os.Getenv("ANCHORAGE_RA_TEST_ENDPOINT"),
			},
			Source: vectorSource(os.Getenv("ANCHORAGE_RA_TEST_KIND"), false),
		}
		os.Exit(CredentialProcess(context.Background(), opts, os.Stdout, os.Stderr))
	}
	// Built binaries run credential-process with its file cache on: keep
	// it out of the user's directory and away from other runs.
	dir, err := os.MkdirTemp("", "anchorage-test-run-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_RUNTIME_DIR", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// loadProcessConfig loads an SDK config whose only credential source is
// credential_process = command.
func loadProcessConfig(t *testing.T, command string) (context.Context, func() error) {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config")
	os.WriteFile(cfgPath, []byte("[profile ra]\nregion = us-east-1\ncredential_process = "+command+"\n"), 0o600)
	empty := filepath.Join(dir, "credentials")
	os.WriteFile(empty, nil, 0o600)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"} {
		t.Setenv(k, "")
	}
	ctx := context.Background()
	return ctx, func() error {
		cfg, err := config.LoadDefaultConfig(ctx,
			config.WithSharedConfigFiles([]string{cfgPath}),
			config.WithSharedCredentialsFiles([]string{empty}),
			config.WithSharedConfigProfile("ra"))
		if err != nil {
			return err
		}
		creds, err := cfg.Credentials.Retrieve(ctx)
		if err != nil {
			return err
		}
		if creds.AccessKeyID != "ASIATESTFAKE0001" || creds.SessionToken != "token-1" || !creds.CanExpire ||
			time.Until(creds.Expires) < 50*time.Minute {
			return fmt.Errorf("SDK got %+v", creds)
		}
		return nil
	}
}

// TestCredentialProcessWithSDK: the output parses with aws-sdk-go-v2's
// credential_process provider.
func TestCredentialProcessWithSDK(t *testing.T) {
	f := newFakeService(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ANCHORAGE_RA_TEST_HELPER", "credential-process")
	t.Setenv("ANCHORAGE_RA_TEST_ENDPOINT", f.srv.URL)
	t.Setenv("ANCHORAGE_RA_TEST_KIND", "rsa")
	_, retrieve := loadProcessConfig(t, fmt.Sprintf("%q", exe))
	if err := retrieve(); err != nil {
		t.Fatal(err)
	}
	if r := f.requests(); len(r) != 1 || r[0].err != nil {
		t.Errorf("service saw %+v", r)
	}
}

// TestBuiltCommand builds cmd/anchorage and drives its credential-process
// through the SDK and directly (output bytes, error line, exit code).
func TestBuiltCommand(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "anchorage")
	build := exec.Command("go", "build", "-o", bin, "github.com/anchorage-pki/anchorage/cmd/anchorage")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build cmd/anchorage:\n%s", out)
	}
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	f := newFakeService(t)
	args := []string{"credential-process",
		"--certificate", abs(vec("certs", "ec-leaf-cert.pem")),
		"--private-key", abs(vec("certs", "ec-leaf-key.pem")),
		"--intermediates", abs(vec("certs", "ec-int-ca.pem")),
		"--trust-anchor-arn", vecTrustAnchor, "--profile-arn", vecProfile, "--role-arn", vecRole,
		"--endpoint", f.srv.URL,
	}

	_, retrieve := loadProcessConfig(t, fmt.Sprintf("%q %s", bin, strings.Join(args, " ")))
	if err := retrieve(); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, append(args, "--session-duration", "900")...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	if !regexp.MustCompile(`^\{"Version":1,"AccessKeyId":"ASIATESTFAKE0002",.*"Expiration":"[^"]+"\}$`).MatchString(stdout.String()) {
		t.Errorf("stdout %q", stdout.String())
	}
	if r := f.requests(); string(r[1].body) != `{"durationSeconds":900}` || r[1].req.Header.Get("X-Amz-X509-Chain") == "" {
		t.Errorf("request body %s", r[1].body)
	}

	tests := []struct {
		name  string
		extra []string
		want  string
	}{
		{"service error", []string{"--role-session-name", "denied"}, "AccessDeniedException: Untrusted Signing Certificate\n"},
		{"unsupported flag", []string{"--reuse-pin"}, "not supported"},
		{"cert store", []string{"--cert-selector", "Key=x509Subject,Value=x"}, "unable to use cert store signer on linux"},
		{"pkcs11 key", []string{"--private-key", "pkcs11:object=x"}, "names no token"},
	}
	f.mu.Lock() // the binary's earlier requests ran on server goroutines
	f.reply = func(_ int, s seen) (int, http.Header, string) {
		if bytes.Contains(s.body, []byte("denied")) {
			return 403, http.Header{"X-Amzn-Errortype": {"AccessDeniedException"}, "X-Amzn-Requestid": {"rid"}}, `{"message":"Untrusted Signing Certificate"}`
		}
		return 0, nil, ""
	}
	f.mu.Unlock()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, append(append([]string{}, args...), tt.extra...)...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("run: %v", err)
			}
			line := stderr.String()
			if stdout.Len() != 0 || strings.Count(line, "\n") != 1 ||
				!regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d `).MatchString(line) || !strings.Contains(line, tt.want) {
				t.Errorf("stdout %q stderr %q", stdout.String(), line)
			}
		})
	}
}
