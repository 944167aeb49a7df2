package main

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// The test binary doubles as the anchorage CLI, so the commands run as a
// user runs them: separate processes, exit codes, stdout and stderr. With
// ANCHORAGE_TEST_CLI=1 it is the CLI (the cli helper); in scripts it is
// the "anchorage" command.
func TestMain(m *testing.M) {
	if os.Getenv("ANCHORAGE_TEST_CLI") == "1" {
		os.Exit(run(os.Args[1:]))
	}
	testscript.Main(isolatedCache{m}, map[string]func(){
		"anchorage": func() { os.Exit(run(os.Args[1:])) },
	})
}

// isolatedCache points every credential-process the tests start at a
// private cache directory, not the user's, so runs cannot see each
// other's credentials.
type isolatedCache struct{ m *testing.M }

func (c isolatedCache) Run() int {
	dir, err := os.MkdirTemp("", "anchorage-test-run-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	os.Setenv("XDG_RUNTIME_DIR", dir)
	return c.m.Run()
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:      "testdata/script",
		Deadline: time.Now().Add(2 * time.Minute),
	})
}
