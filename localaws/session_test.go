package localaws

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/rolesanywhere"
	"github.com/aws/aws-sdk-go-v2/service/rolesanywhere/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// sessionFixture is a server with one enabled anchor (the PKI's root) and
// one enabled profile allowing testRoleArn, both made through the SDK.
type sessionFixture struct {
	srv                   *Server
	ts                    *httptest.Server
	clock                 *testClock
	ra                    *rolesanywhere.Client
	iam                   *iam.Client
	pki                   *testPKI
	anchorArn, profileArn string
	anchorID, profileID   string
}

func newSessionFixture(t *testing.T) *sessionFixture {
	t.Helper()
	ctx := context.Background()
	f := &sessionFixture{clock: &testClock{}, pki: newPKI(t, "session")}
	f.srv, f.ts = startServer(t, Config{Now: f.clock.Now})
	f.ra = raClient(f.ts.URL, testAdminKey, testAdminSecret, "")
	f.iam = iamClient(f.ts.URL, testAdminKey, testAdminSecret)
	createRole(t, f.iam, roleName(testRoleArn), rolesAnywhereTrustPolicy)
	ta, err := f.ra.CreateTrustAnchor(ctx, &rolesanywhere.CreateTrustAnchorInput{Name: aws.String("root"), Enabled: aws.Bool(true),
		Source: &types.Source{SourceType: types.TrustAnchorTypeCertificateBundle, SourceData: &types.SourceDataMemberX509CertificateData{Value: certPEM(f.pki.root)}}})
	mustOK(t, err)
	f.anchorArn, f.anchorID = aws.ToString(ta.TrustAnchor.TrustAnchorArn), aws.ToString(ta.TrustAnchor.TrustAnchorId)
	p, err := f.ra.CreateProfile(ctx, &rolesanywhere.CreateProfileInput{Name: aws.String("workloads"), Enabled: aws.Bool(true),
		RoleArns: []string{testRoleArn}, DurationSeconds: aws.Int32(3600)})
	mustOK(t, err)
	f.profileArn, f.profileID = aws.ToString(p.Profile.ProfileArn), aws.ToString(p.Profile.ProfileId)
	return f
}

// call builds a default good request for leaf, lets edit change it, signs
// and sends it.
func (f *sessionFixture) call(t *testing.T, leaf *x509.Certificate, key crypto.Signer, edit func(*sessionCall)) (int, string, []byte) {
	t.Helper()
	c := sessionCall{baseURL: f.ts.URL, trustAnchorArn: f.anchorArn, profileArn: f.profileArn, roleArn: testRoleArn,
		leaf: leaf, key: key, chain: []*x509.Certificate{f.pki.issuing}}
	if edit != nil {
		edit(&c)
	}
	return do(t, signSession(t, c))
}

func errorMessage(t *testing.T, body []byte) string {
	t.Helper()
	var m struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	return m.Message
}

func decodeSession(t *testing.T, body []byte) sessionResponse {
	t.Helper()
	var out sessionResponse
	if err := json.Unmarshal(body, &out); err != nil || len(out.CredentialSet) != 1 {
		t.Fatalf("session response %s: %v", body, err)
	}
	return out
}

var (
	accessKeyRE  = regexp.MustCompile(`^ASIA[A-Z2-7]{16}$`)
	subjectArnRE = regexp.MustCompile(`^arn:aws:rolesanywhere:us-east-1:123456789012:subject/[0-9a-f-]{36}$`)
)

