package localaws

import (
	"bytes"
	"context"
	"errors"
	"math/big"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/rolesanywhere"
	"github.com/aws/aws-sdk-go-v2/service/rolesanywhere/types"
	"github.com/aws/smithy-go"
)

// errorCode returns the AWS error code the SDK decoded, or "".
func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := errorCode(err); got != code {
		t.Fatalf("error = %v (code %q), want code %s", err, got, code)
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var (
	trustAnchorArnRE = regexp.MustCompile(`^arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/[0-9a-f-]{36}$`)
	profileArnRE     = regexp.MustCompile(`^arn:aws:rolesanywhere:us-east-1:123456789012:profile/[0-9a-f-]{36}$`)
	crlArnRE         = regexp.MustCompile(`^arn:aws:rolesanywhere:us-east-1:123456789012:crl/[0-9a-f-]{36}$`)
)

// TestControlPlaneSDK drives every implemented operation through the real
// aws-sdk-go-v2 rolesanywhere client.
func TestControlPlaneSDK(t *testing.T) {
	ctx := context.Background()
	_, ts := startServer(t, Config{})
	c := raClient(ts.URL, testAdminKey, testAdminSecret, "")
	pki := newPKI(t, "sdk")

	ta, err := c.CreateTrustAnchor(ctx, &rolesanywhere.CreateTrustAnchorInput{
		Name:    aws.String("anchorage root"),
		Enabled: aws.Bool(true),
		Source: &types.Source{SourceType: types.TrustAnchorTypeCertificateBundle,
			SourceData: &types.SourceDataMemberX509CertificateData{Value: certPEM(pki.root)}},
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("pki")}},
	})
	mustOK(t, err)
	anchor := ta.TrustAnchor
	if !trustAnchorArnRE.MatchString(aws.ToString(anchor.TrustAnchorArn)) || !aws.ToBool(anchor.Enabled) || anchor.CreatedAt == nil {
		t.Fatalf("trust anchor = %+v", anchor)
	}
	if sd, ok := anchor.Source.SourceData.(*types.SourceDataMemberX509CertificateData); !ok || sd.Value != certPEM(pki.root) {
		t.Fatalf("source data = %#v", anchor.Source.SourceData)
	}
	if len(anchor.NotificationSettings) != 2 {
		t.Errorf("notification settings = %+v", anchor.NotificationSettings)
	}

	got, err := c.GetTrustAnchor(ctx, &rolesanywhere.GetTrustAnchorInput{TrustAnchorId: anchor.TrustAnchorId})
	mustOK(t, err)
	if aws.ToString(got.TrustAnchor.Name) != "anchorage root" {
		t.Fatalf("get = %+v", got.TrustAnchor)
	}
	up, err := c.UpdateTrustAnchor(ctx, &rolesanywhere.UpdateTrustAnchorInput{TrustAnchorId: anchor.TrustAnchorId, Name: aws.String("renamed")})
	mustOK(t, err)
	if aws.ToString(up.TrustAnchor.Name) != "renamed" {
		t.Fatalf("update = %+v", up.TrustAnchor)
	}
	dis, err := c.DisableTrustAnchor(ctx, &rolesanywhere.DisableTrustAnchorInput{TrustAnchorId: anchor.TrustAnchorId})
	mustOK(t, err)
	en, err2 := c.EnableTrustAnchor(ctx, &rolesanywhere.EnableTrustAnchorInput{TrustAnchorId: anchor.TrustAnchorId})
	mustOK(t, err2)
	if aws.ToBool(dis.TrustAnchor.Enabled) || !aws.ToBool(en.TrustAnchor.Enabled) {
		t.Fatal("enable/disable trust anchor did not toggle")
	}
	list, err := c.ListTrustAnchors(ctx, &rolesanywhere.ListTrustAnchorsInput{})
	mustOK(t, err)
	if len(list.TrustAnchors) != 1 || list.NextToken != nil {
		t.Fatalf("list = %+v", list)
	}

	prof, err := c.CreateProfile(ctx, &rolesanywhere.CreateProfileInput{
		Name: aws.String("workloads"), RoleArns: []string{testRoleArn}, DurationSeconds: aws.Int32(3600), Enabled: aws.Bool(true),
	})
	mustOK(t, err)
	p := prof.Profile
	if !profileArnRE.MatchString(aws.ToString(p.ProfileArn)) || aws.ToInt32(p.DurationSeconds) != 3600 || len(p.AttributeMappings) != 3 {
		t.Fatalf("profile = %+v", p)
	}
	pu, err := c.UpdateProfile(ctx, &rolesanywhere.UpdateProfileInput{ProfileId: p.ProfileId, DurationSeconds: aws.Int32(1800), AcceptRoleSessionName: aws.Bool(true)})
	mustOK(t, err)
	if aws.ToInt32(pu.Profile.DurationSeconds) != 1800 || !aws.ToBool(pu.Profile.AcceptRoleSessionName) {
		t.Fatalf("updated profile = %+v", pu.Profile)
	}
	pd, err := c.DisableProfile(ctx, &rolesanywhere.DisableProfileInput{ProfileId: p.ProfileId})
	mustOK(t, err)
	pe, err := c.EnableProfile(ctx, &rolesanywhere.EnableProfileInput{ProfileId: p.ProfileId})
	mustOK(t, err)
	if aws.ToBool(pd.Profile.Enabled) || !aws.ToBool(pe.Profile.Enabled) {
		t.Fatal("enable/disable profile did not toggle")
	}
	_, err = c.GetProfile(ctx, &rolesanywhere.GetProfileInput{ProfileId: p.ProfileId})
	mustOK(t, err)
	pl, err := c.ListProfiles(ctx, &rolesanywhere.ListProfilesInput{})
	mustOK(t, err)
	if len(pl.Profiles) != 1 {
		t.Fatalf("profiles = %+v", pl.Profiles)
	}

	crl1 := pki.crlPEM(t, 1, big.NewInt(42))
	imp, err := c.ImportCrl(ctx, &rolesanywhere.ImportCrlInput{Name: aws.String("issuing"), CrlData: crl1,
		TrustAnchorArn: anchor.TrustAnchorArn, Enabled: aws.Bool(true)})
	mustOK(t, err)
	crl := imp.Crl
	if !crlArnRE.MatchString(aws.ToString(crl.CrlArn)) || !bytes.Equal(crl.CrlData, crl1) || !aws.ToBool(crl.Enabled) ||
		aws.ToString(crl.TrustAnchorArn) != aws.ToString(anchor.TrustAnchorArn) {
		t.Fatalf("crl = %+v", crl)
	}
	crl2 := pki.crlPEM(t, 2, big.NewInt(42), big.NewInt(43))
	uc, err := c.UpdateCrl(ctx, &rolesanywhere.UpdateCrlInput{CrlId: crl.CrlId, CrlData: crl2, Name: aws.String("issuing-2")})
	mustOK(t, err)
	if !bytes.Equal(uc.Crl.CrlData, crl2) || aws.ToString(uc.Crl.Name) != "issuing-2" {
		t.Fatalf("updated crl = %+v", uc.Crl)
	}
	cd, err := c.DisableCrl(ctx, &rolesanywhere.DisableCrlInput{CrlId: crl.CrlId})
	mustOK(t, err)
	ce, err := c.EnableCrl(ctx, &rolesanywhere.EnableCrlInput{CrlId: crl.CrlId})
	mustOK(t, err)
	if aws.ToBool(cd.Crl.Enabled) || !aws.ToBool(ce.Crl.Enabled) {
		t.Fatal("enable/disable CRL did not toggle")
	}
	second, err := c.ImportCrl(ctx, &rolesanywhere.ImportCrlInput{Name: aws.String("root"), CrlData: crl1, TrustAnchorArn: anchor.TrustAnchorArn})
	mustOK(t, err)
	if aws.ToBool(second.Crl.Enabled) {
		t.Error("enabled must default to false when omitted")
	}
	_, err = c.ImportCrl(ctx, &rolesanywhere.ImportCrlInput{Name: aws.String("third"), CrlData: crl1, TrustAnchorArn: anchor.TrustAnchorArn})
	wantCode(t, err, "ValidationException")

	// Paging: two CRLs, one per page.
	page1, err := c.ListCrls(ctx, &rolesanywhere.ListCrlsInput{PageSize: aws.Int32(1)})
	mustOK(t, err)
	if len(page1.Crls) != 1 || page1.NextToken == nil {
		t.Fatalf("page 1 = %+v", page1)
	}
	page2, err := c.ListCrls(ctx, &rolesanywhere.ListCrlsInput{PageSize: aws.Int32(1), NextToken: page1.NextToken})
	mustOK(t, err)
	if len(page2.Crls) != 1 || page2.NextToken != nil || aws.ToString(page2.Crls[0].CrlId) == aws.ToString(page1.Crls[0].CrlId) {
		t.Fatalf("page 2 = %+v", page2)
	}
	gc, err := c.GetCrl(ctx, &rolesanywhere.GetCrlInput{CrlId: crl.CrlId})
	mustOK(t, err)
	if !bytes.Equal(gc.Crl.CrlData, crl2) {
		t.Fatal("GetCrl returned other data")
	}

	// Deletes, then 404s.
	_, err = c.DeleteCrl(ctx, &rolesanywhere.DeleteCrlInput{CrlId: crl.CrlId})
	mustOK(t, err)
	_, err = c.GetCrl(ctx, &rolesanywhere.GetCrlInput{CrlId: crl.CrlId})
	wantCode(t, err, "ResourceNotFoundException")
	var rnf *types.ResourceNotFoundException
	if !errors.As(err, &rnf) {
		t.Errorf("SDK did not decode a typed ResourceNotFoundException: %T", err)
	}
	_, err = c.DeleteProfile(ctx, &rolesanywhere.DeleteProfileInput{ProfileId: p.ProfileId})
	mustOK(t, err)
	_, err = c.GetProfile(ctx, &rolesanywhere.GetProfileInput{ProfileId: p.ProfileId})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = c.DeleteTrustAnchor(ctx, &rolesanywhere.DeleteTrustAnchorInput{TrustAnchorId: anchor.TrustAnchorId})
	mustOK(t, err)
	_, err = c.GetCrl(ctx, &rolesanywhere.GetCrlInput{CrlId: second.Crl.CrlId})
	wantCode(t, err, "ResourceNotFoundException") // deleted with its anchor
	_, err = c.GetTrustAnchor(ctx, &rolesanywhere.GetTrustAnchorInput{TrustAnchorId: anchor.TrustAnchorId})
	wantCode(t, err, "ResourceNotFoundException")
}

