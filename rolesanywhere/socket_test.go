package rolesanywhere

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shortDir is a private directory with a short path: a unix socket path
// must stay under 108 bytes, which t.TempDir() under a long test name may
// not.
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "ra")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return filepath.Join(d, "anchorage")
}

// startSocket runs a SocketServer for opts's identity from a cache that
// has fetched once.
func startSocket(t *testing.T, f *fakeService, opts Options, dir string) *SocketServer {
	t.Helper()
	client, src, err := opts.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cache := NewCache(client, src, 0)
	if _, _, err := cache.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, err := NewSocketServer(client, opts.Source.PrivateKey, cache, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(5 * time.Second):
			t.Error("socket server did not stop within 5s")
		}
	})
	return s
}

// TestSocketServer: credential-process's FileCache asks a running server
// first and makes no CreateSession of its own; a request for another
// identity, a second server and a stale socket file are handled.
func TestSocketServer(t *testing.T) {
	f := newFakeService(t)
	dir := shortDir(t)
	opts := f.options("ec", true)
	s := startSocket(t, f, opts, dir)
	if fi, err := os.Lstat(s.Path()); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("socket dir %v %v", fi.Mode(), err)
	}
	if n := len(f.requests()); n != 1 {
		t.Fatalf("%d CreateSession calls at start, want 1", n)
	}

	other := f.options("ec", true)
	other.Client.RoleSessionName = "other-session"
	tests := []struct {
		name     string
		opts     Options
		noSocket bool
		calls    int // CreateSession calls the run makes
	}{
		{"same identity: answered by the server", opts, false, 0},
		{"again", opts, false, 0},
		{"another session name: another socket name, no server", other, false, 1},
		{"socket turned off", opts, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.requests())
			// The socket's directory is the file cache's; the server writes
			// no cache file, and an answer from it is not stored, so a
			// miss on the socket is a miss on the file too.
			fc := &FileCache{Dir: dir, NoSocket: tt.noSocket}
			creds, err := fc.Credentials(context.Background(), tt.opts)
			if err != nil || creds.AccessKeyID == "" || creds.SessionToken == "" {
				t.Fatalf("%+v %v", creds.AccessKeyID, err)
			}
			if n := len(f.requests()) - before; n != tt.calls {
				t.Fatalf("%d CreateSession calls, want %d", n, tt.calls)
			}
		})
	}

	// The request must carry the server's full key: a key for another
	// certificate (a renewal one side has not seen yet) is not answered.
	client, _ := NewClient(opts.Client)
	if _, err := askSocket(context.Background(), s.Path(), strings.Repeat("0", 64), DefaultCacheMinValid, time.Now); err == nil ||
		!strings.Contains(err.Error(), "identity mismatch") {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := askSocket(context.Background(), filepath.Join(dir, client.socketName("elsewhere")), "k", DefaultCacheMinValid, time.Now); err == nil {
		t.Fatal("no server, yet an answer")
	}
	// Credentials that expire within MinValid are not taken.
	fp, _ := certificateFingerprint(opts.Source, time.Now())
	if _, err := askSocket(context.Background(), s.Path(), client.cacheKey(fp, opts.Source.PrivateKey), 2*time.Hour, time.Now); !errors.Is(err, errCacheStale) {
		t.Fatalf("near expiry: %v", err)
	}

	// A second server for the same identity leaves the first alone.
	s2, _ := NewSocketServer(client, opts.Source.PrivateKey, NewCache(client, nil, 0), dir, nil)
	if _, err := s2.Listen(); !errors.Is(err, ErrSocketTaken) {
		t.Fatalf("second server: %v", err)
	}
}

// TestSocketStale: a socket file left by a crashed server is replaced.
func TestSocketStale(t *testing.T) {
	f := newFakeService(t)
	dir := shortDir(t)
	opts := f.options("ec", true)
	client, _ := NewClient(opts.Client)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, client.socketName(opts.Source.PrivateKey))
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	startSocket(t, f, opts, dir)
	fc := &FileCache{Dir: dir}
	before := len(f.requests())
	if _, err := fc.Credentials(context.Background(), opts); err != nil || len(f.requests()) != before {
		t.Fatalf("%v, %d calls", err, len(f.requests())-before)
	}
	// A regular file in the socket's place is not removed.
	p2 := filepath.Join(dir, client.socketName("other"))
	os.WriteFile(p2, nil, 0o600)
	s, _ := NewSocketServer(client, "other", nil, dir, nil)
	if _, err := s.Listen(); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("regular file: %v", err)
	}
}

// TestSocketNeverSeenWithAnotherMode: the socket appears with mode 0600,
// not with the umask's mode until a chmod catches up; serve's callers (and
// the cmd/anchorage test) look at it as soon as it exists.
func TestSocketNeverSeenWithAnotherMode(t *testing.T) {
	f := newFakeService(t)
	dir := shortDir(t)
	opts := f.options("ec", true)
	client, err := NewClient(opts.Client)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSocketServer(client, opts.Source.PrivateKey, nil, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		stop := make(chan struct{})
		seen := make(chan os.FileMode, 1)
		go func() {
			defer close(seen)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if fi, err := os.Lstat(s.Path()); err == nil && fi.Mode().Perm() != 0o600 {
					seen <- fi.Mode()
					return
				}
			}
		}()
		l, err := s.Listen()
		close(stop)
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		if m, ok := <-seen; ok {
			t.Fatalf("socket seen with mode %v", m)
		}
	}
}
