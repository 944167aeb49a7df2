package localaws

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The AWS CLI against localaws, as an operator uses it: `aws iam ...` and
// `aws rolesanywhere ...` with --endpoint-url. The test runs every distinct
// `aws` it finds — the one on PATH (here possibly a pyenv CLI v1) and
// Debian's /usr/bin/aws (CLI v2, installed by .ci/install-deps) — and fails,
// never skips, when there is none.

// awsCLIs returns the distinct aws executables to test.
func awsCLIs(t *testing.T) []string {
	t.Helper()
	var out []string
	seen := map[string]bool{}
	for _, candidate := range []string{"aws", "/usr/bin/aws"} {
		p, err := exec.LookPath(candidate)
		if err != nil {
			continue
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			real = p
		}
		if !seen[real] {
			seen[real] = true
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Fatal("no aws CLI on PATH or at /usr/bin/aws: run .ci/install-deps (it installs Debian's awscli)")
	}
	return out
}

// awsCLI runs one CLI with an isolated configuration and the given key.
type awsCLI struct {
	bin, endpoint, dir string
	key, secret        string
	dataPath           string // AWS_DATA_PATH, for a CLI that lacks an operation
}

func (c awsCLI) run(t *testing.T, args ...string) []byte {
	t.Helper()
	out, stderr, err := c.exec(args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", c.bin, strings.Join(args, " "), err, out, stderr)
	}
	return out
}

func (c awsCLI) exec(args ...string) ([]byte, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append(args, "--endpoint-url", c.endpoint, "--output", "json")...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "AWS_ACCESS_KEY_ID="+c.key, "AWS_SECRET_ACCESS_KEY="+c.secret,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_REGION=us-east-1", "AWS_PAGER=", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+filepath.Join(c.dir, "no-config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(c.dir, "no-credentials"))
	if c.dataPath != "" {
		cmd.Env = append(cmd.Env, "AWS_DATA_PATH="+c.dataPath)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.Bytes(), stderr.Bytes(), err
}

// hasOperation reports whether the CLI knows `aws service op`.
func (c awsCLI) hasOperation(service, op string) bool {
	_, stderr, err := c.exec(service, op, "help")
	return err == nil || !strings.Contains(string(stderr), "Invalid choice")
}

func TestAWSCLI(t *testing.T) {
	for _, bin := range awsCLIs(t) {
		t.Run(filepath.Base(filepath.Dir(bin))+"/"+filepath.Base(bin), func(t *testing.T) {
			t.Parallel() // each CLI start costs seconds of Python
			testAWSCLI(t, bin)
		})
	}
}

func testAWSCLI(t *testing.T, bin string) {
	const (
		otherAccount = "210987654321"
		otherKey     = "AKIDLOCALAWSOTHER002"
		otherSecret  = "cli/other/secret/not/real/0000000000000"
	)
	_, ts := startServer(t, Config{Accounts: []Account{{ID: otherAccount, AccessKeyID: otherKey, SecretAccessKey: otherSecret}}})
	dir := t.TempDir()
	cli := awsCLI{bin: bin, endpoint: ts.URL, dir: dir, key: testAdminKey, secret: testAdminSecret}
	version, _, _ := cli.exec("--version")
	t.Logf("%s: %s", bin, bytes.TrimSpace(version))
	trustFile := filepath.Join(dir, "trust.json")
	mustOK(t, os.WriteFile(trustFile, []byte(rolesAnywhereTrustPolicy), 0o600))
	permFile := filepath.Join(dir, "perm.json")
	mustOK(t, os.WriteFile(permFile, []byte(testPermissions), 0o600))

	var created struct{ Role struct{ Arn, RoleId string } }
	mustOK(t, json.Unmarshal(cli.run(t, "iam", "create-role", "--role-name", "cli-role", "--assume-role-policy-document", "file://"+trustFile), &created))
	if created.Role.Arn != "arn:aws:iam::123456789012:role/cli-role" || !roleIDRE.MatchString(created.Role.RoleId) {
		t.Errorf("create-role = %+v", created)
	}
	cli.run(t, "iam", "put-role-policy", "--role-name", "cli-role", "--policy-name", "read", "--policy-document", "file://"+permFile)

	// Both CLI generations decode the URL-encoded documents IAM returns
	// into JSON; a wrong encoding shows up as a string or a parse error.
	var got struct {
		Role struct{ AssumeRolePolicyDocument map[string]any }
	}
	mustOK(t, json.Unmarshal(cli.run(t, "iam", "get-role", "--role-name", "cli-role"), &got))
	if stmts, _ := got.Role.AssumeRolePolicyDocument["Statement"].([]any); len(stmts) != 1 {
		t.Errorf("get-role trust policy = %v", got.Role.AssumeRolePolicyDocument)
	}
	var rp struct {
		PolicyDocument map[string]any
	}
	mustOK(t, json.Unmarshal(cli.run(t, "iam", "get-role-policy", "--role-name", "cli-role", "--policy-name", "read"), &rp))
	if rp.PolicyDocument["Version"] != "2012-10-17" {
		t.Errorf("get-role-policy document = %v", rp.PolicyDocument)
	}
	if _, stderr, err := cli.exec("iam", "get-role", "--role-name", "missing"); err == nil || !strings.Contains(string(stderr), "NoSuchEntity") {
		t.Errorf("get-role of a missing role: err %v, stderr %s", err, stderr)
	}

	var prof struct{ Profile struct{ ProfileId string } }
	mustOK(t, json.Unmarshal(cli.run(t, "rolesanywhere", "create-profile", "--name", "cli", "--role-arns", created.Role.Arn, "--enabled"), &prof))
	mapper := cli
	if !cli.hasOperation("rolesanywhere", "put-attribute-mapping") {
		// Debian 12's CLI (2.9.19) predates PutAttributeMapping; give it
		// the operation's model (testdata/awscli-model, written from the
		// service model) the way `aws configure add-model` would.
		abs, err := filepath.Abs("testdata/awscli-model")
		mustOK(t, err)
		mapper.dataPath = abs
		t.Logf("%s has no put-attribute-mapping; using AWS_DATA_PATH=%s", bin, abs)
	}
	var mapped struct {
		Profile struct {
			AttributeMappings []attributeMapping
		}
	}
	mustOK(t, json.Unmarshal(mapper.run(t, "rolesanywhere", "put-attribute-mapping", "--profile-id", prof.Profile.ProfileId,
		"--certificate-field", "x509Subject", "--mapping-rules", "specifier=OU", "specifier=O"), &mapped))
	var subjectRules []string
	for _, m := range mapped.Profile.AttributeMappings {
		if m.CertificateField == fieldSubject {
			for _, r := range m.MappingRules {
				subjectRules = append(subjectRules, r.Specifier)
			}
		}
	}
	if strings.Join(subjectRules, ",") != "OU,O" || len(mapped.Profile.AttributeMappings) != 3 {
		t.Errorf("put-attribute-mapping = %+v", mapped.Profile.AttributeMappings)
	}

	// The second account's key works on its own account.
	other := cli
	other.key, other.secret = otherKey, otherSecret
	var id struct{ Account, Arn string }
	mustOK(t, json.Unmarshal(other.run(t, "sts", "get-caller-identity"), &id))
	if id.Account != otherAccount || id.Arn != "arn:aws:iam::"+otherAccount+":root" {
		t.Errorf("get-caller-identity = %+v", id)
	}
}
