package enroll_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestNoHTTP: enroll is token logic only. Its HTTP handler lives in api,
// which imports enroll; enroll importing net/http itself, or linking api,
// would put the layers back in the wrong order.
func TestNoHTTP(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{join .Imports \" \"}}\n{{join .Deps \" \"}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	imports, deps, _ := strings.Cut(string(out), "\n")
	if slices.Contains(strings.Fields(imports), "net/http") {
		t.Error("enroll imports net/http")
	}
	const mod = "github.com/anchorage-pki/anchorage/"
	for _, f := range []string{"api", "problem", "caserver"} {
		if slices.Contains(strings.Fields(deps), mod+f) {
			t.Errorf("enroll links %s%s", mod, f)
		}
	}
}