// TestControlPlaneValidation checks the refusals of bad input.
func TestControlPlaneValidation(t *testing.T) {
	ctx := context.Background()
	_, ts := startServer(t, Config{})
	c := raClient(ts.URL, testAdminKey, testAdminSecret, "")
	pki := newPKI(t, "validation")
	leaf, _ := pki.issueLeaf(t, leafOpts{})
	source := func(pemData string) *types.Source {
		return &types.Source{SourceType: types.TrustAnchorTypeCertificateBundle, SourceData: &types.SourceDataMemberX509CertificateData{Value: pemData}}
	}
	ta, err := c.CreateTrustAnchor(ctx, &rolesanywhere.CreateTrustAnchorInput{Name: aws.String("ok"), Source: source(certPEM(pki.root)), Enabled: aws.Bool(true)})
	mustOK(t, err)

	bigCRL := pki.crlPEM(t, 9, manySerials(7000)...)
	if len(bigCRL) <= maxCRLBytes {
		t.Fatalf("test CRL is only %d bytes", len(bigCRL))
	}
	tests := []struct {
		name string
		call func() error
	}{
		{"bad name", func() error {
			_, err := c.CreateTrustAnchor(ctx, &rolesanywhere.CreateTrustAnchorInput{Name: aws.String("no/slash"), Source: source(certPEM(pki.root))})
			return err
		}},
		{"anchor is not a CA", func() error {
			_, err := c.CreateTrustAnchor(ctx, &rolesanywhere.CreateTrustAnchorInput{Name: aws.String("leaf"), Source: source(certPEM(leaf))})
			return err
		}},
		{"three anchor certificates", func() error {
			_, err := c.CreateTrustAnchor(ctx, &rolesanywhere.CreateTrustAnchorInput{Name: aws.String("three"), Source: source(certPEM(pki.root, pki.issuing, pki.root))})
			return err
		}},
		{"ACM PCA source", func() error {
			_, err := c.CreateTrustAnchor(ctx, &rolesanywhere.CreateTrustAnchorInput{Name: aws.String("pca"), Source: &types.Source{
				SourceType: types.TrustAnchorTypeAwsAcmPca, SourceData: &types.SourceDataMemberAcmPcaArn{Value: "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/x"}}})
			return err
		}},
		{"profile duration", func() error {
			_, err := c.CreateProfile(ctx, &rolesanywhere.CreateProfileInput{Name: aws.String("p"), RoleArns: []string{testRoleArn}, DurationSeconds: aws.Int32(899)})
			return err
		}},
		{"profile role ARN", func() error {
			_, err := c.CreateProfile(ctx, &rolesanywhere.CreateProfileInput{Name: aws.String("p"), RoleArns: []string{"arn:aws:iam::123:user/x"}})
			return err
		}},
		{"CRL not PEM", func() error {
			_, err := c.ImportCrl(ctx, &rolesanywhere.ImportCrlInput{Name: aws.String("x"), CrlData: []byte("not a crl"), TrustAnchorArn: ta.TrustAnchor.TrustAnchorArn})
			return err
		}},
		{"CRL is a certificate", func() error {
			_, err := c.ImportCrl(ctx, &rolesanywhere.ImportCrlInput{Name: aws.String("x"), CrlData: []byte(certPEM(pki.root)), TrustAnchorArn: ta.TrustAnchor.TrustAnchorArn})
			return err
		}},
		{"CRL over 300000 bytes", func() error {
			_, err := c.ImportCrl(ctx, &rolesanywhere.ImportCrlInput{Name: aws.String("big"), CrlData: bigCRL, TrustAnchorArn: ta.TrustAnchor.TrustAnchorArn})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantCode(t, tt.call(), "ValidationException") })
	}
	_, err = c.ImportCrl(ctx, &rolesanywhere.ImportCrlInput{Name: aws.String("x"), CrlData: pki.crlPEM(t, 1),
		TrustAnchorArn: aws.String("arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/00000000-0000-4000-8000-000000000000")})
	wantCode(t, err, "ResourceNotFoundException")
}

