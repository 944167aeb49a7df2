package localaws

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Replays of the captures in testdata/rolesanywhere: the exact bytes
// the real aws_signing_helper and aws-sdk-go-v2 sent, over a real TCP
// connection, so Host, header order and body are what was signed.

// vectorDir is shared with the rolesanywhere tests, hence the module root.
const vectorDir = "../testdata/rolesanywhere"

const (
	vectorAnchorID  = "4f0c1d2e-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
	vectorProfileID = "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"
	vectorRoleArn   = "arn:aws:iam::123456789012:role/anchorage-vector-role"
	vectorCRLID     = "1a2b3c4d-0000-4000-8000-00000000c0de"
	vectorAdminKey  = "AKIDEXAMPLETESTONLY0"
	vectorSecret    = "testonly/secret/key/not/real/0000000000"
)

func readVector(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, rel))
	if err != nil {
		t.Fatalf("vector: %v", err)
	}
	return b
}

var amzDateLine = regexp.MustCompile(`(?m)^X-Amz-Date: (\d{8}T\d{6}Z)\r$`)

// vectorTime is the capture's X-Amz-Date: captures verify with the server
// clock set to the moment they were signed.
func vectorTime(t *testing.T, raw []byte) time.Time {
	t.Helper()
	m := amzDateLine.FindSubmatch(raw)
	if m == nil {
		t.Fatal("capture has no X-Amz-Date")
	}
	ts, err := time.Parse(amzDateLayout, string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// seedVectorState creates the capture's trust anchor (with anchorPEM) and
// profile under their fixed ids.
func seedVectorState(t *testing.T, s *Server, anchorPEM string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := s.st.account(defaultAccount)
	a.TrustAnchors[vectorAnchorID] = &trustAnchor{ID: vectorAnchorID, Name: "vector", Enabled: true,
		SourceType: "CERTIFICATE_BUNDLE", CertificatePEM: anchorPEM, NotificationSettings: defaultNotificationSettings(), CreatedAt: at, UpdatedAt: at}
	a.Profiles[vectorProfileID] = &profile{ID: vectorProfileID, Name: "vector", Enabled: true, RoleArns: []string{vectorRoleArn},
		DurationSeconds: 3600, AcceptRoleSessionName: true, AttributeMappings: defaultAttributeMappings(), CreatedAt: at, UpdatedAt: at}
	a.Roles["anchorage-vector-role"] = &iamRole{Name: "anchorage-vector-role", ID: "AROAVECTORROLE0000001", Path: "/", MaxSessionDuration: 3600,
		TrustPolicy: rolesAnywhereTrustPolicy, InlinePolicies: map[string]string{}, Attached: []string{}, CreatedAt: at}
}

// replay writes raw to the server over TCP and reads the response.
func replay(t *testing.T, addr string, raw []byte) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(serverWait))
	if _, err := conn.Write(raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

type sessionVector struct {
	file   string
	anchor string // certs/*.pem
	prefix bool
	region string
}

var sessionVectors = []sessionVector{
	{"ec-credential-process/request1.raw", "ec-root-ca.pem", false, ""},
	{"ec-access-denied/request1.raw", "ec-root-ca.pem", false, ""},
	{"ec-pkcs11-softhsm/request1.raw", "ec-root-ca.pem", false, ""},
	{"ec-pkcs12/request1.raw", "ec-root-ca.pem", false, ""},
	{"ec-tpm-swtpm/request1.raw", "ec-root-ca.pem", false, ""},
	{"ec-endpoint-path-prefix/request1.raw", "ec-int-ca.pem", true, ""},
	{"ec-region-override/request1.raw", "ec-int-ca.pem", false, "eu-west-1"},
	{"ec-retry-500/request1.raw", "ec-int-ca.pem", false, ""},
	{"ec-retry-500/request2.raw", "ec-int-ca.pem", false, ""},
	{"ec-retry-500/request3.raw", "ec-int-ca.pem", false, ""},
	{"ec-serve/request1.raw", "ec-int-ca.pem", false, ""},
	{"rsa-credential-process/request1.raw", "rsa-root-ca.pem", false, ""},
	{"rsa-update/request1.raw", "rsa-root-ca.pem", false, ""},
}

// TestSessionVectorsVerify replays every CreateSession capture. Captures
// signed for us-east-1 must get credentials; the eu-west-1 one must pass the
// signature check on a server of that region and then fail only because its
// ARNs name us-east-1.
func TestSessionVectorsVerify(t *testing.T) {
	for _, v := range sessionVectors {
		t.Run(v.file, func(t *testing.T) {
			raw := readVector(t, v.file)
			clock := &testClock{}
			clock.Set(vectorTime(t, raw))
			s, ts := startServer(t, Config{Now: clock.Now, Region: v.region})
			seedVectorState(t, s, string(readVector(t, "certs/"+v.anchor)))
			if v.prefix && !bytes.HasPrefix(raw, []byte("POST /prefix/sessions?")) {
				t.Fatal("prefix capture is not under /prefix/")
			}
			resp, body := replay(t, ts.Listener.Addr().String(), raw)
			if v.region != "" {
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"`+msgUntrusted+`"`) {
					t.Fatalf("region-override capture: got %d %s, want 403 for the ARN region (not a signature failure)", resp.StatusCode, body)
				}
				return
			}
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("status %d %s: %s", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), body)
			}
			var out sessionResponse
			if err := json.Unmarshal(body, &out); err != nil {
				t.Fatal(err)
			}
			if len(out.CredentialSet) != 1 || out.CredentialSet[0].RoleArn != vectorRoleArn {
				t.Fatalf("unexpected response %s", body)
			}
		})
	}
}

// TestSessionVectorsTampered changes one byte in a header value, the body,
// the date and the chain of the two canonical captures; each must be refused
// with an AWS-shaped error.
func TestSessionVectorsTampered(t *testing.T) {
	type mutation struct {
		name string
		edit func([]byte) []byte
	}
	replaceOnce := func(old, new string) func([]byte) []byte {
		return func(b []byte) []byte { return bytes.Replace(b, []byte(old), []byte(new), 1) }
	}
	flipAfter := func(marker string, offset int) func([]byte) []byte {
		return func(b []byte) []byte {
			i := bytes.Index(b, []byte(marker))
			if i < 0 {
				return nil
			}
			out := bytes.Clone(b)
			j := i + len(marker) + offset
			if out[j] == 'A' {
				out[j] = 'B'
			} else {
				out[j] = 'A'
			}
			return out
		}
	}
	mutations := []mutation{
		{"header value", flipAfter("Amz-Sdk-Invocation-Id: ", 3)},
		{"body", func(b []byte) []byte {
			out := bytes.Clone(b) // the body ends in a digit and "}"
			if out[len(out)-2] == '0' {
				out[len(out)-2] = '1'
			} else {
				out[len(out)-2] = '0'
			}
			return out
		}},
		{"date", func(b []byte) []byte {
			m := amzDateLine.FindSubmatchIndex(b)
			out := bytes.Clone(b)
			j := m[3] - 2 // last seconds digit
			if out[j] == '0' {
				out[j] = '1'
			} else {
				out[j] = '0'
			}
			return out
		}},
		{"chain", flipAfter("X-Amz-X509-Chain: ", 200)},
		{"chain signature bytes", func(b []byte) []byte {
			// Still a parsable certificate, so only the request signature catches it.
			i := bytes.Index(b, []byte("X-Amz-X509-Chain: "))
			if i < 0 {
				return nil
			}
			end := i + bytes.Index(b[i:], []byte("\r\n"))
			out := bytes.Clone(b)
			j := end - 12
			if out[j] == 'A' {
				out[j] = 'B'
			} else {
				out[j] = 'A'
			}
			return out
		}},
		{"certificate", flipAfter("X-Amz-X509: ", 300)},
		{"query", replaceOnce("anchorage-vector-role", "anchorage-vector-rolf")},
		{"path", replaceOnce("POST /sessions?", "POST /session5?")},
	}
	for _, v := range []sessionVector{sessionVectors[0], sessionVectors[11]} {
		raw := readVector(t, v.file)
		for _, m := range mutations {
			bad := m.edit(raw)
			if bad == nil {
				continue // this capture has no such part (no chain header, say)
			}
			t.Run(v.file+"/"+m.name, func(t *testing.T) {
				if bytes.Equal(bad, raw) {
					t.Fatal("mutation changed nothing")
				}
				clock := &testClock{}
				clock.Set(vectorTime(t, raw))
				s, ts := startServer(t, Config{Now: clock.Now})
				seedVectorState(t, s, string(readVector(t, "certs/"+v.anchor)))
				resp, body := replay(t, ts.Listener.Addr().String(), bad)
				if resp.StatusCode == http.StatusCreated {
					t.Fatalf("tampered request accepted: %s", body)
				}
				if m.name == "path" {
					// Not CreateSession any more: an unsigned control-plane call.
					if resp.StatusCode != http.StatusForbidden {
						t.Fatalf("status %d, want 403", resp.StatusCode)
					}
					return
				}
				var msg struct{ Message string }
				if resp.Header.Get("x-amzn-ErrorType") == "" || json.Unmarshal(body, &msg) != nil || msg.Message == "" {
					t.Fatalf("error is not AWS-shaped: %d %v %s", resp.StatusCode, resp.Header, body)
				}
				if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("status %d, want 403 or 400", resp.StatusCode)
				}
			})
		}
	}
}

// TestSessionVectorOutsideSkew replays a good capture with the server clock
// 6 minutes later.
func TestSessionVectorOutsideSkew(t *testing.T) {
	raw := readVector(t, sessionVectors[0].file)
	clock := &testClock{}
	clock.Set(vectorTime(t, raw).Add(6 * time.Minute))
	s, ts := startServer(t, Config{Now: clock.Now})
	seedVectorState(t, s, string(readVector(t, "certs/ec-root-ca.pem")))
	resp, body := replay(t, ts.Listener.Addr().String(), raw)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("x-amzn-ErrorType") != "AccessDeniedException" {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
}

// TestControlPlaneVectorsVerify replays the six aws-sdk-go-v2 captures as
// SigV4 with the capture's secret, then with a wrong one.
func TestControlPlaneVectorsVerify(t *testing.T) {
	wantStatus := []int{201, 200, 201, 201, 200, 200}
	for _, secret := range []string{vectorSecret, vectorSecret + "x"} {
		clock := &testClock{}
		s, ts := startServer(t, Config{Now: clock.Now, AccessKeyID: vectorAdminKey, SecretAccessKey: secret})
		seedVectorState(t, s, string(readVector(t, "certs/ec-root-ca.pem")))
		crl := readVector(t, "certs/ec-int-ca.crl.pem")
		s.st.account(defaultAccount).CRLs[vectorCRLID] = &crlRecord{ID: vectorCRLID, Name: "seed", TrustAnchorID: vectorAnchorID, PEM: crl}
		for i := 1; i <= 6; i++ {
			name := "sdk-control-plane/request" + string(rune('0'+i)) + ".raw"
			raw := readVector(t, name)
			clock.Set(vectorTime(t, raw))
			resp, body := replay(t, ts.Listener.Addr().String(), raw)
			if secret == vectorSecret && resp.StatusCode != wantStatus[i-1] {
				t.Errorf("%s: status %d %s: %s", name, resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), body)
			}
			if secret != vectorSecret && (resp.StatusCode != http.StatusForbidden || resp.Header.Get("x-amzn-ErrorType") != "InvalidSignatureException") {
				t.Errorf("%s with wrong secret: status %d %s", name, resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
			}
		}
	}
}
