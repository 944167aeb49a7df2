package iampolicy

import (
	"reflect"
	"testing"
)

func TestRolesAnywhereTrust(t *testing.T) {
	p := mustParse(t, rolesAnywhereTrust)
	good := map[string][]string{"aws:PrincipalTag/x509Subject/CN": {"web-01"}, "aws:SourceArn": {anchorARN}}
	if d, a := RolesAnywhereTrust(p, good); d != Allow || a != "" {
		t.Errorf("good certificate: %v %q", d, a)
	}
	if d, a := RolesAnywhereTrust(p, map[string][]string{"aws:SourceArn": {anchorARN}}); d != ImplicitDeny || a != "sts:AssumeRole" {
		t.Errorf("unmapped CN: %v %q", d, a)
	}
	// A trust policy that forgets sts:SetSourceIdentity fails CreateSession.
	partial := mustParse(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"rolesanywhere.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}}`)
	if d, a := RolesAnywhereTrust(partial, good); d != ImplicitDeny || a != "sts:SetSourceIdentity" {
		t.Errorf("partial: %v %q", d, a)
	}
	deny := mustParse(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"rolesanywhere.amazonaws.com"},"Action":"sts:*"},
		{"Effect":"Deny","Principal":"*","Action":"sts:TagSession","Condition":{"StringEquals":{"aws:PrincipalTag/x509Subject/OU":"contractors"}}}]}`)
	if d, a := RolesAnywhereTrust(deny, map[string][]string{"aws:PrincipalTag/x509Subject/OU": {"contractors"}}); d != ExplicitDeny || a != "sts:TagSession" {
		t.Errorf("deny: %v %q", d, a)
	}
	if d, _ := RolesAnywhereTrust(deny, nil); d != Allow {
		t.Errorf("deny, other OU: %v", d)
	}
}

func TestEvaluateUpperBound(t *testing.T) {
	p := mustParse(t, rolesAnywhereTrust)
	r := Request{Principal: rolesAnywhere, Action: "sts:AssumeRole"}
	if d := p.Evaluate(r); d != ImplicitDeny {
		t.Errorf("exact, no context: %v", d)
	}
	if d := EvaluateUpperBound(r, p); d != Allow {
		t.Errorf("upper bound: %v", d)
	}
	if d := EvaluateUpperBound(Request{Principal: map[string][]string{"Service": {"ec2.amazonaws.com"}}, Action: "sts:AssumeRole"}, p); d != ImplicitDeny {
		t.Errorf("upper bound, other service: %v", d)
	}
	deny := mustParse(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::${aws:username}/*"},
		{"Effect":"Deny","Action":"s3:*","NotResource":"arn:aws:s3:::${aws:username}/*"},
		{"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}]}`)
	if d := EvaluateUpperBound(Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::anyone/k"}, deny); d != Allow {
		t.Errorf("variables open: %v", d)
	}
	if d := EvaluateUpperBound(Request{Action: "s3:DeleteObject", Resource: "arn:aws:s3:::anyone/k"}, deny); d != ExplicitDeny {
		t.Errorf("unconditional deny: %v", d)
	}
}

func TestConditionKeys(t *testing.T) {
	p := mustParse(t, rolesAnywhereTrust)
	if got, want := p.ConditionKeys(), []string{"aws:principaltag/x509subject/cn", "aws:sourcearn"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
