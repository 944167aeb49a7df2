package rolesanywhere

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Defaults of the credential-process file cache.
const (
	// DefaultCacheMinValid: cached credentials are handed out until this
	// long before they expire (the SDKs refresh credential_process
	// credentials 5 minutes ahead, some tools 1 minute ahead).
	DefaultCacheMinValid = 5 * time.Minute
	// DefaultCacheLockWait bounds how long a process waits for another
	// one's CreateSession before making its own.
	DefaultCacheLockWait = 10 * time.Second

	cacheFormat   = 1
	maxCacheBytes = 64 << 10
)

// FileCache lets separate credential-process runs share credentials: one
// 0600 file per identity in a private directory, named by a hash of
// everything that decides what CreateSession returns (the certificate's
// fingerprint included, so a renewed certificate is a cache miss). A flock
// beside the file makes concurrent runs share one CreateSession.
//
// Anything odd about the cache (a directory others can write, a file with
// the wrong owner or mode, garbage, another key, credentials about to
// expire) makes it a miss, and the file is replaced; the cache never turns
// a working credential-process into a failing one.
type FileCache struct {
	// Dir holds the cache files; "" means DefaultCacheDir().
	Dir string
	// MinValid and LockWait default to DefaultCacheMinValid and
	// DefaultCacheLockWait.
	MinValid time.Duration
	LockWait time.Duration
	Now      func() time.Time
	// Logger gets one debug record per decision, never a secret.
	Logger *slog.Logger
	// NoSocket skips asking a running serve or agent (see SocketServer).
	NoSocket bool
}

// DefaultCacheDir is $XDG_RUNTIME_DIR/anchorage (a per-user tmpfs on
// systemd hosts, emptied at logout) or else the user cache directory's
// anchorage folder.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "anchorage"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("credential cache: %w", err)
	}
	return filepath.Join(d, "anchorage"), nil
}

// cachedCredentials is the file's content.
type cachedCredentials struct {
	Format          int
	Key             string
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string
	SessionToken    string
	Expiration      string
}

