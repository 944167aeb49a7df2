package iampolicy

import (
	"reflect"
	"testing"
)

func identityOf(t *testing.T, docs ...string) []*Policy {
	var out []*Policy
	for _, d := range docs {
		out = append(out, mustParse(t, d))
	}
	return out
}

func stmts(s string) string { return `{"Version":"2012-10-17","Statement":[` + s + `]}` }

func TestClassify(t *testing.T) {
	admin := stmts(`{"Effect":"Allow","Action":"*","Resource":"*"}`)
	tests := []struct {
		name  string
		e     Effective
		check func(t *testing.T, s Summary)
	}{
		{"administrator", Effective{Identity: identityOf(t, admin)}, func(t *testing.T, s Summary) {
			if !s.AllActions || !s.AllResources || !s.AdminEquivalent || !s.Read || !s.Write || !s.Tagging || !s.PermissionsManagement || s.Conditional {
				t.Errorf("%+v", s)
			}
			if len(s.Services) == 0 || s.Services[0] != "*" {
				t.Errorf("Services = %v", s.Services)
			}
			if len(s.Escalations) != len(EscalationActions)+len(PassRoleEscalations) {
				t.Errorf("%d escalations, want every one", len(s.Escalations))
			}
		}},
		{"read-only bucket", Effective{Identity: identityOf(t, stmts(`{"Effect":"Allow","Action":["s3:Get*","s3:List*"],"Resource":["arn:aws:s3:::b","arn:aws:s3:::b/*"]}`))}, func(t *testing.T, s Summary) {
			want := Summary{Services: []string{"s3"}, Read: true}
			if !reflect.DeepEqual(s, want) {
				t.Errorf("got %+v, want %+v", s, want)
			}
		}},
		{"iam star", Effective{Identity: identityOf(t, stmts(`{"Effect":"Allow","Action":"iam:*","Resource":"*"}`))}, func(t *testing.T, s Summary) {
			if s.AllActions || !s.AllResources || !s.AdminEquivalent || !s.PermissionsManagement || !reflect.DeepEqual(s.FullServices, []string{"iam"}) {
				t.Errorf("%+v", s)
			}
		}},
		{"power user (no IAM)", Effective{Identity: identityOf(t, stmts(`{"Effect":"Allow","NotAction":["iam:*","organizations:*"],"Resource":"*"}`))}, func(t *testing.T, s Summary) {
			if !s.AllActions || s.AdminEquivalent || len(s.Escalations) != 0 {
				t.Errorf("%+v", s)
			}
		}},
		{"star with iam denied", Effective{Identity: identityOf(t, admin, stmts(`{"Effect":"Deny","Action":"iam:*","Resource":"*"}`))}, func(t *testing.T, s Summary) {
			if !s.AllActions || s.AdminEquivalent {
				t.Errorf("%+v", s)
			}
		}},
		{"passrole and run instances", Effective{Identity: identityOf(t, stmts(`{"Effect":"Allow","Action":["iam:PassRole","ec2:RunInstances"],"Resource":"*"}`))}, func(t *testing.T, s Summary) {
			if !s.AdminEquivalent || len(s.Escalations) != 1 || !reflect.DeepEqual(s.Escalations[0].Actions, []string{"iam:PassRole", "ec2:RunInstances"}) {
				t.Errorf("%+v", s)
			}
		}},
		{"passrole alone", Effective{Identity: identityOf(t, stmts(`{"Effect":"Allow","Action":"iam:PassRole","Resource":"*"}`))}, func(t *testing.T, s Summary) {
			if s.AdminEquivalent || len(s.Escalations) != 0 || !s.PermissionsManagement || s.Write {
				t.Errorf("%+v", s)
			}
		}},
		{"scoped put role policy", Effective{Identity: identityOf(t, stmts(`{"Effect":"Allow","Action":"iam:PutRolePolicy","Resource":"arn:aws:iam::111122223333:role/app-*"}`))}, func(t *testing.T, s Summary) {
			if s.AdminEquivalent || len(s.Escalations) != 1 {
				t.Fatalf("%+v", s)
			}
			esc := s.Escalations[0]
			if esc.AllResource || !matchResource("arn:aws:iam::111122223333:role/app-*", esc.Resource, nil, false) {
				t.Errorf("escalation %+v", esc)
			}
		}},
		{"session policy narrows admin", Effective{Identity: identityOf(t, admin), Session: identityOf(t, stmts(`{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}`))}, func(t *testing.T, s Summary) {
			want := Summary{Services: []string{"s3"}, Read: true}
			if !reflect.DeepEqual(s, want) {
				t.Errorf("got %+v, want %+v", s, want)
			}
		}},
		{"conditional allow", Effective{Identity: identityOf(t, stmts(`{"Effect":"Allow","Action":"s3:PutObject","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/x509Subject/CN":"web-01"}}}`))}, func(t *testing.T, s Summary) {
			if !s.Conditional || !s.Write || !reflect.DeepEqual(s.Services, []string{"s3"}) {
				t.Errorf("%+v", s)
			}
		}},
		{"conditional deny ignored for the upper bound", Effective{Identity: identityOf(t, stmts(`{"Effect":"Allow","Action":"s3:*","Resource":"*"},
			{"Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}`))}, func(t *testing.T, s Summary) {
			if !reflect.DeepEqual(s.Services, []string{"s3"}) || !reflect.DeepEqual(s.FullServices, []string{"s3"}) {
				t.Errorf("%+v", s)
			}
		}},
		{"nothing", Effective{}, func(t *testing.T, s Summary) {
			if !reflect.DeepEqual(s, Summary{}) {
				t.Errorf("%+v", s)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, Classify(tt.e)) })
	}
}

