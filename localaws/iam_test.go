package localaws

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/rolesanywhere"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

const testPermissions = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/*"}]}`

var (
	roleIDRE   = regexp.MustCompile(`^AROA[A-Z2-7]{17}$`)
	policyIDRE = regexp.MustCompile(`^ANPA[A-Z2-7]{17}$`)
)

// decoded undoes IAM's URL-encoding of a returned policy document.
func decoded(t *testing.T, s *string) string {
	t.Helper()
	out, err := url.QueryUnescape(aws.ToString(s))
	if err != nil {
		t.Fatalf("document %q is not URL-encoded: %v", aws.ToString(s), err)
	}
	if strings.ContainsAny(aws.ToString(s), "{}\" ") {
		t.Errorf("document %q is not URL-encoded", aws.ToString(s))
	}
	return out
}

// TestIAMRoundTrip drives every IAM operation through aws-sdk-go-v2.
func TestIAMRoundTrip(t *testing.T) {
	ctx := context.Background()
	_, ts := startServer(t, Config{})
	c := iamClient(ts.URL, testAdminKey, testAdminSecret)

	cr, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("app"), Path: aws.String("/team/"),
		AssumeRolePolicyDocument: aws.String(rolesAnywhereTrustPolicy), Description: aws.String("the app"),
		MaxSessionDuration: aws.Int32(7200), Tags: []iamtypes.Tag{{Key: aws.String("env"), Value: aws.String("test")}}})
	mustOK(t, err)
	r := cr.Role
	if aws.ToString(r.Arn) != "arn:aws:iam::123456789012:role/team/app" || !roleIDRE.MatchString(aws.ToString(r.RoleId)) ||
		aws.ToString(r.Path) != "/team/" || aws.ToInt32(r.MaxSessionDuration) != 7200 || r.CreateDate == nil ||
		len(r.Tags) != 1 || aws.ToString(r.Tags[0].Value) != "test" {
		t.Errorf("CreateRole = %+v", r)
	}
	if got := decoded(t, r.AssumeRolePolicyDocument); got != rolesAnywhereTrustPolicy {
		t.Errorf("trust policy = %s", got)
	}
	gr, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("APP")}) // names are case-insensitive
	mustOK(t, err)
	if aws.ToString(gr.Role.RoleId) != aws.ToString(r.RoleId) || aws.ToString(gr.Role.Description) != "the app" {
		t.Errorf("GetRole = %+v", gr.Role)
	}
	createRole(t, c, "other", rolesAnywhereTrustPolicy)
	lr, err := c.ListRoles(ctx, &iam.ListRolesInput{MaxItems: aws.Int32(1)})
	mustOK(t, err)
	if len(lr.Roles) != 1 || !lr.IsTruncated || lr.Marker == nil || aws.ToString(lr.Roles[0].RoleName) != "app" {
		t.Fatalf("ListRoles page 1 = %+v", lr)
	}
	lr2, err := c.ListRoles(ctx, &iam.ListRolesInput{Marker: lr.Marker})
	mustOK(t, err)
	if len(lr2.Roles) != 1 || lr2.IsTruncated || aws.ToString(lr2.Roles[0].RoleName) != "other" {
		t.Fatalf("ListRoles page 2 = %+v", lr2)
	}
	lr3, err := c.ListRoles(ctx, &iam.ListRolesInput{PathPrefix: aws.String("/team/")})
	mustOK(t, err)
	if len(lr3.Roles) != 1 {
		t.Errorf("ListRoles /team/ = %d roles", len(lr3.Roles))
	}

	const trust2 = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"rolesanywhere.amazonaws.com"},"Action":"sts:AssumeRole"}}`
	_, err = c.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("app"), PolicyDocument: aws.String(trust2)})
	mustOK(t, err)
	gr, err = c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("app")})
	mustOK(t, err)
	if decoded(t, gr.Role.AssumeRolePolicyDocument) != trust2 {
		t.Error("UpdateAssumeRolePolicy did not take")
	}

	_, err = c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("app"), PolicyName: aws.String("read"), PolicyDocument: aws.String(testPermissions)})
	mustOK(t, err)
	gp, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String("app"), PolicyName: aws.String("read")})
	mustOK(t, err)
	if decoded(t, gp.PolicyDocument) != testPermissions || aws.ToString(gp.RoleName) != "app" {
		t.Errorf("GetRolePolicy = %+v", gp)
	}
	lp, err := c.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String("app")})
	mustOK(t, err)
	if len(lp.PolicyNames) != 1 || lp.PolicyNames[0] != "read" {
		t.Errorf("ListRolePolicies = %v", lp.PolicyNames)
	}

	cp, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("managed"), PolicyDocument: aws.String(testPermissions),
		Description: aws.String("d")})
	mustOK(t, err)
	parn := aws.ToString(cp.Policy.Arn)
	if parn != "arn:aws:iam::123456789012:policy/managed" || !policyIDRE.MatchString(aws.ToString(cp.Policy.PolicyId)) ||
		aws.ToString(cp.Policy.DefaultVersionId) != "v1" || !cp.Policy.IsAttachable {
		t.Errorf("CreatePolicy = %+v", cp.Policy)
	}
	_, err = c.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("app"), PolicyArn: aws.String(parn)})
	mustOK(t, err)
	gpo, err := c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(parn)})
	mustOK(t, err)
	if aws.ToInt32(gpo.Policy.AttachmentCount) != 1 {
		t.Errorf("AttachmentCount = %d", aws.ToInt32(gpo.Policy.AttachmentCount))
	}
	gv, err := c.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(parn), VersionId: aws.String("v1")})
	mustOK(t, err)
	if decoded(t, gv.PolicyVersion.Document) != testPermissions || !gv.PolicyVersion.IsDefaultVersion {
		t.Errorf("GetPolicyVersion = %+v", gv.PolicyVersion)
	}
	lpo, err := c.ListPolicies(ctx, &iam.ListPoliciesInput{Scope: iamtypes.PolicyScopeTypeLocal, OnlyAttached: true})
	mustOK(t, err)
	if len(lpo.Policies) != 1 || aws.ToString(lpo.Policies[0].Arn) != parn {
		t.Errorf("ListPolicies = %+v", lpo.Policies)
	}
	la, err := c.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String("app")})
	mustOK(t, err)
	if len(la.AttachedPolicies) != 1 || aws.ToString(la.AttachedPolicies[0].PolicyArn) != parn || aws.ToString(la.AttachedPolicies[0].PolicyName) != "managed" {
		t.Errorf("ListAttachedRolePolicies = %+v", la.AttachedPolicies)
	}

	// DeleteRole refuses while policies are attached or inline, then works.
	var conflict *iamtypes.DeleteConflictException
	_, err = c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("app")})
	if !errors.As(err, &conflict) {
		t.Fatalf("DeleteRole with policies: %v, want DeleteConflict", err)
	}
	_, err = c.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(parn)})
	if !errors.As(err, &conflict) {
		t.Fatalf("DeletePolicy while attached: %v, want DeleteConflict", err)
	}
	_, err = c.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String("app"), PolicyName: aws.String("read")})
	mustOK(t, err)
	_, err = c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("app")})
	if !errors.As(err, &conflict) {
		t.Fatalf("DeleteRole with an attached policy: %v, want DeleteConflict", err)
	}
	_, err = c.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String("app"), PolicyArn: aws.String(parn)})
	mustOK(t, err)
	_, err = c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("app")})
	mustOK(t, err)
	_, err = c.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(parn)})
	mustOK(t, err)
	var noSuch *iamtypes.NoSuchEntityException
	if _, err = c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("app")}); !errors.As(err, &noSuch) {
		t.Fatalf("GetRole after delete: %v", err)
	}
}

// TestIAMErrors: each refusal parses as the SDK's typed error, with IAM's
// HTTP status.
func TestIAMErrors(t *testing.T) {
	ctx := context.Background()
	_, ts := startServer(t, Config{})
	c := iamClient(ts.URL, testAdminKey, testAdminSecret)
	createRole(t, c, "exists", rolesAnywhereTrustPolicy)
	_, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("p"), PolicyDocument: aws.String(testPermissions)})
	mustOK(t, err)

	var (
		noSuch    *iamtypes.NoSuchEntityException
		exists    *iamtypes.EntityAlreadyExistsException
		malformed *iamtypes.MalformedPolicyDocumentException
		limit     *iamtypes.LimitExceededException
	)
	big := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"rolesanywhere.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:PrincipalTag/x":"` +
		strings.Repeat("a", 2100) + `"}}}]}`
	for _, tc := range []struct {
		name   string
		call   func() error
		target any
		status int
	}{
		{"GetRole missing", func() error {
			_, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("nope")})
			return err
		}, &noSuch, 404},
		{"CreateRole twice (other case)", func() error {
			_, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("EXISTS"), AssumeRolePolicyDocument: aws.String(rolesAnywhereTrustPolicy)})
			return err
		}, &exists, 409},
		{"CreateRole not JSON", func() error {
			_, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("bad"), AssumeRolePolicyDocument: aws.String("{")})
			return err
		}, &malformed, 400},
		{"CreateRole trust policy with Resource", func() error {
			_, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("bad"), AssumeRolePolicyDocument: aws.String(testPermissions)})
			return err
		}, &malformed, 400},
		{"CreateRole trust policy too large", func() error {
			_, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("bad"), AssumeRolePolicyDocument: aws.String(big)})
			return err
		}, &limit, 409},
		{"PutRolePolicy with Principal", func() error {
			_, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("exists"), PolicyName: aws.String("x"), PolicyDocument: aws.String(rolesAnywhereTrustPolicy)})
			return err
		}, &malformed, 400},
		{"PutRolePolicy on missing role", func() error {
			_, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("nope"), PolicyName: aws.String("x"), PolicyDocument: aws.String(testPermissions)})
			return err
		}, &noSuch, 404},
		{"GetRolePolicy missing", func() error {
			_, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String("exists"), PolicyName: aws.String("x")})
			return err
		}, &noSuch, 404},
		{"CreatePolicy twice", func() error {
			_, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("P"), PolicyDocument: aws.String(testPermissions)})
			return err
		}, &exists, 409},
		{"CreatePolicy malformed", func() error {
			_, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("q"), PolicyDocument: aws.String(`{"Statement":[]}`)})
			return err
		}, &malformed, 400},
		{"GetPolicy missing", func() error {
			_, err := c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String("arn:aws:iam::123456789012:policy/none")})
			return err
		}, &noSuch, 404},
		{"GetPolicy of another account", func() error {
			_, err := c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String("arn:aws:iam::210987654321:policy/p")})
			return err
		}, &noSuch, 404},
		{"GetPolicyVersion v2", func() error {
			_, err := c.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String("arn:aws:iam::123456789012:policy/p"), VersionId: aws.String("v2")})
			return err
		}, &noSuch, 404},
		{"AttachRolePolicy missing policy", func() error {
			_, err := c.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("exists"), PolicyArn: aws.String("arn:aws:iam::aws:policy/ReadOnlyAccess")})
			return err
		}, &noSuch, 404},
		{"DetachRolePolicy not attached", func() error {
			_, err := c.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String("exists"), PolicyArn: aws.String("arn:aws:iam::123456789012:policy/p")})
			return err
		}, &noSuch, 404},
		{"DeleteRole missing", func() error {
			_, err := c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("nope")})
			return err
		}, &noSuch, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil || !errors.As(err, tc.target) {
				t.Fatalf("err = %v, want %T", err, tc.target)
			}
			var re interface{ HTTPStatusCode() int }
			if !errors.As(err, &re) || re.HTTPStatusCode() != tc.status {
				t.Errorf("status = %v, want %d", err, tc.status)
			}
		})
	}

	// Wrong region in the scope, unknown key, unknown parameter.
	bad := iam.NewFromConfig(aws.Config{Region: "eu-west-1", HTTPClient: testHTTP, Credentials: c.Options().Credentials},
		func(o *iam.Options) { o.BaseEndpoint = aws.String(ts.URL); o.Retryer = aws.NopRetryer{} })
	_, err = bad.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("exists")})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "SignatureDoesNotMatch" {
		t.Errorf("eu-west-1 scope: %v", err)
	}
	_, err = iamClient(ts.URL, "AKIDUNKNOWN000000000", "x").GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("exists")})
	if !errors.As(err, &api) || api.ErrorCode() != "InvalidClientTokenId" {
		t.Errorf("unknown key: %v", err)
	}
	_, err = c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("pb"), AssumeRolePolicyDocument: aws.String(rolesAnywhereTrustPolicy),
		PermissionsBoundary: aws.String("arn:aws:iam::123456789012:policy/p")})
	if !errors.As(err, &api) || api.ErrorCode() != "InvalidInput" {
		t.Errorf("PermissionsBoundary (not modelled) accepted: %v", err)
	}
}

// TestAccounts: each account's key sees only its own resources, ARNs carry
// the account, and STS names it.
func TestAccounts(t *testing.T) {
	ctx := context.Background()
	const (
		otherAccount = "210987654321"
		otherKey     = "AKIDLOCALAWSOTHER001"
		otherSecret  = "other/account/secret/not/real/000000000"
	)
	_, ts := startServer(t, Config{Accounts: []Account{{ID: otherAccount, AccessKeyID: otherKey, SecretAccessKey: otherSecret}}})
	def := iamClient(ts.URL, testAdminKey, testAdminSecret)
	other := iamClient(ts.URL, otherKey, otherSecret)
	createRole(t, def, "shared-name", rolesAnywhereTrustPolicy)
	out, err := other.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("shared-name"), AssumeRolePolicyDocument: aws.String(rolesAnywhereTrustPolicy)})
	mustOK(t, err)
	if aws.ToString(out.Role.Arn) != "arn:aws:iam::"+otherAccount+":role/shared-name" {
		t.Errorf("other account's role ARN = %s", aws.ToString(out.Role.Arn))
	}
	lr, err := other.ListRoles(ctx, &iam.ListRolesInput{})
	mustOK(t, err)
	if len(lr.Roles) != 1 {
		t.Errorf("other account lists %d roles", len(lr.Roles))
	}
	ta, err := raClient(ts.URL, otherKey, otherSecret, "").CreateTrustAnchor(ctx, &rolesanywhere.CreateTrustAnchorInput{Name: aws.String("o"), Enabled: aws.Bool(true), Source: anchorSource(newPKI(t, "o"))})
	mustOK(t, err)
	if !strings.Contains(aws.ToString(ta.TrustAnchor.TrustAnchorArn), ":"+otherAccount+":trust-anchor/") {
		t.Errorf("anchor ARN = %s", aws.ToString(ta.TrustAnchor.TrustAnchorArn))
	}
	if l, err := raClient(ts.URL, testAdminKey, testAdminSecret, "").ListTrustAnchors(ctx, nil); err != nil || len(l.TrustAnchors) != 0 {
		t.Errorf("default account sees %v (%v)", l, err)
	}
	id, err := stsClient(ts.URL, otherKey, otherSecret, "").GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	mustOK(t, err)
	if aws.ToString(id.Account) != otherAccount || aws.ToString(id.Arn) != "arn:aws:iam::"+otherAccount+":root" {
		t.Errorf("GetCallerIdentity = %+v", id)
	}
	for name, cfg := range map[string]Config{
		"duplicate account": {Accounts: []Account{{ID: "123456789012", AccessKeyID: "K2", SecretAccessKey: "s"}}},
		"duplicate key":     {Accounts: []Account{{ID: otherAccount, AccessKeyID: testAdminKey, SecretAccessKey: "s"}}},
		"bad id":            {Accounts: []Account{{ID: "12", AccessKeyID: "K2", SecretAccessKey: "s"}}},
		"no secret":         {Accounts: []Account{{ID: otherAccount, AccessKeyID: "K2"}}},
	} {
		cfg.AccessKeyID, cfg.SecretAccessKey = testAdminKey, testAdminSecret
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg.Accounts)
		}
	}
}

// TestQuotasPerAccount: AWS's control-plane quotas are per account, so one
// account spending its 1 request/s does not throttle another's call.
func TestQuotasPerAccount(t *testing.T) {
	ctx := context.Background()
	const otherKey, otherSecret = "AKIDLOCALAWSOTHER002", "other/account/secret/not/real/000000001"
	_, ts := startServer(t, Config{
		Accounts:   []Account{{ID: "222222222222", AccessKeyID: otherKey, SecretAccessKey: otherSecret}},
		RateLimits: RateLimits{Subject: 1},
	})
	once := func(o *rolesanywhere.Options) { o.Retryer = aws.NopRetryer{} }
	def := raClient(ts.URL, testAdminKey, testAdminSecret, "", once)
	other := raClient(ts.URL, otherKey, otherSecret, "", once)
	err := withinASecond(t, func() {
		if _, err := def.ListSubjects(ctx, &rolesanywhere.ListSubjectsInput{}); err != nil {
			t.Fatalf("default account, first call: %v", err)
		}
		if _, err := other.ListSubjects(ctx, &rolesanywhere.ListSubjectsInput{}); err != nil {
			t.Fatalf("the other account was throttled by the default account's call: %v", err)
		}
	}, func() error {
		_, err := def.ListSubjects(ctx, &rolesanywhere.ListSubjectsInput{})
		return err
	})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "ThrottlingException" {
		t.Errorf("default account, second call within the second: %v, want ThrottlingException", err)
	}
}