func TestCreateSessionSuccess(t *testing.T) {
	f := newSessionFixture(t)
	for _, rsaKey := range []bool{false, true} {
		leaf, key := f.pki.issueLeaf(t, leafOpts{rsaKey: rsaKey})
		before := time.Now().UTC().Truncate(time.Second)
		status, code, body := f.call(t, leaf, key, nil)
		if status != http.StatusCreated {
			t.Fatalf("rsa=%v: %d %s %s", rsaKey, status, code, body)
		}
		out := decodeSession(t, body)
		cs := out.CredentialSet[0]
		serial := hex.EncodeToString(leaf.SerialNumber.Bytes())
		if want := "arn:aws:sts::123456789012:assumed-role/anchorage-test-role/" + serial; cs.AssumedRoleUser.Arn != want {
			t.Errorf("assumed role arn = %s, want %s", cs.AssumedRoleUser.Arn, want)
		}
		if !strings.HasPrefix(cs.AssumedRoleUser.AssumedRoleID, "AROA") || !strings.HasSuffix(cs.AssumedRoleUser.AssumedRoleID, ":"+serial) {
			t.Errorf("assumedRoleId = %s", cs.AssumedRoleUser.AssumedRoleID)
		}
		if !accessKeyRE.MatchString(cs.Credentials.AccessKeyID) || len(cs.Credentials.SecretAccessKey) != 40 || cs.Credentials.SessionToken == "" {
			t.Errorf("credentials = %+v", cs.Credentials)
		}
		exp, err := time.Parse(time.RFC3339, cs.Credentials.Expiration)
		if err != nil || !strings.HasSuffix(cs.Credentials.Expiration, "Z") || len(cs.Credentials.Expiration) != len("2006-01-02T15:04:05Z") {
			t.Fatalf("expiration %q is not RFC 3339 UTC seconds", cs.Credentials.Expiration)
		}
		// min(profile 3600, request 900)
		if d := exp.Sub(before); d < 899*time.Second || d > 902*time.Second {
			t.Errorf("duration = %s, want 900s", d)
		}
		if cs.SourceIdentity != "CN=test-host" || cs.RoleArn != testRoleArn || cs.PackedPolicySize < 0 {
			t.Errorf("entry = %+v", cs)
		}
		if !subjectArnRE.MatchString(out.SubjectArn) {
			t.Errorf("subjectArn = %s", out.SubjectArn)
		}
	}
}