func TestClassifyContext(t *testing.T) {
	e := Effective{Identity: identityOf(t, stmts(`{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::b/${aws:PrincipalTag/x509Subject/CN}/*","Condition":{"StringEquals":{"aws:PrincipalTag/x509Subject/OU":"web"}}}`))}
	if s := ClassifyContext(e, map[string][]string{"aws:PrincipalTag/x509Subject/OU": {"web"}, "aws:PrincipalTag/x509Subject/CN": {"web-01"}}); !s.Write || s.Conditional {
		t.Errorf("matching certificate: %+v", s)
	}
	if s := ClassifyContext(e, map[string][]string{"aws:PrincipalTag/x509Subject/OU": {"db"}}); s.Write || len(s.Services) != 0 {
		t.Errorf("other certificate: %+v", s)
	}
	if s := Classify(e); !s.Write || !s.Conditional {
		t.Errorf("upper bound: %+v", s)
	}
}

func TestAllowsAny(t *testing.T) {
	e := Effective{
		Identity: identityOf(t, stmts(`{"Effect":"Allow","Action":"s3:Get*","Resource":"*"}`)),
		Session:  identityOf(t, stmts(`{"Effect":"Allow","Action":"s3:*Object","Resource":"arn:aws:s3:::b/*"}`)),
	}
	g, ok := AllowsAny(e, "s3:*")
	if !ok || e.Allows(g.Action, g.Resource, nil) != Allow {
		t.Fatalf("AllowsAny = %+v, %v", g, ok)
	}
	if _, ok := AllowsAny(e, "s3:Put*"); ok {
		t.Errorf("s3:Put* allowed")
	}
	if _, ok := AllowsAny(e, "iam:*"); ok {
		t.Errorf("iam:* allowed")
	}
	if _, ok := e.Find(Query{Action: "s3:GetObject", Resource: "arn:aws:s3:::c/*"}); ok {
		t.Errorf("other bucket allowed")
	}
	if g, ok := e.Find(Query{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/*"}); !ok || g.Action != "s3:GetObject" {
		t.Errorf("Find on bucket = %+v, %v", g, ok)
	}
	if _, ok := e.Find(Query{Action: "s3:GetObject", AllResources: true}); ok {
		t.Errorf("every resource allowed")
	}
	deny := Effective{Identity: identityOf(t, stmts(`{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Deny","Action":"s3:Get*","Resource":"*"}`))}
	if _, ok := AllowsAny(deny, "s3:Get*"); ok {
		t.Errorf("denied s3:Get* allowed")
	}
	if g, ok := AllowsAny(deny, "s3:*"); !ok || matchAction("s3:Get*", g.Action) {
		t.Errorf("AllowsAny(s3:*) with Get denied = %+v, %v", g, ok)
	}
}

func TestActionAccessLevel(t *testing.T) {
	tests := map[string]AccessLevel{
		"s3:GetObject": LevelRead, "ec2:DescribeInstances": LevelRead, "iam:ListRoles": LevelRead,
		"iam:GetRolePolicy": LevelRead, "s3:PutObject": LevelWrite, "ec2:RunInstances": LevelWrite,
		"sts:AssumeRole": LevelWrite, "s3:DeleteBucket": LevelWrite, "ec2:CreateTags": LevelWrite,
		"iam:TagRole": LevelTagging, "s3:PutObjectTagging": LevelTagging, "iam:UntagUser": LevelTagging,
		"iam:PutRolePolicy": LevelPermissionsManagement, "iam:AttachRolePolicy": LevelPermissionsManagement,
		"iam:PassRole": LevelPermissionsManagement, "iam:CreatePolicyVersion": LevelPermissionsManagement,
		"s3:PutBucketPolicy": LevelPermissionsManagement, "kms:CreateGrant": LevelPermissionsManagement,
		"lambda:AddPermission": LevelPermissionsManagement, "s3:PutBucketAcl": LevelPermissionsManagement,
		"IAM:passrole": LevelPermissionsManagement,
	}
	for a, want := range tests {
		if got := ActionAccessLevel(a); got != want {
			t.Errorf("ActionAccessLevel(%q) = %v, want %v", a, got, want)
		}
	}
}
