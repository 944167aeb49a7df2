package rolesanywhere

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"
)

// resign rebuilds a captured request the way Client does — same URL,
// Content-Type, SDK headers and date — signs it with id and returns it.
func resign(t *testing.T, c capture, id Identity, region string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+c.req.Host+c.req.RequestURI, bytes.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	// User-Agent is on the wire but must not be signed.
	for _, h := range []string{"User-Agent", "Content-Type", "Amz-Sdk-Invocation-Id", "Amz-Sdk-Request"} {
		req.Header.Set(h, c.req.Header.Get(h))
	}
	date, err := time.Parse(amzDateFormat, c.req.Header.Get(HeaderDate))
	if err != nil {
		t.Fatal(err)
	}
	if err := SignRequest(req, c.body, id, region, date); err != nil {
		t.Fatal(err)
	}
	return req
}

// TestSignMatchesCaptures rebuilds the canonical request and string to sign
// of the two captures that ship them, byte for byte, and checks every
// header the signer adds against the wire.
func TestSignMatchesCaptures(t *testing.T) {
	tests := []struct {
		folder string
		kind   string
		chain  bool
	}{
		{"ec-credential-process", "ec", true},
		{"rsa-credential-process", "rsa", false},
	}
	for _, tt := range tests {
		t.Run(tt.folder, func(t *testing.T) {
			c := readCapture(t, tt.folder, 1)
			req := resign(t, c, vectorIdentity(t, tt.kind, tt.chain), "us-east-1")

			canon, signed := CanonicalRequest(req, PayloadHash(c.body))
			if want := string(readFile(t, vec(tt.folder, "canonical-request.txt"))); canon != want {
				t.Errorf("canonical request:\n%s\nwant:\n%s", canon, want)
			}
			alg, _ := AlgorithmFor(vectorIdentity(t, tt.kind, false).Signer.Public())
			date := c.req.Header.Get(HeaderDate)
			sts := StringToSign(alg, date, "20261123/us-east-1/rolesanywhere/aws4_request", canon)
			if want := string(readFile(t, vec(tt.folder, "string-to-sign.txt"))); sts != want {
				t.Errorf("string to sign:\n%s\nwant:\n%s", sts, want)
			}
			for _, h := range []string{HeaderDate, HeaderX509, HeaderChain} {
				if got, want := req.Header.Get(h), c.req.Header.Get(h); got != want {
					t.Errorf("%s = %.40q…, want %.40q…", h, got, want)
				}
			}
			wantAuth := c.req.Header.Get("Authorization")
			gotAuth := req.Header.Get("Authorization")
			prefix := wantAuth[:strings.Index(wantAuth, "Signature=")]
			if !strings.HasPrefix(gotAuth, prefix) {
				t.Errorf("Authorization = %q, want prefix %q", gotAuth, prefix)
			}
			if !strings.Contains(signed, "x-amz-x509") || strings.Contains(signed, "user-agent") {
				t.Errorf("signed headers %q", signed)
			}
			// The captured signature verifies over our string to sign too.
			if _, _, err := verifyAWS4X509(c.req, c.body); err != nil {
				t.Errorf("captured request does not verify: %v", err)
			}
		})
	}
}

// TestSignRSADeterministic: PKCS#1 v1.5 is deterministic, so re-signing
// the RSA capture must reproduce its Authorization header exactly.
func TestSignRSADeterministic(t *testing.T) {
	c := readCapture(t, "rsa-credential-process", 1)
	req := resign(t, c, vectorIdentity(t, "rsa", false), "us-east-1")
	if got, want := req.Header.Get("Authorization"), c.req.Header.Get("Authorization"); got != want {
		t.Errorf("Authorization:\n%s\nwant:\n%s", got, want)
	}
}

// TestSignECDSAVerifies: ECDSA is randomised, so check that our signature
// verifies with the leaf's public key over our string to sign, and that a
// changed body breaks it.
func TestSignECDSAVerifies(t *testing.T) {
	c := readCapture(t, "ec-credential-process", 1)
	id := vectorIdentity(t, "ec", true)
	req := resign(t, c, id, "us-east-1")
	canon, _ := CanonicalRequest(req, PayloadHash(c.body))
	sts := StringToSign(AlgorithmECDSA, req.Header.Get(HeaderDate), CredentialScope(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), "us-east-1"), canon)
	auth := req.Header.Get("Authorization")
	sig, err := hex.DecodeString(auth[strings.Index(auth, "Signature=")+len("Signature="):])
	if err != nil {
		t.Fatal(err)
	}
	if sig[0] != 0x30 {
		t.Errorf("signature is not DER: starts with %#x", sig[0])
	}
	sum := sha256.Sum256([]byte(sts))
	if !ecdsa.VerifyASN1(id.Certificate.PublicKey.(*ecdsa.PublicKey), sum[:], sig) {
		t.Fatal("our ECDSA signature does not verify with the leaf key")
	}
	req.Header.Set("X-Amz-Date", "20261123T121540Z") // one second later
	if _, _, err := verifyAWS4X509(req, c.body); err == nil {
		t.Error("independent verifier accepted a request with a changed date")
	}
}

