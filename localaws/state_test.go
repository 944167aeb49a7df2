package localaws

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rolesanywhere"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// TestStateSurvivesRestart: anchors, profiles, CRLs and issued credentials
// written by one server are there for the next one on the same file.
func TestStateSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	stateFile := filepath.Join(dir, "state.json")

	pki := newPKI(t, "state")
	_, ts1 := startServer(t, Config{StateFile: stateFile})
	c1 := raClient(ts1.URL, testAdminKey, testAdminSecret, "")
	createRole(t, iamClient(ts1.URL, testAdminKey, testAdminSecret), roleName(testRoleArn), rolesAnywhereTrustPolicy)
	ta, err := c1.CreateTrustAnchor(ctx, &rolesanywhere.CreateTrustAnchorInput{Name: aws.String("root"), Enabled: aws.Bool(true),
		Source: anchorSource(pki)})
	mustOK(t, err)
	p, err := c1.CreateProfile(ctx, &rolesanywhere.CreateProfileInput{Name: aws.String("p"), Enabled: aws.Bool(true), RoleArns: []string{testRoleArn}})
	mustOK(t, err)
	leaf, key := pki.issueLeaf(t, leafOpts{})
	crl, err := c1.ImportCrl(ctx, &rolesanywhere.ImportCrlInput{Name: aws.String("c"), Enabled: aws.Bool(true),
		TrustAnchorArn: ta.TrustAnchor.TrustAnchorArn, CrlData: pki.crlPEM(t, 1)})
	mustOK(t, err)
	status, _, body := do(t, signSession(t, sessionCall{baseURL: ts1.URL, trustAnchorArn: aws.ToString(ta.TrustAnchor.TrustAnchorArn),
		profileArn: aws.ToString(p.Profile.ProfileArn), roleArn: testRoleArn, leaf: leaf, key: key, chain: pki.chain()}))
	if status != 201 {
		t.Fatalf("%d %s", status, body)
	}
	cr := decodeSession(t, body).CredentialSet[0].Credentials
	ts1.Close()

	info, err := os.Stat(stateFile)
	mustOK(t, err)
	if info.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", info.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	mustOK(t, err)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}

	_, ts2 := startServer(t, Config{StateFile: stateFile})
	c2 := raClient(ts2.URL, testAdminKey, testAdminSecret, "")
	gta, err := c2.GetTrustAnchor(ctx, &rolesanywhere.GetTrustAnchorInput{TrustAnchorId: ta.TrustAnchor.TrustAnchorId})
	mustOK(t, err)
	if aws.ToString(gta.TrustAnchor.Name) != "root" || !aws.ToBool(gta.TrustAnchor.Enabled) || !gta.TrustAnchor.CreatedAt.Equal(*ta.TrustAnchor.CreatedAt) {
		t.Errorf("trust anchor after restart = %+v", gta.TrustAnchor)
	}
	gp, err := c2.GetProfile(ctx, &rolesanywhere.GetProfileInput{ProfileId: p.Profile.ProfileId})
	mustOK(t, err)
	if len(gp.Profile.RoleArns) != 1 || gp.Profile.RoleArns[0] != testRoleArn {
		t.Errorf("profile after restart = %+v", gp.Profile)
	}
	gc, err := c2.GetCrl(ctx, &rolesanywhere.GetCrlInput{CrlId: crl.Crl.CrlId})
	mustOK(t, err)
	if string(gc.Crl.CrlData) != string(crl.Crl.CrlData) {
		t.Error("CRL data changed across restart")
	}
	id, err := stsClient(ts2.URL, cr.AccessKeyID, cr.SecretAccessKey, cr.SessionToken).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	mustOK(t, err)
	if aws.ToString(id.Account) != "123456789012" {
		t.Errorf("caller identity after restart = %+v", id)
	}
}

func TestStateFileRejectsGarbage(t *testing.T) {
	for name, content := range map[string]string{
		"not JSON":       "{",
		"unknown key":    `{"version":1,"trustAnchors":{},"profiles":{},"crls":{},"credentials":{},"extra":1}`,
		"wrong version":  `{"version":3,"accounts":{},"credentials":{}}`,
		"v2 unknown key": `{"version":2,"accounts":{},"credentials":{},"trustAnchors":{}}`,
		"v2 null map":    `{"version":2,"accounts":{"123456789012":{"trustAnchors":null,"profiles":{},"crls":{}}},"credentials":{}}`,
		"null map":       `{"version":1,"trustAnchors":null,"profiles":{},"crls":{},"credentials":{}}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			mustOK(t, os.WriteFile(path, []byte(content), 0o600))
			if _, err := New(Config{AccessKeyID: testAdminKey, SecretAccessKey: testAdminSecret, StateFile: path}); err == nil {
				t.Fatal("New accepted a bad state file")
			}
		})
	}
}

// TestStateV1Migrates: a version 1 file (one account's maps at the top
// level) loads into the default account and is rewritten as version 2.
func TestStateV1Migrates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	const v1 = `{"version":1,"trustAnchors":{"4f0c1d2e-5a6b-4c7d-8e9f-0a1b2c3d4e5f":{"id":"4f0c1d2e-5a6b-4c7d-8e9f-0a1b2c3d4e5f",` +
		`"name":"old","enabled":true,"sourceType":"CERTIFICATE_BUNDLE","certificatePem":"","crlDpRevocationEnabled":false,` +
		`"notificationSettings":[],"tags":[],"createdAt":"2026-11-23T12:00:00Z","updatedAt":"2026-11-23T12:00:00Z"}},` +
		`"profiles":{},"crls":{},"credentials":{"ASIAOLD":{"accessKeyId":"ASIAOLD","secretAccessKey":"s","sessionToken":"t",` +
		`"expiration":"2026-11-23T13:00:00Z","roleArn":"` + testRoleArn + `","roleSessionName":"n","assumedRoleId":"AROA:n",` +
		`"sourceIdentity":"CN=a","serial":"1","trustAnchorId":"x","profileId":"y"}}}`
	mustOK(t, os.WriteFile(path, []byte(v1), 0o600))
	s, err := New(Config{AccessKeyID: testAdminKey, SecretAccessKey: testAdminSecret, StateFile: path, Account: "111122223333"})
	mustOK(t, err)
	a := s.st.lookup("111122223333")
	if a == nil || a.TrustAnchors["4f0c1d2e-5a6b-4c7d-8e9f-0a1b2c3d4e5f"] == nil || s.st.Credentials["ASIAOLD"].Account != "111122223333" {
		t.Fatalf("v1 state did not land in the default account: %+v", s.st)
	}
	s.mu.Lock()
	mustOK(t, s.persistLocked())
	s.mu.Unlock()
	raw, err := os.ReadFile(path)
	mustOK(t, err)
	if !strings.Contains(string(raw), `"version": 2`) {
		t.Errorf("state rewritten as %s", raw[:40])
	}
	if _, err := New(Config{AccessKeyID: testAdminKey, SecretAccessKey: testAdminSecret, StateFile: path, Account: "111122223333"}); err != nil {
		t.Errorf("v2 state does not load back: %v", err)
	}
}
