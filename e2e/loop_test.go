package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ra "github.com/aws/aws-sdk-go-v2/service/rolesanywhere"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/internal/testenv"
	"github.com/anchorage-pki/anchorage/rolesanywhere"
	"github.com/anchorage-pki/anchorage/storage"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// anchorageBin builds cmd/anchorage once for the tests that run it the way
// the AWS SDK does (credential_process).
func anchorageBin(t testing.TB) string {
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "anchorage-e2e-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "anchorage")
		if out, err := exec.Command("go", "build", "-o", binPath, "../cmd/anchorage").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

type world struct {
	aws        *testenv.AWS
	ca         *testenv.CA
	anchor     string
	profile    string
	workDir    string
	sessionCfg rolesanywhere.Config
}

// newWorld starts the endpoint, creates the anchor and profile for a new
// CA, and starts that CA pushing its CRL to the anchor. configure may
// change the CA's config before it starts.
func newWorld(t testing.TB, configure ...func(*testenv.CA)) *world {
	w := &world{aws: testenv.StartAWS(t), ca: testenv.InitCA(t), workDir: t.TempDir()}
	w.anchor, w.profile = w.aws.Setup(t, w.ca.CACert(t))
	for _, f := range configure {
		f(w.ca)
	}
	w.ca.AddAnchor(t, w.anchor, w.aws.URL)
	w.ca.Start(t)
	w.sessionCfg = rolesanywhere.Config{TrustAnchorARN: w.anchor, ProfileARN: w.profile, RoleARN: testenv.RoleARN,
		Endpoint: w.aws.URL, SessionDuration: 900}
	w.ca.WaitAnchors(t, 1, 10*time.Second)
	return w
}

func (w *world) createSession(t testing.TB, certFile, keyFile string) (rolesanywhere.Credentials, error) {
	return rolesanywhere.FetchCredentials(context.Background(), rolesanywhere.Options{
		Client: w.sessionCfg, Source: rolesanywhere.SourceConfig{Certificate: certFile, PrivateKey: keyFile}})
}

func accessDenied(err error) bool {
	var ae *rolesanywhere.APIError
	return errors.As(err, &ae) && ae.StatusCode == 403 && ae.Code == "AccessDeniedException"
}

func callerIdentity(t testing.TB, w *world, provider aws.CredentialsProvider) (*sts.GetCallerIdentityOutput, error) {
	c := sts.New(sts.Options{Region: testenv.Region, BaseEndpoint: aws.String(w.aws.URL), Credentials: provider})
	return c.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
}

// TestRevokeReachesAnchorAndDenies is the product's loop: certificate →
// credentials → GetCallerIdentity; revoke → the anchor's CRL is updated →
// CreateSession denied.
func TestRevokeReachesAnchorAndDenies(t *testing.T) {
	w := newWorld(t)
	res, certFile, keyFile := w.ca.Enroll(t, w.workDir, "build-runner-1")
	creds, err := w.createSession(t, certFile, keyFile)
	if err != nil {
		t.Fatalf("CreateSession before revocation: %v", err)
	}
	id, err := callerIdentity(t, w, credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken))
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	if !strings.Contains(aws.ToString(id.Arn), "assumed-role/anchorage-e2e/") {
		t.Errorf("caller ARN %s", aws.ToString(id.Arn))
	}

	start := time.Now()
	rr, err := w.ca.Admin(t).Revoke(context.Background(), apiv1.RevokeRequest{Serial: res.Serial, Reason: "keyCompromise"})
	if err != nil {
		t.Fatal(err)
	}
	list := w.ca.WaitAnchors(t, rr.CRLNumber, 15*time.Second)
	if list.Anchors[0].LastError != "" {
		t.Errorf("anchor status after push: %+v", list.Anchors[0])
	}
	_, err = w.createSession(t, certFile, keyFile)
	if !accessDenied(err) {
		t.Fatalf("CreateSession after revocation: %v, want AccessDeniedException", err)
	}
	t.Logf("revoke → denied in %s", time.Since(start))

	// The anchor holds exactly one CRL from this CA: imported once, then updated.
	crls, err := w.aws.Client().ListCrls(context.Background(), &ra.ListCrlsInput{})
	if err != nil || len(crls.Crls) != 1 || !aws.ToBool(crls.Crls[0].Enabled) {
		t.Fatalf("ListCrls: %+v %v", crls, err)
	}
	if n := w.aws.Count("POST", "/crls"); n != 1 {
		t.Errorf("%d ImportCrl calls, want 1", n)
	}
	// /metrics shows the anchor current.
	if m := w.ca.Metrics(t); !strings.Contains(m, fmt.Sprintf("anchorage_trust_anchor_crl_number{anchor=%q} %d", w.anchor, rr.CRLNumber)) ||
		!strings.Contains(m, fmt.Sprintf("anchorage_trust_anchor_behind{anchor=%q} 0", w.anchor)) {
		t.Errorf("/metrics:\n%s", m)
	}
	// A second host is unaffected.
	_, c2, k2 := w.ca.Enroll(t, w.workDir, "build-runner-2")
	if _, err := w.createSession(t, c2, k2); err != nil {
		t.Errorf("unrevoked host: %v", err)
	}
}