func manySerials(n int) []*big.Int {
	out := make([]*big.Int, n)
	for i := range out {
		out[i] = new(big.Int).Lsh(big.NewInt(int64(i+1)), 100)
	}
	return out
}

// withinASecond runs first, then second, and returns second's error. A
// 1/s quota refuses second only if it lands within a second of first's
// call: when a loaded machine took longer the bucket may have refilled and
// the pair says nothing, so it is run again, once the bucket is full, up
// to five times.
func withinASecond(t *testing.T, first func(), second func() error) error {
	t.Helper()
	for try := 1; ; try++ {
		start := time.Now()
		first()
		err := second()
		if time.Since(start) < time.Second {
			return err
		}
		if try == 5 {
			t.Fatalf("%d tries, none made its calls within a second", try)
		}
		time.Sleep(1100 * time.Millisecond)
	}
}

// TestControlPlaneThrottling checks the 1/s group quota as the SDK sees it.
func TestControlPlaneThrottling(t *testing.T) {
	ctx := context.Background()
	_, ts := startServer(t, Config{RateLimits: RateLimits{CRL: 1, TrustAnchor: 1, Profile: 1, CreateSession: 10}})
	c := raClient(ts.URL, testAdminKey, testAdminSecret, "", func(o *rolesanywhere.Options) { o.Retryer = aws.NopRetryer{} })

	err := withinASecond(t, func() {
		_, err := c.ListTrustAnchors(ctx, &rolesanywhere.ListTrustAnchorsInput{})
		mustOK(t, err)
	}, func() error {
		_, err := c.ListTrustAnchors(ctx, &rolesanywhere.ListTrustAnchorsInput{})
		return err
	})
	wantCode(t, err, "ThrottlingException")
	if retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) != aws.TrueTernary {
		t.Errorf("the SDK retryer does not classify %v as throttling", err)
	}
	var re *smithy.OperationError
	if !errors.As(err, &re) {
		t.Errorf("not an operation error: %T", err)
	}
	// Groups are separate quotas.
	_, err = c.ListProfiles(ctx, &rolesanywhere.ListProfilesInput{})
	mustOK(t, err)
	_, err = c.ListCrls(ctx, &rolesanywhere.ListCrlsInput{})
	mustOK(t, err)
	time.Sleep(1100 * time.Millisecond)
	_, err = c.ListTrustAnchors(ctx, &rolesanywhere.ListTrustAnchorsInput{})
	mustOK(t, err)
}

