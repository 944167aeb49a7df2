// Package testenv starts the real pieces of anchorage for end-to-end tests:
// a CA serving HTTPS on 127.0.0.1 with a bbolt file, and the local Roles
// Anywhere endpoint with a trust anchor and profile created through the AWS
// SDK, as a platform team would.
package testenv

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	ra "github.com/aws/aws-sdk-go-v2/service/rolesanywhere"
	"github.com/aws/aws-sdk-go-v2/service/rolesanywhere/types"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/caclient"
	"github.com/anchorage-pki/anchorage/caserver"
	"github.com/anchorage-pki/anchorage/ceremony"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/enroll"
	"github.com/anchorage-pki/anchorage/localaws"
	"github.com/anchorage-pki/anchorage/signer"
	"github.com/anchorage-pki/anchorage/storage"
	"github.com/anchorage-pki/anchorage/storage/postgres"
)

// wait bounds every wait on a server here, so a server that does not come
// up, answer or stop fails the test instead of hanging it until go test's
// own timeout.
const wait = 30 * time.Second

// Admin key pair of the local endpoint (test only).
const (
	AdminKeyID  = "AKIDANCHORAGETEST001"
	AdminSecret = "anchorage/test/secret/not/real/0000000000"
	RoleARN     = "arn:aws:iam::123456789012:role/anchorage-e2e"
	Region      = "us-east-1"
)

// AWS is a running local Roles Anywhere + STS endpoint.
type AWS struct {
	URL    string
	Server *localaws.Server

	addr    string
	mu      sync.Mutex
	srv     *http.Server
	counts  sync.Map // "METHOD path-prefix" -> *atomic.Int64
	handler http.Handler

	hold   atomic.Pointer[func(*http.Request) bool]
	wmu    sync.Mutex
	writes []CRLWrite
}

// CRLWrite is one ImportCrl or UpdateCrl the endpoint served.
type CRLWrite struct {
	Method string // POST: ImportCrl; PATCH: UpdateCrl
	Status int
	CRL    []byte // crlData as sent (PEM from anchorsync)
	At     time.Time
}

// HoldCRLWrites is a test-only hook: fn sees each ImportCrl and UpdateCrl
// before the endpoint serves it, and the request waits until fn returns.
// When fn returns false the request is dropped unserved, its connection
// cut, as a request lost on the way (what a caller killed meanwhile
// amounts to). nil removes the hook.
func (a *AWS) HoldCRLWrites(fn func(r *http.Request) bool) {
	if fn == nil {
		a.hold.Store(nil)
		return
	}
	a.hold.Store(&fn)
}

// CRLWrites returns the ImportCrl and UpdateCrl calls served so far, in
// the order they were answered.
func (a *AWS) CRLWrites() []CRLWrite {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	return append([]CRLWrite(nil), a.writes...)
}

// crlWrite serves an ImportCrl or UpdateCrl through the hook and records
// it.
func (a *AWS) crlWrite(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if fn := a.hold.Load(); fn != nil && !(*fn)(r) {
		panic(http.ErrAbortHandler)
	}
	var in struct {
		CRLData []byte `json:"crlData"`
	}
	_ = json.Unmarshal(body, &in)
	rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	a.Server.ServeHTTP(rec, r)
	a.wmu.Lock()
	a.writes = append(a.writes, CRLWrite{Method: r.Method, Status: rec.status, CRL: in.CRLData, At: time.Now()})
	a.wmu.Unlock()
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// StartAWS starts the endpoint with AWS's default rate limits.
func StartAWS(t testing.TB) *AWS {
	t.Helper()
	return StartAWSWithLimits(t, localaws.RateLimits{})
}

// StartAWSWithLimits starts the endpoint with the given rate limits
// (localaws.NoRateLimits for load tests that count every CreateSession).
func StartAWSWithLimits(t testing.TB, limits localaws.RateLimits) *AWS {
	t.Helper()
	s, err := localaws.New(localaws.Config{Region: Region, AccessKeyID: AdminKeyID, SecretAccessKey: AdminSecret,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RateLimits: limits})
	if err != nil {
		t.Fatal(err)
	}
	a := &AWS{Server: s}
	a.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + firstSegment(r.URL.Path)
		v, _ := a.counts.LoadOrStore(key, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
		if r.Method == http.MethodPost && r.URL.Path == "/crls" || r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/crl/") {
			a.crlWrite(w, r)
			return
		}
		s.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a.addr = ln.Addr().String()
	a.URL = "http://" + a.addr
	a.serve(ln)
	t.Cleanup(a.Stop)
	return a
}

func firstSegment(p string) string {
	for i := 1; i < len(p); i++ {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return p
}

func (a *AWS) serve(ln net.Listener) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.srv = &http.Server{Handler: a.handler}
	go a.srv.Serve(ln)
}

// Stop takes the endpoint down (connections refused) until Start.
func (a *AWS) Stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv != nil {
		a.srv.Close()
		a.srv = nil
	}
}