// TestBurstOfRevocationsCoalesces: 50 revocations at once give few
// UpdateCrl calls and no throttling, and the anchor ends on the last CRL.
func TestBurstOfRevocationsCoalesces(t *testing.T) {
	w := newWorld(t)
	var serials []string
	for i := range 50 {
		res, _, _ := w.ca.Enroll(t, w.workDir, fmt.Sprintf("burst-%02d", i))
		serials = append(serials, res.Serial)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var maxCRL uint64
	for _, s := range serials {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rr, err := w.ca.Admin(t).Revoke(context.Background(), apiv1.RevokeRequest{Serial: s})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			maxCRL = max(maxCRL, rr.CRLNumber)
			mu.Unlock()
		}()
	}
	wg.Wait()
	list := w.ca.WaitAnchors(t, maxCRL, 30*time.Second)
	a := list.Anchors[0]
	updates := w.aws.Count("PATCH", "/crl")
	t.Logf("50 revocations → %d CRLs, %d UpdateCrl calls, throttled %d", maxCRL-1, updates, a.Throttled)
	if updates > 10 {
		t.Errorf("%d UpdateCrl calls for one burst; pushes should coalesce", updates)
	}
	if a.Throttled != 0 || a.LastError != "" {
		t.Errorf("anchor status %+v: no throttling expected", a)
	}
	// Every revoked serial is on the CRL the anchor holds.
	crls, err := w.aws.Client().ListCrls(context.Background(), &ra.ListCrlsInput{})
	if err != nil || len(crls.Crls) != 1 {
		t.Fatal(err)
	}
	pemText := string(crls.Crls[0].CrlData)
	cur := w.ca.Srv.CRL.Current()
	if cur.Number != maxCRL || pemText != string(cur.PEM) {
		t.Errorf("anchor holds a different CRL than the CA publishes (CA %d)", cur.Number)
	}
	if cur.Entries != 50 {
		t.Errorf("CRL has %d entries, want 50", cur.Entries)
	}
}

