package rolesanywhere

import (
	"os"
	"sync"
	"syscall"
	"time"
)

// TokenSource yields the token the container endpoint compares the
// Authorization header with. An error makes the endpoint refuse every
// request until the token is usable again (it fails closed).
type TokenSource interface {
	Token() ([]byte, error)
}

// StaticToken is a token that never changes.
type StaticToken []byte

// Token implements TokenSource.
func (t StaticToken) Token() ([]byte, error) { return t, nil }

// AuthTokenFile is the token file of serve --ecs and of the agent's ecs
// mode, picked up again when it is rotated: every request stats the file
// (one syscall) and re-reads it, with all of ReadAuthToken's checks, when
// its inode, size, mode, mtime or ctime changed. A rotated file that fails
// a check (made world-readable, left empty, removed) is not served around:
// requests are refused until it is fixed, because the old token is the one
// the operator meant to retire.
type AuthTokenFile struct {
	path string

	mu    sync.Mutex
	sig   fileSig
	token []byte
	err   error
}

// fileSig is what changes when a file is rewritten, replaced or chmodded.
type fileSig struct {
	ino, size    uint64
	mode         os.FileMode
	mtime, ctime int64 // Unix nanoseconds
}

func sigOf(fi os.FileInfo) fileSig {
	s := fileSig{size: uint64(fi.Size()), mode: fi.Mode(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = st.Ino
		s.ctime = st.Ctim.Nano()
	}
	return s
}

// racyWindow: file timestamps are as coarse as the kernel's tick, so a
// same-size rewrite just after a read can leave the signature unchanged.
// A file changed this recently is re-read on every request (as git does
// with racily clean index entries) until it has been still for a moment.
const racyWindow = 2 * time.Second

// OpenAuthTokenFile reads path once, so a bad file is an error at start.
func OpenAuthTokenFile(path string) (*AuthTokenFile, error) {
	t := &AuthTokenFile{path: path}
	if _, err := t.Token(); err != nil {
		return nil, err
	}
	return t, nil
}

// Path is the file's name.
func (t *AuthTokenFile) Path() string { return t.path }

// Token returns the file's current token. The error never contains it.
func (t *AuthTokenFile) Token() ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fi, err := os.Stat(t.path)
	if err != nil {
		t.sig, t.token, t.err = fileSig{}, nil, err
		return nil, err
	}
	sig := sigOf(fi)
	if sig == t.sig {
		return t.token, t.err
	}
	t.token, t.err = ReadAuthToken(t.path)
	t.sig = fileSig{} // re-read next time unless the file is settled
	// Stat again after the read: a write that lands between the two calls
	// changes the signature, and the next request reads again.
	if fi2, err := os.Stat(t.path); err == nil && sigOf(fi2) == sig &&
		time.Since(fi.ModTime()) > racyWindow && time.Since(time.Unix(0, sig.ctime)) > racyWindow {
		t.sig = sig
	}
	return t.token, t.err
}