// TestCapturesVerify replays every CreateSession capture: our canonical
// request and string to sign must reproduce what the helper signed, which
// covers the path-prefix quirk (the wire path is /prefix/sessions, the
// signed one /sessions) and the region override (scope eu-west-1).
func TestCapturesVerify(t *testing.T) {
	tests := []struct {
		folder string
		n      int
		region string
		path   string
	}{
		{"ec-credential-process", 1, "us-east-1", "/sessions"},
		{"rsa-credential-process", 1, "us-east-1", "/sessions"},
		{"ec-access-denied", 1, "us-east-1", "/sessions"},
		{"ec-retry-500", 1, "us-east-1", "/sessions"},
		{"ec-retry-500", 2, "us-east-1", "/sessions"},
		{"ec-retry-500", 3, "us-east-1", "/sessions"},
		{"ec-pkcs12", 1, "us-east-1", "/sessions"},
		{"ec-pkcs11-softhsm", 1, "us-east-1", "/sessions"},
		{"ec-tpm-swtpm", 1, "us-east-1", "/sessions"},
		{"ec-serve", 1, "us-east-1", "/sessions"},
		{"rsa-update", 1, "us-east-1", "/sessions"},
		{"ec-endpoint-path-prefix", 1, "us-east-1", "/prefix/sessions"},
		{"ec-region-override", 1, "eu-west-1", "/sessions"},
	}
	for _, tt := range tests {
		t.Run(tt.folder, func(t *testing.T) {
			c := readCapture(t, tt.folder, tt.n)
			if c.req.URL.Path != tt.path {
				t.Fatalf("wire path %s, want %s", c.req.URL.Path, tt.path)
			}
			m := authRE.FindStringSubmatch(c.req.Header.Get("Authorization"))
			if m == nil {
				t.Fatal("no Authorization")
			}
			// Rebuild from the wire with only the signed headers present,
			// as they were at signing time.
			req, _ := http.NewRequest(http.MethodPost, "http://"+c.req.Host+c.req.RequestURI, nil)
			for _, h := range strings.Split(m[5], ";") {
				if h != "host" {
					req.Header[http.CanonicalHeaderKey(h)] = c.req.Header.Values(h)
				}
			}
			canon, signed := CanonicalRequest(req, PayloadHash(c.body))
			if signed != m[5] {
				t.Errorf("signed headers %q, want %q", signed, m[5])
			}
			date, _ := time.Parse(amzDateFormat, c.req.Header.Get(HeaderDate))
			scope := CredentialScope(date, tt.region)
			if want := m[3] + "/" + m[4] + "/rolesanywhere/aws4_request"; scope != want {
				t.Errorf("scope %s, want %s", scope, want)
			}
			sts := StringToSign(m[1], c.req.Header.Get(HeaderDate), scope, canon)
			// The independent verifier also signs /sessions whatever the
			// wire path, so it accepts the prefix capture as AWS does.
			leaf, _, err := verifyAWS4X509(c.req, c.body)
			if err != nil {
				t.Fatalf("capture does not verify: %v", err)
			}
			sig, _ := hex.DecodeString(m[6])
			if err := verifyWith(leaf.PublicKey, sts, sig); err != nil {
				t.Errorf("captured signature over our string to sign: %v", err)
			}
			if err := verifyWith(leaf.PublicKey, sts+"x", sig); err == nil {
				t.Error("signature verified over a changed string")
			}
		})
	}
}

func TestCanonicalQuery(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"b=2&a=1", "a=1&b=2"},
		{"a=x%20y&a=c", "a=x%20y&a=c"}, // values of one key keep their order
		{"k=a+b", "k=a%20b"},
		{"k=%7E-_.%2A", "k=~-_.%2A"},
		{"roleArn=arn:aws:iam::1:role/r", "roleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr"},
	}
	for _, tt := range tests {
		if got := CanonicalQuery(tt.in); got != tt.want {
			t.Errorf("CanonicalQuery(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCanonicalHeadersCollapse(t *testing.T) {
	req, _ := http.NewRequest(http.MethodPost, "https://h.example:8443/x/sessions", nil)
	req.Header.Set("X-Amz-Date", "  a   b  ")
	req.Header.Add("X-Multi", "1")
	req.Header.Add("X-Multi", "2")
	req.Header.Set("X-Tab", "a\t\tb")
	req.Header.Set("User-Agent", "ua")
	req.Header.Set("X-Amzn-Trace-Id", "t")
	canon, signed := CanonicalRequest(req, "h")
	want := "POST\n/sessions\n\nhost:h.example:8443\nx-amz-date:a b\nx-multi:1,2\nx-tab:a\t\tb\n\nhost;x-amz-date;x-multi;x-tab\nh"
	if canon != want || signed != "host;x-amz-date;x-multi;x-tab" {
		t.Errorf("canonical:\n%q\nwant\n%q", canon, want)
	}
}
