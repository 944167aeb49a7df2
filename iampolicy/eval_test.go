package iampolicy

import (
	"errors"
	"testing"
)

const anchorARN = "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"

// The trust policy the Roles Anywhere user guide recommends, conditioned on
// the certificate's subject CN and on the trust anchor.
const rolesAnywhereTrust = `{
  "Version": "2012-10-17",
  "Statement": [{
    "Sid": "RolesAnywhere",
    "Effect": "Allow",
    "Principal": {"Service": "rolesanywhere.amazonaws.com"},
    "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
    "Condition": {
      "StringEquals": {"aws:PrincipalTag/x509Subject/CN": "web-01"},
      "ArnEquals": {"aws:SourceArn": "` + anchorARN + `"}
    }
  }]
}`

func mustParse(t testing.TB, doc string) *Policy {
	t.Helper()
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, doc)
	}
	return p
}

var rolesAnywhere = map[string][]string{PrincipalService: {"rolesanywhere.amazonaws.com"}}

func TestRolesAnywhereTrustPolicy(t *testing.T) {
	p, err := ParseAs([]byte(rolesAnywhereTrust), KindTrust)
	if err != nil {
		t.Fatal(err)
	}
	good := map[string][]string{
		"aws:PrincipalTag/x509Subject/CN": {"web-01"},
		"aws:SourceArn":                   {anchorARN},
	}
	with := func(k string, v []string) map[string][]string {
		m := map[string][]string{}
		for kk, vv := range good {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name      string
		principal map[string][]string
		action    string
		ctx       map[string][]string
		want      Decision
	}{
		{"assume", rolesAnywhere, "sts:AssumeRole", good, Allow},
		{"tag session", rolesAnywhere, "sts:TagSession", good, Allow},
		{"source identity", rolesAnywhere, "sts:SetSourceIdentity", good, Allow},
		{"action case-insensitive", rolesAnywhere, "STS:assumerole", good, Allow},
		{"service principal case-insensitive", map[string][]string{"Service": {"RolesAnywhere.amazonaws.com"}}, "sts:AssumeRole", good, Allow},
		{"keys case-insensitive", rolesAnywhere, "sts:AssumeRole", map[string][]string{
			"AWS:PRINCIPALTAG/X509SUBJECT/CN": {"web-01"}, "aws:sourcearn": {anchorARN}}, Allow},
		{"other CN", rolesAnywhere, "sts:AssumeRole", with("aws:PrincipalTag/x509Subject/CN", []string{"web-02"}), ImplicitDeny},
		{"CN values case-sensitive", rolesAnywhere, "sts:AssumeRole", with("aws:PrincipalTag/x509Subject/CN", []string{"WEB-01"}), ImplicitDeny},
		{"CN not mapped", rolesAnywhere, "sts:AssumeRole", with("aws:PrincipalTag/x509Subject/CN", nil), ImplicitDeny},
		{"other anchor", rolesAnywhere, "sts:AssumeRole", with("aws:SourceArn", []string{anchorARN + "x"}), ImplicitDeny},
		{"no source arn", rolesAnywhere, "sts:AssumeRole", with("aws:SourceArn", nil), ImplicitDeny},
		{"other service", map[string][]string{"Service": {"ec2.amazonaws.com"}}, "sts:AssumeRole", good, ImplicitDeny},
		{"an AWS principal", map[string][]string{"AWS": {"arn:aws:iam::111122223333:root"}}, "sts:AssumeRole", good, ImplicitDeny},
		{"anonymous", nil, "sts:AssumeRole", good, ImplicitDeny},
		{"other action", rolesAnywhere, "sts:AssumeRoleWithWebIdentity", good, ImplicitDeny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.Evaluate(Request{Principal: tt.principal, Action: tt.action, Context: tt.ctx})
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := ParseAs([]byte(rolesAnywhereTrust), KindIdentity); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParseAs(KindIdentity) of a trust policy: %v, want ErrMalformed", err)
	}
}

func TestExplicitDenyWins(t *testing.T) {
	allow := mustParse(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}`)
	deny := mustParse(t, `{"Version":"2012-10-17","Statement":[
		{"Effect":"Deny","Action":"s3:DeleteBucket","Resource":"arn:aws:s3:::prod"},
		{"Effect":"Allow","Action":"s3:DeleteBucket","Resource":"arn:aws:s3:::prod"}]}`)
	r := Request{Action: "s3:DeleteBucket", Resource: "arn:aws:s3:::prod"}
	if got := Evaluate(r, allow, deny); got != ExplicitDeny {
		t.Errorf("allow+deny = %v, want ExplicitDeny", got)
	}
	if got := Evaluate(r, deny, allow); got != ExplicitDeny {
		t.Errorf("deny+allow = %v, want ExplicitDeny", got)
	}
	r.Resource = "arn:aws:s3:::dev"
	if got := Evaluate(r, allow, deny); got != Allow {
		t.Errorf("other bucket = %v, want Allow", got)
	}
	if got := Evaluate(Request{Action: "ec2:RunInstances", Resource: "*"}, allow, deny); got != ImplicitDeny {
		t.Errorf("other service = %v, want ImplicitDeny", got)
	}
	if got := Evaluate(r); got != ImplicitDeny {
		t.Errorf("no policies = %v", got)
	}
	if got := Evaluate(r, nil, allow); got != Allow {
		t.Errorf("nil policy skipped = %v", got)
	}
}

func TestActionMatching(t *testing.T) {
	tests := []struct {
		pattern, action string
		want            bool
	}{
		{"*", "s3:GetObject", true},
		{"s3:*", "s3:GetObject", true},
		{"s3:*", "S3:getobject", true},
		{"s3:Get*", "s3:GetObject", true},
		{"s3:Get*", "s3:PutObject", false},
		{"s3:*Object", "s3:GetObject", true},
		{"s3:*Object", "s3:GetObjectAcl", false},
		{"s3:Get?bject", "s3:GetObject", true},
		{"s3:Get?bject", "s3:GetOObject", false},
		{"iam:*Policy*", "iam:PutRolePolicy", true},
		{"iam:*Policy*", "iam:PassRole", false},
		{"sts:AssumeRole", "sts:AssumeRole", true},
		{"sts:AssumeRole", "sts:AssumeRoleWithSAML", false},
		{"s3:GetObject", "s3-object-lambda:GetObject", false},
		{"s3:*", "s3express:CreateSession", false},
	}
	for _, tt := range tests {
		if got := matchAction(tt.pattern, tt.action); got != tt.want {
			t.Errorf("matchAction(%q, %q) = %v, want %v", tt.pattern, tt.action, got, tt.want)
		}
	}
}

func TestResourceMatching(t *testing.T) {
	tests := []struct {
		pattern, resource string
		want              bool
	}{
		{"*", "arn:aws:s3:::b", true},
		{"*", "", true},
		{"arn:aws:s3:::b", "arn:aws:s3:::b", true},
		{"arn:aws:s3:::b", "arn:aws:s3:::B", false}, // case-sensitive
		{"arn:aws:s3:::b/*", "arn:aws:s3:::b/x/y.txt", true},
		{"arn:aws:s3:::b/*", "arn:aws:s3:::b", false},
		{"arn:aws:s3:::b?", "arn:aws:s3:::b1", true},
		{"arn:aws:s3:::b?", "arn:aws:s3:::b12", false},
		{"arn:aws:iam::*:role/x", "arn:aws:iam::111122223333:role/x", true},
		{"arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:us-east-1:111122223333:instance/i-1", true},
		{"arn:aws:ec2:*", "arn:aws:ec2:us-east-1:111122223333:instance/i-1", true}, // a segment-ending * crosses colons
		{"arn:aws:iam::1:role/a*b", "arn:aws:iam::1:role/a:b", false},              // a mid-segment * does not
		{"arn:aws:iam::1:role/a*b", "arn:aws:iam::1:role/a/x/b", true},
		{"arn:aws:iam::1:role/a?b", "arn:aws:iam::1:role/a:b", false},
		{"arn:aws:s3:::b", "", false},
	}
	for _, tt := range tests {
		if got := matchResource(tt.pattern, tt.resource, nil, true); got != tt.want {
			t.Errorf("matchResource(%q, %q) = %v, want %v", tt.pattern, tt.resource, got, tt.want)
		}
	}
}

func TestNotActionNotResource(t *testing.T) {
	p := mustParse(t, `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","NotAction":["iam:*","organizations:*"],"Resource":"*"},
		{"Effect":"Allow","Action":"s3:*","NotResource":["arn:aws:s3:::secret","arn:aws:s3:::secret/*"]}]}`)
	tests := []struct {
		action, resource string
		want             Decision
	}{
		{"ec2:RunInstances", "*", Allow},
		{"iam:CreateUser", "*", ImplicitDeny},
		{"IAM:CreateUser", "*", ImplicitDeny},
		{"organizations:LeaveOrganization", "*", ImplicitDeny},
		{"s3:GetObject", "arn:aws:s3:::public/x", Allow},
		{"s3:GetObject", "arn:aws:s3:::secret/x", Allow}, // NotAction statement still allows s3
	}
	for _, tt := range tests {
		if got := p.Evaluate(Request{Action: tt.action, Resource: tt.resource}); got != tt.want {
			t.Errorf("%s on %s = %v, want %v", tt.action, tt.resource, got, tt.want)
		}
	}
	q := mustParse(t, `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"s3:*","Resource":"*"},
		{"Effect":"Deny","Action":"s3:*","NotResource":["arn:aws:s3:::mine","arn:aws:s3:::mine/*"]}]}`)
	if got := q.Evaluate(Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::mine/k"}); got != Allow {
		t.Errorf("own bucket = %v", got)
	}
	if got := q.Evaluate(Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::other/k"}); got != ExplicitDeny {
		t.Errorf("other bucket = %v", got)
	}
}

func TestPrincipals(t *testing.T) {
	const acct = "111122223333"
	aws := func(v ...string) map[string][]string { return map[string][]string{"AWS": v} }
	tests := []struct {
		name   string
		policy string // the Principal element
		caller map[string][]string
		want   bool
	}{
		{"star", `"*"`, nil, true},
		{"star any service", `"*"`, rolesAnywhere, true},
		{"AWS star", `{"AWS":"*"}`, rolesAnywhere, true},
		{"AWS star anonymous", `{"AWS":"*"}`, nil, true},
		{"account id = root arn", `{"AWS":"` + acct + `"}`, aws("arn:aws:iam::" + acct + ":root"), true},
		{"root arn = account id", `{"AWS":"arn:aws:iam::` + acct + `:root"}`, aws(acct), true},
		{"account matches its role", `{"AWS":"` + acct + `"}`, aws("arn:aws:iam::" + acct + ":role/r"), true},
		{"account matches its session", `{"AWS":"arn:aws:iam::` + acct + `:root"}`, aws("arn:aws:sts::" + acct + ":assumed-role/r/s"), true},
		{"other account", `{"AWS":"` + acct + `"}`, aws("arn:aws:iam::444455556666:role/r"), false},
		{"other partition", `{"AWS":"arn:aws:iam::` + acct + `:root"}`, aws("arn:aws-cn:iam::" + acct + ":role/r"), false},
		{"role matches its session", `{"AWS":"arn:aws:iam::` + acct + `:role/path/r"}`, aws("arn:aws:sts::" + acct + ":assumed-role/r/s"), true},
		{"role not other session", `{"AWS":"arn:aws:iam::` + acct + `:role/r"}`, aws("arn:aws:sts::" + acct + ":assumed-role/r2/s"), false},
		{"role exact", `{"AWS":["arn:aws:iam::` + acct + `:role/a","arn:aws:iam::` + acct + `:role/r"]}`, aws("arn:aws:iam::" + acct + ":role/r"), true},
		{"role not user", `{"AWS":"arn:aws:iam::` + acct + `:role/r"}`, aws("arn:aws:iam::" + acct + ":user/r"), false},
		{"service array", `{"Service":["ec2.amazonaws.com","rolesanywhere.amazonaws.com"]}`, rolesAnywhere, true},
		{"service not AWS", `{"AWS":"rolesanywhere.amazonaws.com"}`, rolesAnywhere, false},
		{"federated", `{"Federated":"cognito-identity.amazonaws.com"}`, map[string][]string{"Federated": {"cognito-identity.amazonaws.com"}}, true},
		{"anonymous vs account", `{"AWS":"` + acct + `"}`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":`+tt.policy+`,"Action":"sts:AssumeRole"}}`)
			got := p.Evaluate(Request{Principal: tt.caller, Action: "sts:AssumeRole"}) == Allow
			if got != tt.want {
				t.Errorf("Principal %s, caller %v: got %v, want %v", tt.policy, tt.caller, got, tt.want)
			}
			np := mustParse(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"},
				{"Effect":"Deny","NotPrincipal":`+tt.policy+`,"Action":"sts:AssumeRole"}]}`)
			if got := np.Evaluate(Request{Principal: tt.caller, Action: "sts:AssumeRole"}) == ExplicitDeny; got == tt.want {
				t.Errorf("NotPrincipal %s, caller %v: denied = %v, want %v", tt.policy, tt.caller, got, !tt.want)
			}
		})
	}
}

func TestEffective(t *testing.T) {
	identity := mustParse(t, `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["s3:*","ec2:Describe*"],"Resource":"*"},
		{"Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*"}]}`)
	identity2 := mustParse(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sqs:SendMessage","Resource":"*"}}`)
	session := mustParse(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["s3:Get*","s3:DeleteBucket","iam:*"],"Resource":"*"}}`)
	managed := mustParse(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*"}}`)
	sessionDeny := mustParse(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},
		{"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::secret/*"}]}`)
	boundary := mustParse(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}`)

	tests := []struct {
		name             string
		e                Effective
		action, resource string
		want             Decision
	}{
		{"identity only", Effective{Identity: []*Policy{identity}}, "s3:PutObject", "arn:aws:s3:::b/k", Allow},
		{"identity union", Effective{Identity: []*Policy{identity, identity2}}, "sqs:SendMessage", "*", Allow},
		{"identity deny", Effective{Identity: []*Policy{identity}}, "s3:DeleteBucket", "arn:aws:s3:::b", ExplicitDeny},
		{"no identity", Effective{Session: []*Policy{session}}, "s3:GetObject", "*", ImplicitDeny},
		{"intersection allows", Effective{Identity: []*Policy{identity}, Session: []*Policy{session}}, "s3:GetObject", "arn:aws:s3:::b/k", Allow},
		{"session narrows", Effective{Identity: []*Policy{identity}, Session: []*Policy{session}}, "s3:PutObject", "arn:aws:s3:::b/k", ImplicitDeny},
		{"session cannot widen", Effective{Identity: []*Policy{identity}, Session: []*Policy{session}}, "iam:CreateUser", "*", ImplicitDeny},
		{"identity deny beats session allow", Effective{Identity: []*Policy{identity}, Session: []*Policy{session}}, "s3:DeleteBucket", "*", ExplicitDeny},
		{"inline and managed session policies union", Effective{Identity: []*Policy{identity}, Session: []*Policy{session, managed}}, "ec2:DescribeInstances", "*", Allow},
		{"session deny", Effective{Identity: []*Policy{identity}, Session: []*Policy{sessionDeny}}, "s3:GetObject", "arn:aws:s3:::secret/k", ExplicitDeny},
		{"session deny elsewhere", Effective{Identity: []*Policy{identity}, Session: []*Policy{sessionDeny}}, "s3:GetObject", "arn:aws:s3:::open/k", Allow},
		{"boundary allows", Effective{Identity: []*Policy{identity}, Boundary: []*Policy{boundary}}, "s3:GetObject", "*", Allow},
		{"boundary narrows", Effective{Identity: []*Policy{identity}, Boundary: []*Policy{boundary}}, "ec2:DescribeInstances", "*", ImplicitDeny},
		{"nil session entries ignored", Effective{Identity: []*Policy{identity}, Session: []*Policy{nil}}, "ec2:DescribeInstances", "*", Allow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Allows(tt.action, tt.resource, nil); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEffectiveUsesContext(t *testing.T) {
	identity := mustParse(t, `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::home/${aws:PrincipalTag/x509Subject/CN}/*"},
		{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotEquals":{"aws:PrincipalTag/x509Issuer/CN":"anchorage issuing CA"},"Null":{"aws:PrincipalTag/x509Issuer/CN":"false"}}}]}`)
	session := mustParse(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringLike":{"aws:PrincipalTag/x509Subject/OU":"web*"}}}}`)
	e := Effective{Identity: []*Policy{identity}, Session: []*Policy{session}}
	cert := func(cn, ou, issuer string) map[string][]string {
		m := map[string][]string{"aws:PrincipalTag/x509Subject/CN": {cn}, "aws:PrincipalTag/x509Subject/OU": {ou}}
		if issuer != "" {
			m["aws:PrincipalTag/x509Issuer/CN"] = []string{issuer}
		}
		return m
	}
	tests := []struct {
		name     string
		resource string
		ctx      map[string][]string
		want     Decision
	}{
		{"own home", "arn:aws:s3:::home/web-01/a", cert("web-01", "web-frontend", "anchorage issuing CA"), Allow},
		{"no issuer tag (Null false guards the negation)", "arn:aws:s3:::home/web-01/a", cert("web-01", "web", ""), Allow},
		{"other home", "arn:aws:s3:::home/web-02/a", cert("web-01", "web", ""), ImplicitDeny},
		{"session condition fails", "arn:aws:s3:::home/web-01/a", cert("web-01", "db", ""), ImplicitDeny},
		{"other issuer denied", "arn:aws:s3:::home/web-01/a", cert("web-01", "web", "someone else"), ExplicitDeny},
	}
	for _, tt := range tests {
		if got := e.Allows("s3:GetObject", tt.resource, tt.ctx); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
	// IfExists on an absent key is true, so in a Deny it denies.
	ifExists := mustParse(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},
		{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotEqualsIfExists":{"aws:PrincipalTag/x509Issuer/CN":"anchorage issuing CA"}}}]}`)
	if got := (Effective{Identity: []*Policy{ifExists}}).Allows("s3:GetObject", "*", nil); got != ExplicitDeny {
		t.Errorf("Deny with IfExists on an absent key: %v, want ExplicitDeny", got)
	}
}

func TestDecisionString(t *testing.T) {
	for d, want := range map[Decision]string{ImplicitDeny: "ImplicitDeny", Allow: "Allow", ExplicitDeny: "ExplicitDeny", Decision(9): "ImplicitDeny"} {
		if d.String() != want {
			t.Errorf("%d.String() = %q", int(d), d.String())
		}
	}
}
