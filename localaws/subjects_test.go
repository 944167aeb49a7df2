package localaws

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rolesanywhere"
	"github.com/aws/aws-sdk-go-v2/service/rolesanywhere/types"
)

// TestSubjects: every CreateSession by a certificate that chains to an
// anchor lands on its Subject (serial, issuer, outcome, instance
// properties); certificates that do not chain leave no trace.
func TestSubjects(t *testing.T) {
	f := newSessionFixture(t)
	ctx := context.Background()
	leaf1, key1 := f.pki.issueLeaf(t, leafOpts{cn: "host-a"})
	leaf2, key2 := f.pki.issueLeaf(t, leafOpts{cn: "host-a"}) // same subject, new serial
	stranger := newPKI(t, "stranger")
	leaf3, key3 := stranger.issueLeaf(t, leafOpts{cn: "intruder"})

	status, _, body := f.call(t, leaf1, key1, func(c *sessionCall) {
		c.body = `{"durationSeconds":900,"instanceProperties":{"hostname":"a.example","rack":"r1"}}`
	})
	if status != 201 {
		t.Fatalf("%d %s", status, body)
	}
	subjectArn := decodeSession(t, body).SubjectArn
	// A refused attempt (role not in the profile) by a trusted certificate.
	if status, _, _ := f.call(t, leaf2, key2, func(c *sessionCall) { c.roleArn = "arn:aws:iam::123456789012:role/not-in-profile" }); status != 403 {
		t.Fatalf("status %d", status)
	}
	// An untrusted certificate creates nothing.
	if status, _, _ := f.call(t, leaf3, key3, func(c *sessionCall) { c.chain = stranger.chain() }); status != 403 {
		t.Fatalf("status %d", status)
	}

	ls, err := f.ra.ListSubjects(ctx, &rolesanywhere.ListSubjectsInput{})
	mustOK(t, err)
	if len(ls.Subjects) != 1 {
		t.Fatalf("ListSubjects = %d subjects, want 1 (the untrusted one must not be recorded)", len(ls.Subjects))
	}
	sum := ls.Subjects[0]
	if aws.ToString(sum.SubjectArn) != subjectArn || !strings.Contains(aws.ToString(sum.X509Subject), "CN=host-a") ||
		!aws.ToBool(sum.Enabled) || sum.LastSeenAt == nil || sum.CreatedAt == nil {
		t.Errorf("summary = %+v", sum)
	}
	gs, err := f.ra.GetSubject(ctx, &rolesanywhere.GetSubjectInput{SubjectId: sum.SubjectId})
	mustOK(t, err)
	d := gs.Subject
	if len(d.Credentials) != 2 {
		t.Fatalf("credentials = %+v", d.Credentials)
	}
	byserial := map[string]types.CredentialSummary{}
	for _, c := range d.Credentials {
		byserial[aws.ToString(c.SerialNumber)] = c
	}
	ok1, bad2 := byserial[serialHex(leaf1)], byserial[serialHex(leaf2)]
	if aws.ToBool(ok1.Failed) || !aws.ToBool(bad2.Failed) || aws.ToString(ok1.Issuer) != leaf1.Issuer.String() ||
		!strings.HasPrefix(aws.ToString(ok1.X509CertificateData), "-----BEGIN CERTIFICATE-----") || ok1.SeenAt == nil {
		t.Errorf("credential entries = %+v / %+v", ok1, bad2)
	}
	if len(d.InstanceProperties) != 1 || !reflect.DeepEqual(d.InstanceProperties[0].Properties, map[string]string{"hostname": "a.example", "rack": "r1"}) ||
		aws.ToBool(d.InstanceProperties[0].Failed) {
		t.Errorf("instance properties = %+v", d.InstanceProperties)
	}
	var nf *types.ResourceNotFoundException
	if _, err := f.ra.GetSubject(ctx, &rolesanywhere.GetSubjectInput{SubjectId: aws.String(newUUID())}); !errors.As(err, &nf) {
		t.Errorf("GetSubject unknown: %v", err)
	}
}

