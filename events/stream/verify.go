package stream

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/anchorage-pki/anchorage/events"
)

// Break is where a chain stops holding.
type Break struct {
	File string
	Line int    // 1-based line in File
	Want string // the SHA-256 of the line before (what prev should be)
	Got  string // what prev is
	// PrevFile and PrevLine locate the line before; empty/0 if Line is
	// the first line of the first file.
	PrevFile string
	PrevLine int
	Err      error // the line is not an event at all
}

func (b *Break) Error() string {
	if b.Err != nil {
		return fmt.Sprintf("%s:%d: not an audit event: %v", b.File, b.Line, b.Err)
	}
	return fmt.Sprintf("%s:%d: chain broken: prev expected %s (SHA-256 of %s:%d), got %s: %s:%d was changed, or lines were removed or inserted between them",
		b.File, b.Line, b.Want, b.PrevFile, b.PrevLine, b.Got, b.PrevFile, b.PrevLine)
}

// Summary is what Verify saw of a chain that holds.
type Summary struct {
	Lines int
	// Continues is true if the first line chains to a line not given
	// (a rotated file left out or pruned), rather than to events.Genesis.
	Continues bool
	First     string // prev of the first line
	Last      string // hash of the last line: what the next line must carry
}

// Verify checks that files, oldest first (File.N … File.1, File), form one
// chain: each line's prev is the SHA-256 of the line before, across file
// boundaries. The first line may continue a stream whose earlier files are
// not given; Summary says so.
func Verify(files ...string) (*Summary, error) {
	s := &Summary{}
	prevFile, prevLine, want := "", 0, ""
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return s, err
		}
		r := bufio.NewReader(f)
		n := 0
		for {
			line, rerr := r.ReadBytes('\n')
			if len(line) == 0 && rerr == io.EOF {
				break
			}
			if rerr != nil && rerr != io.EOF {
				f.Close()
				return s, rerr
			}
			n++
			line = bytes.TrimSuffix(line, []byte{'\n'})
			var e struct {
				Event *string `json:"event"`
				Prev  *string `json:"prev"`
			}
			dec := json.NewDecoder(bytes.NewReader(line))
			if err := dec.Decode(&e); err != nil || e.Prev == nil || e.Event == nil {
				if err == nil {
					err = fmt.Errorf("no event or prev field")
				}
				f.Close()
				return s, &Break{File: name, Line: n, Err: err}
			}
			switch {
			case want == "":
				s.First = *e.Prev
				s.Continues = *e.Prev != events.Genesis
			case *e.Prev != want:
				f.Close()
				return s, &Break{File: name, Line: n, Want: want, Got: *e.Prev, PrevFile: prevFile, PrevLine: prevLine}
			}
			want, prevFile, prevLine = events.Hash(line), name, n
			s.Lines++
			if rerr == io.EOF {
				break
			}
		}
		f.Close()
	}
	s.Last = want
	return s, nil
}
