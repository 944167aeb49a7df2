package rolesanywhere

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// A running serve or agent answers credential-process over a unix socket
// in the cache directory, so credential-process runs for the same identity
// cost no CreateSession and no file lock. The socket is named by a hash of
// the identity without the certificate's fingerprint (so it keeps its name
// across renewals); each request carries the full file cache key and is
// answered only if it matches what the server signs with now.
const (
	// SocketDialTimeout bounds the connect: a unix socket with nobody
	// behind it fails at once, so this only matters for a hung server.
	SocketDialTimeout = 200 * time.Millisecond
	// SocketAnswerTimeout bounds the answer of a connected server, which
	// may be making the CreateSession the caller would otherwise make.
	SocketAnswerTimeout = 2 * time.Second

	socketProtocol  = 1
	maxSocketBytes  = 16 << 10
	maxSocketConns  = 64
	socketConnLimit = 5 * time.Second
)

// socketName is the socket's file name: the identity's settings without
// the certificate fingerprint, cut to 128 bits to stay far below the
// 108-byte limit of a unix socket path.
func (c *Client) socketName(keyRef string) string {
	h := sha256.New()
	for _, s := range []string{
		"anchorage credential socket v1", keyRef,
		c.cfg.TrustAnchorARN, c.cfg.ProfileARN, c.cfg.RoleARN,
		c.cfg.RoleSessionName, strconv.Itoa(c.cfg.SessionDuration),
		c.endpoint.String(), c.region,
	} {
		fmt.Fprintf(h, "%d:%s\n", len(s), s)
	}
	return "s-" + hex.EncodeToString(h.Sum(nil)[:16]) + ".sock"
}

type socketRequest struct {
	Protocol int
	Key      string
}

type socketAnswer struct {
	Protocol        int
	Error           string `json:",omitempty"`
	AccessKeyID     string `json:"AccessKeyId,omitempty"`
	SecretAccessKey string `json:",omitempty"`
	SessionToken    string `json:",omitempty"`
	Expiration      string `json:",omitempty"`
}

// peerUID is the user id of the process at the other end of c.
func peerUID(c net.Conn) (int, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return -1, fmt.Errorf("%T is not a unix socket", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *syscall.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if serr != nil {
		return -1, serr
	}
	return int(cred.Uid), nil
}

// SocketServer answers credential-process over a unix socket from a
// serve's or agent's Cache. Only processes of the same user are answered
// (SO_PEERCRED), and only for the identity the cache signs with.
type SocketServer struct {
	client *Client
	keyRef string
	cache  *Cache
	log    *slog.Logger
	path   string
}

// NewSocketServer prepares a server for cache, whose credentials client
// fetches with the key keyRef (as passed to credential-process). dir ""
// is DefaultCacheDir(), the directory credential-process looks in.
func NewSocketServer(client *Client, keyRef string, cache *Cache, dir string, logger *slog.Logger) (*SocketServer, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dir, err := FileCache{Dir: dir}.dir()
	if err != nil {
		return nil, err
	}
	return &SocketServer{client: client, keyRef: keyRef, cache: cache, log: logger,
		path: filepath.Join(dir, client.socketName(keyRef))}, nil
}

// Path is the socket's path.
func (s *SocketServer) Path() string { return s.path }

// ErrSocketTaken is returned by Listen when another live process answers
// on the socket for the same identity; credential-process asks that one.
var ErrSocketTaken = errors.New("another process already answers credential-process for this identity")

// Listen creates the socket (0600, in the 0700 cache directory). A socket
// file nobody answers on is left from a crash and is replaced.
func (s *SocketServer) Listen() (net.Listener, error) {
	if fi, err := os.Lstat(s.path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", s.path)
		}
		if c, err := net.DialTimeout("unix", s.path, SocketDialTimeout); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: %w", s.path, ErrSocketTaken)
		}
		os.Remove(s.path)
	}
	// The socket file must never be seen with another mode: a chmod after
	// bind leaves it at the umask's mode (0755, say) for a moment, while
	// it already answers. On Linux a socket's mode set before bind is the
	// file's; the chmod below stays for systems where it is not.
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.Fchmod(int(fd), 0o600) })
	}}
	l, err := lc.Listen(context.Background(), "unix", s.path)
	if err != nil {
		return nil, fmt.Errorf("credential socket: %w", err)
	}
	// The directory already keeps others out; the mode says so too.
	if err := os.Chmod(s.path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("credential socket: %w", err)
	}
	return l, nil
}

