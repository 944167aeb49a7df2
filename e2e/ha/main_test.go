package ha_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/anchorage-pki/anchorage/internal/pgtest"
)

// bin is the anchorage-ca binary every replica runs, built once for the
// package from this module's source.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "anchorage-ha-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	goTool := "go"
	if _, err := exec.LookPath(goTool); err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goTool, "build", "-o", dir, "../../cmd/anchorage-ca").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build anchorage-ca: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "anchorage-ca")
	code := pgtest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}
