package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	ra "github.com/aws/aws-sdk-go-v2/service/rolesanywhere"
	ratypes "github.com/aws/aws-sdk-go-v2/service/rolesanywhere/types"

	"github.com/anchorage-pki/anchorage/audit"
	"github.com/anchorage-pki/anchorage/caclient"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/enroll"
	"github.com/anchorage-pki/anchorage/internal/pkitest"
	"github.com/anchorage-pki/anchorage/internal/testenv"
	"github.com/anchorage-pki/anchorage/localaws"
	"github.com/anchorage-pki/anchorage/rolesanywhere"
	"github.com/anchorage-pki/anchorage/signer"
)

// Two accounts of one local AWS, each with its own admin key pair.
const (
	acctProd = "111111111111"
	acctDev  = "222222222222"
	keyProd  = "AKIDAUDITPROD0000001"
	secProd  = "audit/prod/secret/not/real/000000000000"
	keyDev   = "AKIDAUDITDEV00000001"
	secDev   = "audit/dev/secret/not/real/0000000000000"
	region   = "us-east-1"
)

// localAWS serves a two-account localaws with AWS's default quotas on
// 127.0.0.1.
func localAWS(t testing.TB, limits localaws.RateLimits) string {
	t.Helper()
	s, err := localaws.New(localaws.Config{Region: region, Account: acctProd, AccessKeyID: keyProd, SecretAccessKey: secProd,
		Accounts:   []localaws.Account{{ID: acctDev, AccessKeyID: keyDev, SecretAccessKey: secDev}},
		RateLimits: limits, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// account is an SDK view of one account.
type account struct {
	name string
	ra   *ra.Client
	iam  *iam.Client
}

func newAccount(endpoint, name, key, secret string) account {
	cr := credentials.NewStaticCredentialsProvider(key, secret, "")
	return account{name: name,
		ra:  ra.New(ra.Options{Region: region, BaseEndpoint: aws.String(endpoint), RetryMaxAttempts: 20, Credentials: cr}),
		iam: iam.New(iam.Options{Region: region, BaseEndpoint: aws.String(endpoint), RetryMaxAttempts: 5, Credentials: cr}),
	}
}

// must returns v, panicking on err: the setup calls of these tests fail
// only when localaws or the CA is broken, and a panic shows where.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func (a account) anchor(t testing.TB, ctx context.Context, name string, bundle []byte) string {
	t.Helper()
	out := must(a.ra.CreateTrustAnchor(ctx, &ra.CreateTrustAnchorInput{Name: aws.String(name), Enabled: aws.Bool(true),
		Source: &ratypes.Source{SourceType: ratypes.TrustAnchorTypeCertificateBundle,
			SourceData: &ratypes.SourceDataMemberX509CertificateData{Value: string(bundle)}}}))
	return aws.ToString(out.TrustAnchor.TrustAnchorArn)
}

func (a account) profile(t testing.TB, ctx context.Context, name, sessionPolicy string, roles ...string) string {
	t.Helper()
	in := &ra.CreateProfileInput{Name: aws.String(name), Enabled: aws.Bool(true), RoleArns: roles, DurationSeconds: aws.Int32(3600)}
	if sessionPolicy != "" {
		in.SessionPolicy = aws.String(sessionPolicy)
	}
	out := must(a.ra.CreateProfile(ctx, in))
	return aws.ToString(out.Profile.ProfileArn)
}

func (a account) role(t testing.TB, ctx context.Context, name, trust string, inline map[string]string, attach ...string) string {
	t.Helper()
	out := must(a.iam.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust)}))
	for pn, doc := range inline {
		must(a.iam.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(pn), PolicyDocument: aws.String(doc)}))
	}
	for _, arn := range attach {
		must(a.iam.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(name), PolicyArn: aws.String(arn)}))
	}
	return aws.ToString(out.Role.Arn)
}

func trustPolicy(conditions string) string {
	c := ""
	if conditions != "" {
		c = `,"Condition":` + conditions
	}
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"rolesanywhere.amazonaws.com"},` +
		`"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]` + c + `}]}`
}