// TestControlPlaneAuth checks refusals of unsigned and badly signed calls.
func TestControlPlaneAuth(t *testing.T) {
	ctx := context.Background()
	_, ts := startServer(t, Config{})

	resp, err := testHTTP.Get(ts.URL + "/trustanchors")
	mustOK(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("x-amzn-ErrorType") != "MissingAuthenticationTokenException" {
		t.Fatalf("unsigned: %d %s", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
	}
	tests := []struct {
		name, akid, secret, token, code string
	}{
		{"wrong secret", testAdminKey, testAdminSecret + "x", "", "InvalidSignatureException"},
		{"unknown key", "AKIDUNKNOWN000000000", testAdminSecret, "", "UnrecognizedClientException"},
		{"admin key with a token", testAdminKey, testAdminSecret, "token", "UnrecognizedClientException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := raClient(ts.URL, tt.akid, tt.secret, tt.token, func(o *rolesanywhere.Options) { o.Retryer = aws.NopRetryer{} })
			_, err := c.ListTrustAnchors(ctx, &rolesanywhere.ListTrustAnchorsInput{})
			wantCode(t, err, tt.code)
		})
	}
	wrongRegion := raClient(ts.URL, testAdminKey, testAdminSecret, "", func(o *rolesanywhere.Options) {
		o.Region = "eu-west-1"
		o.Retryer = aws.NopRetryer{}
	})
	_, err = wrongRegion.ListTrustAnchors(ctx, &rolesanywhere.ListTrustAnchorsInput{})
	wantCode(t, err, "InvalidSignatureException")
}