// TestCreateSessionRefusals is the table of everything that must be refused.
func TestCreateSessionRefusals(t *testing.T) {
	f := newSessionFixture(t)
	ctx := context.Background()
	now := time.Now()
	good, goodKey := f.pki.issueLeaf(t, leafOpts{})
	expired, expiredKey := f.pki.issueLeaf(t, leafOpts{notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-time.Hour)})
	noDigSig, noDigSigKey := f.pki.issueLeaf(t, leafOpts{keyUsage: x509.KeyUsageKeyEncipherment})
	noKU, noKUKey := f.pki.issueLeaf(t, leafOpts{noKU: true})
	caLeaf, caLeafKey := f.pki.issueLeaf(t, leafOpts{isCA: true, keyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign})
	rsaLeaf, rsaKey := f.pki.issueLeaf(t, leafOpts{rsaKey: true})

	other := newPKI(t, "other")
	ta2, err := f.ra.CreateTrustAnchor(ctx, &rolesanywhere.CreateTrustAnchorInput{Name: aws.String("other"), Enabled: aws.Bool(true),
		Source: &types.Source{SourceType: types.TrustAnchorTypeCertificateBundle, SourceData: &types.SourceDataMemberX509CertificateData{Value: certPEM(other.root)}}})
	mustOK(t, err)
	ta3, err := f.ra.CreateTrustAnchor(ctx, &rolesanywhere.CreateTrustAnchorInput{Name: aws.String("disabled"), Enabled: aws.Bool(false),
		Source: &types.Source{SourceType: types.TrustAnchorTypeCertificateBundle, SourceData: &types.SourceDataMemberX509CertificateData{Value: certPEM(f.pki.root)}}})
	mustOK(t, err)
	noSessionName := f.profileArn
	disabledProfile, err := f.ra.CreateProfile(ctx, &rolesanywhere.CreateProfileInput{Name: aws.String("off"), Enabled: aws.Bool(false), RoleArns: []string{testRoleArn}})
	mustOK(t, err)
	instanceProfile, err := f.ra.CreateProfile(ctx, &rolesanywhere.CreateProfileInput{Name: aws.String("instance"), Enabled: aws.Bool(true),
		RoleArns: []string{testRoleArn}, RequireInstanceProperties: aws.Bool(true)})
	mustOK(t, err)

	tests := []struct {
		name    string
		leaf    *x509.Certificate
		key     crypto.Signer
		edit    func(*sessionCall)
		status  int
		code    string
		message string // substring
	}{
		{"wrong trust anchor", good, goodKey, func(c *sessionCall) { c.trustAnchorArn = aws.ToString(ta2.TrustAnchor.TrustAnchorArn) }, 403, "AccessDeniedException", "Untrusted Signing Certificate"},
		{"unknown trust anchor", good, goodKey, func(c *sessionCall) {
			c.trustAnchorArn = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/00000000-0000-4000-8000-000000000000"
		}, 403, "AccessDeniedException", "Untrusted Signing Certificate"},
		{"disabled trust anchor", good, goodKey, func(c *sessionCall) { c.trustAnchorArn = aws.ToString(ta3.TrustAnchor.TrustAnchorArn) }, 403, "AccessDeniedException", "disabled"},
		{"missing intermediate", good, goodKey, func(c *sessionCall) { c.chain = nil }, 403, "AccessDeniedException", "Untrusted Signing Certificate"},
		{"expired certificate", expired, expiredKey, nil, 403, "AccessDeniedException", "expired"},
		{"leaf without digitalSignature", noDigSig, noDigSigKey, nil, 403, "AccessDeniedException", "digitalSignature"},
		{"leaf without keyUsage", noKU, noKUKey, nil, 403, "AccessDeniedException", "digitalSignature"},
		{"CA-flagged leaf", caLeaf, caLeafKey, nil, 403, "AccessDeniedException", "is a CA"},
		{"clock skew past", good, goodKey, func(c *sessionCall) { c.date = now.Add(-6 * time.Minute) }, 403, "AccessDeniedException", "Signature expired"},
		{"clock skew future", good, goodKey, func(c *sessionCall) { c.date = now.Add(6 * time.Minute) }, 403, "AccessDeniedException", "Signature expired"},
		{"wrong region scope", good, goodKey, func(c *sessionCall) { c.region = "eu-west-1" }, 403, "AccessDeniedException", "Invalid signature"},
		{"role not in profile", good, goodKey, func(c *sessionCall) { c.roleArn = "arn:aws:iam::123456789012:role/other" }, 403, "AccessDeniedException", "Role"},
		{"duration too short", good, goodKey, func(c *sessionCall) { c.body = `{"durationSeconds":899}` }, 400, "ValidationException", "durationSeconds"},
		{"duration too long", good, goodKey, func(c *sessionCall) { c.body = `{"durationSeconds":43201}` }, 400, "ValidationException", "durationSeconds"},
		{"roleSessionName not accepted", good, goodKey, func(c *sessionCall) {
			c.profileArn = noSessionName
			c.body = `{"durationSeconds":900,"roleSessionName":"mine"}`
		}, 403, "AccessDeniedException", "Not authorized to set roleSessionName."},
		{"disabled profile", good, goodKey, func(c *sessionCall) { c.profileArn = aws.ToString(disabledProfile.Profile.ProfileArn) }, 403, "AccessDeniedException", "disabled"},
		{"unknown profile", good, goodKey, func(c *sessionCall) {
			c.profileArn = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/00000000-0000-4000-8000-000000000000"
		}, 404, "ResourceNotFoundException", "Profile"},
		{"instance properties required", good, goodKey, func(c *sessionCall) { c.profileArn = aws.ToString(instanceProfile.Profile.ProfileArn) }, 403, "AccessDeniedException", "Instance properties"},
		{"chain over five", good, goodKey, func(c *sessionCall) {
			c.chain = []*x509.Certificate{f.pki.issuing, f.pki.issuing, f.pki.issuing, f.pki.issuing, f.pki.issuing, f.pki.issuing}
		}, 400, "ValidationException", "at most 5"},
		{"malformed ARN", good, goodKey, func(c *sessionCall) { c.profileArn = "not-an-arn" }, 400, "ValidationException", "profileArn"},
		{"unknown body field", good, goodKey, func(c *sessionCall) { c.body = `{"durationSeconds":900,"bogus":1}` }, 400, "ValidationException", "bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, code, body := f.call(t, tt.leaf, tt.key, tt.edit)
			if status != tt.status || code != tt.code || !strings.Contains(errorMessage(t, body), tt.message) {
				t.Fatalf("got %d %s %s, want %d %s containing %q", status, code, body, tt.status, tt.code, tt.message)
			}
		})
	}

	t.Run("raw r||s ECDSA signature", func(t *testing.T) {
		req := signSession(t, sessionCall{baseURL: f.ts.URL, trustAnchorArn: f.anchorArn, profileArn: f.profileArn, roleArn: testRoleArn,
			leaf: good, key: goodKey, chain: []*x509.Certificate{f.pki.issuing}})
		auth := req.Header.Get("Authorization")
		i := strings.LastIndex(auth, "Signature=") + len("Signature=")
		der, _ := hex.DecodeString(auth[i:])
		var rs struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(der, &rs); err != nil {
			t.Fatal(err)
		}
		raw := make([]byte, 64)
		rs.R.FillBytes(raw[:32])
		rs.S.FillBytes(raw[32:])
		req.Header.Set("Authorization", auth[:i]+hex.EncodeToString(raw))
		status, code, body := do(t, req)
		if status != 403 || code != "AccessDeniedException" || errorMessage(t, body) != "Invalid signature" {
			t.Fatalf("got %d %s %s", status, code, body)
		}
	})
	t.Run("algorithm does not match key", func(t *testing.T) {
		req := signSession(t, sessionCall{baseURL: f.ts.URL, trustAnchorArn: f.anchorArn, profileArn: f.profileArn, roleArn: testRoleArn,
			leaf: rsaLeaf, key: rsaKey, chain: []*x509.Certificate{f.pki.issuing}})
		req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "AWS4-X509-RSA-SHA256", "AWS4-X509-ECDSA-SHA256", 1))
		status, code, _ := do(t, req)
		if status != 403 || code != "AccessDeniedException" {
			t.Fatalf("got %d %s", status, code)
		}
	})
	t.Run("unsupported algorithm", func(t *testing.T) {
		req := signSession(t, sessionCall{baseURL: f.ts.URL, trustAnchorArn: f.anchorArn, profileArn: f.profileArn, roleArn: testRoleArn,
			leaf: good, key: goodKey, chain: []*x509.Certificate{f.pki.issuing}})
		req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "AWS4-X509-ECDSA-SHA256", "AWS4-X509-MLDSA", 1))
		status, code, _ := do(t, req)
		if status != 400 || code != "ValidationException" {
			t.Fatalf("got %d %s", status, code)
		}
	})
}

