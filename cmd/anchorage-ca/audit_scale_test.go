package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	ra "github.com/aws/aws-sdk-go-v2/service/rolesanywhere"

	"github.com/anchorage-pki/anchorage/audit"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/internal/testenv"
	"github.com/anchorage-pki/anchorage/localaws"
	"github.com/anchorage-pki/anchorage/signer"
	"github.com/anchorage-pki/anchorage/storage"
)

// TestAuditScale measures one audit of 1,000 live certificates against 50
// roles in each of 2 accounts on localaws (AWS's default quotas), with a
// few subjects per account. It is a measurement, run on request:
//
//	AUDIT_SCALE=1 go test ./cmd/anchorage-ca -run TestAuditScale -v
//
// AUDIT_SCALE=N sets the number of certificates (1 means 1,000).
func TestAuditScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("AUDIT_SCALE"))
	if n == 0 {
		t.Log("set AUDIT_SCALE=1 (or a certificate count) to run the measurement")
		return
	}
	if n == 1 {
		n = 1000
	}
	const (
		profilesPerAccount = 5
		rolesPerProfile    = 10
		subjectsPerAccount = 5
	)
	endpoint := localAWS(t, localaws.RateLimits{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	c := testenv.InitCA(t)
	start := time.Now()
	ids := seedCerts(t, c, n)
	t.Logf("seeded %d certificates in %s", n, time.Since(start).Round(time.Millisecond))
	caPEM := c.CACert(t)

	start = time.Now()
	for _, a := range []account{newAccount(endpoint, "prod", keyProd, secProd), newAccount(endpoint, "dev", keyDev, secDev)} {
		anchorARN := a.anchor(t, ctx, "main", caPEM)
		managed := must(a.iam.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("shared-read"),
			PolicyDocument: aws.String(policy(`{"Effect":"Allow","Action":["ec2:Describe*","cloudwatch:Get*"],"Resource":"*"}`))}))
		for p := range profilesPerAccount {
			var roles []string
			for r := range rolesPerProfile {
				i := p*rolesPerProfile + r
				// Each role admits a tenth of the certificates (CN node-<d>…),
				// half of them only through the anchor.
				cond := fmt.Sprintf(`{"StringLike":{"aws:PrincipalTag/x509Subject/CN":"node-%d*"}`, i%10)
				if i%2 == 0 {
					cond += `,"ArnEquals":{"aws:SourceArn":"` + anchorARN + `"}`
				}
				cond += "}"
				roles = append(roles, a.role(t, ctx, fmt.Sprintf("role-%02d", i), trustPolicy(cond), map[string]string{
					"app": policy(fmt.Sprintf(`{"Sid":"Data","Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::bucket-%d/*"},`+
						`{"Sid":"Queue","Effect":"Allow","Action":"sqs:*","Resource":"arn:aws:sqs:us-east-1:*:q-%d"},{"Sid":"Deny","Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}`, i, i)),
				}, aws.ToString(managed.Policy.Arn)))
			}
			session := ""
			if p%2 == 0 {
				session = policy(`{"Effect":"Allow","Action":["s3:Get*","ec2:Describe*"],"Resource":"*"}`)
			}
			a.profile(t, ctx, fmt.Sprintf("profile-%d", p), session, roles...)
		}
		profs := must(a.ra.ListProfiles(ctx, &ra.ListProfilesInput{}))
		for i := range subjectsPerAccount {
			p := profs.Profiles[0]
			session(t, endpoint, ids[i*10], anchorARN, aws.ToString(p.ProfileArn), p.RoleArns[0], map[string]string{"host": ids[i*10].name})
		}
	}
	t.Logf("seeded 2 accounts × %d roles in %s", profilesPerAccount*rolesPerProfile, time.Since(start).Round(time.Millisecond))

	cfg := must(config.Load(c.Dir))
	cfg.Audit = &config.Audit{Accounts: []config.AuditAccount{
		{Name: "prod", Region: region, Endpoint: endpoint, Profile: "prod"},
		{Name: "dev", Region: region, Endpoint: endpoint, Profile: "dev"},
	}}
	if err := cfg.Save(); err != nil {
		t.Fatal(err)
	}
	awsProfiles(t)

	start = time.Now()
	stdout, stderr, err := runAuditCmd(t, "--dir", c.Dir, "--json", "--html", filepath.Join(t.TempDir(), "a.html"))
	took := time.Since(start)
	if err != nil {
		t.Fatalf("audit: %v\n%s", err, stderr)
	}
	var r audit.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	access := 0
	for _, e := range r.Certificates {
		access += len(e.Access)
	}
	t.Logf("stderr:\n%s", stderr)
	t.Logf("AUDIT %d certificates × %d roles × 2 accounts: %s (%d ways in, %d findings, JSON %d bytes)",
		len(r.Certificates), len(r.Roles)/2, took.Round(time.Millisecond), access, len(r.Findings), len(stdout))
	// n workload certificates and the CA's own TLS certificate.
	if len(r.Certificates) != n+1 || len(r.Roles) != 2*profilesPerAccount*rolesPerProfile {
		t.Errorf("audit saw %d certificates and %d roles", len(r.Certificates), len(r.Roles))
	}
}

// seedCerts signs n workload certificates (CN node-0000…) with the CA's
// issuing key and records them as the issuing core does, in bulk; the
// first few are returned as identities for CreateSession.
func seedCerts(t *testing.T, c *testenv.CA, n int) []identity {
	t.Helper()
	caKey := must(signer.Open(context.Background(), c.Cfg.Path(c.Cfg.Paths.CAKey)))
	blk, _ := pem.Decode(c.CACert(t))
	ca := must(x509.ParseCertificate(blk.Bytes))
	now := time.Now()
	var recs []*storage.Cert
	var ids []identity
	for i := range n {
		key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
		serial := new(big.Int).SetBytes(append([]byte{0x40}, must(randomBytes(19))...))
		name := fmt.Sprintf("node-%04d", i)
		tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name}, DNSNames: []string{name + ".example.com"},
			NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		der := must(x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey))
		cert := must(x509.ParseCertificate(der))
		sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		s := hex.EncodeToString(serial.Bytes())
		recs = append(recs, &storage.Cert{Serial: s, Subject: name, SANs: []string{"DNS:" + name + ".example.com"}, NotBefore: cert.NotBefore,
			NotAfter: cert.NotAfter, IssuedAt: now, Method: storage.MethodToken, KeyID: hex.EncodeToString(sum[:]), Lineage: s,
			Status: storage.StatusValid, DER: der})
		if i < 100 {
			ids = append(ids, identity{name: name, cert: cert, key: key})
		}
	}
	st := must(storage.Open(c.Cfg.Path(c.Cfg.Paths.DB)))
	defer st.Close()
	if err := st.PutCerts(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	return ids
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := rand.Read(b)
	return b, err
}