// TestSubjectBounds: per-subject lists and the number of subjects are capped.
func TestSubjectBounds(t *testing.T) {
	srv, _ := startServer(t, Config{})
	pki := newPKI(t, "bounds")
	a := srv.st.account(defaultAccount)
	now := time.Now()
	leaf, _ := pki.issueLeaf(t, leafOpts{cn: "busy"})
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for i := 0; i < maxCredentialsPerSubject+5; i++ {
		l, _ := pki.issueLeaf(t, leafOpts{cn: "busy"})
		srv.recordSubjectLocked(a, l, map[string]string{"i": "x"}, false, now.Add(time.Duration(i)*time.Second))
	}
	srv.recordSubjectLocked(a, leaf, nil, false, now.Add(time.Hour))
	sub := a.Subjects[subjectID(leaf)]
	if len(sub.Credentials) != maxCredentialsPerSubject || len(sub.InstanceProperties) != maxInstancePropsPerSubject ||
		sub.Credentials[len(sub.Credentials)-1].SerialNumber != serialHex(leaf) {
		t.Errorf("per-subject lists: %d credentials, %d instance properties", len(sub.Credentials), len(sub.InstanceProperties))
	}
	for i := 0; i < maxSubjectsPerAccount+3; i++ {
		tmpl := *leaf
		tmpl.RawSubject, _ = asn1.Marshal(pkix.Name{CommonName: "s" + string(rune('a'+i%26)) + url.PathEscape(time.Duration(i).String())}.ToRDNSequence())
		srv.recordSubjectLocked(a, &tmpl, nil, false, now.Add(2*time.Hour+time.Duration(i)*time.Second))
	}
	if len(a.Subjects) != maxSubjectsPerAccount {
		t.Errorf("%d subjects, want the cap %d", len(a.Subjects), maxSubjectsPerAccount)
	}
	if a.Subjects[subjectID(leaf)] != nil {
		t.Error("the least recently seen subject was not evicted")
	}
}

