package localaws

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/rolesanywhere"
	"github.com/aws/aws-sdk-go-v2/service/rolesanywhere/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	ra "github.com/anchorage-pki/anchorage/rolesanywhere"
)

// trustDoc builds a one-statement trust policy for the Roles Anywhere
// principal with actions and an optional condition block (JSON).
func trustDoc(effect string, actions []string, condition string) string {
	acts := `"` + strings.Join(actions, `","`) + `"`
	doc := `{"Effect":"` + effect + `","Principal":{"Service":"rolesanywhere.amazonaws.com"},"Action":[` + acts + `]`
	if condition != "" {
		doc += `,"Condition":` + condition
	}
	return doc + `}`
}

var allThree = []string{"sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"}

func policyOf(statements ...string) string {
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(statements, ",") + `]}`
}

// createSession runs a real CreateSession with the product's client (package
// rolesanywhere: AWS4-X509 signing as aws_signing_helper does it).
func createSession(t *testing.T, baseURL, anchorArn, profileArn, roleArn string, leaf *x509.Certificate, key crypto.Signer, chain []*x509.Certificate) (*ra.Session, error) {
	t.Helper()
	c, err := ra.NewClient(ra.Config{TrustAnchorARN: anchorArn, ProfileARN: profileArn, RoleARN: roleArn, Endpoint: baseURL,
		SessionDuration: 900, HTTPClient: testHTTP, MaxAttempts: 1})
	mustOK(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), serverWait)
	defer cancel()
	return c.CreateSession(ctx, ra.Identity{Signer: key, Certificate: leaf, Chain: chain})
}

