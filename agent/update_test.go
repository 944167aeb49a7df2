package agent_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/anchorage-pki/anchorage/agent"
	"github.com/anchorage-pki/anchorage/internal/testenv"
)

// TestAgentUpdateMode: in "update" mode the agent keeps a profile of a
// shared credentials file fresh, leaving other profiles alone, and an SDK
// reading that file passes GetCallerIdentity on the local endpoint.
func TestAgentUpdateMode(t *testing.T) {
	c := shortCA(t, time.Hour)
	endpoint := testenv.StartAWS(t)
	anchorARN, profileARN := endpoint.Setup(t, c.CACert(t))
	dir := t.TempDir()
	credFile := filepath.Join(dir, "credentials")
	other := "[other]\naws_access_key_id = AKIDOTHER\naws_secret_access_key = keep-me\n"
	if err := os.WriteFile(credFile, []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := agent.Config{
		CA: c.URL, Root: filepath.Join(c.Dir, "root.crt"),
		Cert: filepath.Join(dir, "host.crt"), Key: filepath.Join(dir, "host.key"),
		TokenFile: mintToken(t, c, dir, "update-host"),
		RetryMin:  agent.Duration(100 * time.Millisecond),
		Credentials: &agent.CredentialsConfig{Mode: "update", TrustAnchorARN: anchorARN, ProfileARN: profileARN,
			RoleARN: testenv.RoleARN, Endpoint: endpoint.URL, SessionDuration: 900,
			Profile: "workload", CredentialsFile: credFile},
	}
	a, err := agent.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.Run(ctx)
	waitFor(t, "the credentials file", 15*time.Second, func() bool {
		b, _ := os.ReadFile(credFile)
		return strings.Contains(string(b), "[workload]") && strings.Contains(string(b), "aws_session_token")
	})
	b, _ := os.ReadFile(credFile)
	if !strings.Contains(string(b), "keep-me") {
		t.Errorf("another profile was lost:\n%s", b)
	}
	if st, err := os.Stat(credFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("credentials file mode %v, %v", st.Mode(), err)
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", credFile)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "no-config"))
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	sdk, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithSharedConfigProfile("workload"), awsconfig.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := sts.NewFromConfig(sdk, func(o *sts.Options) { o.BaseEndpoint = aws.String(endpoint.URL) }).
		GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity with the written profile: %v", err)
	}
	if !strings.Contains(aws.ToString(id.Arn), "assumed-role/anchorage-e2e/") {
		t.Errorf("ARN %s", aws.ToString(id.Arn))
	}
}
