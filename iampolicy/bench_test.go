package iampolicy

import (
	"fmt"
	"strings"
	"testing"
)

// bigPolicy builds an identity policy of n statements across services, each
// with a few actions, two resources and a condition: larger than any single
// policy IAM stores (managed policies are capped at 6,144 characters).
func bigPolicy(tb testing.TB, n int) *Policy {
	services := []string{"s3", "ec2", "iam", "sqs", "sns", "kms", "lambda", "dynamodb", "logs", "cloudwatch", "ssm", "secretsmanager"}
	var stmts []string
	for i := 0; i < n; i++ {
		svc := services[i%len(services)]
		stmts = append(stmts, fmt.Sprintf(`{"Sid":"S%d","Effect":"Allow","Action":["%s:Get*","%s:List*","%s:Put%dThing","%s:Describe*"],
			"Resource":["arn:aws:%s:us-east-1:111122223333:thing/%d/*","arn:aws:%s:*:111122223333:other-%d"],
			"Condition":{"StringEquals":{"aws:PrincipalTag/team":"t%d"}}}`, i, svc, svc, svc, i, svc, svc, i, svc, i, i))
	}
	stmts = append(stmts, `{"Effect":"Deny","Action":"iam:*","Resource":"*"}`)
	return mustParse(tb, `{"Version":"2012-10-17","Statement":[`+strings.Join(stmts, ",")+`]}`)
}

func BenchmarkEvaluateTrust(b *testing.B) {
	p := mustParse(b, rolesAnywhereTrust)
	r := Request{Principal: rolesAnywhere, Action: "sts:AssumeRole", Context: map[string][]string{
		"aws:PrincipalTag/x509Subject/CN": {"web-01"}, "aws:SourceArn": {anchorARN}}}
	for b.Loop() {
		if p.Evaluate(r) != Allow {
			b.Fatal("denied")
		}
	}
}

func BenchmarkClassifyBig(b *testing.B) {
	e := Effective{Identity: []*Policy{bigPolicy(b, 60)}}
	for b.Loop() {
		Classify(e)
	}
}

func TestClassifyLargeInputIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	e := Effective{Identity: []*Policy{bigPolicy(t, 200)}}
	s := Classify(e)
	if s.AdminEquivalent || !s.Read || !s.Write || !s.Conditional {
		t.Errorf("%+v", s)
	}
}