// TestCreateSessionParameters covers the accepted variations.
func TestCreateSessionParameters(t *testing.T) {
	f := newSessionFixture(t)
	ctx := context.Background()
	leaf, key := f.pki.issueLeaf(t, leafOpts{})
	_, err := f.ra.UpdateProfile(ctx, &rolesanywhere.UpdateProfileInput{ProfileId: aws.String(f.profileID),
		AcceptRoleSessionName: aws.Bool(true), DurationSeconds: aws.Int32(1800)})
	mustOK(t, err)

	t.Run("roleSessionName accepted and duration capped by the profile", func(t *testing.T) {
		before := time.Now().UTC().Truncate(time.Second)
		status, _, body := f.call(t, leaf, key, func(c *sessionCall) { c.body = `{"durationSeconds":3600,"roleSessionName":"my-session"}` })
		if status != 201 {
			t.Fatalf("%d %s", status, body)
		}
		cs := decodeSession(t, body).CredentialSet[0]
		if !strings.HasSuffix(cs.AssumedRoleUser.Arn, "/anchorage-test-role/my-session") {
			t.Errorf("arn = %s", cs.AssumedRoleUser.Arn)
		}
		exp, _ := time.Parse(time.RFC3339, cs.Credentials.Expiration)
		if d := exp.Sub(before); d < 1799*time.Second || d > 1802*time.Second {
			t.Errorf("duration = %s, want 1800s", d)
		}
	})
	t.Run("ARNs in the body, no query", func(t *testing.T) {
		body := `{"profileArn":"` + f.profileArn + `","roleArn":"` + testRoleArn + `","trustAnchorArn":"` + f.anchorArn + `"}`
		status, _, out := do(t, signSession(t, sessionCall{baseURL: f.ts.URL, leaf: leaf, key: key,
			chain: []*x509.Certificate{f.pki.issuing}, body: body, noQuery: true}))
		if status != 201 {
			t.Fatalf("%d %s", status, out)
		}
	})
	t.Run("leaf repeated in the chain", func(t *testing.T) {
		status, _, body := f.call(t, leaf, key, func(c *sessionCall) { c.chain = []*x509.Certificate{leaf, f.pki.issuing} })
		if status != 201 {
			t.Fatalf("%d %s", status, body)
		}
	})
	t.Run("prefix path", func(t *testing.T) {
		status, _, body := f.call(t, leaf, key, func(c *sessionCall) { c.baseURL += "/some/prefix" })
		if status != 201 {
			t.Fatalf("%d %s", status, body)
		}
	})
}

