package main

import (
	"testing"

	"github.com/anchorage-pki/anchorage/internal/manhelp"
)

// Every visible command has a DESCRIPTION and EXAMPLES (man-style --help),
// and every page in the table names a real command (no stale text).
func TestManualComplete(t *testing.T) {
	root := newRoot()
	if m := manhelp.Missing(root); len(m) > 0 {
		t.Errorf("commands without Long or Example in manual.go: %v", m)
	}
	for _, p := range manhelp.Stale(root, manual) {
		t.Errorf("manual.go has a page for %q, which is not a command", p)
	}
}
