package localaws

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/rolesanywhere"
	"github.com/aws/aws-sdk-go-v2/service/rolesanywhere/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Test-only helpers: a small PKI, an independent AWS4-X509 signer (the
// product's client signer lives elsewhere and is deliberately not used, so a
// shared bug cannot hide), and real servers on 127.0.0.1.

const (
	testAdminKey    = "AKIDLOCALAWSTEST0001"
	testAdminSecret = "localaws/test/secret/key/not/real/000000"
	testRoleArn     = "arn:aws:iam::123456789012:role/anchorage-test-role"
)

// serverWait bounds each exchange with a server under test, so one that
// stops answering fails the test instead of hanging it.
const serverWait = 10 * time.Second

// testHTTP is the HTTP client of the tests and of the SDK clients below.
var testHTTP = &http.Client{Timeout: serverWait}

// testClock is a settable clock for Config.Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		return time.Now()
	}
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// testLogger sends server logs to the test log, so a failure shows reasons.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startServer runs a Server on a real loopback listener.
func startServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	if cfg.AccessKeyID == "" {
		cfg.AccessKeyID, cfg.SecretAccessKey = testAdminKey, testAdminSecret
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.RateLimits == (RateLimits{}) {
		cfg.RateLimits = NoRateLimits
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return srv, ts
}

func raClient(url, akid, secret, token string, opts ...func(*rolesanywhere.Options)) *rolesanywhere.Client {
	cfg := aws.Config{Region: "us-east-1", HTTPClient: testHTTP, Credentials: credentials.NewStaticCredentialsProvider(akid, secret, token)}
	return rolesanywhere.NewFromConfig(cfg, append([]func(*rolesanywhere.Options){func(o *rolesanywhere.Options) {
		o.BaseEndpoint = aws.String(url)
	}}, opts...)...)
}

func stsClient(url, akid, secret, token string) *sts.Client {
	cfg := aws.Config{Region: "us-east-1", HTTPClient: testHTTP, Credentials: credentials.NewStaticCredentialsProvider(akid, secret, token)}
	return sts.NewFromConfig(cfg, func(o *sts.Options) {
		o.BaseEndpoint = aws.String(url)
		o.Retryer = aws.NopRetryer{}
	})
}

// rolesAnywhereTrustPolicy is the trust policy AWS documents for a role
// used through Roles Anywhere: the service may assume it, tag the session
// and set its source identity.
const rolesAnywhereTrustPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",` +
	`"Principal":{"Service":"rolesanywhere.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]}]}`

func iamClient(url, akid, secret string) *iam.Client {
	cfg := aws.Config{Region: "us-east-1", HTTPClient: testHTTP, Credentials: credentials.NewStaticCredentialsProvider(akid, secret, "")}
	return iam.NewFromConfig(cfg, func(o *iam.Options) {
		o.BaseEndpoint = aws.String(url)
		o.Retryer = aws.NopRetryer{}
	})
}

// createRole creates role name (path /) with trust policy doc.
func createRole(t *testing.T, c *iam.Client, name, doc string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), serverWait)
	defer cancel()
	if _, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(doc)}); err != nil {
		t.Fatalf("CreateRole %s: %v", name, err)
	}
}

// testPKI is a root CA and an issuing CA below it.
type testPKI struct {
	root, issuing       *x509.Certificate
	rootKey, issuingKey *ecdsa.PrivateKey
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func randomSerial(t *testing.T) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}