// TestCreateSessionRevocation: a CRL listing the leaf denies it, disabling
// the CRL allows it again; a CRL of another CA does not apply; a CRL of the
// root revoking the issuing CA denies every leaf below it.
func TestCreateSessionRevocation(t *testing.T) {
	f := newSessionFixture(t)
	ctx := context.Background()
	leaf, key := f.pki.issueLeaf(t, leafOpts{})
	expect := func(t *testing.T, wantStatus int, wantMessage string) {
		t.Helper()
		status, code, body := f.call(t, leaf, key, nil)
		if status != wantStatus {
			t.Fatalf("got %d %s %s, want %d", status, code, body, wantStatus)
		}
		if wantMessage != "" && !strings.Contains(strings.ToLower(errorMessage(t, body)), wantMessage) {
			t.Fatalf("message %s lacks %q", body, wantMessage)
		}
	}
	expect(t, 201, "")

	other := newPKI(t, "other")
	foreign, err := f.ra.ImportCrl(ctx, &rolesanywhere.ImportCrlInput{Name: aws.String("foreign"), Enabled: aws.Bool(true),
		TrustAnchorArn: aws.String(f.anchorArn), CrlData: other.crlPEM(t, 1, leaf.SerialNumber)})
	mustOK(t, err)
	expect(t, 201, "") // another CA's CRL does not apply

	imp, err := f.ra.ImportCrl(ctx, &rolesanywhere.ImportCrlInput{Name: aws.String("issuing"), Enabled: aws.Bool(true),
		TrustAnchorArn: aws.String(f.anchorArn), CrlData: f.pki.crlPEM(t, 1, big.NewInt(7), leaf.SerialNumber)})
	mustOK(t, err)
	expect(t, 403, "revoked")

	_, err = f.ra.DisableCrl(ctx, &rolesanywhere.DisableCrlInput{CrlId: imp.Crl.CrlId})
	mustOK(t, err)
	expect(t, 201, "")
	_, err = f.ra.EnableCrl(ctx, &rolesanywhere.EnableCrlInput{CrlId: imp.Crl.CrlId})
	mustOK(t, err)
	expect(t, 403, "revoked")
	_, err = f.ra.UpdateCrl(ctx, &rolesanywhere.UpdateCrlInput{CrlId: imp.Crl.CrlId, CrlData: f.pki.crlPEM(t, 2)})
	mustOK(t, err)
	expect(t, 201, "") // the new CRL no longer lists it

	// The root revokes the issuing CA: every leaf below it is refused.
	_, err = f.ra.DeleteCrl(ctx, &rolesanywhere.DeleteCrlInput{CrlId: foreign.Crl.CrlId})
	mustOK(t, err)
	rootCRL := (&testPKI{issuing: f.pki.root, issuingKey: f.pki.rootKey}).crlPEM(t, 1, f.pki.issuing.SerialNumber)
	_, err = f.ra.ImportCrl(ctx, &rolesanywhere.ImportCrlInput{Name: aws.String("root"), Enabled: aws.Bool(true),
		TrustAnchorArn: aws.String(f.anchorArn), CrlData: rootCRL})
	mustOK(t, err)
	expect(t, 403, "revoked")
}

