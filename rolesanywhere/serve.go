package rolesanywhere

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Defaults of the serve command (§6.1).
const (
	DefaultServePort = 9911
	// DefaultHopLimit is the helper's default; 1 would match real IMDSv2
	// and keep containers on a bridge network from reaching the server.
	DefaultHopLimit = 64
)

// IMDSv2 token rules (§6.3).
const (
	tokenHeader    = "X-Aws-Ec2-Metadata-Token"
	tokenTTLHeader = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
	maxTokenTTL    = 21600
	maxTokens      = 256
	sweepInterval  = 5 * time.Second
	// tokenBytes of randomness give a 100-character base64 token.
	tokenBytes = 75
)

// IMDS emulates the part of the EC2 instance metadata service (v2) that
// the AWS SDKs use to fetch role credentials, backed by a Cache.
type IMDS struct {
	cache    *Cache
	roleName string
	// out gets the helper's log lines; log gets diagnostics.
	out *log.Logger
	log *slog.Logger
	now func() time.Time

	mu     sync.Mutex
	tokens map[string]time.Time // token → expiry
}

// NewIMDS serves credentials from cache under roleName. out receives the
// helper-compatible log lines (nil: discarded).
func NewIMDS(cache *Cache, roleName string, out *log.Logger, logger *slog.Logger) *IMDS {
	if out == nil {
		out = log.New(io.Discard, "", 0)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &IMDS{cache: cache, roleName: roleName, out: out, log: logger, now: time.Now, tokens: map[string]time.Time{}}
}

// ServeHTTP routes the three IMDS paths; anything else is 404.
func (s *IMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const credsPath = "/latest/meta-data/iam/security-credentials"
	switch r.URL.Path {
	case "/latest/api/token", "/latest/api/token/":
		s.putToken(w, r)
	case credsPath, credsPath + "/":
		s.listRoles(w, r)
	case credsPath + "/" + s.roleName, credsPath + "/" + s.roleName + "/":
		s.credentials(w, r)
	default:
		http.NotFound(w, r)
	}
}

// writeText answers like the helper: plain text, no trailing newline, and
// none of the extra headers http.Error would add.
func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, msg)
}

func (s *IMDS) putToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	// A forwarded request came through a proxy, so it may come from
	// outside this host: real IMDSv2 refuses those, and so do we.
	if _, ok := r.Header["X-Forwarded-For"]; ok {
		writeText(w, http.StatusBadRequest, "unable to process requests with X-Forwarded-For header")
		return
	}
	ttl := maxTokenTTL
	if v := r.Header.Get(tokenTTLHeader); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxTokenTTL {
			writeText(w, http.StatusBadRequest, "invalid token TTL")
			return
		}
		ttl = n
	}
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		writeText(w, http.StatusInternalServerError, "unable to generate token")
		return
	}
	token := base64.StdEncoding.EncodeToString(b)
	s.addToken(token, s.now().Add(time.Duration(ttl)*time.Second))
	w.Header().Set(tokenTTLHeader, strconv.Itoa(ttl))
	writeText(w, http.StatusOK, token)
}

// addToken stores a token, evicting the earliest-expiring one when full so
// a client looping on PUT cannot grow memory without bound.
func (s *IMDS) addToken(token string, exp time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.tokens) >= maxTokens {
		var oldest string
		var oldestExp time.Time
		for t, e := range s.tokens {
			if oldest == "" || e.Before(oldestExp) {
				oldest, oldestExp = t, e
			}
		}
		delete(s.tokens, oldest)
	}
	s.tokens[token] = exp
}

// sweep drops expired tokens.
func (s *IMDS) sweep() {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, e := range s.tokens {
		if !e.After(now) {
			delete(s.tokens, t)
		}
	}
}

// Run sweeps expired tokens every 5 s until ctx ends.
func (s *IMDS) Run(ctx context.Context) {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sweep()
		}
	}
}

var (
	errNoToken      = errors.New("no token provided")
	errInvalidToken = errors.New("invalid token provided")
)

