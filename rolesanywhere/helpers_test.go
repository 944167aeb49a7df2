package rolesanywhere

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// vectors is the capture folder, relative to this package; localaws
// replays the same files, so they live once at the module root.
const vectors = "../testdata/rolesanywhere"

const (
	vecTrustAnchor = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/4f0c1d2e-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
	vecProfile     = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"
	vecRole        = "arn:aws:iam::123456789012:role/anchorage-vector-role"
)

func vec(parts ...string) string { return filepath.Join(append([]string{vectors}, parts...)...) }

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// capture is one requestN.raw: the parsed request and the exact body.
type capture struct {
	req  *http.Request
	body []byte
}

func readCapture(t testing.TB, folder string, n int) capture {
	t.Helper()
	raw := readFile(t, vec(folder, fmt.Sprintf("request%d.raw", n)))
	head, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("%s: no header/body split", folder)
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(append(head, "\r\n\r\n"...))))
	if err != nil {
		t.Fatalf("%s: %v", folder, err)
	}
	return capture{req: req, body: body}
}

// vectorIdentity loads a leaf, its key and optional intermediates from the
// vector certs folder.
func vectorIdentity(t testing.TB, kind string, withChain bool) Identity {
	t.Helper()
	src, err := NewFileSource(context.Background(), vectorSource(kind, withChain))
	if err != nil {
		t.Fatal(err)
	}
	id, err := src.Identity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func vectorSource(kind string, withChain bool) SourceConfig {
	cfg := SourceConfig{
		Certificate: vec("certs", kind+"-leaf-cert.pem"),
		PrivateKey:  vec("certs", kind+"-leaf-key.pem"),
	}
	if withChain {
		cfg.Intermediates = vec("certs", "ec-int-ca.pem")
	}
	return cfg
}

// authRE parses an AWS4-X509 Authorization header.
var authRE = regexp.MustCompile(`^(AWS4-X509-(?:ECDSA|RSA)-SHA256) Credential=([0-9]+)/([0-9]{8})/([a-z0-9-]+)/rolesanywhere/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]+)$`)

// verifyAWS4X509 is a deliberately separate, minimal verifier written from
// the protocol notes (§3.8), so the signer is not checked against itself.
// It returns the leaf and the region of the scope.
func verifyAWS4X509(r *http.Request, body []byte) (*x509.Certificate, string, error) {
	m := authRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return nil, "", fmt.Errorf("malformed Authorization %q", r.Header.Get("Authorization"))
	}
	alg, serial, day, region, signed, sigHex := m[1], m[2], m[3], m[4], m[5], m[6]
	date := r.Header.Get("X-Amz-Date")
	if !strings.HasPrefix(date, day) || len(date) != 16 {
		return nil, "", fmt.Errorf("scope date %s does not match X-Amz-Date %s", day, date)
	}
	der, err := base64.StdEncoding.DecodeString(r.Header.Get("X-Amz-X509"))
	if err != nil {
		return nil, "", fmt.Errorf("X-Amz-X509: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, "", err
	}
	if leaf.SerialNumber.String() != serial {
		return nil, "", fmt.Errorf("credential serial %s is not the leaf's %s", serial, leaf.SerialNumber)
	}
	names := strings.Split(signed, ";")
	must := []string{"host", "x-amz-date", "x-amz-x509"}
	if r.Header.Get("X-Amz-X509-Chain") != "" {
		must = append(must, "x-amz-x509-chain")
	}
	for _, n := range must {
		if !slices.Contains(names, n) {
			return nil, "", fmt.Errorf("%s not signed", n)
		}
	}
	var hdrs strings.Builder
	for _, n := range names {
		v := strings.Join(r.Header.Values(n), ",")
		if n == "host" {
			v = r.Host
		}
		if v == "" {
			return nil, "", fmt.Errorf("signed header %s missing", n)
		}
		hdrs.WriteString(n + ":" + strings.Join(strings.Fields(v), " ") + "\n")
	}
	q := r.URL.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var qs []string
	for _, k := range keys {
		for _, v := range q[k] {
			qs = append(qs, strings.ReplaceAll(url.QueryEscape(k)+"="+url.QueryEscape(v), "+", "%20"))
		}
	}
	bodySum := sha256.Sum256(body)
	canon := "POST\n/sessions\n" + strings.Join(qs, "&") + "\n" + hdrs.String() + "\n" + signed + "\n" + hex.EncodeToString(bodySum[:])
	canonSum := sha256.Sum256([]byte(canon))
	sts := alg + "\n" + date + "\n" + day + "/" + region + "/rolesanywhere/aws4_request\n" + hex.EncodeToString(canonSum[:])
	digest := sha256.Sum256([]byte(sts))
	sig, _ := hex.DecodeString(sigHex)
	switch pub := leaf.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if alg != AlgorithmECDSA || !ecdsa.VerifyASN1(pub, digest[:], sig) {
			return nil, "", errors.New("ECDSA signature does not verify")
		}
	case *rsa.PublicKey:
		if alg != AlgorithmRSA || rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) != nil {
			return nil, "", errors.New("RSA signature does not verify")
		}
	default:
		return nil, "", fmt.Errorf("unexpected key %T", pub)
	}
	return leaf, region, nil
}