// TestIssuedCredentials uses CreateSession's credentials with the real STS
// and Roles Anywhere SDK clients.
func TestIssuedCredentials(t *testing.T) {
	f := newSessionFixture(t)
	ctx := context.Background()
	leaf, key := f.pki.issueLeaf(t, leafOpts{})
	status, _, body := f.call(t, leaf, key, nil)
	if status != 201 {
		t.Fatalf("%d %s", status, body)
	}
	cs := decodeSession(t, body).CredentialSet[0]
	cr := cs.Credentials

	out, err := stsClient(f.ts.URL, cr.AccessKeyID, cr.SecretAccessKey, cr.SessionToken).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	mustOK(t, err)
	if aws.ToString(out.Arn) != cs.AssumedRoleUser.Arn || aws.ToString(out.UserId) != cs.AssumedRoleUser.AssumedRoleID || aws.ToString(out.Account) != "123456789012" {
		t.Fatalf("caller identity = %s %s %s", aws.ToString(out.Arn), aws.ToString(out.UserId), aws.ToString(out.Account))
	}
	admin, err := stsClient(f.ts.URL, testAdminKey, testAdminSecret, "").GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	mustOK(t, err)
	if aws.ToString(admin.Arn) != "arn:aws:iam::123456789012:root" {
		t.Errorf("admin arn = %s", aws.ToString(admin.Arn))
	}
	// Session credentials also work on the control plane.
	_, err = raClient(f.ts.URL, cr.AccessKeyID, cr.SecretAccessKey, cr.SessionToken).ListTrustAnchors(ctx, &rolesanywhere.ListTrustAnchorsInput{})
	mustOK(t, err)

	tampered := []byte(cr.SecretAccessKey)
	tampered[5] ^= 1
	tests := []struct {
		name, akid, secret, token, code string
	}{
		{"tampered secret", cr.AccessKeyID, string(tampered), cr.SessionToken, "SignatureDoesNotMatch"},
		{"no session token", cr.AccessKeyID, cr.SecretAccessKey, "", "InvalidClientTokenId"},
		{"wrong session token", cr.AccessKeyID, cr.SecretAccessKey, cr.SessionToken + "x", "InvalidClientTokenId"},
		{"unknown key", "ASIAAAAAAAAAAAAAAAAA", cr.SecretAccessKey, cr.SessionToken, "InvalidClientTokenId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := stsClient(f.ts.URL, tt.akid, tt.secret, tt.token).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			wantCode(t, err, tt.code)
		})
	}
	t.Run("expired", func(t *testing.T) {
		f.clock.Set(time.Now().Add(16 * time.Minute)) // credentials last 900s
		defer f.clock.Set(time.Time{})
		_, err := stsClient(f.ts.URL, cr.AccessKeyID, cr.SecretAccessKey, cr.SessionToken).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		wantCode(t, err, "ExpiredToken")
		_, err = raClient(f.ts.URL, cr.AccessKeyID, cr.SecretAccessKey, cr.SessionToken, func(o *rolesanywhere.Options) {
			o.Retryer = aws.NopRetryer{}
		}).ListTrustAnchors(ctx, &rolesanywhere.ListTrustAnchorsInput{})
		wantCode(t, err, "ExpiredTokenException")
	})
}