func policy(stmts string) string { return `{"Version":"2012-10-17","Statement":[` + stmts + `]}` }

// identity is a certificate and key that can call CreateSession.
type identity struct {
	name string
	cert *x509.Certificate
	key  crypto.Signer
}

// enrollAs gets a certificate for name with DNS SANs from the running CA,
// with key (fresh when nil), as `anchorage enroll` does.
func enrollAs(t testing.TB, c *testenv.CA, name string, sans []string, key *ecdsa.PrivateKey) identity {
	t.Helper()
	pk := must(signer.Open(context.Background(), filepath.Join(c.Dir, "provisioner.key")))
	tok := must(enroll.Mint(pk, c.URL, name, sans, 10*time.Minute, time.Now()))
	if key == nil {
		key = must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	}
	csr := must(caclient.NewCSR(key, name, sans))
	res, err := c.Client(t, nil).Enroll(context.Background(), tok, csr)
	if err != nil {
		t.Fatalf("enroll %s: %v", name, err)
	}
	blk, _ := pem.Decode([]byte(res.Chain))
	return identity{name: name, cert: must(x509.ParseCertificate(blk.Bytes)), key: key}
}

// foreignIdentity is a certificate from another CA.
func foreignIdentity(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string) identity {
	key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der := must(x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey))
	return identity{name: name, cert: must(x509.ParseCertificate(der)), key: key}
}