// Start brings a stopped endpoint back on the same address and state.
func (a *AWS) Start(t testing.TB) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", a.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	a.serve(ln)
}

// Count returns how many requests of method went to paths starting with
// prefix (e.g. "PATCH", "/crl").
func (a *AWS) Count(method, prefix string) int64 {
	v, ok := a.counts.Load(method + " " + prefix)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

// Client is an SDK control-plane client with the admin key. It shares the
// 1 request/s CRL quota with the CA's pusher, so it retries throttling
// patiently.
func (a *AWS) Client() *ra.Client {
	return ra.New(ra.Options{Region: Region, BaseEndpoint: aws.String(a.URL), RetryMaxAttempts: 10,
		Credentials: credentials.NewStaticCredentialsProvider(AdminKeyID, AdminSecret, "")})
}

// IAMClient is an SDK IAM client with the admin key.
func (a *AWS) IAMClient() *iam.Client {
	return iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(a.URL), RetryMaxAttempts: 3,
		Credentials: credentials.NewStaticCredentialsProvider(AdminKeyID, AdminSecret, "")})
}

// TrustPolicy is the trust policy Setup gives RoleARN: what AWS documents
// for a Roles Anywhere role (the service may assume it, tag the session and
// set the source identity), limited to the account's trust anchors.
const TrustPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",` +
	`"Principal":{"Service":"rolesanywhere.amazonaws.com"},` +
	`"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"],` +
	`"Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/*"}}}]}`

// Setup creates the IAM role RoleARN with TrustPolicy (once per endpoint),
// an enabled trust anchor for caPEM and a profile allowing RoleARN, and
// returns the anchor's and the profile's ARNs.
func (a *AWS) Setup(t testing.TB, caPEM []byte) (anchorARN, profileARN string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err := a.IAMClient().CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("anchorage-e2e"),
		AssumeRolePolicyDocument: aws.String(TrustPolicy)})
	var exists *iamtypes.EntityAlreadyExistsException
	if err != nil && !errors.As(err, &exists) {
		t.Fatalf("CreateRole: %v", err)
	}
	c := a.Client()
	ta, err := c.CreateTrustAnchor(ctx, &ra.CreateTrustAnchorInput{Name: aws.String("anchorage-e2e"), Enabled: aws.Bool(true),
		Source: &types.Source{SourceType: types.TrustAnchorTypeCertificateBundle,
			SourceData: &types.SourceDataMemberX509CertificateData{Value: string(caPEM)}}})
	if err != nil {
		t.Fatalf("CreateTrustAnchor: %v", err)
	}
	p, err := c.CreateProfile(ctx, &ra.CreateProfileInput{Name: aws.String("e2e"), Enabled: aws.Bool(true),
		RoleArns: []string{RoleARN}, DurationSeconds: aws.Int32(3600)})
	if err != nil {
		t.Fatalf("CreateProfile: %v", err)
	}
	return aws.ToString(ta.TrustAnchor.TrustAnchorArn), aws.ToString(p.Profile.ProfileArn)
}

