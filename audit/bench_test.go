package audit

import (
	"fmt"
	"testing"

	"crypto/x509"

	"github.com/anchorage-pki/anchorage/internal/pkitest"
)

func ca2(c *x509.Certificate) []*x509.Certificate { return []*x509.Certificate{c} }

// scaleWorld is n certificates and, in each of two accounts, one anchor and
// five profiles of ten roles whose trust policies each admit a tenth of the
// certificates: the shape TestAuditScale seeds at localaws.
func scaleWorld(b *testing.B, n int) *World {
	ca, caKey := pkitest.NewCA(b, "Example Issuing CA")
	w := &World{Now: now, CA: ca2(ca), MaxLifetime: 0, Issued: map[string]bool{}}
	for i := range n {
		c := issue(b, ca, caKey, leaf{serial: int64(0x10000 + i), cn: fmt.Sprintf("node-%04d", i), dns: fmt.Sprintf("node-%04d.example.com", i)})
		w.Certs = append(w.Certs, c)
		w.Issued[c.Serial] = true
	}
	for ai, id := range []string{"111111111111", "222222222222"} {
		anchor := fmt.Sprintf("arn:aws:rolesanywhere:us-east-1:%s:trust-anchor/main", id)
		a := &Account{Name: fmt.Sprintf("acct%d", ai), ID: id, Region: "us-east-1", Roles: map[string]*Role{},
			Anchors: []Anchor{{ARN: anchor, Name: "main", Enabled: true, SourceType: "CERTIFICATE_BUNDLE", Bundle: ca2(ca)}}}
		for p := range 5 {
			prof := Profile{ARN: fmt.Sprintf("arn:aws:rolesanywhere:us-east-1:%s:profile/p%d", id, p), Name: fmt.Sprintf("p%d", p), Enabled: true}
			if p%2 == 0 {
				prof.SessionPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:Get*","ec2:Describe*"],"Resource":"*"}]}`
			}
			for r := range 10 {
				i := p*10 + r
				arn := fmt.Sprintf("arn:aws:iam::%s:role/role-%02d", id, i)
				cond := fmt.Sprintf(`{"StringLike":{"aws:PrincipalTag/x509Subject/CN":"node-%d*"}`, i%10)
				if i%2 == 0 {
					cond += `,"ArnEquals":{"aws:SourceArn":"` + anchor + `"}`
				}
				a.Roles[arn] = &Role{ARN: arn, Name: fmt.Sprintf("role-%02d", i), TrustPolicy: trust(cond + "}"), Policies: []NamedPolicy{
					{Name: "app", Document: fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"Data","Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::bucket-%d/*"},{"Sid":"Queue","Effect":"Allow","Action":"sqs:*","Resource":"arn:aws:sqs:us-east-1:*:q-%d"},{"Sid":"Deny","Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}]}`, i, i)},
					{Name: "shared-read", ARN: "arn:aws:iam::" + id + ":policy/shared-read", Document: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:Describe*","cloudwatch:Get*"],"Resource":"*"}]}`},
				}}
				prof.RoleARNs = append(prof.RoleARNs, arn)
			}
			a.Profiles = append(a.Profiles, prof)
		}
		w.Accounts = append(w.Accounts, a)
	}
	return w
}

// BenchmarkAnalyze1000x50x2 is the analysis alone (no I/O) of 1,000
// certificates × 50 roles × 2 accounts:
//
//	go test ./audit -run '^$' -bench Analyze -benchtime 3x
func BenchmarkAnalyze1000x50x2(b *testing.B) {
	w := scaleWorld(b, 1000)
	b.ResetTimer()
	for b.Loop() {
		r := Analyze(w)
		if len(r.Certificates) != 1000 {
			b.Fatal(len(r.Certificates))
		}
	}
}