// Serve answers on l until ctx ends, then closes l (which removes the
// socket file).
func (s *SocketServer) Serve(ctx context.Context, l net.Listener) error {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-ctx.Done():
		case <-stop:
		}
		l.Close()
	}()
	sem := make(chan struct{}, maxSocketConns)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("credential socket: %w", err)
		}
		select {
		case sem <- struct{}{}:
		default:
			c.Close() // the caller falls back to its own CreateSession
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			s.answer(ctx, c)
		})
	}
}

func (s *SocketServer) answer(ctx context.Context, c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(socketConnLimit))
	uid, err := peerUID(c)
	if err != nil || uid != os.Geteuid() {
		s.log.Warn("credential socket: refused a process of another user", "peer_uid", uid, "err", err)
		return
	}
	var req socketRequest
	line, err := bufio.NewReader(io.LimitReader(c, maxSocketBytes)).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &req)
	}
	if err != nil || req.Protocol != socketProtocol {
		s.reply(c, socketAnswer{Error: "bad request"})
		return
	}
	creds, certRaw, err := s.cache.credentialsForCert(ctx)
	switch {
	case err != nil:
		s.log.Debug("credential socket: no credentials", "err", err)
		s.reply(c, socketAnswer{Error: "no credentials: " + err.Error()})
		return
	case s.client.cacheKey(fingerprintOf(certRaw), s.keyRef) != req.Key:
		// Another certificate (one side has not seen a renewal yet) or
		// other settings: the caller makes its own session.
		s.reply(c, socketAnswer{Error: "identity mismatch"})
		return
	}
	s.reply(c, socketAnswer{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey,
		SessionToken: creds.SessionToken, Expiration: creds.Expiration})
}

func (s *SocketServer) reply(c net.Conn, a socketAnswer) {
	a.Protocol = socketProtocol
	b, _ := json.Marshal(a)
	c.Write(append(b, '\n'))
}

func fingerprintOf(certRaw []byte) []byte {
	sum := sha256.Sum256(certRaw)
	return sum[:]
}

// ServeSocket is what serve and the agent run: listen and answer until ctx
// ends. Problems are logged, never fatal: credential-process then falls
// back to its file cache.
func ServeSocket(ctx context.Context, client *Client, keyRef string, cache *Cache, logger *slog.Logger) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s, err := NewSocketServer(client, keyRef, cache, "", logger)
	if err != nil {
		logger.Warn("credential socket not served", "err", err)
		return
	}
	l, err := s.Listen()
	if errors.Is(err, ErrSocketTaken) {
		logger.Info("credential socket not served: another process answers for this identity", "socket", s.Path())
		return
	}
	if err != nil {
		logger.Warn("credential socket not served", "err", err)
		return
	}
	logger.Info("answering credential-process on a unix socket", "socket", s.Path())
	if err := s.Serve(ctx, l); err != nil {
		logger.Warn("credential socket stopped", "err", err)
	}
}

// askSocket asks a running serve or agent for the credentials of key.
// Any problem is an error, and the caller goes on without it.
func askSocket(ctx context.Context, path, key string, minValid time.Duration, now func() time.Time) (Credentials, error) {
	d := net.Dialer{Timeout: SocketDialTimeout}
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return Credentials{}, err
	}
	defer c.Close()
	// The directory is ours and 0700, but a socket is only trusted when
	// the process behind it is this user too.
	if uid, err := peerUID(c); err != nil || uid != os.Geteuid() {
		return Credentials{}, fmt.Errorf("socket served by uid %d, not %d (%v)", uid, os.Geteuid(), err)
	}
	c.SetDeadline(time.Now().Add(SocketAnswerTimeout))
	b, _ := json.Marshal(socketRequest{Protocol: socketProtocol, Key: key})
	if _, err := c.Write(append(b, '\n')); err != nil {
		return Credentials{}, err
	}
	line, err := bufio.NewReader(io.LimitReader(c, maxSocketBytes)).ReadBytes('\n')
	if err != nil {
		return Credentials{}, err
	}
	var a socketAnswer
	if err := json.Unmarshal(line, &a); err != nil || a.Protocol != socketProtocol {
		return Credentials{}, errors.New("not a credential socket answer")
	}
	if a.Error != "" {
		return Credentials{}, errors.New(a.Error)
	}
	exp, err := time.Parse(time.RFC3339, a.Expiration)
	if err != nil || a.AccessKeyID == "" || a.SecretAccessKey == "" {
		return Credentials{}, errors.New("incomplete credentials")
	}
	if exp.Sub(now()) <= minValid {
		return Credentials{}, errCacheStale
	}
	return Credentials{AccessKeyID: a.AccessKeyID, SecretAccessKey: a.SecretAccessKey,
		SessionToken: a.SessionToken, Expiration: a.Expiration, Expires: exp}, nil
}