// checkToken returns the token's remaining lifetime or a 401 message.
func (s *IMDS) checkToken(r *http.Request) (time.Duration, error) {
	token := r.Header.Get(tokenHeader)
	if token == "" {
		return 0, errNoToken
	}
	s.mu.Lock()
	exp, ok := s.tokens[token]
	s.mu.Unlock()
	left := exp.Sub(s.now())
	if !ok || left <= 0 {
		return 0, errInvalidToken
	}
	return left, nil
}

func (s *IMDS) authorize(w http.ResponseWriter, r *http.Request) (time.Duration, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return 0, false
	}
	left, err := s.checkToken(r)
	if err != nil {
		s.out.Printf("Token validation received error: %v", err)
		writeText(w, http.StatusUnauthorized, err.Error())
		return 0, false
	}
	return left, true
}

func (s *IMDS) listRoles(w http.ResponseWriter, r *http.Request) {
	left, ok := s.authorize(w, r)
	if !ok {
		return
	}
	w.Header().Set(tokenTTLHeader, strconv.Itoa(int(left/time.Second)))
	writeText(w, http.StatusOK, s.roleName)
}

// imdsCredentials is the EC2 role-credentials document.
type imdsCredentials struct {
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string
	Token           string
	Code            string
	Type            string
	Expiration      string
	LastUpdated     string
}

func (s *IMDS) credentials(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r); !ok {
		return
	}
	creds, updated, err := s.cache.Credentials(r.Context())
	if err != nil {
		s.out.Printf("failed to refresh credentials: %v", err)
		if creds.AccessKeyID == "" {
			// The helper would serve an empty document here; an explicit
			// error makes the SDK report the real cause instead.
			writeText(w, http.StatusInternalServerError, "unable to obtain credentials")
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	// Encode adds the trailing "\n" the helper sends.
	json.NewEncoder(w).Encode(imdsCredentials{
		AccessKeyID:     creds.AccessKeyID,
		SecretAccessKey: creds.SecretAccessKey,
		Token:           creds.SessionToken,
		Code:            "Success",
		Type:            "AWS-HMAC",
		Expiration:      creds.Expires.UTC().Format(time.RFC3339),
		LastUpdated:     updated.UTC().Format(time.RFC3339Nano),
	})
}

// ListenTTL listens on addr and sets the IP TTL of every accepted
// connection to ttl. With ttl 1 replies cannot cross a router or a
// container bridge, which is how EC2 keeps IMDSv2 tokens on the instance.
func ListenTTL(ctx context.Context, addr string, ttl int) (net.Listener, error) {
	if ttl < 1 || ttl > 255 {
		return nil, fmt.Errorf("invalid hop limit %d: must be 1–255", ttl)
	}
	// One family, so the TTL option below is the right one: IPv6 only
	// for an IPv6 literal ([::1]:9911), IPv4 otherwise (localhost too).
	network := "tcp4"
	if host, _, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
			network = "tcp6"
		}
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return &ttlListener{Listener: l, ttl: ttl}, nil
}

type ttlListener struct {
	net.Listener
	ttl int
}

func (l *ttlListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if err := setTTL(c, l.ttl); err != nil {
			// Serving without the TTL would silently widen who can reach
			// the credentials, so drop the connection instead.
			c.Close()
			continue
		}
		return c, nil
	}
}

func setTTL(c net.Conn, ttl int) error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return fmt.Errorf("set TTL: %T is not a TCP connection", c)
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return fmt.Errorf("set TTL: %w", err)
	}
	level, opt := syscall.IPPROTO_IP, syscall.IP_TTL
	if a, ok := tc.LocalAddr().(*net.TCPAddr); ok && a.IP.To4() == nil {
		level, opt = syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), level, opt, ttl)
	}); err != nil {
		return fmt.Errorf("set TTL: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("set TTL: %w", serr)
	}
	return nil
}

