package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/internal/pgtest"
	"github.com/anchorage-pki/anchorage/lint"
)

// pgMain stops the PostgreSQL cluster pgtest starts, once the tests ran.
type pgMain struct{ m *testing.M }

func (p pgMain) Run() int { return pgtest.Main(p.m) }

func TestMain(m *testing.M) {
	testscript.Main(pgMain{m}, map[string]func(){
		"anchorage-ca": func() { os.Exit(run(os.Args[1:])) },
	})
}

// The workload CLI is another main package: build it once for the scripts.
var (
	buildOnce    sync.Once
	workloadDir  string
	workloadErr  error
	workloadTemp string
)

func buildWorkload(t *testing.T) string {
	buildOnce.Do(func() {
		workloadTemp, workloadErr = os.MkdirTemp("", "anchorage-bin-")
		if workloadErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", workloadTemp, "../anchorage").CombinedOutput()
		if err != nil {
			workloadErr = fmt.Errorf("build anchorage: %v\n%s", err, out)
		}
		workloadDir = workloadTemp
	})
	if workloadErr != nil {
		t.Fatal(workloadErr)
	}
	return workloadDir
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), nil
}

func TestScripts(t *testing.T) {
	testscript.Run(t, scriptParams("testdata/script", buildWorkload(t)))
}

// scriptParams runs the scripts in dir with a free $PORT, the given
// directories first on PATH, and this package's script commands.
func scriptParams(dir string, path ...string) testscript.Params {
	return testscript.Params{
		Dir: dir,
		// A server that should have refused to start must not hold the
		// suite until go test's timeout: every script ends by then.
		Deadline: time.Now().Add(3 * time.Minute),
		Setup: func(env *testscript.Env) error {
			port, err := freePort()
			if err != nil {
				return err
			}
			env.Setenv("PORT", port)
			env.Setenv("PATH", strings.Join(append(path, env.Getenv("PATH")), string(os.PathListSeparator)))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitfile":    cmdWaitFile,
			"zlint":       cmdZlint,
			"certvar":     cmdCertVar,
			"perm":        cmdPerm,
			"osslcheck":   cmdOpenSSLVerify,
			"sleep":       cmdSleep,
			"readvar":     cmdReadVar,
			"truncate":    cmdTruncate,
			"keep":        cmdKeep,
			"kept":        cmdKept,
			"waitchanged": cmdWaitChanged,
		},
	}
}

// waitfile FILE: wait up to 15 s for FILE to exist (a server's ready file).
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: waitfile FILE")
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s did not appear", args[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// zlint FILE...: every certificate and CRL in the files passes zlint.
func cmdZlint(ts *testscript.TestScript, neg bool, args []string) {
	for _, f := range args {
		data, err := os.ReadFile(ts.MkAbs(f))
		ts.Check(err)
		n := 0
		for {
			var blk *pem.Block
			if blk, data = pem.Decode(data); blk == nil {
				break
			}
			switch blk.Type {
			case "CERTIFICATE":
				err = lint.Certificate(blk.Bytes)
			case "X509 CRL":
				err = lint.CRL(blk.Bytes)
			default:
				continue
			}
			n++
			if (err != nil) != neg {
				ts.Fatalf("%s: %v", f, err)
			}
		}
		if n == 0 {
			ts.Fatalf("%s: nothing to lint", f)
		}
	}
}

// certvar FILE VAR: set $VAR to the serial (canonical hex) of the first
// certificate in FILE, and $VAR_SUBJECT to its CN.
func cmdCertVar(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: certvar FILE VAR")
	}
	data, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	blk, _ := pem.Decode(data)
	if blk == nil {
		ts.Fatalf("%s: no PEM", args[0])
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	ts.Check(err)
	ts.Setenv(args[1], ca.SerialHex(c.SerialNumber))
	ts.Setenv(args[1]+"_SUBJECT", c.Subject.CommonName)
}

// perm MODE FILE...: files have exactly this permission (octal).
func cmdPerm(ts *testscript.TestScript, neg bool, args []string) {
	want, err := strconv.ParseUint(args[0], 8, 32)
	ts.Check(err)
	for _, f := range args[1:] {
		st, err := os.Stat(ts.MkAbs(f))
		ts.Check(err)
		if (st.Mode().Perm() == os.FileMode(want)) == neg {
			ts.Fatalf("%s has mode %o", f, st.Mode().Perm())
		}
	}
}

// osslcheck ROOT CHAIN [CRL]: openssl verify the chain's leaf (with -crl_check when a CRL is given).
func cmdOpenSSLVerify(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: osslcheck ROOT CHAIN [CRL]")
	}
	data, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	dir := ts.MkAbs(".ossl")
	ts.Check(os.MkdirAll(dir, 0o700))
	var leaf, rest []byte
	for {
		var blk *pem.Block
		if blk, data = pem.Decode(data); blk == nil {
			break
		}
		if leaf == nil {
			leaf = pem.EncodeToMemory(blk)
		} else {
			rest = append(rest, pem.EncodeToMemory(blk)...)
		}
	}
	ts.Check(os.WriteFile(filepath.Join(dir, "leaf.pem"), leaf, 0o600))
	ts.Check(os.WriteFile(filepath.Join(dir, "rest.pem"), rest, 0o600))
	a := []string{"verify", "-CAfile", ts.MkAbs(args[0]), "-untrusted", filepath.Join(dir, "rest.pem")}
	if len(args) == 3 {
		a = append(a, "-crl_check", "-CRLfile", ts.MkAbs(args[2]))
	}
	a = append(a, filepath.Join(dir, "leaf.pem"))
	out, err := exec.Command("openssl", a...).CombinedOutput()
	ts.Logf("%s", out)
	if (err != nil) != neg {
		ts.Fatalf("openssl verify: %v\n%s", err, out)
	}
}

// sleep DURATION
func cmdSleep(ts *testscript.TestScript, neg bool, args []string) {
	d, err := time.ParseDuration(args[0])
	ts.Check(err)
	time.Sleep(d)
}

// readvar FILE VAR: set $VAR to FILE's content, trimmed.
func cmdReadVar(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: readvar FILE VAR")
	}
	ts.Setenv(args[1], strings.TrimSpace(ts.ReadFile(args[0])))
}