// CA is a running CA.
type CA struct {
	Dir  string
	URL  string
	Cfg  *config.CA
	Srv  *caserver.Server
	Root []byte

	ln     net.Listener
	cancel context.CancelFunc
	done   chan error
	t      testing.TB // of the last Start, for Stop's report
}

// InitCA creates a CA directory (as anchorage-ca init does) bound to a
// free loopback port, without starting it.
func InitCA(t testing.TB) *CA {
	t.Helper()
	return InitCAWithKey(t, "")
}

// InitCAWithKey is InitCA with the issuing CA key at caKey, a signer
// reference (pkcs11:, tpm:, handle:) as `anchorage-ca init --ca-key` takes;
// "" means the default file.
func InitCAWithKey(t testing.TB, caKey string) *CA {
	t.Helper()
	return initCA(t, caKey, "")
}

// InitCAOnPostgres is InitCA with the CA's records in the PostgreSQL
// database at url ("storage.postgres" in its config) instead of a bbolt
// file.
func InitCAOnPostgres(t testing.TB, url string) *CA {
	t.Helper()
	return initCA(t, "", url)
}

func initCA(t testing.TB, caKey, pgURL string) *CA {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Name = "E2E"
	cfg.SetDir(dir)
	cfg.Listen = ln.Addr().String()
	cfg.URL = "https://" + ln.Addr().String()
	ln.Close()
	if caKey != "" {
		cfg.Paths.CAKey = caKey
	}
	var store caserver.Store
	if pgURL != "" {
		cfg.Storage = &config.Storage{Postgres: &config.Postgres{URL: pgURL}}
		store, err = postgres.Open(context.Background(), pgURL, postgres.Options{})
	} else {
		store, err = storage.Create(cfg.Path(cfg.Paths.DB))
	}
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Path
	_, err = ceremony.Init(context.Background(), ceremony.Options{Name: cfg.Name, Store: store, Files: ceremony.FilesFor(cfg)})
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Save(); err != nil {
		t.Fatal(err)
	}
	root, _ := os.ReadFile(p("root.crt"))
	return &CA{Dir: dir, URL: cfg.URL, Cfg: cfg, Root: root}
}