// TestEndpointDownThenBack: a push that fails while the endpoint is down
// lands once it returns, and the status says what happened meanwhile.
func TestEndpointDownThenBack(t *testing.T) {
	w := newWorld(t)
	res, certFile, keyFile := w.ca.Enroll(t, w.workDir, "flaky-host")
	w.aws.Stop()
	rr, err := w.ca.Admin(t).Revoke(context.Background(), apiv1.RevokeRequest{Serial: res.Serial})
	if err != nil {
		t.Fatal(err)
	}
	// While down: the anchor is behind, with a readable error.
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := w.ca.Admin(t).Anchors(context.Background())
		if err == nil && list.Anchors[0].LastError != "" {
			if list.Anchors[0].CRLNumber >= rr.CRLNumber {
				t.Fatalf("anchor reported current while the endpoint was down: %+v", list.Anchors[0])
			}
			if !strings.Contains(list.Anchors[0].LastError, "connection refused") {
				t.Errorf("last error %q should say why", list.Anchors[0].LastError)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no push failure recorded: %+v %v", list, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// /metrics shows the lag and the error, as an alert would read them.
	m := w.ca.Scrape(t)
	if v, _ := m.Value("anchorage_trust_anchor_crl_lag", "anchor", w.anchor); v < 1 {
		t.Errorf("anchorage_trust_anchor_crl_lag = %v while the endpoint is down", v)
	}
	if v, ok := m.Value("anchorage_trust_anchor_last_error_info", "anchor", w.anchor); v != 1 || !ok {
		t.Errorf("anchorage_trust_anchor_last_error_info = %v (%v) while the endpoint is down", v, ok)
	}
	if v, _ := m.Value("anchorage_trust_anchor_push_duration_seconds", "anchor", w.anchor, "result", "error"); v < 1 {
		t.Errorf("no failed push in anchorage_trust_anchor_push_duration_seconds")
	}
	time.Sleep(1500 * time.Millisecond)
	w.aws.Start(t)
	list := w.ca.WaitAnchors(t, rr.CRLNumber, 40*time.Second)
	if list.Anchors[0].LastError != "" {
		t.Errorf("error not cleared after success: %+v", list.Anchors[0])
	}
	m = w.ca.Scrape(t)
	if v, _ := m.Value("anchorage_trust_anchor_crl_lag", "anchor", w.anchor); v != 0 {
		t.Errorf("anchorage_trust_anchor_crl_lag = %v after the push landed", v)
	}
	if _, ok := m.Value("anchorage_trust_anchor_last_error_info", "anchor", w.anchor); ok {
		t.Errorf("anchorage_trust_anchor_last_error_info still present after a successful push")
	}
	if _, err := w.createSession(t, certFile, keyFile); !accessDenied(err) {
		t.Errorf("after the endpoint returned: %v", err)
	}
}

// TestRestartMidPush: the CA stops while an anchor is behind; after a
// restart the push completes, and no duplicate CRL is imported — also when
// the saved status lost the CRL id (a crash between ImportCrl and the
// status write).
func TestRestartMidPush(t *testing.T) {
	w := newWorld(t)
	res, certFile, keyFile := w.ca.Enroll(t, w.workDir, "restart-host")
	w.aws.Stop()
	rr, err := w.ca.Admin(t).Revoke(context.Background(), apiv1.RevokeRequest{Serial: res.Serial})
	if err != nil {
		t.Fatal(err)
	}
	w.ca.Stop()
	// Forget the CRL id, as if the CA died right after ImportCrl.
	db, err := storage.Open(w.ca.Cfg.Path(w.ca.Cfg.Paths.DB))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := db.AnchorStatuses(context.Background())
	s := st[w.anchor]
	if s.CRLNumber >= rr.CRLNumber {
		t.Fatalf("status claims CRL %d was pushed while the endpoint was down", s.CRLNumber)
	}
	s.CRLID = ""
	db.PutAnchorStatus(context.Background(), s)
	db.Close()

	w.aws.Start(t)
	w.ca.Start(t)
	list := w.ca.WaitAnchors(t, rr.CRLNumber, 30*time.Second)
	if list.Anchors[0].CRLID == "" {
		t.Error("CRL id not recovered")
	}
	crls, err := w.aws.Client().ListCrls(context.Background(), &ra.ListCrlsInput{})
	if err != nil || len(crls.Crls) != 1 {
		t.Fatalf("anchor holds %d CRLs after restart, want 1 (%v)", len(crls.Crls), err)
	}
	if n := w.aws.Count("POST", "/crls"); n != 1 {
		t.Errorf("%d ImportCrl calls, want 1", n)
	}
	if _, err := w.createSession(t, certFile, keyFile); !accessDenied(err) {
		t.Errorf("after restart: %v", err)
	}
}

// TestCredentialProcessWithSDK: the SDK's credential_process provider runs
// `anchorage credential-process` from a real config file; the credentials
// pass GetCallerIdentity on the local endpoint.
func TestCredentialProcessWithSDK(t *testing.T) {
	w := newWorld(t)
	_, certFile, keyFile := w.ca.Enroll(t, w.workDir, "sdk-host")
	bin := anchorageBin(t)
	cfgFile := filepath.Join(w.workDir, "aws-config")
	line := fmt.Sprintf("%s credential-process --certificate %s --private-key %s --trust-anchor-arn %s --profile-arn %s --role-arn %s --endpoint %s",
		bin, certFile, keyFile, w.anchor, w.profile, testenv.RoleARN, w.aws.URL)
	if err := os.WriteFile(cfgFile, []byte("[profile e2e]\nregion = us-east-1\ncredential_process = "+line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", cfgFile)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(w.workDir, "none"))
	t.Setenv("XDG_RUNTIME_DIR", w.workDir) // credential-process's cache, not the user's
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithSharedConfigProfile("e2e"))
	if err != nil {
		t.Fatal(err)
	}
	c := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(w.aws.URL) })
	id, err := c.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity through credential_process: %v", err)
	}
	if aws.ToString(id.Account) != "123456789012" || !strings.Contains(aws.ToString(id.Arn), ":assumed-role/anchorage-e2e/") {
		t.Errorf("identity %s %s", aws.ToString(id.Account), aws.ToString(id.Arn))
	}
}

// percentile of sorted durations (nearest rank).
func percentile(d []time.Duration, p float64) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	i := int(float64(len(d))*p+0.999999) - 1
	return d[max(0, min(i, len(d)-1))]
}

// TestReloadAddsAnchor: a trust anchor added to config.json while the CA
// runs is picked up by Reload (SIGHUP) and gets the current CRL.
func TestReloadAddsAnchor(t *testing.T) {
	endpoint := testenv.StartAWS(t)
	c := testenv.InitCA(t)
	c.Start(t)
	if list, err := c.Admin(t).Anchors(context.Background()); err != nil || len(list.Anchors) != 0 {
		t.Fatalf("anchors before: %+v %v", list, err)
	}
	anchor, _ := endpoint.Setup(t, c.CACert(t))
	c.AddAnchor(t, anchor, endpoint.URL)
	if err := c.Srv.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	list := c.WaitAnchors(t, c.Srv.CRL.Current().Number, 15*time.Second)
	if len(list.Anchors) != 1 || list.Anchors[0].ARN != anchor {
		t.Errorf("after reload: %+v", list)
	}
	// A broken config is refused and changes nothing.
	if err := os.WriteFile(filepath.Join(c.Dir, "config.json"), []byte(`{"bogus": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Srv.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), `unknown key "bogus"`) {
		t.Errorf("reload of a bad config: %v", err)
	}
	if list, _ := c.Admin(t).Anchors(context.Background()); len(list.Anchors) != 1 {
		t.Errorf("a failed reload changed the anchors: %+v", list)
	}
}