// TestTrustPolicyEvaluation is the table of trust policies against real
// signed CreateSessions: each row sets the role's trust policy (and maybe the
// profile's attribute mapping) and expects credentials or an
// AccessDeniedException shaped as the real service answers (403,
// x-amzn-ErrorType, {"message": ...}; testdata/rolesanywhere/ec-access-denied).
func TestTrustPolicyEvaluation(t *testing.T) {
	f := newSessionFixture(t)
	ctx := context.Background()
	leaf, key := f.pki.issueLeaf(t, leafOpts{cn: "web-1"}) // O=anchorage-test, CN=web-1, DNS web-1.example.test
	roleName := roleName(testRoleArn)
	other, err := f.ra.CreateTrustAnchor(ctx, &rolesanywhere.CreateTrustAnchorInput{Name: aws.String("other"), Enabled: aws.Bool(true),
		Source: anchorSource(newPKI(t, "other"))})
	mustOK(t, err)
	otherAnchor := aws.ToString(other.TrustAnchor.TrustAnchorArn)
	// A profile role that is not in IAM, and one in another account.
	const ghostRole = "arn:aws:iam::123456789012:role/ghost"
	const foreignRole = "arn:aws:iam::210987654321:role/anchorage-test-role"
	_, err = f.ra.UpdateProfile(ctx, &rolesanywhere.UpdateProfileInput{ProfileId: aws.String(f.profileID),
		RoleArns: []string{testRoleArn, ghostRole, foreignRole}})
	mustOK(t, err)

	cond := func(op, key, value string) string { return `{"` + op + `":{"` + key + `":` + value + `}}` }
	for _, tc := range []struct {
		name    string
		trust   string
		mapping []string // x509Subject specifiers to put first; nil keeps the defaults
		role    string   // default testRoleArn
		allow   bool
	}{
		{"no condition", policyOf(trustDoc("Allow", allThree, "")), nil, "", true},
		{"StringEquals x509Subject/CN", policyOf(trustDoc("Allow", allThree, cond("StringEquals", "aws:PrincipalTag/x509Subject/CN", `"web-1"`))), nil, "", true},
		{"StringEquals x509Subject/CN other", policyOf(trustDoc("Allow", allThree, cond("StringEquals", "aws:PrincipalTag/x509Subject/CN", `"web-2"`))), nil, "", false},
		{"StringLike x509Subject/CN", policyOf(trustDoc("Allow", allThree, cond("StringLike", "aws:PrincipalTag/x509Subject/CN", `"web-*"`))), nil, "", true},
		{"StringLike x509Subject/CN no match", policyOf(trustDoc("Allow", allThree, cond("StringLike", "aws:PrincipalTag/x509Subject/CN", `"db-*"`))), nil, "", false},
		{"StringEquals x509Subject/O", policyOf(trustDoc("Allow", allThree, cond("StringEquals", "aws:PrincipalTag/x509Subject/O", `"anchorage-test"`))), nil, "", true},
		{"StringEquals x509Issuer/CN", policyOf(trustDoc("Allow", allThree, cond("StringEquals", "aws:PrincipalTag/x509Issuer/CN", `"session Issuing CA"`))), nil, "", true},
		{"StringEquals x509SAN/DNS", policyOf(trustDoc("Allow", allThree, cond("StringEquals", "aws:PrincipalTag/x509SAN/DNS", `"web-1.example.test"`))), nil, "", true},
		{"StringEquals x509SAN/DNS other", policyOf(trustDoc("Allow", allThree, cond("StringEquals", "aws:PrincipalTag/x509SAN/DNS", `"web-2.example.test"`))), nil, "", false},
		{"ArnEquals aws:SourceArn right anchor", policyOf(trustDoc("Allow", allThree, cond("ArnEquals", "aws:SourceArn", `"`+f.anchorArn+`"`))), nil, "", true},
		{"ArnEquals aws:SourceArn wrong anchor", policyOf(trustDoc("Allow", allThree, cond("ArnEquals", "aws:SourceArn", `"`+otherAnchor+`"`))), nil, "", false},
		{"StringEquals aws:SourceAccount", policyOf(trustDoc("Allow", allThree, cond("StringEquals", "aws:SourceAccount", `"123456789012"`))), nil, "", true},
		{"StringEquals sts:SourceIdentity", policyOf(trustDoc("Allow", allThree, cond("StringEquals", "sts:SourceIdentity", `"CN=web-1"`))), nil, "", true},
		{"absent tag StringEquals", policyOf(trustDoc("Allow", allThree, cond("StringEquals", "aws:PrincipalTag/x509Subject/OU", `"ops"`))), nil, "", false},
		{"absent tag StringEqualsIfExists", policyOf(trustDoc("Allow", allThree, cond("StringEqualsIfExists", "aws:PrincipalTag/x509Subject/OU", `"ops"`))), nil, "", true},
		{"present tag StringEqualsIfExists mismatch", policyOf(trustDoc("Allow", allThree, cond("StringEqualsIfExists", "aws:PrincipalTag/x509Subject/CN", `"web-2"`))), nil, "", false},
		{"ForAnyValue aws:TagKeys", policyOf(trustDoc("Allow", allThree, cond("ForAnyValue:StringEquals", "aws:TagKeys", `["x509Subject/CN","nothing"]`))), nil, "", true},
		{"ForAnyValue aws:TagKeys none", policyOf(trustDoc("Allow", allThree, cond("ForAnyValue:StringEquals", "aws:TagKeys", `["x509Subject/OU"]`))), nil, "", false},
		{"explicit Deny beats Allow", policyOf(trustDoc("Allow", allThree, ""),
			trustDoc("Deny", []string{"sts:AssumeRole"}, cond("StringEquals", "aws:PrincipalTag/x509Subject/CN", `"web-1"`))), nil, "", false},
		{"Deny not matching", policyOf(trustDoc("Allow", allThree, ""),
			trustDoc("Deny", []string{"sts:AssumeRole"}, cond("StringEquals", "aws:PrincipalTag/x509Subject/CN", `"web-2"`))), nil, "", true},
		{"Deny TagSession only", policyOf(trustDoc("Allow", allThree, ""), trustDoc("Deny", []string{"sts:TagSession"}, "")), nil, "", false},
		{"missing TagSession", policyOf(trustDoc("Allow", []string{"sts:AssumeRole", "sts:SetSourceIdentity"}, "")), nil, "", false},
		{"missing SetSourceIdentity", policyOf(trustDoc("Allow", []string{"sts:AssumeRole", "sts:TagSession"}, "")), nil, "", false},
		{"AssumeRole only", policyOf(trustDoc("Allow", []string{"sts:AssumeRole"}, "")), nil, "", false},
		{"sts:* wildcard", policyOf(trustDoc("Allow", []string{"sts:*"}, "")), nil, "", true},
		{"other service principal", policyOf(strings.Replace(trustDoc("Allow", allThree, ""), "rolesanywhere.amazonaws.com", "ec2.amazonaws.com", 1)), nil, "", false},
		{"role not in IAM", policyOf(trustDoc("Allow", allThree, "")), nil, ghostRole, false},
		{"role in another account", policyOf(trustDoc("Allow", allThree, "")), nil, foreignRole, false},
		{"mapping without CN: CN condition fails", policyOf(trustDoc("Allow", allThree, cond("StringEquals", "aws:PrincipalTag/x509Subject/CN", `"web-1"`))), []string{"O"}, "", false},
		{"mapping without CN: O condition holds", policyOf(trustDoc("Allow", allThree, cond("StringEquals", "aws:PrincipalTag/x509Subject/O", `"anchorage-test"`))), []string{"O"}, "", true},
		{"mapping CN only: O absent", policyOf(trustDoc("Allow", allThree, cond("StringEquals", "aws:PrincipalTag/x509Subject/O", `"anchorage-test"`))), []string{"CN"}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.iam.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(roleName), PolicyDocument: aws.String(tc.trust)})
			mustOK(t, err)
			specs := tc.mapping
			if specs == nil {
				specs = []string{"*"}
			}
			var rules []types.MappingRule
			for _, s := range specs {
				rules = append(rules, types.MappingRule{Specifier: aws.String(s)})
			}
			_, err = f.ra.PutAttributeMapping(ctx, &rolesanywhere.PutAttributeMappingInput{ProfileId: aws.String(f.profileID),
				CertificateField: types.CertificateFieldX509Subject, MappingRules: rules})
			mustOK(t, err)
			role := tc.role
			if role == "" {
				role = testRoleArn
			}
			sess, err := createSession(t, f.ts.URL, f.anchorArn, f.profileArn, role, leaf, key, f.pki.chain())
			if tc.allow {
				if err != nil {
					t.Fatalf("denied: %v", err)
				}
				if sess.SourceIdentity != "CN=web-1" {
					t.Errorf("sourceIdentity = %s", sess.SourceIdentity)
				}
				return
			}
			var apiErr *ra.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden || apiErr.Code != "AccessDeniedException" || apiErr.Message == "" {
				t.Fatalf("got %v (%#v), want 403 AccessDeniedException", err, apiErr)
			}
		})
	}
}

