// Package stream writes the audit stream of package events — to a file,
// rotated by size under a lock several processes share, or to a writer —
// and Verify checks a chain of such files, naming where it breaks.
package stream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/anchorage-pki/anchorage/events"
)

// Options configure a Log: a File, or else a Writer (stdout).
type Options struct {
	File string
	// MaxBytes rotates File before a line would take it past this size
	// (0: never). Rotated files are File.1 (newest) … File.Keep.
	MaxBytes int64
	Keep     int
	Writer   io.Writer
	Logger   *slog.Logger
}

// Log writes the chained stream. To a file, lines are appended (in batches
// of what concurrent callers queued, one fsync each) under an exclusive
// lock on File+".lock", and the first prev of a batch is read from the
// file's last line (or the newest rotated file's), so several processes on
// one host (the server and `anchorage-ca token`) extend one chain. Rotation is ours,
// not a library's, because it must happen under that same lock and the
// first line of the new file must chain to the last line of the old one.
// To a Writer the chain is kept in memory and starts at events.Genesis.
type Log struct {
	o      Options
	lock   *os.File
	failed atomic.Uint64

	mu       sync.Mutex
	pending  []pending
	flushing bool
	prev     string // Writer mode only; only the flushing writer touches it
}

// Open opens the stream (creating the file and its lock file, 0600).
func Open(o Options) (*Log, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	l := &Log{o: o, prev: events.Genesis}
	if o.File == "" {
		if o.Writer == nil {
			return nil, errors.New("events: a file or a writer is required")
		}
		return l, nil
	}
	if o.MaxBytes > 0 && o.Keep < 1 {
		return nil, errors.New("events: rotation needs keep of at least 1")
	}
	lock, err := os.OpenFile(o.File+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	l.lock = lock
	// Fail at start, not at the first event, if the file is not writable.
	f, err := os.OpenFile(o.File, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("events: %w", err)
	}
	f.Close()
	return l, nil
}

// Close releases the lock file.
func (l *Log) Close() error {
	if l == nil || l.lock == nil {
		return nil
	}
	return l.lock.Close()
}

// Failed counts lines that could not be written.
func (l *Log) Failed() uint64 { return l.failed.Load() }

// Emit writes e. The outcome it records is durable already, so a failed
// write does not undo it: it is logged and counted (Failed).
func (l *Log) Emit(_ context.Context, e events.Event) {
	if err := l.write(e); err != nil {
		l.failed.Add(1)
		l.o.Logger.Error("audit event not written", "event", e.Event, "serial", e.Serial, "err", err)
	}
}

// write queues e and waits until it is written. Whoever finds no write in
// progress writes everything queued, and again what queued meanwhile, with
// one lock, one read of the last line and one fsync per batch: group
// commit without a timer, as storage does, so concurrent issuances do not
// queue behind each other's fsync.
func (l *Log) write(e events.Event) error {
	done := make(chan error, 1)
	l.mu.Lock()
	l.pending = append(l.pending, pending{e, done})
	if l.flushing {
		l.mu.Unlock()
		return <-done
	}
	l.flushing = true
	for len(l.pending) > 0 {
		batch := l.pending
		l.pending = nil
		l.mu.Unlock()
		err := l.flush(batch)
		for _, p := range batch {
			p.done <- err
		}
		l.mu.Lock()
	}
	l.flushing = false
	l.mu.Unlock()
	return <-done
}

type pending struct {
	e    events.Event
	done chan error
}

// flush writes one batch; only one flush runs at a time.
func (l *Log) flush(batch []pending) error {
	if l.o.File == "" {
		var out []byte
		prev := l.prev
		for _, p := range batch {
			line, err := events.Encode(p.e, prev)
			if err != nil {
				return err
			}
			out = append(append(out, line...), '\n')
			prev = events.Hash(line)
		}
		if _, err := l.o.Writer.Write(out); err != nil {
			return err
		}
		l.prev = prev
		return nil
	}
	if err := syscall.Flock(int(l.lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s.lock: %w", l.o.File, err)
	}
	defer syscall.Flock(int(l.lock.Fd()), syscall.LOCK_UN)
	return l.appendLines(batch)
}

func (l *Log) appendLines(batch []pending) error {
	f, err := os.OpenFile(l.o.File, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	last, size, err := lastLine(f)
	if err != nil {
		return err
	}
	prev := events.Genesis
	switch {
	case size > 0:
		prev = events.Hash(last)
	default:
		if p, err := l.rotatedPrev(); err != nil {
			return err
		} else if p != "" {
			prev = p
		}
	}
	torn := size > 0 && lastByte(f, size) != '\n'
	for _, p := range batch {
		line, err := events.Encode(p.e, prev)
		if err != nil {
			return err
		}
		out := append(line, '\n')
		if torn {
			// A line torn by a crash stays as it is (Verify reports it);
			// ours starts on a line of its own.
			out, torn = append([]byte{'\n'}, out...), false
		}
		if l.o.MaxBytes > 0 && size > 0 && size+int64(len(out)) > l.o.MaxBytes {
			if err := f.Sync(); err != nil {
				return err
			}
			f.Close()
			if err := l.rotate(); err != nil {
				return err
			}
			if f, err = os.OpenFile(l.o.File, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
				return err
			}
			size, out = 0, append(line, '\n')
		}
		if _, err := f.Write(out); err != nil {
			return err
		}
		size += int64(len(out))
		prev = events.Hash(line)
	}
	return f.Sync()
}

// rotatedPrev is the hash of the last line of File.1, "" if there is none.
func (l *Log) rotatedPrev() (string, error) {
	f, err := os.Open(l.o.File + ".1")
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	last, size, err := lastLine(f)
	if err != nil || size == 0 {
		return "", err
	}
	return events.Hash(last), nil
}

// rotate shifts File.k to File.k+1 (dropping File.Keep) and File to File.1.
func (l *Log) rotate() error {
	name := func(i int) string { return l.o.File + "." + strconv.Itoa(i) }
	if err := os.Remove(name(l.o.Keep)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for i := l.o.Keep - 1; i >= 1; i-- {
		if err := os.Rename(name(i), name(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return os.Rename(l.o.File, name(1))
}

func lastByte(f *os.File, size int64) byte {
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, size-1); err != nil {
		return 0
	}
	return b[0]
}

// lastLine returns the file's last line without its newline, and the
// file's size.
func lastLine(f *os.File) ([]byte, int64, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	size := st.Size()
	if size == 0 {
		return nil, 0, nil
	}
	end := size
	if lastByte(f, size) == '\n' {
		end--
	}
	const chunk = 4096
	var tail []byte
	for pos := end; pos > 0; {
		n := int64(chunk)
		if pos < n {
			n = pos
		}
		pos -= n
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, pos); err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, err
		}
		tail = append(buf, tail...)
		if i := bytes.LastIndexByte(tail, '\n'); i >= 0 {
			return tail[i+1:], size, nil
		}
	}
	return tail, size, nil
}