func createCert(t *testing.T, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newPKI(t *testing.T, name string) *testPKI {
	t.Helper()
	now := time.Now()
	p := &testPKI{rootKey: newKey(t), issuingKey: newKey(t)}
	rootTmpl := &x509.Certificate{
		SerialNumber: randomSerial(t), Subject: pkix.Name{Organization: []string{"anchorage-test"}, CommonName: name + " Root CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	p.root = createCert(t, rootTmpl, rootTmpl, &p.rootKey.PublicKey, p.rootKey)
	p.issuing = createCert(t, &x509.Certificate{
		SerialNumber: randomSerial(t), Subject: pkix.Name{Organization: []string{"anchorage-test"}, CommonName: name + " Issuing CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(9 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, p.root, &p.issuingKey.PublicKey, p.rootKey)
	return p
}

// chain is what a client sends in X-Amz-X509-Chain.
func (p *testPKI) chain() []*x509.Certificate { return []*x509.Certificate{p.issuing} }

// anchorSource is a CERTIFICATE_BUNDLE source holding the PKI's root.
func anchorSource(p *testPKI) *types.Source {
	return &types.Source{SourceType: types.TrustAnchorTypeCertificateBundle,
		SourceData: &types.SourceDataMemberX509CertificateData{Value: certPEM(p.root)}}
}

// leafOpts varies one property of an otherwise good leaf.
type leafOpts struct {
	keyUsage  x509.KeyUsage // 0 = digitalSignature
	noKU      bool
	isCA      bool
	notBefore time.Time
	notAfter  time.Time
	cn        string
	rsaKey    bool
}

func (p *testPKI) issueLeaf(t *testing.T, o leafOpts) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	now := time.Now()
	if o.notBefore.IsZero() {
		o.notBefore = now.Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = now.Add(24 * time.Hour)
	}
	if o.cn == "" {
		o.cn = "test-host"
	}
	ku := o.keyUsage
	if ku == 0 && !o.noKU {
		ku = x509.KeyUsageDigitalSignature
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(t), Subject: pkix.Name{Organization: []string{"anchorage-test"}, CommonName: o.cn},
		NotBefore: o.notBefore, NotAfter: o.notAfter, KeyUsage: ku,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true, IsCA: o.isCA, DNSNames: []string{o.cn + ".example.test"},
	}
	var key crypto.Signer = newKey(t)
	if o.rsaKey {
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		key = rk
	}
	return createCert(t, tmpl, p.issuing, key.Public(), p.issuingKey), key
}

// crlPEM is a CRL from the issuing CA revoking serials.
func (p *testPKI) crlPEM(t *testing.T, number int64, serials ...*big.Int) []byte {
	t.Helper()
	now := time.Now()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: now.Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(number), ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(24 * time.Hour),
		RevokedCertificateEntries: entries,
	}, p.issuing, p.issuingKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

func certPEM(certs ...*x509.Certificate) string {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.String()
}

// sessionCall is one CreateSession request for the test signer.
type sessionCall struct {
	baseURL                             string
	trustAnchorArn, profileArn, roleArn string
	body                                string // JSON; default {"durationSeconds":900}
	leaf                                *x509.Certificate
	key                                 crypto.Signer
	chain                               []*x509.Certificate
	date                                time.Time // default now
	region                              string    // default us-east-1
	noQuery                             bool      // ARNs only in the body
}

// signSession builds and signs the request the way aws_signing_helper does
// (§3.3-3.6), independently of the server's code.
func signSession(t *testing.T, c sessionCall) *http.Request {
	t.Helper()
	if c.body == "" {
		c.body = `{"durationSeconds":900}`
	}
	if c.date.IsZero() {
		c.date = time.Now()
	}
	if c.region == "" {
		c.region = "us-east-1"
	}
	q := url.Values{"profileArn": {c.profileArn}, "roleArn": {c.roleArn}, "trustAnchorArn": {c.trustAnchorArn}}
	if c.noQuery {
		q = url.Values{}
	}
	target := c.baseURL + "/sessions"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	amzDate := c.date.UTC().Format("20060102T150405Z")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Amz-Date", amzDate)
	req.Header.Set("X-Amz-X509", base64.StdEncoding.EncodeToString(c.leaf.Raw))
	headers := "content-type:application/json\nhost:" + req.URL.Host + "\nx-amz-date:" + amzDate + "\nx-amz-x509:" + req.Header.Get("X-Amz-X509") + "\n"
	signed := "content-type;host;x-amz-date;x-amz-x509"
	if len(c.chain) > 0 {
		var parts []string
		for _, ch := range c.chain {
			parts = append(parts, base64.StdEncoding.EncodeToString(ch.Raw))
		}
		req.Header.Set("X-Amz-X509-Chain", strings.Join(parts, ","))
		headers += "x-amz-x509-chain:" + strings.Join(parts, ",") + "\n"
		signed += ";x-amz-x509-chain"
	}
	bodyHash := sha256.Sum256([]byte(c.body))
	canonical := strings.Join([]string{"POST", "/sessions", q.Encode(), headers, signed, hex.EncodeToString(bodyHash[:])}, "\n")
	alg := "AWS4-X509-ECDSA-SHA256"
	if _, ok := c.key.Public().(*rsa.PublicKey); ok {
		alg = "AWS4-X509-RSA-SHA256"
	}
	scope := amzDate[:8] + "/" + c.region + "/rolesanywhere/aws4_request"
	crHash := sha256.Sum256([]byte(canonical))
	sts := alg + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(crHash[:])
	digest := sha256.Sum256([]byte(sts))
	var sig []byte
	switch k := c.key.(type) {
	case *ecdsa.PrivateKey:
		sig, err = ecdsa.SignASN1(rand.Reader, k, digest[:])
	case *rsa.PrivateKey:
		sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", alg+" Credential="+c.leaf.SerialNumber.String()+"/"+scope+
		", SignedHeaders="+signed+", Signature="+hex.EncodeToString(sig))
	return req
}

// do sends req and returns status, the x-amzn-ErrorType header and body.
func do(t *testing.T, req *http.Request) (int, string, []byte) {
	t.Helper()
	resp, err := testHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("x-amzn-RequestId") == "" {
		t.Errorf("response has no x-amzn-RequestId")
	}
	return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), body
}