// ServeConfig holds the serve command's own settings.
type ServeConfig struct {
	// Port on 127.0.0.1; 0 picks a free one.
	Port int
	// Address (HOST:PORT) replaces 127.0.0.1:Port. A non-loopback host
	// needs AllowNonLoopback (see CheckServeAddress).
	Address          string
	AllowNonLoopback bool
	// ECS serves the container credentials protocol at
	// ContainerCredentialsPath instead of IMDSv2; callers must send the
	// content of AuthTokenFile (see ReadAuthToken) as Authorization. The
	// file is re-read when it changes (see AuthTokenFile), so a token is
	// rotated by rewriting or replacing it, without a restart.
	ECS           bool
	AuthTokenFile string
	// NoSocket turns off the unix socket on which credential-process runs
	// for the same identity get these credentials (see SocketServer).
	NoSocket bool
	// HopLimit is the IP TTL of accepted connections; 0 means 64.
	HopLimit int
	// Stderr gets the helper's log lines; nil means discarded.
	Stderr io.Writer
	Logger *slog.Logger
	// Listening, if set, is called with the bound address before serving.
	Listening func(addr *net.TCPAddr)
}

// Serve runs the IMDSv2 emulation until ctx ends. Like the helper it
// fetches credentials once at start-up and ignores a failure then (the
// service may be briefly unreachable at boot); later requests retry.
func Serve(ctx context.Context, opts Options, sc ServeConfig) error {
	if sc.HopLimit == 0 {
		sc.HopLimit = DefaultHopLimit
	}
	if sc.Stderr == nil {
		sc.Stderr = io.Discard
	}
	if opts.Client.Logger == nil {
		opts.Client.Logger = sc.Logger
	}
	out := log.New(sc.Stderr, "", log.LstdFlags)
	address := sc.Address
	if address == "" {
		address = net.JoinHostPort("127.0.0.1", strconv.Itoa(sc.Port))
	}
	if err := CheckServeAddress(address, sc.AllowNonLoopback); err != nil {
		return err
	}
	var tokens *AuthTokenFile
	if sc.ECS {
		if sc.AuthTokenFile == "" {
			return errors.New("--ecs needs --auth-token-file: the container endpoint never serves without a token")
		}
		var err error
		if tokens, err = OpenAuthTokenFile(sc.AuthTokenFile); err != nil {
			return err
		}
	}
	client, src, err := opts.open(ctx)
	if err != nil {
		return err
	}
	cache := NewCache(client, src, DefaultRefreshWindow)
	if _, _, err := cache.Refresh(ctx); err != nil {
		out.Printf("initial credential fetch failed (will retry on request): %v", err)
	}

	l, err := ListenTTL(ctx, address, sc.HopLimit)
	if err != nil {
		return err
	}
	addr := l.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	// CheckServeAddress took "localhost" on trust; what was bound decides.
	if !addr.IP.IsLoopback() && !sc.AllowNonLoopback {
		l.Close()
		return fmt.Errorf("%s resolved to %s, which is %w: pass --allow-non-loopback if you mean it", address, addr.IP, ErrNonLoopback)
	}
	if !addr.IP.IsLoopback() {
		out.Printf("WARNING: serving credentials on %s, off this host: anyone who can reach it gets the role's credentials", addr)
		if addr.IP.IsUnspecified() {
			host = "127.0.0.1" // every address: loopback reaches it too
		}
	}
	base := "http://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
	out.Printf("Local server started on port: %d", addr.Port)
	out.Println("Make it available to the sdk by running:")
	var socketDone sync.WaitGroup
	defer socketDone.Wait() // after cancel below: the socket file is gone on return
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !sc.NoSocket {
		socketDone.Go(func() { ServeSocket(ctx, client, opts.Source.PrivateKey, cache, sc.Logger) })
	}
	var handler http.Handler
	if sc.ECS {
		out.Printf("export AWS_CONTAINER_CREDENTIALS_FULL_URI=%s%s", base, ContainerCredentialsPath)
		out.Printf("export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=%s", sc.AuthTokenFile)
		handler = NewContainerEndpoint(cache, tokens, client.cfg.RoleARN, out, sc.Logger)
	} else {
		out.Printf("export AWS_EC2_METADATA_SERVICE_ENDPOINT=%s/", base)
		imds := NewIMDS(cache, client.RoleName(), out, sc.Logger)
		go imds.Run(ctx)
		handler = imds
	}
	if sc.Listening != nil {
		sc.Listening(addr)
	}

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		shutdownCtx, done := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer done()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			return fmt.Errorf("serve: shutdown: %w", err)
		}
		return nil
	}
}