// TestSessionEffectivePolicy: the session's identity is the assumed role in
// STS, and its effective policy is the role's (inline ∪ managed) bounded by
// the profile's session policies.
func TestSessionEffectivePolicy(t *testing.T) {
	f := newSessionFixture(t)
	ctx := context.Background()
	roleName := roleName(testRoleArn)
	const inline = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"*"}]}`
	const managed = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:SendMessage","Resource":"*"}]}`
	const session = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","sqs:*"],"Resource":"*"}]}`
	_, err := f.iam.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(roleName), PolicyName: aws.String("s3"), PolicyDocument: aws.String(inline)})
	mustOK(t, err)
	mp, err := f.iam.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("sqs"), PolicyDocument: aws.String(managed)})
	mustOK(t, err)
	_, err = f.iam.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(roleName), PolicyArn: mp.Policy.Arn})
	mustOK(t, err)
	_, err = f.ra.UpdateProfile(ctx, &rolesanywhere.UpdateProfileInput{ProfileId: aws.String(f.profileID), SessionPolicy: aws.String(session)})
	mustOK(t, err)

	leaf, key := f.pki.issueLeaf(t, leafOpts{})
	sess, err := createSession(t, f.ts.URL, f.anchorArn, f.profileArn, testRoleArn, leaf, key, f.pki.chain())
	mustOK(t, err)
	id, err := stsClient(f.ts.URL, sess.Credentials.AccessKeyID, sess.Credentials.SecretAccessKey, sess.Credentials.SessionToken).
		GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	mustOK(t, err)
	if want := "arn:aws:sts::123456789012:assumed-role/anchorage-test-role/" + serialHex(leaf); aws.ToString(id.Arn) != want {
		t.Errorf("caller = %s, want %s", aws.ToString(id.Arn), want)
	}
	eff, err := f.srv.SessionPolicy(sess.Credentials.AccessKeyID)
	mustOK(t, err)
	for _, tc := range []struct {
		action string
		allow  bool
	}{
		{"s3:GetObject", true},      // role and session allow
		{"s3:PutObject", false},     // role only
		{"sqs:SendMessage", true},   // managed policy and session
		{"sqs:DeleteQueue", false},  // session only
		{"ec2:RunInstances", false}, // neither
	} {
		if got := eff.Allows(tc.action, "arn:aws:s3:::bucket/key", nil).String() == "Allow"; got != tc.allow {
			t.Errorf("%s: allowed = %v, want %v", tc.action, got, tc.allow)
		}
	}
	if _, err := f.srv.SessionPolicy("ASIANOSUCHKEY0000000"); err == nil {
		t.Error("SessionPolicy of an unknown key succeeded")
	}

	// A profile managed policy that does not exist refuses the session.
	_, err = f.ra.UpdateProfile(ctx, &rolesanywhere.UpdateProfileInput{ProfileId: aws.String(f.profileID),
		ManagedPolicyArns: []string{"arn:aws:iam::123456789012:policy/missing"}})
	mustOK(t, err)
	if _, err := createSession(t, f.ts.URL, f.anchorArn, f.profileArn, testRoleArn, leaf, key, f.pki.chain()); err == nil {
		t.Error("session issued with a missing managed session policy")
	}
	// A session policy that does not parse is refused by UpdateProfile.
	_, err = f.ra.UpdateProfile(ctx, &rolesanywhere.UpdateProfileInput{ProfileId: aws.String(f.profileID), SessionPolicy: aws.String(`{"Statement":[]}`)})
	var ve *types.ValidationException
	if !errors.As(err, &ve) {
		t.Errorf("malformed sessionPolicy: %v", err)
	}
}

