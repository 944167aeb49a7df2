package audit

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/internal/pkitest"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

type leaf struct {
	serial  int64
	cn      string
	dns     string
	life    time.Duration
	key     *ecdsa.PrivateKey // nil: a fresh one
	lineage string
}

func issue(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, l leaf) Cert {
	t.Helper()
	k := l.key
	if k == nil {
		var err error
		if k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	life := l.life
	if life == 0 {
		life = 24 * time.Hour
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(l.serial), Subject: pkix.Name{CommonName: l.cn, Organization: []string{"Example"}},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(-time.Minute + life), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if l.dns != "" {
		tmpl.DNSNames = []string{l.dns}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, k.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	serial := hex.EncodeToString(c.SerialNumber.Bytes())
	lin := l.lineage
	if lin == "" {
		lin = serial
	}
	return Cert{Serial: serial, Cert: c, KeyID: hex.EncodeToString(sum[:]), Lineage: lin}
}

const (
	acct     = "111111111111"
	anchorA  = "arn:aws:rolesanywhere:us-east-1:111111111111:trust-anchor/a"
	anchorB  = "arn:aws:rolesanywhere:us-east-1:111111111111:trust-anchor/b"
	profRO   = "arn:aws:rolesanywhere:us-east-1:111111111111:profile/readonly"
	profOpen = "arn:aws:rolesanywhere:us-east-1:111111111111:profile/open"
	roleWeb  = "arn:aws:iam::111111111111:role/web"
	roleAny  = "arn:aws:iam::111111111111:role/any"
	roleAdm  = "arn:aws:iam::111111111111:role/admin"
)

func trust(conds string) string {
	c := ""
	if conds != "" {
		c = `,"Condition":` + conds
	}
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"rolesanywhere.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]` + c + `}]}`
}

// fixedWorld is one account: anchor a trusts this CA and has a fresh CRL;
// anchor b trusts this CA and a foreign one, without a CRL. Role web admits
// CN web-01 through anchor a only; role any admits everyone; role admin
// admits CN db-01 from any anchor and holds admin rights.
func fixedWorld(t *testing.T) (*World, map[string]Cert) {
	ca, caKey := pkitest.NewCA(t, "Example Issuing CA")
	foreign, fKey := pkitest.NewCA(t, "Someone Else CA")
	shared, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	certs := map[string]Cert{
		"web":   issue(t, ca, caKey, leaf{serial: 0x1001, cn: "web-01", dns: "web-01.example.com"}),
		"db":    issue(t, ca, caKey, leaf{serial: 0x1002, cn: "db-01", life: 72 * time.Hour}),
		"twin1": issue(t, ca, caKey, leaf{serial: 0x1003, cn: "twin-1", key: shared}),
		"twin2": issue(t, ca, caKey, leaf{serial: 0x1004, cn: "twin-2", key: shared}),
	}
	out := issue(t, foreign, fKey, leaf{serial: 0x9999, cn: "intruder"})
	w := &World{Now: now, CA: []*x509.Certificate{ca}, MaxLifetime: 24 * time.Hour, Issued: map[string]bool{}}
	for _, k := range []string{"web", "db", "twin1", "twin2"} {
		w.Certs = append(w.Certs, certs[k])
		w.Issued[certs[k].Serial] = true
	}
	a := &Account{Name: "prod", ID: acct, Region: "us-east-1",
		Anchors: []Anchor{
			{ARN: anchorA, ID: "a", Name: "main", Enabled: true, SourceType: "CERTIFICATE_BUNDLE", Bundle: []*x509.Certificate{ca}},
			{ARN: anchorB, ID: "b", Name: "mixed", Enabled: true, SourceType: "CERTIFICATE_BUNDLE", Bundle: []*x509.Certificate{ca, foreign}},
		},
		CRLs: []CRL{{ARN: "crl-a", Name: "main", AnchorARN: anchorA, Enabled: true, Size: 700, NextUpdate: now.Add(20 * time.Hour), Number: "4"}},
		Profiles: []Profile{
			{ARN: profRO, Name: "readonly", Enabled: true, RoleARNs: []string{roleWeb, roleAny},
				SessionPolicy: `{"Version":"2012-10-17","Statement":[{"Sid":"Read","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::logs/*"}]}`},
			{ARN: profOpen, Name: "open", Enabled: true, RoleARNs: []string{roleAny, roleAdm}},
		},
		Roles: map[string]*Role{
			roleWeb: {ARN: roleWeb, Name: "web", TrustPolicy: trust(`{"StringEquals":{"aws:PrincipalTag/x509Subject/CN":"web-01"},"ArnEquals":{"aws:SourceArn":"` + anchorA + `"}}`),
				Policies: []NamedPolicy{{Name: "s3", Document: `{"Version":"2012-10-17","Statement":[{"Sid":"S3All","Effect":"Allow","Action":"s3:*","Resource":"*"}]}`}}},
			roleAny: {ARN: roleAny, Name: "any", TrustPolicy: trust(""),
				Policies: []NamedPolicy{{Name: "read", Document: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","ec2:Describe*"],"Resource":"*"}]}`}}},
			roleAdm: {ARN: roleAdm, Name: "admin", TrustPolicy: trust(`{"StringEquals":{"aws:PrincipalTag/x509Subject/CN":"db-01"}}`),
				Policies: []NamedPolicy{{Name: "AdministratorAccess", ARN: "arn:aws:iam::aws:policy/AdministratorAccess", Document: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`}}},
		},
		Subjects: []Subject{
			{ID: "s-web", ARN: "arn:subject/s-web", X509Subject: "CN=web-01,O=Example", Enabled: true,
				Credentials: []SubjectCredential{{Serial: "4097", Issuer: "CN=Example Issuing CA", SeenAt: now.Add(-time.Hour)}},
				Instances:   []InstanceProperties{{Properties: map[string]string{"host": "a"}, SeenAt: now.Add(-time.Hour)}, {Properties: map[string]string{"host": "b"}, SeenAt: now.Add(-time.Hour)}}},
			{ID: "s-out", ARN: "arn:subject/s-out", X509Subject: "CN=intruder", Enabled: true,
				Credentials: []SubjectCredential{{Serial: "39321", Issuer: "CN=Someone Else CA", SeenAt: now, DER: out.Cert.Raw}}},
			{ID: "s-db", ARN: "arn:subject/s-db", X509Subject: "CN=db-01,O=Example", Enabled: true,
				Credentials: []SubjectCredential{
					{Serial: "4098", Failed: true, SeenAt: now.Add(-50 * time.Minute)}, {Serial: "4098", Failed: true, SeenAt: now.Add(-40 * time.Minute)},
					{Serial: "4098", Failed: true, SeenAt: now.Add(-30 * time.Minute)}, {Serial: "4098", Failed: true, SeenAt: now.Add(-20 * time.Minute)},
					{Serial: "4098", Failed: true, SeenAt: now.Add(-10 * time.Minute)}}},
		},
	}
	a.SubjectsRead = true
	w.Accounts = []*Account{a}
	w.Previous = &Snapshot{TakenAt: now.Add(-24 * time.Hour), Subjects: []string{"prod/s-web", "prod/s-db"}}
	return w, certs
}

func TestAnalyzeAccess(t *testing.T) {
	w, certs := fixedWorld(t)
	r := Analyze(w)
	got := map[string]bool{}
	for _, e := range r.Certificates {
		for _, x := range e.Access {
			got[e.Serial+" "+x.Role+" "+x.Anchor] = true
		}
	}
	tests := []struct {
		cert, role, anchor string
		want               bool
	}{
		{"web", roleWeb, anchorA, true},
		{"web", roleWeb, anchorB, false}, // aws:SourceArn pins anchor a
		{"db", roleWeb, anchorA, false},  // CN is not web-01
		{"web", roleAny, anchorA, true},
		{"web", roleAny, anchorB, true},
		{"twin1", roleAny, anchorB, true},
		{"db", roleAdm, anchorA, true},
		{"db", roleAdm, anchorB, true},
		{"web", roleAdm, anchorA, false},
	}
	for _, tt := range tests {
		t.Run(tt.cert+"/"+tt.role[strings.LastIndex(tt.role, "/")+1:]+"/"+tt.anchor[len(tt.anchor)-1:], func(t *testing.T) {
			if g := got[certs[tt.cert].Serial+" "+tt.role+" "+tt.anchor]; g != tt.want {
				t.Errorf("can assume = %v, want %v", g, tt.want)
			}
		})
	}
}

func TestAnalyzeFindings(t *testing.T) {
	w, certs := fixedWorld(t)
	r := Analyze(w)
	var got []string
	for _, f := range r.Findings {
		got = append(got, string(f.Severity)+" "+f.ID+" "+f.Subject)
	}
	want := []string{
		"high anchor-foreign-ca " + anchorB,
		"high anchor-no-enabled-crl " + anchorB,
		"high cert-shared-key " + certs["twin1"].Serial,
		"high cert-shared-key " + certs["twin2"].Serial,
		"high role-trust-no-subject-condition " + roleAny,
		"high subject-foreign arn:subject/s-out",
		"medium cert-lifetime-over-policy " + certs["db"].Serial,
		"medium profile-no-session-policy " + profOpen,
		"medium role-trust-no-source-arn " + roleAdm,
		"medium role-trust-no-source-arn " + roleAny,
		"medium subject-failed-burst arn:subject/s-db",
		"medium subject-multiple-hosts arn:subject/s-web",
		"low anchor-multiple-cas " + anchorB,
		"low subject-new arn:subject/s-out",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r.Summary["high"] != 6 || r.Summary["medium"] != 6 || r.Summary["low"] != 2 {
		t.Errorf("summary %v", r.Summary)
	}
	if r.Count(Medium) != 12 {
		t.Errorf("Count(medium) = %d", r.Count(Medium))
	}
}

// The blast radius counts each reachable role once, with its widest
// session, and names the statements that make it.
func TestBlastRadius(t *testing.T) {
	w, certs := fixedWorld(t)
	r := Analyze(w)
	by := map[string]CertEntry{}
	for _, e := range r.Certificates {
		by[e.Serial] = e
	}
	tests := []struct {
		cert  string
		score int
		parts []string // "role policy stmt action resource points"
	}{
		// web: role web through profile readonly only: s3:* on * cut to
		// s3:GetObject on logs/* (read × pattern = 3); role any through
		// open (no session policy): s3:GetObject on * and ec2:Describe* on
		// * (read × all = 10 each), wider than through readonly (3).
		{"web", 23, []string{"any read #0 s3:GetObject * 10", "any read #0 ec2:Describe* * 10", "web s3 S3All s3:GetObject arn:aws:s3:::logs/* 3"}},
		// db: role admin (* on *: 10 × 10) and role any as above.
		{"db", 120, []string{"admin AdministratorAccess #0 * * 100", "any read #0 s3:GetObject * 10", "any read #0 ec2:Describe* * 10"}},
		{"twin1", 20, []string{"any read #0 s3:GetObject * 10", "any read #0 ec2:Describe* * 10"}},
	}
	for _, tt := range tests {
		t.Run(tt.cert, func(t *testing.T) {
			e := by[certs[tt.cert].Serial]
			var parts []string
			for _, p := range e.ScoreParts {
				parts = append(parts, strings.Join([]string{p.Role[strings.LastIndex(p.Role, "/")+1:], p.Policy, p.Statement, p.Action, p.Resource, itoa(p.Points)}, " "))
			}
			sort.Strings(parts)
			want := append([]string{}, tt.parts...)
			sort.Strings(want)
			if e.Score != tt.score || strings.Join(parts, "|") != strings.Join(want, "|") {
				t.Errorf("score %d parts %q, want %d %q", e.Score, parts, tt.score, want)
			}
		})
	}
	if r.Ranking[0].Serial != certs["db"].Serial {
		t.Errorf("ranking starts with %s, want db-01", r.Ranking[0].Subject)
	}
}

func TestSessionTags(t *testing.T) {
	ca, caKey := pkitest.NewCA(t, "Example Issuing CA")
	c := issue(t, ca, caKey, leaf{serial: 7, cn: "web-01", dns: "web-01.example.com"}).Cert
	tests := []struct {
		name     string
		mappings []Mapping
		want     []string
	}{
		{"defaults", nil, []string{"x509Issuer/CN=Example Issuing CA", "x509SAN/DNS=web-01.example.com", "x509Subject/CN=web-01", "x509Subject/O=Example"}},
		{"subject CN only", []Mapping{{Field: FieldSubject, Specifiers: []string{"CN"}}}, []string{"x509Subject/CN=web-01"}},
		{"no mappings", []Mapping{}, nil},
		{"SAN without DNS", []Mapping{{Field: FieldSAN, Specifiers: []string{"URI"}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for k, v := range SessionTags(c, tt.mappings) {
				got = append(got, strings.TrimPrefix(k, "aws:PrincipalTag/")+"="+v)
			}
			sort.Strings(got)
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAccessLevel(t *testing.T) {
	tests := []struct{ action, want string }{
		{"*", LevelPermissions},
		{"iam:PassRole", LevelPermissions},
		{"iam:GetRole", LevelRead},
		{"s3:GetObject", LevelRead},
		{"s3:Get*", LevelRead},
		{"ec2:Describe*", LevelRead},
		{"s3:PutObject", LevelWrite},
		{"s3:PutBucketPolicy", LevelPermissions},
		{"s3:*", LevelPermissions},
		{"s3:*Object", LevelWrite},
		{"kms:CreateGrant", LevelPermissions},
		{"dynamodb:Query", LevelRead},
	}
	for _, tt := range tests {
		if got := AccessLevel(tt.action); got != tt.want {
			t.Errorf("AccessLevel(%q) = %s, want %s", tt.action, got, tt.want)
		}
	}
}

// The JSON is stable: the same world gives the same bytes, and the schema
// names itself.
func TestJSONStable(t *testing.T) {
	w, _ := fixedWorld(t)
	var a, b bytes.Buffer
	if err := Analyze(w).WriteJSON(&a); err != nil {
		t.Fatal(err)
	}
	if err := Analyze(w).WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Error("two analyses of one world differ")
	}
	var m map[string]any
	if err := json.Unmarshal(a.Bytes(), &m); err != nil || m["schema"] != SchemaVersion {
		t.Errorf("schema %v %v", m["schema"], err)
	}
	for _, k := range []string{"ca", "accounts", "anchors", "profiles", "roles", "certificates", "ranking", "findings", "summary"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q in the JSON", k)
		}
	}
}

func TestRenderers(t *testing.T) {
	w, _ := fixedWorld(t)
	r := Analyze(w)
	tests := []struct {
		name  string
		write func(*bytes.Buffer) error
		want  []string
	}{
		{"table", func(b *bytes.Buffer) error { return r.WriteTable(b) }, []string{"SCORE", "db-01", "any via open", "anchor-foreign-ca", "14 findings (6 high, 6 medium, 2 low)"}},
		{"html", func(b *bytes.Buffer) error { return r.WriteHTML(b) }, []string{`data-kind="anchor" data-id="` + anchorB + `"`, `data-kind="role" data-id="` + roleAdm + `"`, "<svg", "[high] anchor-foreign-ca"}},
		{"dot", func(b *bytes.Buffer) error { return r.WriteDot(b) }, []string{"digraph audit", "->", `id="` + profOpen + `"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.write(&b); err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.want {
				if !strings.Contains(b.String(), s) {
					t.Errorf("no %q in\n%s", s, b.String())
				}
			}
			if tt.name == "html" && (strings.Contains(b.String(), "<script") || strings.Contains(b.String(), "http://") && !strings.Contains(b.String(), "http://www.w3.org/2000/svg")) {
				t.Error("the page has a script or a network reference")
			}
		})
	}
}

// Trust policies that only seem to pin the certificate are findings too.
func TestTrustConditions(t *testing.T) {
	tests := []struct {
		name           string
		conds          string
		subject, srcOK bool
	}{
		{"none", "", false, false},
		{"CN and anchor", `{"StringEquals":{"aws:PrincipalTag/x509Subject/CN":"web-01"},"ArnEquals":{"aws:SourceArn":"` + anchorA + `"}}`, true, true},
		{"SAN", `{"StringLike":{"aws:PrincipalTag/x509SAN/DNS":"*.example.com"}}`, true, false},
		{"CN wildcard pins nothing", `{"StringLike":{"aws:PrincipalTag/x509Subject/CN":"*"}}`, false, false},
		{"negated CN pins nothing", `{"StringNotEquals":{"aws:PrincipalTag/x509Subject/CN":"root"}}`, false, false},
		{"issuer only", `{"StringEquals":{"aws:PrincipalTag/x509Issuer/CN":"Example Issuing CA"}}`, false, false},
		{"key case", `{"ArnLike":{"AWS:SOURCEARN":"` + anchorA + `"},"StringEquals":{"aws:principaltag/x509subject/CN":"a"}}`, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			an := &analysis{policies: map[string]*parsed{}}
			subj, src, any := trustConditions(an.parse(trust(tt.conds)))
			if !any || subj != tt.subject || src != tt.srcOK {
				t.Errorf("subject %v sourceArn %v (any %v), want %v %v", subj, src, any, tt.subject, tt.srcOK)
			}
		})
	}
}

// An account that could not be read (--keep-going) is a finding, and the
// rest is still audited.
func TestUnreadableAccount(t *testing.T) {
	w, _ := fixedWorld(t)
	w.Accounts = append(w.Accounts, &Account{Name: "dev", Region: "us-east-1", Err: errors.New("sts GetCallerIdentity: connection refused")})
	r := Analyze(w)
	if len(r.Accounts) != 2 || r.Accounts[1].Error == "" || r.Findings[0].ID != "account-unreadable" || r.Findings[0].Severity != High {
		t.Errorf("accounts %+v, first finding %+v", r.Accounts, r.Findings[0])
	}
	if len(r.Certificates[0].Access) == 0 {
		t.Error("the readable account was not audited")
	}
}

// The snapshot keeps what this audit saw, and the previous subjects of an
// account whose subjects were skipped.
func TestNextSnapshot(t *testing.T) {
	tests := []struct {
		name string
		read bool
		want string
	}{
		{"subjects read", true, "prod/s-db,prod/s-out,prod/s-web"},
		{"subjects skipped", false, "prod/s-db,prod/s-web"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, _ := fixedWorld(t)
			w.Accounts[0].SubjectsRead = tt.read
			if !tt.read {
				w.Accounts[0].Subjects = nil
			}
			s := Analyze(w).NextSnapshot()
			if got := strings.Join(s.Subjects, ","); got != tt.want || s.Certs != 4 || !s.TakenAt.Equal(now) {
				t.Errorf("snapshot %q %d %v, want %q", got, s.Certs, s.TakenAt, tt.want)
			}
		})
	}
}
