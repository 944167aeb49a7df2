package localaws

import (
	"net/url"
	"testing"
)

// Fuzz targets for the parsers of untrusted input: they must never panic,
// and what they accept must be self-consistent.

func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-X509-ECDSA-SHA256 Credential=112943600045244981071365726556514916412/20261123/us-east-1/rolesanywhere/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-x509, Signature=3044")
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20261123/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e,Credential=a/b/c/d/e")
	f.Fuzz(func(t *testing.T, v string) {
		a, err := parseAuthorization(v)
		if err != nil {
			return
		}
		if a.Algorithm == "" || len(a.Signature) == 0 || len(a.SignedHeaders) == 0 {
			t.Fatalf("accepted incomplete header %q: %+v", v, a)
		}
		for i := 1; i < len(a.SignedHeaders); i++ {
			if a.SignedHeaders[i-1] >= a.SignedHeaders[i] {
				t.Fatalf("accepted unsorted signed headers %q", v)
			}
		}
	})
}

func FuzzCanonicalQuery(f *testing.F) {
	f.Add("profileArn=arn%3Aaws%3Arolesanywhere&roleArn=x&trustAnchorArn=y")
	f.Add("a=1&a=0&b=%20+&c")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := canonicalQuery(raw)
		if err != nil {
			return
		}
		// The canonical form is a fixed point: canonicalising it again
		// must not change it.
		again, err := canonicalQuery(q)
		if err != nil || again != q {
			t.Fatalf("canonicalQuery(%q) = %q, then %q (%v)", raw, q, again, err)
		}
	})
}

func FuzzParseSessionParams(f *testing.F) {
	f.Add("profileArn=arn%3Aaws%3Arolesanywhere%3Aus-east-1%3A123456789012%3Aprofile%2Fx", `{"durationSeconds":900}`)
	f.Add("", `{"durationSeconds":3600,"roleSessionName":"vector-session","instanceProperties":{"a":"b"}}`)
	f.Fuzz(func(t *testing.T, rawQuery, body string) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		p, apiErr := parseSessionParams(q, []byte(body))
		if apiErr == nil && (p.ProfileArn == "" || p.RoleArn == "" || p.TrustAnchorArn == "") {
			t.Fatalf("accepted parameters without ARNs: %+v", p)
		}
	})
}

// FuzzIAMActions runs an IAM form (what follows a verified signature)
// through the action's parameter check and handler on a fresh server with
// one role and one policy: no input may panic, and every refusal is an
// IAM-shaped error.
func FuzzIAMActions(f *testing.F) {
	f.Add("Action=CreateRole&Version=2010-05-08&RoleName=r2&AssumeRolePolicyDocument=%7B%7D&Tags.member.1.Key=k&Tags.member.1.Value=v")
	f.Add("Action=PutRolePolicy&Version=2010-05-08&RoleName=r&PolicyName=p&PolicyDocument=%7B%22Statement%22%3A%5B%5D%7D")
	f.Add("Action=ListRoles&Version=2010-05-08&MaxItems=1&Marker=MQ")
	f.Add("Action=AttachRolePolicy&Version=2010-05-08&RoleName=r&PolicyArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Apolicy%2Fp")
	f.Add("Action=ListAttachedRolePolicies&Version=2010-05-08&RoleName=R&PathPrefix=%2F")
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		action, ok := iamActions[form.Get("Action")]
		if !ok {
			return
		}
		s, err := New(Config{AccessKeyID: testAdminKey, SecretAccessKey: testAdminSecret, RateLimits: NoRateLimits})
		if err != nil {
			t.Fatal(err)
		}
		acct := s.st.account(defaultAccount)
		acct.Roles["r"] = &iamRole{Name: "r", ID: "AROAFUZZ", Path: "/", MaxSessionDuration: 3600, TrustPolicy: rolesAnywhereTrustPolicy,
			InlinePolicies: map[string]string{}, Attached: []string{}}
		acct.Policies["p"] = &managedPolicy{Name: "p", ID: "ANPAFUZZ", Path: "/", Document: testPermissions}
		if e := checkIAMParams(form, action.params); e != nil {
			return
		}
		_, e := action.handler(s, &iamCall{caller: &principal{AccessKeyID: testAdminKey, Account: defaultAccount}, acct: acct, form: form, now: s.now()})
		if e != nil && (e.Code == "" || e.Status < 400 || e.Status >= 500) {
			t.Fatalf("refusal %+v is not a client error", e)
		}
	})
}
