// Package signertest starts the real key backends for tests: a SoftHSM2
// token initialised in a temporary directory and a swtpm software TPM on a
// unix socket. A missing tool fails the test with the Debian packages to
// install; it is never skipped (CI installs them).
package signertest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Packages CI installs for these backends (Debian 12).
const Packages = "softhsm2 swtpm tpm2-tools libtss2-tcti-swtpm0 gcc libc6-dev"

// need returns the path of tool or fails the test.
func need(t testing.TB, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s is not installed: run `apt-get install -y --no-install-recommends %s` (the hardware-key tests need real backends)", tool, Packages)
	}
	return p
}

// HSM is an initialised SoftHSM2 token.
type HSM struct {
	Module  string // path of libsofthsm2.so
	Token   string // token label
	PIN     string // user PIN
	PINFile string // file holding PIN, for pin-source
	Dir     string
}

// URI returns a pkcs11: URI for object label in this token with module-path
// and pin-value set.
func (h *HSM) URI(object string) string {
	return fmt.Sprintf("pkcs11:module-path=%s;token=%s;object=%s?pin-value=%s", h.Module, h.Token, object, h.PIN)
}

// ModuleCandidates are where Debian puts the SoftHSM2 module.
var ModuleCandidates = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
}

// SoftHSM2 reads SOFTHSM2_CONF once, when a process first initialises the
// module, so all tests of a process share one token directory (made once,
// kept until the process ends) and each asks for its own token in it.
var shared struct {
	sync.Mutex
	dir, util, module string
}

// Token returns a fresh SoftHSM2 token labelled label (user PIN 1234, SO
// PIN 5678) in the process's shared SoftHSM2 directory, and sets
// SOFTHSM2_CONF for this process and its children. SoftHSM2 does not see
// tokens made after the process first loaded the module: make every
// token a test process needs before its first PKCS#11 open (child
// processes, such as a CLI under test, see them all).
func Token(t testing.TB, label string) *HSM {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if shared.dir == "" {
		util := need(t, "softhsm2-util")
		module := ""
		for _, c := range ModuleCandidates {
			if _, err := os.Stat(c); err == nil {
				module = c
				break
			}
		}
		if module == "" {
			t.Fatalf("libsofthsm2.so not found in %v: run `apt-get install -y softhsm2`", ModuleCandidates)
		}
		dir, err := os.MkdirTemp("", "softhsm")
		if err != nil {
			t.Fatal(err)
		}
		tokens := filepath.Join(dir, "tokens")
		conf := filepath.Join(dir, "softhsm2.conf")
		if err := os.MkdirAll(tokens, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Setenv("SOFTHSM2_CONF", conf)
		shared.dir, shared.util, shared.module = dir, util, module
	}
	h := &HSM{Module: shared.module, Token: label, PIN: "1234", Dir: shared.dir, PINFile: filepath.Join(shared.dir, "pin")}
	if err := os.WriteFile(h.PINFile, []byte(h.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(shared.util, "--init-token", "--free", "--label", label, "--pin", h.PIN, "--so-pin", "5678")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token --label %s: %v\n%s", label, err, out)
	}
	return h
}

// TPM is a running swtpm.
type TPM struct {
	Socket string // TPM command socket (TPM_DEVICE)
	Dir    string
	cmd    *exec.Cmd
}

// SWTPM starts a fresh software TPM 2.0 on a unix socket for the test and
// stops it at cleanup. It does not set TPM_DEVICE.
func SWTPM(t testing.TB) *TPM {
	t.Helper()
	bin := need(t, "swtpm")
	// Unix socket paths are limited to 108 bytes; t.TempDir can be long.
	dir, err := os.MkdirTemp("", "swtpm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	tp := &TPM{Socket: filepath.Join(dir, "tpm.sock"), Dir: dir}
	tp.cmd = exec.Command(bin, "socket", "--tpm2",
		"--tpmstate", "dir="+dir,
		"--server", "type=unixio,path="+tp.Socket,
		"--ctrl", "type=unixio,path="+tp.Socket+".ctrl", // where tpm2-tools' swtpm TCTI looks
		"--flags", "not-need-init,startup-clear")
	var stderr strings.Builder
	tp.cmd.Stderr = &stderr
	if err := tp.cmd.Start(); err != nil {
		t.Fatalf("start swtpm: %v", err)
	}
	t.Cleanup(func() {
		tp.cmd.Process.Kill()
		tp.cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", tp.Socket); err == nil {
			c.Close()
			return tp
		}
		if time.Now().After(deadline) {
			t.Fatalf("swtpm did not open %s: %s", tp.Socket, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
