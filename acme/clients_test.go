package acme_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/internal/pkitest"
)

// The real clients, unmodified, driven by testdata/acme-client.sh.
const harness = "testdata/acme-client.sh"

// clientTimeout bounds each run of a real client: the script kills the
// client after it, and the test kills the script a little later still.
const clientTimeout = 120 * time.Second

// clientCommand is exec.Command killed past the client's deadline; the
// context is released when the test ends.
func clientCommand(t testing.TB, name string, args ...string) *exec.Cmd {
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout+30*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second // a stray child holding the output pipe does not hold the test
	return cmd
}

// need fails the test when a real client or the harness is missing:
// `make deps` (.ci/install-deps) installs Debian's certbot and lego.
func need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (make deps, or apt-get install certbot lego)", tool)
		}
	}
	if _, err := os.Stat(harness); err != nil {
		t.Fatalf("harness: %v", err)
	}
}

// runHarness runs acme-client.sh and returns the chain it got, after the
// checks every ACME-issued certificate must pass.
func (tc *testCA) runHarness(t *testing.T, client, challenge, domain string) []byte {
	t.Helper()
	out := t.TempDir()
	root := filepath.Join(tc.dir, "root.crt")
	cmd := clientCommand(t, "bash", harness, client, tc.dirURL, domain, out)
	cmd.Env = append(os.Environ(), "CHALLENGE="+challenge, "ACME_CA_BUNDLE="+root,
		"HTTP01_PORT="+itoa(tc.httpPort), "TLSALPN01_PORT="+itoa(tc.tlsPort),
		"DNS01_MGMT_URL="+tc.dns.mgmtURL, "DNS01_RESOLVER="+tc.dns.addr,
		"ACME_TIMEOUT="+itoa(int(clientTimeout/time.Second)))
	start := time.Now()
	b, err := cmd.CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(out, "client.log"))
		t.Fatalf("%s %s %s: %v\n%s\n--- client.log (tail)\n%s", client, challenge, domain, err, b, tail(log, 3000))
	}
	t.Logf("%s %s %s: %s", client, challenge, domain, time.Since(start).Round(time.Millisecond))
	chain, err := os.ReadFile(filepath.Join(out, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	tc.checkIssued(t, chain, domain)
	return chain
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func TestCertbot(t *testing.T) {
	need(t, "certbot", "openssl", "curl")
	t.Parallel()
	tc := startCA(t, nil)
	name := "certbot." + testDomain
	first := tc.runHarness(t, "certbot", "http-01", name)
	// Renewal: certbot again for the same name, a new certificate.
	second := tc.runHarness(t, "certbot", "http-01", name)
	if string(first) == string(second) {
		t.Error("second certbot run returned the same certificate")
	}
	tc.runHarness(t, "certbot", "dns-01", "*.certbot."+testDomain)
}

func TestLego(t *testing.T) {
	need(t, "lego", "openssl", "curl")
	t.Parallel()
	tc := startCA(t, nil)
	tc.runHarness(t, "lego", "http-01", "lego."+testDomain)
	tc.runHarness(t, "lego", "tls-alpn-01", "alpn.lego."+testDomain)
	tc.runHarness(t, "lego", "dns-01", "*.lego."+testDomain)

	// run, renew, revoke with one lego state directory, as an operator would.
	name := "renew.lego." + testDomain
	path := t.TempDir()
	lego := func(args ...string) {
		t.Helper()
		base := []string{"--server", tc.dirURL, "--accept-tos", "--path", path, "--email", "ops@example.org",
			"--key-type", "ec256", "--http", "--http.port", ":" + itoa(tc.httpPort), "--http-timeout", "30"}
		if args[0] != "--domains" {
			base = append(base, "--domains", name)
		}
		cmd := clientCommand(t, "lego", append(base, args...)...)
		cmd.Env = append(os.Environ(), "LEGO_CA_CERTIFICATES="+filepath.Join(tc.dir, "root.crt"))
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("lego %s: %v\n%s", strings.Join(args, " "), err, tail(b, 3000))
		}
	}
	certFile := filepath.Join(path, "certificates", name+".crt")
	lego("run")
	first, _ := os.ReadFile(certFile)
	leaf1 := tc.checkIssued(t, first, name)
	lego("renew", "--days", "30", "--no-random-sleep") // a 24 h certificate is always due
	second, _ := os.ReadFile(certFile)
	leaf2 := tc.checkIssued(t, second, name)
	if leaf1.SerialNumber.Cmp(leaf2.SerialNumber) == 0 {
		t.Fatal("lego renew did not get a new certificate")
	}
	lego("revoke", "--reason", "1", "--keep")
	tc.mustBeRevoked(t, leaf2.SerialNumber)
	// The CRL with it verifies, and openssl now refuses the chain.
	crl := pkitest.OpenSSLVerify(t, tc.root, second, tc.crlPEM(t))
	if crl == nil || !strings.Contains(crl.Error(), "revoked") {
		t.Errorf("openssl verify -crl_check of the revoked leaf: %v", crl)
	}
	rec, _ := tc.srv.Store.Cert(context.Background(), serialOf(leaf1))
	if rec.Status != "valid" {
		t.Errorf("the renewed-away certificate was revoked too: %s", rec.Status)
	}
	// An IP address: lego 4.9 sends it as a "dns" identifier and a DNS SAN;
	// the certificate gets an IP SAN.
	lego("--domains", "127.0.0.1", "run")
	ipChain, _ := os.ReadFile(filepath.Join(path, "certificates", "127.0.0.1.crt"))
	tc.checkIssued(t, ipChain, "127.0.0.1")
}
