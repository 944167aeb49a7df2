package e2e

import (
	"fmt"
	"os"
	"testing"
)

// TestMain keeps every anchorage process the tests start (credential-process
// caches, serve/agent sockets under $XDG_RUNTIME_DIR/anchorage) out of the
// user's own runtime and cache directories.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "anchorage-e2e-runtime-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_RUNTIME_DIR", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