// seen is one request the fake service received.
type seen struct {
	req    *http.Request
	body   []byte
	leaf   *x509.Certificate
	region string
	err    error // signature verification result
	at     time.Time
}

// fakeService is a loopback stand-in for CreateSession that checks every
// signature with verifyAWS4X509. reply decides the answer to request n
// (1-based); nil means success.
type fakeService struct {
	t   testing.TB
	srv *httptest.Server
	// reply and ttl may be set before requests are made, or later under mu.
	reply func(n int, s seen) (status int, header http.Header, body string)
	ttl   time.Duration

	mu   sync.Mutex
	reqs []seen
}

func newFakeService(t testing.TB) *fakeService {
	f := &fakeService{t: t, ttl: time.Hour}
	f.srv = httptest.NewServer(http.HandlerFunc(f.handle))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeService) handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s := seen{req: r, body: body, at: time.Now()}
	s.leaf, s.region, s.err = verifyAWS4X509(r, body)
	f.mu.Lock()
	f.reqs = append(f.reqs, s)
	n := len(f.reqs)
	reply, ttl := f.reply, f.ttl
	f.mu.Unlock()

	if s.err != nil {
		w.Header().Set("x-amzn-ErrorType", "AccessDeniedException")
		w.Header().Set("x-amzn-RequestId", "req-bad-signature")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"message":"Invalid signature: `+s.err.Error()+`"}`)
		return
	}
	if reply != nil {
		if status, hdr, b := reply(n, s); status != 0 {
			for k, v := range hdr {
				w.Header()[k] = v
			}
			w.WriteHeader(status)
			io.WriteString(w, b)
			return
		}
	}
	var in struct {
		DurationSeconds int `json:"durationSeconds"`
	}
	json.Unmarshal(body, &in)
	if ttl == 0 {
		ttl = time.Duration(in.DurationSeconds) * time.Second
	}
	serial := hex.EncodeToString(s.leaf.SerialNumber.Bytes())
	resp := map[string]any{
		"credentialSet": []any{map[string]any{
			"assumedRoleUser": map[string]any{
				"arn":           "arn:aws:sts::123456789012:assumed-role/anchorage-vector-role/" + serial,
				"assumedRoleId": "AROAEXAMPLEVECTORROLE:" + serial,
			},
			"credentials": map[string]any{
				"accessKeyId":     fmt.Sprintf("ASIATESTFAKE%04d", n),
				"secretAccessKey": "secret/" + serial,
				"sessionToken":    fmt.Sprintf("token-%d", n),
				"expiration":      time.Now().Add(ttl).UTC().Format(time.RFC3339),
			},
			"packedPolicySize": 7,
			"roleArn":          r.URL.Query().Get("roleArn"),
			"sourceIdentity":   "CN=" + s.leaf.Subject.CommonName,
		}},
		"subjectArn": "arn:aws:rolesanywhere:us-east-1:123456789012:subject/0b7c6a8e-3f2d-4c1b-9a5e-7d6f8e9a0b1c",
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(resp)
}

func (f *fakeService) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// config points a client at the fake with the vector ARNs.
func (f *fakeService) config() Config {
	return Config{
		TrustAnchorARN: vecTrustAnchor,
		ProfileARN:     vecProfile,
		RoleARN:        vecRole,
		Endpoint:       f.srv.URL,
		Backoff:        func(int) time.Duration { return time.Millisecond },
	}
}

func (f *fakeService) options(kind string, withChain bool) Options {
	return Options{Client: f.config(), Source: vectorSource(kind, withChain)}
}

// verifyWith checks an AWS4-X509 signature over a string to sign.
func verifyWith(pub crypto.PublicKey, sts string, sig []byte) error {
	digest := sha256.Sum256([]byte(sts))
	switch pub := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			return errors.New("ECDSA signature does not verify")
		}
		return nil
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
	}
	return fmt.Errorf("unexpected key %T", pub)
}