// CACert returns the issuing CA certificate PEM (the trust anchor's).
func (c *CA) CACert(t testing.TB) []byte {
	b, err := os.ReadFile(c.Cfg.Path(c.Cfg.Paths.CACert))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// AddAnchor configures a trust anchor (before Start).
func (c *CA) AddAnchor(t testing.TB, arn, endpoint string) {
	c.Cfg.TrustAnchors = append(c.Cfg.TrustAnchors, config.TrustAnchor{ARN: arn, Endpoint: endpoint})
	if err := c.Cfg.Save(); err != nil {
		t.Fatal(err)
	}
}

// Start opens and serves the CA; AWS credentials come from the
// environment, set here to the local endpoint's admin pair.
func (c *CA) Start(t testing.TB) {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", AdminKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", AdminSecret)
	t.Setenv("AWS_REGION", Region)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(c.Dir, "no-aws-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(c.Dir, "no-aws-credentials"))
	cfg, err := config.Load(c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	c.Cfg = cfg
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := caserver.Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var ln net.Listener
	for range 50 {
		if ln, err = net.Listen("tcp", cfg.Listen); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		cancel()
		srv.Close()
		t.Fatal(err)
	}
	c.Srv, c.ln, c.cancel, c.done, c.t = srv, ln, cancel, make(chan error, 1), t
	go func() { c.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(c.Stop)
	// One deadline for all attempts: each Health call alone may wait as
	// long as the client's timeout.
	up, upCancel := context.WithTimeout(context.Background(), wait)
	defer upCancel()
	for {
		_, err := c.Client(t, nil).Health(up)
		if err == nil {
			return
		}
		select {
		case <-up.Done():
			t.Fatalf("CA did not come up within %v: %v", wait, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop shuts the CA down (storage closed); Start may follow.
func (c *CA) Stop() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	select {
	case <-c.done:
	case <-time.After(wait):
		c.t.Errorf("CA did not stop within %v of its context ending", wait)
	}
	c.Srv.Close()
	c.cancel = nil
}

// Client returns an API client, presenting cert when non-nil.
func (c *CA) Client(t testing.TB, cert *tls.Certificate) *caclient.Client {
	cl, err := caclient.New(c.URL, filepath.Join(c.Dir, "root.crt"), cert)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// Admin returns an API client with the admin certificate.
func (c *CA) Admin(t testing.TB) *caclient.Client {
	pair, err := tls.LoadX509KeyPair(filepath.Join(c.Dir, "admin.crt"), filepath.Join(c.Dir, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	return c.Client(t, &pair)
}

// Enroll gets a certificate for name and writes name.crt / name.key into
// dir; it returns the enrollment response and the file paths.
func (c *CA) Enroll(t testing.TB, dir, name string) (res *apiv1.CertResponse, certFile, keyFile string) {
	t.Helper()
	pk, err := signer.Open(context.Background(), filepath.Join(c.Dir, "provisioner.key"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := enroll.Mint(pk, c.URL, name, nil, 10*time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := caclient.NewCSR(key, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err = c.Client(t, nil).Enroll(context.Background(), tok, csr)
	if err != nil {
		t.Fatalf("enroll %s: %v", name, err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := signer.WriteFile(keyFile, key); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, []byte(res.Chain), 0o644); err != nil {
		t.Fatal(err)
	}
	return res, certFile, keyFile
}

// Metrics returns the CA's /metrics text.
func (c *CA) Metrics(t testing.TB) string {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.Root)
	hc := &http.Client{Timeout: wait, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get(c.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// WaitAnchors waits until every anchor holds CRL number want.
func (c *CA) WaitAnchors(t testing.TB, want uint64, timeout time.Duration) *apiv1.AnchorList {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		list, err := c.Admin(t).Anchors(context.Background())
		if err == nil {
			ok := len(list.Anchors) > 0
			for _, a := range list.Anchors {
				ok = ok && a.CRLNumber >= want
			}
			if ok {
				return list
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("anchors did not reach CRL %d: %+v %v", want, list, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Replica returns another CA process on the same records: a copy of c's
// directory (keys, certificates, config) whose config differs only in its
// listen address, a fresh loopback port. cfg.URL, the name tokens are
// minted for, stays c's, as replicas behind one name share it; the
// returned CA's URL is its own address, for clients that pick a replica.
// It makes sense only for a CA on PostgreSQL. Call before any Start.
func (c *CA) Replica(t testing.TB) *CA {
	t.Helper()
	dir := t.TempDir()
	err := filepath.WalkDir(c.Dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(c.Dir, path)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), fi.Mode().Perm())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), b, fi.Mode().Perm()) // key files stay 0600
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = ln.Addr().String()
	ln.Close()
	if err := cfg.Save(); err != nil {
		t.Fatal(err)
	}
	return &CA{Dir: dir, URL: "https://" + cfg.Listen, Cfg: cfg, Root: c.Root}
}

// Families is a parsed /metrics scrape.
type Families map[string]*dto.MetricFamily

// Scrape reads /metrics and parses it with Prometheus's own text parser,
// so what the tests read is what a Prometheus server would.
func (c *CA) Scrape(t testing.TB) Families {
	t.Helper()
	return ParseMetrics(t, c.Metrics(t))
}

// ParseMetrics parses the Prometheus text format.
func ParseMetrics(t testing.TB, text string) Families {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, text)
	}
	return fams
}

// Value sums the samples of family name whose labels include the given
// name, value pairs: counters' and gauges' values, histograms' sample
// counts. ok is false if no sample matches.
func (f Families) Value(name string, labels ...string) (v float64, ok bool) {
	fam := f[name]
	if fam == nil {
		return 0, false
	}
	sum, found := 0.0, false
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && have[labels[i]] == labels[i+1]
		}
		if !match {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum, found
}