// TestAttributeMappingOperations: Put replaces one field's rules, Delete
// removes specifiers or a whole field, and the mapping shapes the tags.
func TestAttributeMappingOperations(t *testing.T) {
	f := newSessionFixture(t)
	ctx := context.Background()
	get := func() map[types.CertificateField][]string {
		t.Helper()
		p, err := f.ra.GetProfile(ctx, &rolesanywhere.GetProfileInput{ProfileId: aws.String(f.profileID)})
		mustOK(t, err)
		out := map[types.CertificateField][]string{}
		for _, m := range p.Profile.AttributeMappings {
			for _, r := range m.MappingRules {
				out[m.CertificateField] = append(out[m.CertificateField], aws.ToString(r.Specifier))
			}
		}
		return out
	}
	want := map[types.CertificateField][]string{"x509Subject": {"*"}, "x509Issuer": {"*"}, "x509SAN": {"DNS", "URI", "Name/*"}}
	if got := get(); !reflect.DeepEqual(got, want) {
		t.Fatalf("default mappings = %v", got)
	}
	put, err := f.ra.PutAttributeMapping(ctx, &rolesanywhere.PutAttributeMappingInput{ProfileId: aws.String(f.profileID),
		CertificateField: types.CertificateFieldX509Subject, MappingRules: []types.MappingRule{{Specifier: aws.String("CN")}, {Specifier: aws.String("OU")}}})
	mustOK(t, err)
	if put.Profile == nil || len(put.Profile.AttributeMappings) != 3 {
		t.Errorf("PutAttributeMapping profile = %+v", put.Profile)
	}
	want["x509Subject"] = []string{"CN", "OU"}
	if got := get(); !reflect.DeepEqual(got, want) {
		t.Errorf("after put = %v", got)
	}
	_, err = f.ra.DeleteAttributeMapping(ctx, &rolesanywhere.DeleteAttributeMappingInput{ProfileId: aws.String(f.profileID),
		CertificateField: types.CertificateFieldX509SAN, Specifiers: []string{"URI"}})
	mustOK(t, err)
	want["x509SAN"] = []string{"DNS", "Name/*"}
	if got := get(); !reflect.DeepEqual(got, want) {
		t.Errorf("after delete URI = %v", got)
	}
	_, err = f.ra.DeleteAttributeMapping(ctx, &rolesanywhere.DeleteAttributeMappingInput{ProfileId: aws.String(f.profileID),
		CertificateField: types.CertificateFieldX509Issuer})
	mustOK(t, err)
	delete(want, "x509Issuer")
	if got := get(); !reflect.DeepEqual(got, want) {
		t.Errorf("after delete x509Issuer = %v", got)
	}
	var ve *types.ValidationException
	_, err = f.ra.PutAttributeMapping(ctx, &rolesanywhere.PutAttributeMappingInput{ProfileId: aws.String(f.profileID),
		CertificateField: "x509Bogus", MappingRules: []types.MappingRule{{Specifier: aws.String("CN")}}})
	if !errors.As(err, &ve) {
		t.Errorf("bogus certificateField: %v", err)
	}
	var nf *types.ResourceNotFoundException
	_, err = f.ra.PutAttributeMapping(ctx, &rolesanywhere.PutAttributeMappingInput{ProfileId: aws.String(newUUID()),
		CertificateField: types.CertificateFieldX509Subject, MappingRules: []types.MappingRule{{Specifier: aws.String("CN")}}})
	if !errors.As(err, &nf) {
		t.Errorf("unknown profile: %v", err)
	}
}

// TestPrincipalTags: the tags a certificate maps to (§5.5).
func TestPrincipalTags(t *testing.T) {
	pki := newPKI(t, "tags")
	dirName, err := asn1.Marshal(pkix.Name{CommonName: "dir-cn", Organization: []string{"DirOrg"}}.ToRDNSequence())
	mustOK(t, err)
	san, err := asn1.Marshal([]asn1.RawValue{
		{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte("first.example")},
		{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte("second.example")},
		{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte("spiffe://example/workload")},
		{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: dirName},
	})
	mustOK(t, err)
	key := newKey(t)
	leaf := createCert(t, &x509.Certificate{
		SerialNumber: randomSerial(t), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		Subject:         pkix.Name{CommonName: "svc", OrganizationalUnit: []string{"Security", "Engineering"}, Organization: []string{"Bad|Value"}},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: san}},
		KeyUsage:        x509.KeyUsageDigitalSignature,
	}, pki.issuing, &key.PublicKey, pki.issuingKey)
	got := principalTags(leaf, defaultAttributeMappings())
	want := map[string]string{
		"x509Subject/CN": "svc", "x509Subject/OU": "Security/Engineering", // "Bad|Value" does not fit the tag pattern
		"x509Issuer/CN": "tags Issuing CA", "x509Issuer/O": "anchorage-test",
		"x509SAN/DNS": "first.example", "x509SAN/URI": "spiffe://example/workload",
		"x509SAN/Name/CN": "dir-cn", "x509SAN/Name/O": "DirOrg",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("default tags =\n%v\nwant\n%v", got, want)
	}
	only := principalTags(leaf, []attributeMapping{
		{CertificateField: fieldSubject, MappingRules: []mappingRule{{Specifier: "OU"}}},
		{CertificateField: fieldSAN, MappingRules: []mappingRule{{Specifier: "Name/CN"}}},
	})
	if !reflect.DeepEqual(only, map[string]string{"x509Subject/OU": "Security/Engineering", "x509SAN/Name/CN": "dir-cn"}) {
		t.Errorf("restricted tags = %v", only)
	}
}
