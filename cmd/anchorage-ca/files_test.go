package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// Script commands that damage files and check that nothing touched them.

// truncate FILE SIZE|half: cut FILE to SIZE bytes, or to half its size.
func cmdTruncate(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: truncate FILE SIZE|half")
	}
	p := ts.MkAbs(args[0])
	st, err := os.Stat(p)
	ts.Check(err)
	size := st.Size() / 2
	if args[1] != "half" {
		size, err = strconv.ParseInt(args[1], 10, 64)
		ts.Check(err)
	}
	ts.Check(os.Truncate(p, size))
}

// keep FILE: remember FILE's bytes and set its mtime an hour back, so that
// kept FILE can tell any later write, even within the same clock tick.
func cmdKeep(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: keep FILE")
	}
	p := ts.MkAbs(args[0])
	b, err := os.ReadFile(p)
	ts.Check(err)
	t := time.Now().Add(-time.Hour).Truncate(time.Second)
	ts.Check(os.Chtimes(p, t, t))
	ts.Check(os.WriteFile(keptPath(ts, args[0]), b, 0o600))
	ts.Setenv(keptVar(args[0]), strconv.FormatInt(t.UnixNano(), 10))
}

// kept FILE: FILE has the bytes and mtime it had at keep FILE.
func cmdKept(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: kept FILE")
	}
	want, err := os.ReadFile(keptPath(ts, args[0]))
	ts.Check(err)
	got, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	st, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	mtime := strconv.FormatInt(st.ModTime().UnixNano(), 10)
	same := bytes.Equal(got, want) && mtime == ts.Getenv(keptVar(args[0]))
	if same == neg {
		ts.Fatalf("%s: %d bytes (kept %d), mtime %s (kept %s)", args[0], len(got), len(want), mtime, ts.Getenv(keptVar(args[0])))
	}
}

func keptPath(ts *testscript.TestScript, name string) string {
	return ts.MkAbs(".kept-" + keptVar(name))
}

func keptVar(name string) string {
	return "KEPT_" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, name)
}
