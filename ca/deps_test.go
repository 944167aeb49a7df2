package ca_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestIssuingCoreWritesNoFiles: package ca issues and records; the key
// ceremony (files, rollback) lives in package ceremony and the CA's own
// files in caserver/tlsfile; the audit stream is written by events/stream
// (the core only emits to an events.Sink). It links none of them, nor any
// front end.
func TestIssuingCoreWritesNoFiles(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	const mod = "github.com/anchorage-pki/anchorage/"
	forbidden := []string{"ceremony", "atomicfile", "tlsfile", "config", "caserver", "api", "enroll", "acme", "events/stream"}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == mod+f {
				t.Errorf("package ca links %s", dep)
			}
		}
	}
}
