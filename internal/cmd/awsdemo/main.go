// Command awsdemo does the things `make demo` needs from the AWS SDK that
// are not anchorage's job: create the IAM role and the Roles Anywhere
// profile (normally Terraform's or the console's), and call STS
// GetCallerIdentity the way any SDK application would, with credentials
// from a credential_process line.
//
//	awsdemo create-role --endpoint URL --role-name NAME --trust-anchor-arn ARN [--cn CN]   (prints the role ARN)
//	awsdemo create-profile --endpoint URL --role-arn ARN        (prints the profile ARN)
//	awsdemo whoami --endpoint URL --credential-process "CMD"    (prints the caller ARN)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	ra "github.com/aws/aws-sdk-go-v2/service/rolesanywhere"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: awsdemo create-role|create-profile|whoami [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	endpoint := fs.String("endpoint", "", "Roles Anywhere / STS endpoint URL")
	roleARN := fs.String("role-arn", "", "role the profile allows")
	proc := fs.String("credential-process", "", "credential_process command line")
	roleName := fs.String("role-name", "", "IAM role to create")
	anchorARN := fs.String("trust-anchor-arn", "", "the only trust anchor the role's trust policy accepts")
	cn := fs.String("cn", "", "the only certificate subject CN the role's trust policy accepts")
	fs.Parse(os.Args[2:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	if os.Args[1] == "create-role" {
		err = createRole(ctx, *endpoint, *roleName, *anchorARN, *cn)
	} else {
		err = run(ctx, os.Args[1], *endpoint, *roleARN, *proc)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "awsdemo:", err)
		os.Exit(1)
	}
}

// trustPolicy is the role's trust policy: Roles Anywhere may assume it, tag
// the session and set its source identity, but only for certificates that
// came through anchorARN and, with cn, carry that subject CN — the classic
// pairing of aws:SourceArn with aws:PrincipalTag/x509Subject/CN.
func trustPolicy(anchorARN, cn string) string {
	cond := `"ArnEquals":{"aws:SourceArn":` + strconv.Quote(anchorARN) + `}`
	if cn != "" {
		cond += `,"StringEquals":{"aws:PrincipalTag/x509Subject/CN":` + strconv.Quote(cn) + `}`
	}
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",` +
		`"Principal":{"Service":"rolesanywhere.amazonaws.com"},` +
		`"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"],` +
		`"Condition":{` + cond + `}}]}`
}

func createRole(ctx context.Context, endpoint, name, anchorARN, cn string) error {
	if name == "" || anchorARN == "" {
		return fmt.Errorf("create-role needs --role-name and --trust-anchor-arn")
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"))
	if err != nil {
		return err
	}
	out, err := iam.NewFromConfig(cfg, func(o *iam.Options) { o.BaseEndpoint = aws.String(endpoint) }).
		CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trustPolicy(anchorARN, cn))})
	if err != nil {
		return err
	}
	// What the role may do: read one bucket's build artifacts (the audit
	// scores it).
	_, err = iam.NewFromConfig(cfg, func(o *iam.Options) { o.BaseEndpoint = aws.String(endpoint) }).
		PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String("read-artifacts"),
			PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Sid":"ReadArtifacts","Effect":"Allow",` +
				`"Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::demo-artifacts","arn:aws:s3:::demo-artifacts/*"]}]}`)})
	if err != nil {
		return err
	}
	fmt.Println(aws.ToString(out.Role.Arn))
	return nil
}

func run(ctx context.Context, cmd, endpoint, roleARN, proc string) error {
	switch cmd {
	case "create-profile":
		cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"))
		if err != nil {
			return err
		}
		c := ra.NewFromConfig(cfg, func(o *ra.Options) { o.BaseEndpoint = aws.String(endpoint) })
		out, err := c.CreateProfile(ctx, &ra.CreateProfileInput{Name: aws.String("demo"), Enabled: aws.Bool(true),
			RoleArns: []string{roleARN}, DurationSeconds: aws.Int32(3600)})
		if err != nil {
			return err
		}
		fmt.Println(aws.ToString(out.Profile.ProfileArn))
	case "whoami":
		// A real shared config file with a credential_process line, exactly
		// what an application host would have in ~/.aws/config.
		dir, err := os.MkdirTemp("", "awsdemo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		f := filepath.Join(dir, "config")
		if err := os.WriteFile(f, []byte("[profile demo]\nregion = us-east-1\ncredential_process = "+proc+"\n"), 0o600); err != nil {
			return err
		}
		os.Setenv("AWS_CONFIG_FILE", f)
		os.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
		os.Unsetenv("AWS_ACCESS_KEY_ID")
		os.Unsetenv("AWS_SECRET_ACCESS_KEY")
		cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithSharedConfigProfile("demo"))
		if err != nil {
			return err
		}
		out, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(endpoint) }).
			GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return err
		}
		fmt.Printf("Account %s\nArn     %s\nUserId  %s\n", aws.ToString(out.Account), aws.ToString(out.Arn), aws.ToString(out.UserId))
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
	return nil
}