func (fc *FileCache) withDefaults() FileCache {
	c := *fc
	if c.MinValid <= 0 {
		c.MinValid = DefaultCacheMinValid
	}
	if c.LockWait <= 0 {
		c.LockWait = DefaultCacheLockWait
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Credentials returns credentials for opts from the cache or, on a miss,
// from one CreateSession that concurrent callers for the same identity
// share. On a hit only the certificate is read, not the private key: the
// credentials were issued for that certificate and the same key reference
// (see cacheKey), and the cache file is readable only by this user, who
// could read the credentials anyway.
func (fc *FileCache) Credentials(ctx context.Context, opts Options) (Credentials, error) {
	c := fc.withDefaults()
	client, err := NewClient(opts.Client)
	if err != nil {
		return Credentials{}, err
	}
	fingerprint, err := certificateFingerprint(opts.Source, c.Now())
	if err != nil {
		// Let the normal path report the problem in its own words.
		c.Logger.Debug("credential cache skipped", "reason", err.Error())
		return fetch(ctx, client, opts.Source)
	}
	dir, err := c.dir()
	if err != nil {
		c.Logger.Debug("credential cache disabled", "err", err)
		return fetch(ctx, client, opts.Source)
	}
	key := client.cacheKey(fingerprint, opts.Source.PrivateKey)
	path := filepath.Join(dir, key+".json")

	// A serve or agent running for this identity answers without a
	// CreateSession or a lock; nobody there costs one failed connect.
	if !c.NoSocket {
		sock := filepath.Join(dir, client.socketName(opts.Source.PrivateKey))
		creds, err := askSocket(ctx, sock, key, c.MinValid, c.Now)
		if err == nil {
			c.Logger.Debug("credentials from a running server", "socket", sock)
			return creds, nil
		}
		c.Logger.Debug("no answer on the credential socket", "socket", sock, "reason", err.Error())
	}

	creds, err := c.load(path, key)
	if err == nil {
		c.Logger.Debug("credential cache hit", "path", path)
		return creds, nil
	}
	c.Logger.Debug("credential cache miss", "path", path, "reason", err.Error())

	unlock, err := lockFile(ctx, path+".lock", c.LockWait)
	if err != nil {
		// Better a second CreateSession than a hung credential_process.
		c.Logger.Debug("credential cache lock not taken, fetching directly", "err", err)
		creds, err := fetch(ctx, client, opts.Source)
		if err == nil {
			c.store(path, key, creds)
		}
		return creds, err
	}
	defer unlock()
	// Whoever held the lock before us has probably filled the cache.
	if creds, err := c.load(path, key); err == nil {
		c.Logger.Debug("credential cache hit after lock", "path", path)
		return creds, nil
	}
	if creds, err = fetch(ctx, client, opts.Source); err != nil {
		return Credentials{}, err
	}
	c.store(path, key, creds)
	return creds, nil
}

// fetch loads the identity (key included) and calls CreateSession.
func fetch(ctx context.Context, client *Client, src SourceConfig) (Credentials, error) {
	fs, err := NewFileSource(ctx, src)
	if err != nil {
		return Credentials{}, err
	}
	id, err := fs.Identity(ctx)
	if err != nil {
		return Credentials{}, err
	}
	sess, err := client.CreateSession(ctx, id)
	if err != nil {
		return Credentials{}, err
	}
	return sess.Credentials, nil
}

// certificateFingerprint is the SHA-256 of the leaf (of the whole file
// for PKCS#12). An expired leaf is an error: a cache must not keep a host
// going on a certificate CreateSession would now refuse.
func certificateFingerprint(src SourceConfig, now time.Time) ([]byte, error) {
	if src.Certificate == "" {
		return nil, errors.New("no certificate")
	}
	data, err := os.ReadFile(src.Certificate)
	if err != nil {
		return nil, err
	}
	var cert *x509.Certificate
	if src.PrivateKey == "" {
		// PKCS#12: the key is in the same file (unencrypted), so reading
		// it costs no prompt; the leaf's validity is checked as for PEM.
		id, err := loadPKCS12(data)
		if err != nil {
			return nil, err
		}
		cert = id.Certificate
	} else if cert, err = firstCertificate(data); err != nil {
		return nil, err
	}
	if now.After(cert.NotAfter) || now.Before(cert.NotBefore) {
		return nil, fmt.Errorf("certificate not valid at %s", now.UTC().Format(time.RFC3339))
	}
	if src.PrivateKey == "" {
		sum := sha256.Sum256(data)
		return sum[:], nil
	}
	return leafFingerprint(cert), nil
}

func leafFingerprint(cert *x509.Certificate) []byte {
	sum := sha256.Sum256(cert.Raw)
	return sum[:]
}

// cacheKey hashes everything that decides which credentials CreateSession
// returns. Fields are length-prefixed so no two inputs collide. The key
// reference (a path or URI, not the key) is in it too: a hit does not
// open the key, so this keeps a reference that never worked (a wrong
// PIN, another TPM handle) from being served what a working one cached.
func (c *Client) cacheKey(fingerprint []byte, keyRef string) string {
	h := sha256.New()
	for _, s := range []string{
		"anchorage credential cache v1",
		hex.EncodeToString(fingerprint), keyRef,
		c.cfg.TrustAnchorARN, c.cfg.ProfileARN, c.cfg.RoleARN,
		c.cfg.RoleSessionName, strconv.Itoa(c.cfg.SessionDuration),
		c.endpoint.String(), c.region,
	} {
		fmt.Fprintf(h, "%d:%s\n", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// dir creates the cache directory (0700) and checks that it is a real
// directory owned by this user that no one else can write.
func (c FileCache) dir() (string, error) {
	dir := c.Dir
	if dir == "" {
		var err error
		if dir, err = DefaultCacheDir(); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return "", fmt.Errorf("%s is not a directory", dir)
	case !ok || int(st.Uid) != os.Geteuid():
		return "", fmt.Errorf("%s is not owned by uid %d", dir, os.Geteuid())
	case fi.Mode().Perm()&0o022 != 0:
		return "", fmt.Errorf("%s is writable by group or others (mode %v)", dir, fi.Mode().Perm())
	}
	return dir, nil
}

// errCacheStale is a cache file that is fine but about to expire.
var errCacheStale = errors.New("credentials expire too soon")

// load returns the cached credentials if the file is a regular 0600 file
// of this user holding credentials for key that are good for MinValid.
func (c FileCache) load(path, key string) (Credentials, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return Credentials{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Credentials{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular():
		return Credentials{}, errors.New("not a regular file")
	case !ok || int(st.Uid) != os.Geteuid():
		return Credentials{}, errors.New("owned by another user")
	case fi.Mode().Perm() != 0o600:
		return Credentials{}, fmt.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCacheBytes))
	if err != nil {
		return Credentials{}, err
	}
	var cc cachedCredentials
	if err := json.Unmarshal(data, &cc); err != nil {
		return Credentials{}, errors.New("not a cache file")
	}
	if cc.Format != cacheFormat || cc.Key != key {
		return Credentials{}, errors.New("written for another identity or format")
	}
	exp, err := time.Parse(time.RFC3339, cc.Expiration)
	if err != nil || cc.AccessKeyID == "" || cc.SecretAccessKey == "" {
		return Credentials{}, errors.New("incomplete credentials")
	}
	if exp.Sub(c.Now()) <= c.MinValid {
		return Credentials{}, errCacheStale
	}
	return Credentials{AccessKeyID: cc.AccessKeyID, SecretAccessKey: cc.SecretAccessKey,
		SessionToken: cc.SessionToken, Expiration: cc.Expiration, Expires: exp}, nil
}

// store replaces the cache file atomically (temp file, 0600, rename);
// credentials too short-lived to be handed out again are not kept. A
// failure only costs the next run a CreateSession, so it is logged.
func (c FileCache) store(path, key string, creds Credentials) {
	if creds.Expires.Sub(c.Now()) <= c.MinValid {
		os.Remove(path)
		return
	}
	data, err := json.Marshal(cachedCredentials{Format: cacheFormat, Key: key,
		AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey,
		SessionToken: creds.SessionToken, Expiration: creds.Expiration})
	if err == nil {
		err = writeCacheFile(path, data)
	}
	if err != nil {
		c.Logger.Debug("credential cache not written", "path", path, "err", err)
	}
	c.prune(filepath.Dir(path))
}

// writeCacheFile replaces path atomically with a 0600 file. Unlike
// atomicfile.Write it does not fsync: a file lost or torn by a crash is
// garbage the next run ignores, and the fsyncs would double the cost of a
// cold run.
func writeCacheFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*.cred")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	// CreateTemp makes the file 0600 already; say so in case that changes.
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// pruneAge is past the longest session Roles Anywhere grants (12 h), so
// a file this old holds expired credentials, e.g. those of a certificate
// since renewed.
const pruneAge = 24 * time.Hour

// prune removes cache and lock files untouched for pruneAge. It runs only
// after a CreateSession, so a cache hit stays a few syscalls.
func (c FileCache) prune(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		ext := filepath.Ext(name)
		if !e.Type().IsRegular() || (ext != ".json" && ext != ".lock" && ext != ".cred") {
			continue
		}
		if fi, err := e.Info(); err == nil && c.Now().Sub(fi.ModTime()) > pruneAge {
			os.Remove(filepath.Join(dir, name))
		}
	}
}

// lockFile takes an exclusive flock on path, polling until wait has
// passed (flock itself cannot time out). The returned func releases it.
func lockFile(ctx context.Context, path string, wait time.Duration) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	deadline := time.Now().Add(wait)
	pause := 2 * time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("lock %s: still held after %v", path, wait)
		}
		if err := sleep(ctx, pause); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}
