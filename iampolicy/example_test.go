package iampolicy_test

import (
	"fmt"

	"github.com/anchorage-pki/anchorage/iampolicy"
)

// localaws's CreateSession: the role's trust policy must let Roles Anywhere
// assume the role, tag the session and set the source identity for this
// certificate; then the session's permissions are the role's policies
// intersected with the profile's session policy.
func Example_createSession() {
	trust, err := iampolicy.ParseAs([]byte(`{
	  "Version": "2012-10-17",
	  "Statement": [{
	    "Effect": "Allow",
	    "Principal": {"Service": "rolesanywhere.amazonaws.com"},
	    "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
	    "Condition": {
	      "StringEquals": {"aws:PrincipalTag/x509Subject/CN": "web-01"},
	      "ArnEquals": {"aws:SourceArn": "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/a1"}
	    }
	  }]
	}`), iampolicy.KindTrust)
	if err != nil {
		panic(err)
	}
	cert := map[string][]string{
		"aws:PrincipalTag/x509Subject/CN": {"web-01"},
		"aws:SourceArn":                   {"arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/a1"},
	}
	d, _ := iampolicy.RolesAnywhereTrust(trust, cert)
	fmt.Println("trust:", d)
	d, action := iampolicy.RolesAnywhereTrust(trust, map[string][]string{"aws:PrincipalTag/x509Subject/CN": {"db-01"}})
	fmt.Println("other certificate:", d, action)

	role, _ := iampolicy.ParseAs([]byte(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}`), iampolicy.KindIdentity)
	profile, _ := iampolicy.ParseAs([]byte(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::assets/*"}}`), iampolicy.KindIdentity)
	session := iampolicy.Effective{Identity: []*iampolicy.Policy{role}, Session: []*iampolicy.Policy{profile}}
	fmt.Println("get:", session.Allows("s3:GetObject", "arn:aws:s3:::assets/logo.png", cert))
	fmt.Println("put:", session.Allows("s3:PutObject", "arn:aws:s3:::assets/logo.png", cert))
	// Output:
	// trust: Allow
	// other certificate: ImplicitDeny sts:AssumeRole
	// get: Allow
	// put: ImplicitDeny
}

// anchorage-ca audit: what can a session of this role do, at most?
func ExampleClassify() {
	role, _ := iampolicy.ParseAs([]byte(`{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Action":["iam:PassRole","ec2:RunInstances","ec2:Describe*"],"Resource":"*"},
	  {"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::logs/*",
	   "Condition":{"StringEquals":{"aws:PrincipalTag/x509Subject/OU":"web"}}}]}`), iampolicy.KindIdentity)
	s := iampolicy.Classify(iampolicy.Effective{Identity: []*iampolicy.Policy{role}})
	fmt.Println("services:", s.Services)
	fmt.Println("admin-equivalent:", s.AdminEquivalent)
	for _, e := range s.Escalations {
		fmt.Println("escalation:", e.Actions, "on", e.Resource)
	}
	fmt.Println("write:", s.Write, "conditional:", s.Conditional)
	if g, ok := iampolicy.AllowsAny(iampolicy.Effective{Identity: []*iampolicy.Policy{role}}, "s3:*"); ok {
		fmt.Println("s3 witness:", g.Action, g.Resource, "conditional:", g.Conditional)
	}
	// Output:
	// services: [ec2 iam s3]
	// admin-equivalent: true
	// escalation: [iam:PassRole ec2:RunInstances] on *
	// write: true conditional: true
	// s3 witness: s3:PutObject arn:aws:s3:::logs/ conditional: true
}
