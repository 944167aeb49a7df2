package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestWorkloadLinksNoServerCode: the workload binary shares only protocol
// types with the CA (DESIGN.md): no issuing core, storage, CRL building,
// server API or the local AWS stand-in.
func TestWorkloadLinksNoServerCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	const mod = "github.com/anchorage-pki/anchorage/"
	forbidden := []string{"ca", "caserver", "storage", "crl", "enroll", "api", "acme", "anchorsync", "localaws", "config", "lint"}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == mod+f {
				t.Errorf("cmd/anchorage links %s", dep)
			}
		}
	}
}
