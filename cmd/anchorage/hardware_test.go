package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/enroll"
	"github.com/anchorage-pki/anchorage/internal/testenv"
	"github.com/anchorage-pki/anchorage/signer"
	"github.com/anchorage-pki/anchorage/signer/signertest"
)

type result struct {
	code           int
	stdout, stderr string
}

func cli(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "ANCHORAGE_TEST_CLI=1"), env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

func mustCLI(t *testing.T, env []string, args ...string) result {
	t.Helper()
	r := cli(t, env, args...)
	if r.code != 0 {
		t.Fatalf("anchorage %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// failCLI expects exit 1 with one stderr line containing want.
func failCLI(t *testing.T, env []string, want string, args ...string) {
	t.Helper()
	r := cli(t, env, args...)
	line := strings.TrimSuffix(r.stderr, "\n")
	if r.code == 0 || strings.Contains(line, "\n") || !strings.Contains(line, want) {
		t.Fatalf("anchorage %s: exit %d, stderr %q; want one line containing %q", strings.Join(args, " "), r.code, r.stderr, want)
	}
}

func token(t *testing.T, c *testenv.CA, dir, name string) string {
	t.Helper()
	pk, err := signer.Open(context.Background(), filepath.Join(c.Dir, "provisioner.key"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := enroll.Mint(pk, c.URL, name, nil, 10*time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".token")
	os.WriteFile(p, []byte(tok), 0o600)
	return p
}

// initCA starts a CA whose issuing key is caKey (a signer reference; ""
// for the default file), as `anchorage-ca init --ca-key` makes it.
func initCA(t *testing.T, caKey string) *testenv.CA {
	t.Helper()
	c := testenv.InitCAWithKey(t, caKey)
	c.Start(t)
	return c
}

func leafOf(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func credentialArgs(anchor, profile, endpoint string) []string {
	return []string{"--trust-anchor-arn", anchor, "--profile-arn", profile, "--role-arn", testenv.RoleARN, "--endpoint", endpoint}
}

func checkCredentials(t *testing.T, r result) {
	t.Helper()
	var out struct {
		Version     int
		AccessKeyID string `json:"AccessKeyId"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Version != 1 || out.AccessKeyID == "" {
		t.Fatalf("credential-process output %q: %v", r.stdout, err)
	}
}

// TestPKCS11 runs the CA with its issuing key in a SoftHSM2 token and a
// workload whose key is made in another token: enroll, renew,
// credential-process against the local Roles Anywhere endpoint, a
// revocation on a CRL signed in the token, and the refusals.
func TestPKCS11(t *testing.T) {
	// Every token first: SoftHSM2 sees only tokens that exist when a
	// process loads it (this process loads it for the CA).
	caTok := signertest.Token(t, "ca")
	wl := signertest.Token(t, "workload")
	caRef := "pkcs11:module-path=" + caTok.Module + ";token=ca;object=issuing?pin-source=" + caTok.PINFile
	c := initCA(t, caRef)
	if _, err := os.Stat(filepath.Join(c.Dir, "ca.key")); err == nil {
		t.Fatal("ca.key written although the key is in the token")
	}
	aws := testenv.StartAWS(t)
	anchor, profile := aws.Setup(t, c.CACert(t))

	dir := t.TempDir()
	root := filepath.Join(c.Dir, "root.crt")
	crt := filepath.Join(dir, "host.crt")
	// Module given as --pkcs11-lib, PIN from a file.
	key := "pkcs11:token=workload;object=host?pin-source=" + wl.PINFile
	lib := []string{"--pkcs11-lib", wl.Module}

	r := mustCLI(t, nil, append([]string{"enroll", "--ca", c.URL, "--root", root, "--token-file", token(t, c, dir, "hsm-host"), "--cert", crt, "--key", key}, lib...)...)
	if !strings.Contains(r.stdout, `Enrolled "hsm-host"`) {
		t.Fatalf("enroll output: %s", r.stdout)
	}
	first := leafOf(t, crt)
	issuer := leafOf(t, filepath.Join(c.Dir, "ca.crt"))
	if err := first.CheckSignatureFrom(issuer); err != nil {
		t.Fatalf("leaf not signed by the token's CA key: %v", err)
	}

	mustCLI(t, nil, append([]string{"renew", "--ca", c.URL, "--root", root, "--cert", crt, "--key", key}, lib...)...)
	if leafOf(t, crt).SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("renew did not replace the certificate")
	}
	failCLI(t, nil, "--rekey works with key files only", append([]string{"renew", "--ca", c.URL, "--root", root, "--cert", crt, "--key", key, "--rekey"}, lib...)...)

	r = mustCLI(t, nil, append(append([]string{"credential-process", "--certificate", crt, "--private-key", key}, lib...), credentialArgs(anchor, profile, aws.URL)...)...)
	checkCredentials(t, r)
	// module-path in the URI and pin-value work too.
	r = mustCLI(t, nil, append([]string{"credential-process", "--certificate", crt, "--private-key", wl.URI("host")}, credentialArgs(anchor, profile, aws.URL)...)...)
	checkCredentials(t, r)

	t.Run("refusals", func(t *testing.T) {
		wrongPIN := "pkcs11:token=workload;object=host?pin-value=0000"
		failCLI(t, nil, "wrong PIN", append([]string{"enroll", "--ca", c.URL, "--root", root, "--token-file", token(t, c, dir, "w1"), "--cert", filepath.Join(dir, "w1.crt"), "--key", "pkcs11:token=workload;object=w1?pin-value=0000"}, lib...)...)
		failCLI(t, nil, "wrong PIN", append(append([]string{"credential-process", "--certificate", crt, "--private-key", wrongPIN}, lib...), credentialArgs(anchor, profile, aws.URL)...)...)
		failCLI(t, nil, "no PKCS#11 token matches token=nosuch", append([]string{"enroll", "--ca", c.URL, "--root", root, "--token-file", token(t, c, dir, "w2"), "--cert", filepath.Join(dir, "w2.crt"), "--key", "pkcs11:token=nosuch;object=x?pin-value=1234"}, lib...)...)
		failCLI(t, nil, "no private key object=missing in PKCS#11 token token=workload", append(append([]string{"credential-process", "--certificate", crt, "--private-key", "pkcs11:token=workload;object=missing?pin-value=1234"}, lib...), credentialArgs(anchor, profile, aws.URL)...)...)
		failCLI(t, nil, "cannot load PKCS#11 module", "enroll", "--ca", c.URL, "--root", root, "--token-file", token(t, c, dir, "w3"), "--cert", filepath.Join(dir, "w3.crt"), "--key", "pkcs11:token=workload;object=w3?pin-value=1234", "--pkcs11-lib", "libnosuch-pkcs11.so")
		// The CA refuses P-521: the key made in the token is deleted again
		// and nothing is written.
		failCLI(t, nil, "ECDSA curve P-521 not accepted", append([]string{"enroll", "--ca", c.URL, "--root", root, "--token-file", token(t, c, dir, "w4"), "--cert", filepath.Join(dir, "w4.crt"), "--key", "pkcs11:token=workload;object=w4?pin-value=1234", "--key-type", "p521"}, lib...)...)
		failCLI(t, nil, "no private key object=w4", append(append([]string{"credential-process", "--certificate", crt, "--private-key", "pkcs11:token=workload;object=w4?pin-value=1234"}, lib...), credentialArgs(anchor, profile, aws.URL)...)...)
		for _, n := range []string{"w1", "w2", "w3", "w4"} {
			if _, err := os.Stat(filepath.Join(dir, n+".crt")); err == nil {
				t.Errorf("%s.crt written after a refusal", n)
			}
		}
	})

	// Revocation: the CRL is signed with the key in the token.
	if _, err := c.Admin(t).Revoke(context.Background(), apiv1.RevokeRequest{Subject: "hsm-host", Reason: "keyCompromise"}); err != nil {
		t.Fatal(err)
	}
	der, err := c.Client(t, nil).CRL(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		t.Fatalf("CRL signature: %v", err)
	}
	found := false
	for _, e := range crl.RevokedCertificateEntries {
		found = found || e.SerialNumber.Cmp(leafOf(t, crt).SerialNumber) == 0
	}
	if !found {
		t.Fatal("renewed certificate not on the CRL")
	}
	failCLI(t, nil, "revoked", append([]string{"renew", "--ca", c.URL, "--root", root, "--cert", crt, "--key", key}, lib...)...)
}

// TestTPM enrolls and gets credentials with keys made in a software TPM:
// a TSS2 key file (tpm:FILE) and a persistent handle.
func TestTPM(t *testing.T) {
	tp := signertest.SWTPM(t)
	env := []string{"TPM_DEVICE=" + tp.Socket}
	c := initCA(t, "")
	aws := testenv.StartAWS(t)
	anchor, profile := aws.Setup(t, c.CACert(t))
	dir := t.TempDir()
	root := filepath.Join(c.Dir, "root.crt")

	crt, tss2 := filepath.Join(dir, "tpm.crt"), filepath.Join(dir, "tpm.tss2")
	mustCLI(t, env, "enroll", "--ca", c.URL, "--root", root, "--token-file", token(t, c, dir, "tpm-host"), "--cert", crt, "--key", "tpm:"+tss2)
	b, err := os.ReadFile(tss2)
	if err != nil || !strings.Contains(string(b), "BEGIN TSS2 PRIVATE KEY") {
		t.Fatalf("TSS2 key file: %v", err)
	}
	if fi, _ := os.Stat(tss2); fi.Mode().Perm() != 0o600 {
		t.Fatalf("TSS2 file mode %v", fi.Mode())
	}
	mustCLI(t, env, "renew", "--ca", c.URL, "--root", root, "--cert", crt, "--key", "tpm:"+tss2)
	// The TSS2 file as aws_signing_helper takes it, and the tpm: form.
	for _, k := range []string{tss2, "tpm:" + tss2} {
		checkCredentials(t, mustCLI(t, env, append([]string{"credential-process", "--certificate", crt, "--private-key", k}, credentialArgs(anchor, profile, aws.URL)...)...))
	}

	hcrt := filepath.Join(dir, "handle.crt")
	mustCLI(t, env, "enroll", "--ca", c.URL, "--root", root, "--token-file", token(t, c, dir, "handle-host"), "--cert", hcrt, "--key", "handle:0x81000020")
	mustCLI(t, env, "renew", "--ca", c.URL, "--root", root, "--cert", hcrt, "--key", "handle:0x81000020")
	checkCredentials(t, mustCLI(t, env, append([]string{"credential-process", "--certificate", hcrt, "--private-key", "handle:0x81000020", "--no-tpm-key-password"}, credentialArgs(anchor, profile, aws.URL)...)...))

	// A refused key type evicts the persistent key again.
	failCLI(t, env, "not accepted", "enroll", "--ca", c.URL, "--root", root, "--token-file", token(t, c, dir, "p521"), "--cert", filepath.Join(dir, "p521.crt"), "--key", "handle:0x81000021", "--key-type", "p521")
	failCLI(t, env, "no key at TPM handle 0x81000021", append([]string{"credential-process", "--certificate", hcrt, "--private-key", "handle:0x81000021"}, credentialArgs(anchor, profile, aws.URL)...)...)
	// TPM unreachable: one line, nothing written.
	bad := []string{"TPM_DEVICE=" + filepath.Join(dir, "nosuch.sock")}
	failCLI(t, bad, "TPM unreachable", "enroll", "--ca", c.URL, "--root", root, "--token-file", token(t, c, dir, "down"), "--cert", filepath.Join(dir, "down.crt"), "--key", "tpm:"+filepath.Join(dir, "down.tss2"))
	for _, p := range []string{"down.crt", "down.tss2", "p521.crt"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			t.Errorf("%s written after a failure", p)
		}
	}
}