// session makes a real signed CreateSession and reports whether it got
// credentials; any answer but success or a refusal fails the test.
func session(t testing.TB, endpoint string, id identity, anchor, profile, role string, props map[string]string) bool {
	t.Helper()
	cl := must(rolesanywhere.NewClient(rolesanywhere.Config{TrustAnchorARN: anchor, ProfileARN: profile, RoleARN: role,
		Region: region, Endpoint: endpoint, InstanceProperties: props, MaxAttempts: 10, SessionDuration: 900}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := cl.CreateSession(ctx, rolesanywhere.Identity{Signer: id.key, Certificate: id.cert})
	var apiErr *rolesanywhere.APIError
	switch {
	case err == nil:
		return true
	case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusForbidden:
		return false
	}
	t.Fatalf("CreateSession %s %s %s: %v", id.name, profile, role, err)
	return false
}

// awsProfiles points the SDK at a shared credentials file with the
// profiles "prod" and "dev" (one key pair per account), and nowhere else.
func awsProfiles(t testing.TB) {
	t.Helper()
	awsDir := t.TempDir()
	creds := fmt.Sprintf("[prod]\naws_access_key_id = %s\naws_secret_access_key = %s\n[dev]\naws_access_key_id = %s\naws_secret_access_key = %s\n", keyProd, secProd, keyDev, secDev)
	if err := os.WriteFile(filepath.Join(awsDir, "credentials"), []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(awsDir, "credentials"))
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(awsDir, "config"))
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// runAuditCmd runs `anchorage-ca audit` in-process.
func runAuditCmd(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRoot()
	var o, e bytes.Buffer
	root.SetOut(&o)
	root.SetErr(&e)
	root.SetArgs(append([]string{"audit"}, args...))
	err = root.Execute()
	return o.String(), e.String(), err
}

// The seeded two-account world: what the audit says each certificate can
// assume is exactly what real CreateSessions against localaws get, and
// its findings are exactly the planted ones.
func TestAuditTwoAccounts(t *testing.T) {
	endpoint := localAWS(t, localaws.RateLimits{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	c := testenv.InitCA(t)
	c.Start(t)
	twinKey := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	ours := []identity{
		enrollAs(t, c, "web-01", []string{"DNS:web-01.example.com"}, nil),
		enrollAs(t, c, "db-01", nil, nil),
		enrollAs(t, c, "batch-01", nil, nil),
		enrollAs(t, c, "twin-a", nil, twinKey),
		enrollAs(t, c, "twin-b", nil, twinKey),
	}
	// The CA's own TLS server certificate comes from the service
	// intermediate, which no anchor holds: every CreateSession with it is
	// refused, and the audit does not count it as an AWS identity.
	pair := must(tls.LoadX509KeyPair(filepath.Join(c.Dir, "tls.pem"), filepath.Join(c.Dir, "tls.pem")))
	ours = append(ours, identity{name: "ca-tls", cert: must(x509.ParseCertificate(pair.Certificate[0])), key: pair.PrivateKey.(crypto.Signer)})
	crlDER := must(os.ReadFile(c.Cfg.Path(c.Cfg.Paths.CRL)))
	c.Stop() // the audit opens the bbolt file, which serve holds
	caPEM := c.CACert(t)
	foreignCA, foreignKey := pkitest.NewCA(t, "Someone Else CA")
	foreignPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: foreignCA.Raw})

	prod := newAccount(endpoint, "prod", keyProd, secProd)
	dev := newAccount(endpoint, "dev", keyDev, secDev)

	// prod: anchor main (this CA, a fresh CRL); profile readonly bounds
	// sessions to reading logs; profile open has no session policy. Role
	// web admits CN web-01 through main only, role any admits everyone,
	// role admin admits CN db-01 from any anchor.
	mainARN := prod.anchor(t, ctx, "main", caPEM)
	must(prod.ra.ImportCrl(ctx, &ra.ImportCrlInput{Name: aws.String("anchorage"), TrustAnchorArn: aws.String(mainARN), Enabled: aws.Bool(true),
		CrlData: pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crlDER})}))
	adminPolicy := must(prod.iam.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("Everything"),
		PolicyDocument: aws.String(policy(`{"Effect":"Allow","Action":"*","Resource":"*"}`))}))
	roleWeb := prod.role(t, ctx, "web", trustPolicy(`{"StringEquals":{"aws:PrincipalTag/x509Subject/CN":"web-01"},"ArnEquals":{"aws:SourceArn":"`+mainARN+`"}}`),
		map[string]string{"s3": policy(`{"Sid":"S3All","Effect":"Allow","Action":"s3:*","Resource":"*"}`)})
	roleAny := prod.role(t, ctx, "any", trustPolicy(""),
		map[string]string{"read": policy(`{"Effect":"Allow","Action":["s3:GetObject","ec2:Describe*"],"Resource":"*"}`)})
	roleAdmin := prod.role(t, ctx, "admin", trustPolicy(`{"StringEquals":{"aws:PrincipalTag/x509Subject/CN":"db-01"}}`), nil,
		aws.ToString(adminPolicy.Policy.Arn))
	profReadonly := prod.profile(t, ctx, "readonly", policy(`{"Sid":"Logs","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::logs/*"}`), roleWeb, roleAny)
	profOpen := prod.profile(t, ctx, "open", "", roleAny, roleAdmin)

	// dev: anchor mixed holds this CA and a foreign one and no CRL; profile
	// dev's session policy bounds nothing; profile nocn maps no subject
	// attribute, so conditions on the CN never hold through it.
	mixedARN := dev.anchor(t, ctx, "mixed", append(append([]byte{}, caPEM...), foreignPEM...))
	roleDeploy := dev.role(t, ctx, "deploy", trustPolicy(`{"StringEquals":{"aws:PrincipalTag/x509Subject/CN":["batch-01","web-01"]},"ArnEquals":{"aws:SourceArn":"`+mixedARN+`"}}`),
		map[string]string{"ec2": policy(`{"Effect":"Allow","Action":"ec2:*","Resource":"*"}`)})
	roleCI := dev.role(t, ctx, "ci", trustPolicy(`{"ArnEquals":{"aws:SourceArn":"`+mixedARN+`"}}`),
		map[string]string{"artifacts": policy(`{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::ci/*"}`)})
	profDev := dev.profile(t, ctx, "dev", policy(`{"Effect":"Allow","Action":"*","Resource":"*"}`), roleDeploy, roleCI)
	profNoCN := dev.profile(t, ctx, "nocn", policy(`{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"arn:aws:ec2:us-east-1:222222222222:instance/*"}`), roleDeploy)
	must(dev.ra.DeleteAttributeMapping(ctx, &ra.DeleteAttributeMappingInput{ProfileId: aws.String(profNoCN[strings.LastIndex(profNoCN, "/")+1:]),
		CertificateField: ratypes.CertificateFieldX509Subject}))

	type way struct{ anchor, profile, role string }
	ways := []way{
		{mainARN, profReadonly, roleWeb}, {mainARN, profReadonly, roleAny}, {mainARN, profOpen, roleAny}, {mainARN, profOpen, roleAdmin},
		{mixedARN, profDev, roleDeploy}, {mixedARN, profDev, roleCI}, {mixedARN, profNoCN, roleDeploy},
	}
	got := map[string]bool{} // serial anchor profile role -> CreateSession succeeded
	for _, id := range ours {
		for _, w := range ways {
			ok := session(t, endpoint, id, w.anchor, w.profile, w.role, map[string]string{"host": id.name + ".internal"})
			got[fmt.Sprintf("%x %s %s %s", id.cert.SerialNumber.Bytes(), w.anchor, w.profile, w.role)] = ok
		}
	}
	// web-01's key also works from a second host.
	if !session(t, endpoint, ours[0], mainARN, profOpen, roleAny, map[string]string{"host": "laptop.example.net"}) {
		t.Fatal("web-01 from a second host was refused")
	}
	// batch-01 keeps trying a role that does not admit it.
	for range 5 {
		if session(t, endpoint, ours[2], mainARN, profReadonly, roleWeb, map[string]string{"host": "batch-01.internal"}) {
			t.Fatal("batch-01 assumed role web")
		}
	}
	// A certificate of the foreign CA gets in through mixed.
	intruder := foreignIdentity(t, foreignCA, foreignKey, "intruder")
	if !session(t, endpoint, intruder, mixedARN, profDev, roleCI, nil) {
		t.Fatal("the foreign certificate was refused by role ci")
	}

	cfg := must(config.Load(c.Dir))
	cfg.Audit = &config.Audit{Accounts: []config.AuditAccount{
		{Name: "prod", Region: region, Endpoint: endpoint, Profile: "prod"},
		{Name: "dev", Region: region, Endpoint: endpoint, Profile: "dev"},
	}}
	if err := cfg.Save(); err != nil {
		t.Fatal(err)
	}
	awsProfiles(t)

	htmlFile := filepath.Join(t.TempDir(), "audit.html")
	stdout, stderr, err := runAuditCmd(t, "--dir", c.Dir, "--json", "--html", htmlFile)
	if err != nil {
		t.Fatalf("audit: %v\n%s", err, stderr)
	}
	var r audit.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("audit --json: %v\n%s", err, stdout)
	}

	// 1. The map agrees with AWS, pair by pair.
	says := map[string]bool{}
	for _, e := range r.Certificates {
		for _, x := range e.Access {
			says[fmt.Sprintf("%s %s %s %s", e.Serial, x.Anchor, x.Profile, x.Role)] = true
		}
	}
	if len(r.Certificates) != len(ours)-1 { // all but ca-tls
		t.Errorf("audit saw %d certificates, want %d", len(r.Certificates), len(ours)-1)
	}
	tlsSerial := fmt.Sprintf("%x", ours[len(ours)-1].cert.SerialNumber.Bytes())
	for k, ok := range got {
		if strings.HasPrefix(k, tlsSerial+" ") && ok {
			t.Errorf("the CA's TLS key is an AWS identity: %s", k)
		}
	}
	for _, e := range r.Certificates {
		if e.Serial == tlsSerial {
			t.Errorf("the audit lists the CA's TLS certificate %s", tlsSerial)
		}
	}
	for k, ok := range got {
		if says[k] != ok {
			t.Errorf("%s: audit says can assume %v, CreateSession succeeded %v", k, says[k], ok)
		}
	}
	for k := range says {
		if _, tried := got[k]; !tried {
			t.Errorf("%s: audit says can assume, but that way was never tried", k)
		}
	}

	// 2. Exactly the planted findings.
	serial := func(i int) string { return fmt.Sprintf("%x", ours[i].cert.SerialNumber.Bytes()) }
	var gotF []string
	for _, f := range r.Findings {
		subj := f.Subject
		if f.Kind == "subject" {
			// Subject ARNs are the service's; name the subject by its CN.
			subj = f.Account + "|" + strings.SplitN(strings.SplitN(f.Explanation, " ", 2)[0], ",", 2)[0]
		}
		gotF = append(gotF, string(f.Severity)+" "+f.ID+" "+subj)
	}
	wantF := []string{
		"high anchor-foreign-ca " + mixedARN,
		"high anchor-no-enabled-crl " + mixedARN,
		"high cert-shared-key " + serial(3),
		"high cert-shared-key " + serial(4),
		"high profile-session-admin " + profDev,
		"high role-trust-no-subject-condition " + roleAny,
		"high role-trust-no-subject-condition " + roleCI,
		"high subject-foreign dev|CN=intruder",
		"medium profile-no-session-policy " + profOpen,
		"medium role-trust-no-source-arn " + roleAdmin,
		"medium role-trust-no-source-arn " + roleAny,
		"medium subject-failed-burst prod|CN=batch-01",
		"medium subject-multiple-hosts prod|CN=web-01",
		"low anchor-multiple-cas " + mixedARN,
	}
	sort.Strings(gotF)
	sort.Strings(wantF)
	if strings.Join(gotF, "\n") != strings.Join(wantF, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(gotF, "\n"), strings.Join(wantF, "\n"))
	}
	if !regexp.MustCompile(`(?m)^audit: +[0-9.]+s account prod`).MatchString(stderr) || !regexp.MustCompile(`(?m)^audit: +[0-9.]+s account dev`).MatchString(stderr) {
		t.Errorf("no progress per account on stderr:\n%s", stderr)
	}

	// 3. The page shows every anchor, profile and role, in a real browser.
	var nodes []string
	for _, a := range r.Anchors {
		nodes = append(nodes, "anchor "+a.ARN)
	}
	for _, p := range r.Profiles {
		nodes = append(nodes, "profile "+p.ARN)
	}
	for _, ro := range r.Roles {
		nodes = append(nodes, "role "+ro.ARN)
	}
	if len(nodes) != 2+4+5 {
		t.Errorf("%d nodes, want 2 anchors, 4 profiles, 5 roles: %v", len(nodes), nodes)
	}
	checkPage(t, htmlFile, nodes)

	// 4. The next audit, after a new subject appeared, reports it as new;
	// --fail-on high fails with one line saying how many.
	if !session(t, endpoint, foreignIdentity(t, foreignCA, foreignKey, "intruder-2"), mixedARN, profDev, roleCI, nil) {
		t.Fatal("the second foreign certificate was refused")
	}
	stdout, stderr, err = runAuditCmd(t, "--dir", c.Dir, "--json", "--fail-on", "high")
	var ef *errFindings
	var r2 audit.Report
	if err := json.Unmarshal([]byte(stdout), &r2); err != nil {
		t.Fatal(err)
	}
	if !errors.As(err, &ef) || ef.n != 9 || err.Error() != "audit: 9 findings at severity high or above" {
		t.Errorf("--fail-on high: %v, want 9 findings (8 planted + the new intruder)", err)
		for _, f := range r2.Findings {
			t.Logf("%s %s %s %s", f.Severity, f.ID, f.Subject, f.Explanation)
		}
	}
	var news []string
	for _, f := range r2.Findings {
		if f.ID == "subject-new" {
			news = append(news, f.Explanation)
		}
	}
	if len(news) != 1 || !strings.HasPrefix(news[0], "CN=intruder-2 ") {
		t.Errorf("new subjects %q, want CN=intruder-2 only", news)
	}
	if r2.Snapshot == nil {
		t.Error("the second audit did not find the first one's snapshot")
	}
}
