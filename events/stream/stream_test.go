package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/anchorage-pki/anchorage/events"
)

func emitN(t *testing.T, l *Log, n int) {
	t.Helper()
	for i := range n {
		events.Emit(context.Background(), l, events.Event{Event: events.Issue, Serial: strconv.Itoa(i), Subject: "w", Method: "token", Result: events.OK})
	}
	if l.Failed() != 0 {
		t.Fatalf("%d lines not written", l.Failed())
	}
}

func TestChainAcrossRotationAndProcesses(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "events.jsonl")
	// Two Logs on one file stand for the server and `anchorage-ca token`.
	a, err := Open(Options{File: file, MaxBytes: 1000, Keep: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(Options{File: file, MaxBytes: 1000, Keep: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for range 8 {
		emitN(t, a, 2)
		emitN(t, b, 1)
	}
	files := []string{file + ".3", file + ".2", file + ".1", file}
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.Size() > 1000 {
			t.Fatalf("rotated file %s: %v (size over the cap?)", f, err)
		}
	}
	s, err := Verify(files...)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Continues || s.Lines >= 24 {
		// Keep 3 dropped the oldest files: the first line kept chains to a
		// pruned one, not to events.Genesis.
		t.Fatalf("summary %+v: want a chain continuing from pruned files", s)
	}
	// The newest file alone continues a chain.
	if s, err := Verify(file); err != nil || !s.Continues {
		t.Fatalf("newest file alone: %+v, %v", s, err)
	}
}

func TestVerifyNamesTheBrokenLine(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(lines [][]byte)
		wantLine string // in the error
	}{
		{"byte changed in line 3", func(l [][]byte) { l[2] = bytes.Replace(l[2], []byte(`"serial":"2"`), []byte(`"serial":"9"`), 1) }, "events.jsonl:3 was changed"},
		{"line 2 removed", func(l [][]byte) { l[1] = nil }, "events.jsonl:1 was changed, or lines were removed"},
		{"line 4 not JSON", func(l [][]byte) { l[3] = l[3][:10] }, "events.jsonl:4: not an audit event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "events.jsonl")
			l, err := Open(Options{File: file})
			if err != nil {
				t.Fatal(err)
			}
			emitN(t, l, 5)
			l.Close()
			if _, err := Verify(file); err != nil {
				t.Fatalf("untouched: %v", err)
			}
			raw, _ := os.ReadFile(file)
			lines := bytes.Split(bytes.TrimSuffix(raw, []byte{'\n'}), []byte{'\n'})
			tt.edit(lines)
			var out []byte
			for _, ln := range lines {
				if ln != nil {
					out = append(append(out, ln...), '\n')
				}
			}
			os.WriteFile(file, out, 0o600)
			_, err = Verify(file)
			var br *Break
			if !errors.As(err, &br) || !strings.Contains(err.Error(), tt.wantLine) {
				t.Fatalf("Verify = %v, want a break naming %q", err, tt.wantLine)
			}
		})
	}
}

func TestWriterStream(t *testing.T) {
	var buf bytes.Buffer
	l, err := Open(Options{Writer: &buf})
	if err != nil {
		t.Fatal(err)
	}
	ctx := events.WithWho(context.Background(), events.Who{Actor: "admin:ops 01", Remote: "127.0.0.1:1"})
	events.Emit(ctx, l, events.Event{Event: events.Revoke, Serial: "ab", Result: events.OK, Reason: "keyCompromise"})
	events.Emit(ctx, l, events.Event{Event: events.Revoke, Serial: "cd", Result: events.OK})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	var first map[string]any
	json.Unmarshal([]byte(lines[0]), &first)
	for _, k := range []string{"time", "event", "serial", "subject", "lineage", "method", "actor", "remote", "result", "prev"} {
		if _, ok := first[k]; !ok {
			t.Errorf("field %q missing in %s", k, lines[0])
		}
	}
	if first["prev"] != events.Genesis || first["actor"] != "admin:ops 01" {
		t.Errorf("first line %s", lines[0])
	}
	if !strings.Contains(lines[1], `"prev":"`+events.Hash([]byte(lines[0]))+`"`) {
		t.Errorf("second line does not chain: %s", lines[1])
	}
}

// BenchmarkEmitFile is the cost of one audit line to a file: lock, read
// the last line, append, fsync.
func BenchmarkEmitFile(b *testing.B) {
	l, err := Open(Options{File: filepath.Join(b.TempDir(), "events.jsonl"), MaxBytes: 1 << 20, Keep: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := events.Event{Event: events.Issue, Serial: "5f3a", Subject: "bench", Method: "token", Result: events.OK}
	for b.Loop() {
		events.Emit(context.Background(), l, e)
	}
	if l.Failed() != 0 {
		b.Fatalf("%d lines failed", l.Failed())
	}
}

// Concurrent emitters share fsyncs (group commit) and still form one
// chain, across rotations, with no line lost.
func TestConcurrentEmitters(t *testing.T) {
	file := filepath.Join(t.TempDir(), "events.jsonl")
	l, err := Open(Options{File: file, MaxBytes: 4096, Keep: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const workers, each = 8, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				events.Emit(context.Background(), l, events.Event{Event: events.Issue, Serial: strconv.Itoa(w*1000 + i), Result: events.OK})
			}
		}()
	}
	wg.Wait()
	if l.Failed() != 0 {
		t.Fatalf("%d lines failed", l.Failed())
	}
	var files []string
	for i := 100; i >= 1; i-- {
		if _, err := os.Stat(file + "." + strconv.Itoa(i)); err == nil {
			files = append(files, file+"."+strconv.Itoa(i))
		}
	}
	files = append(files, file)
	if len(files) < 3 {
		t.Fatalf("no rotation happened: %v", files)
	}
	s, err := Verify(files...)
	if err != nil {
		t.Fatal(err)
	}
	if s.Lines != workers*each || s.Continues {
		t.Fatalf("summary %+v, want %d lines from genesis", s, workers*each)
	}
}

// BenchmarkEmitFileParallel: concurrent emitters, as concurrent issuances.
func BenchmarkEmitFileParallel(b *testing.B) {
	l, err := Open(Options{File: filepath.Join(b.TempDir(), "events.jsonl"), MaxBytes: 1 << 20, Keep: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := events.Event{Event: events.Issue, Serial: "5f3a", Subject: "bench", Method: "token", Result: events.OK}
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			events.Emit(context.Background(), l, e)
		}
	})
}
