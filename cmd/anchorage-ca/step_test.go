package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// stepVersion is the step CLI the compatibility scripts run: built from the
// Go module proxy like the step-ca peer of make bench, unmodified.
const stepVersion = "v0.30.6"

var (
	stepOnce sync.Once
	stepDir  string
	stepErr  error
)

// buildStep builds github.com/smallstep/cli/cmd/step at stepVersion once
// per machine: the binary is kept under the user cache directory (keyed by
// version), the Go build cache makes a rebuild cheap, and a failed build
// fails the test saying why — it is never skipped.
func buildStep(t *testing.T) string {
	stepOnce.Do(func() {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		stepDir = filepath.Join(cache, "anchorage-tests", "step-"+stepVersion)
		if _, err := os.Stat(filepath.Join(stepDir, "step")); err == nil {
			return
		}
		if stepErr = os.MkdirAll(stepDir, 0o755); stepErr != nil {
			return
		}
		work, err := os.MkdirTemp("", "anchorage-step-build-")
		if err != nil {
			stepErr = err
			return
		}
		defer os.RemoveAll(work)
		// Built into a temporary GOBIN, then renamed: a build killed
		// halfway never leaves a truncated binary behind for the next run.
		cmd := exec.Command("go", "install", "github.com/smallstep/cli/cmd/step@"+stepVersion)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "GOBIN="+work, "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			stepErr = fmt.Errorf("build the step CLI %s from the module proxy: %v\n%s", stepVersion, err, out)
			return
		}
		stepErr = os.Rename(filepath.Join(work, "step"), filepath.Join(stepDir, "step"))
	})
	if stepErr != nil {
		t.Fatal(stepErr)
	}
	return stepDir
}

// TestStepCLI runs testdata/stepscript: the unmodified step CLI against
// anchorage-ca serve.
func TestStepCLI(t *testing.T) {
	testscript.Run(t, scriptParams("testdata/stepscript", buildStep(t), buildWorkload(t)))
}

// waitchanged FILE: wait up to 20 s for FILE's bytes to differ from what
// keep FILE saw.
func cmdWaitChanged(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: waitchanged FILE")
	}
	want, err := os.ReadFile(keptPath(ts, args[0]))
	ts.Check(err)
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := os.ReadFile(ts.MkAbs(args[0]))
		if err == nil && len(got) > 0 && !bytes.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s did not change in 20s", args[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
}