// TestTrustContextGlobalKeys: the global keys every request carries.
func TestTrustContextGlobalKeys(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	sc := &sessionContext{anchorArn: "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/x", account: "123456789012",
		sessionName: "s", sourceIdentity: "CN=a", tags: map[string]string{"x509Subject/CN": "a"}, now: now}
	ctx := sc.requestContext()
	for key, want := range map[string]string{
		"aws:CurrentTime": "2026-12-01T12:00:00Z", "aws:EpochTime": "1796126400", "aws:PrincipalServiceName": rolesAnywherePrincipal,
		"aws:PrincipalTag/x509Subject/CN": "a", "aws:RequestTag/x509Subject/CN": "a", "aws:TagKeys": "x509Subject/CN",
		"aws:SourceAccount": "123456789012", "sts:SourceIdentity": "CN=a", "sts:RoleSessionName": "s",
	} {
		if got := ctx[key]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %v, want %s", key, got, want)
		}
	}
}

// TestRoleMaxSessionDuration: a session longer than the role allows is
// refused, one within it is issued.
func TestRoleMaxSessionDuration(t *testing.T) {
	f := newSessionFixture(t)
	ctx := context.Background()
	_, err := f.ra.UpdateProfile(ctx, &rolesanywhere.UpdateProfileInput{ProfileId: aws.String(f.profileID), DurationSeconds: aws.Int32(7200)})
	mustOK(t, err)
	leaf, key := f.pki.issueLeaf(t, leafOpts{})
	body := `{"durationSeconds":7200}`
	if status, code, _ := f.call(t, leaf, key, func(c *sessionCall) { c.body = body }); status != http.StatusBadRequest || code != "ValidationException" {
		t.Fatalf("7200 s on a 3600 s role: %d %s", status, code)
	}
	// Recreate the role with a longer maximum (UpdateRole is not modelled).
	_, err = f.iam.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(roleName(testRoleArn))})
	mustOK(t, err)
	_, err = f.iam.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(roleName(testRoleArn)), MaxSessionDuration: aws.Int32(7200),
		AssumeRolePolicyDocument: aws.String(rolesAnywhereTrustPolicy)})
	mustOK(t, err)
	if status, _, resp := f.call(t, leaf, key, func(c *sessionCall) { c.body = body }); status != http.StatusCreated {
		t.Fatalf("7200 s on a 7200 s role: %d %s", status, resp)
	}
}
