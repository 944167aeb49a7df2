package rolesanywhere

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cacheFile is the one credential file in dir.
func cacheFile(t *testing.T, dir string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(m) != 1 {
		t.Fatalf("cache files in %s: %v", dir, m)
	}
	return m[0]
}

func rewriteCache(t *testing.T, path string, edit func(*cachedCredentials)) {
	t.Helper()
	var cc cachedCredentials
	if err := json.Unmarshal(readFile(t, path), &cc); err != nil {
		t.Fatal(err)
	}
	edit(&cc)
	b, _ := json.Marshal(cc)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestFileCache: a second run is served from the file; anything wrong
// with the file makes it a miss, and the file is replaced by a good one.
func TestFileCache(t *testing.T) {
	tests := []struct {
		name string
		// spoil changes the warm cache file (path) or its directory.
		spoil func(t *testing.T, dir, path string)
		// wantCalls is the number of CreateSession calls of the second run.
		wantCalls int
		// wantFile: a 0600 cache file exists after the second run.
		wantFile bool
	}{
		{"hit", func(*testing.T, string, string) {}, 0, true},
		{"mode 0644", func(t *testing.T, _, p string) { os.Chmod(p, 0o644) }, 1, true},
		{"garbage", func(t *testing.T, _, p string) { os.WriteFile(p, []byte("{not json"), 0o600) }, 1, true},
		{"empty", func(t *testing.T, _, p string) { os.WriteFile(p, nil, 0o600) }, 1, true},
		{"other key", func(t *testing.T, _, p string) {
			rewriteCache(t, p, func(c *cachedCredentials) { c.Key = strings.Repeat("0", 64) })
		}, 1, true},
		{"expires within 5 minutes", func(t *testing.T, _, p string) {
			rewriteCache(t, p, func(c *cachedCredentials) {
				c.Expiration = time.Now().Add(4 * time.Minute).UTC().Format(time.RFC3339)
			})
		}, 1, true},
		{"expired", func(t *testing.T, _, p string) {
			rewriteCache(t, p, func(c *cachedCredentials) { c.Expiration = "2020-01-01T00:00:00Z" })
		}, 1, true},
		{"symlink", func(t *testing.T, dir, p string) {
			other := filepath.Join(t.TempDir(), "elsewhere.json")
			os.Rename(p, other)
			os.Symlink(other, p)
		}, 1, true},
		{"directory writable by others", func(t *testing.T, dir, p string) {
			os.Remove(p)
			os.Chmod(dir, 0o777)
		}, 1, false},
	}
	if os.Geteuid() == 0 {
		tests = append(tests, struct {
			name      string
			spoil     func(t *testing.T, dir, path string)
			wantCalls int
			wantFile  bool
		}{"owned by another user", func(t *testing.T, _, p string) {
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, 1, true})
	} else {
		t.Log("not root: the other-owner case needs chown and is covered by the mode checks only")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeService(t)
			dir := filepath.Join(t.TempDir(), "anchorage")
			opts := f.options("ec", true)
			opts.Cache = &FileCache{Dir: dir}
			ctx := context.Background()
			first, err := opts.Cache.Credentials(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
				t.Fatalf("cache dir: %v %v", fi.Mode(), err)
			}
			path := cacheFile(t, dir)
			tt.spoil(t, dir, path)

			second, err := opts.Cache.Credentials(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(f.requests()) - 1; n != tt.wantCalls {
				t.Errorf("second run made %d CreateSession calls, want %d", n, tt.wantCalls)
			}
			if tt.wantCalls == 0 && second != first {
				t.Errorf("hit returned %+v, want %+v", second, first)
			}
			if tt.wantCalls == 1 && second.AccessKeyID == first.AccessKeyID {
				t.Errorf("miss returned the old credentials")
			}
			fi, err := os.Lstat(path)
			switch {
			case !tt.wantFile:
				if err == nil {
					t.Errorf("cache file written to a directory others can write")
				}
			case err != nil:
				t.Fatal(err)
			case !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600:
				t.Errorf("cache file mode %v, want a regular 0600 file", fi.Mode())
			default:
				var cc cachedCredentials
				if err := json.Unmarshal(readFile(t, path), &cc); err != nil || cc.AccessKeyID != second.AccessKeyID {
					t.Errorf("cache file holds %q (%v), want the new credentials", cc.AccessKeyID, err)
				}
				// The next run is a hit again.
				if _, err := opts.Cache.Credentials(ctx, opts); err != nil || len(f.requests()) != 1+tt.wantCalls {
					t.Errorf("third run: %v, %d calls in all", err, len(f.requests()))
				}
			}
		})
	}
}

// TestFileCacheKey: each input that changes what CreateSession returns
// gives another file; a new certificate is a miss.
func TestFileCacheKey(t *testing.T) {
	f := newFakeService(t)
	dir := filepath.Join(t.TempDir(), "anchorage")
	ctx := context.Background()
	base := f.options("ec", true)
	base.Cache = &FileCache{Dir: dir}
	variants := []struct {
		name string
		edit func(*Options)
	}{
		{"base", func(*Options) {}},
		{"other certificate", func(o *Options) { o.Source = vectorSource("rsa", false) }},
		{"session name", func(o *Options) { o.Client.RoleSessionName = "s1" }},
		{"duration", func(o *Options) { o.Client.SessionDuration = 900 }},
		{"region", func(o *Options) { o.Client.Region = "us-west-2" }},
		{"endpoint", func(o *Options) { o.Client.Endpoint += "/" }},
		{"role", func(o *Options) { o.Client.RoleARN = vecRole + "-2" }},
		{"key reference", func(o *Options) { o.Source.PrivateKey = "./" + o.Source.PrivateKey }},
	}
	for i, v := range variants {
		opts := base
		v.edit(&opts)
		for range 2 {
			if _, err := opts.Cache.Credentials(ctx, opts); err != nil {
				t.Fatalf("%s: %v", v.name, err)
			}
		}
		if n := len(f.requests()); n != i+1 {
			t.Fatalf("after %s: %d CreateSession calls, want %d", v.name, n, i+1)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.json")); len(m) != len(variants) {
		t.Errorf("%d cache files, want %d", len(m), len(variants))
	}
}

// TestFileCacheLockTimeout: a lock held too long costs a direct
// CreateSession, not a hang.
func TestFileCacheLockTimeout(t *testing.T) {
	f := newFakeService(t)
	dir := filepath.Join(t.TempDir(), "anchorage")
	opts := f.options("ec", true)
	opts.Cache = &FileCache{Dir: dir, LockWait: 200 * time.Millisecond}
	c := opts.Cache.withDefaults()
	if _, err := c.dir(); err != nil {
		t.Fatal(err)
	}
	client, err := NewClient(opts.Client)
	if err != nil {
		t.Fatal(err)
	}
	id := vectorIdentity(t, "ec", true)
	lockPath := filepath.Join(dir, client.cacheKey(leafFingerprint(id.Certificate), opts.Source.PrivateKey)+".json.lock")
	unlock, err := lockFile(context.Background(), lockPath, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	start := time.Now()
	creds, err := opts.Cache.Credentials(context.Background(), opts)
	if err != nil || creds.AccessKeyID == "" {
		t.Fatalf("credentials: %+v %v", creds, err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 5*time.Second {
		t.Errorf("took %v with the lock held; want the 200ms wait then a direct call", d)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d CreateSession calls, want 1", n)
	}
	// The direct call still filled the cache.
	if _, err := os.Stat(strings.TrimSuffix(lockPath, ".lock")); err != nil {
		t.Errorf("cache not written after the direct call: %v", err)
	}
}

// TestFileCachePrune: files of certificates renewed a day ago go away
// after the next CreateSession; current ones stay.
func TestFileCachePrune(t *testing.T) {
	f := newFakeService(t)
	dir := filepath.Join(t.TempDir(), "anchorage")
	opts := f.options("ec", true)
	opts.Cache = &FileCache{Dir: dir}
	if _, err := opts.Cache.Credentials(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-25 * time.Hour)
	stale := []string{"old.json", "old.json.lock", ".tmp-1.cred"}
	for _, n := range append(stale, "keep.txt") {
		p := filepath.Join(dir, n)
		os.WriteFile(p, nil, 0o600)
		os.Chtimes(p, old, old)
	}
	opts.Source = vectorSource("rsa", false)
	if _, err := opts.Cache.Credentials(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	for _, n := range stale {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			t.Errorf("%s not pruned", n)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.json")); len(m) != 2 {
		t.Errorf("cache files after prune: %v, want the two current ones", m)
	}
	if _, err := os.Stat(filepath.Join(dir, "keep.txt")); err != nil {
		t.Error("pruned a file that is not the cache's")
	}
}

// FuzzCacheFile: whatever a cache file holds, load never panics and only
// hands out complete credentials for its key that are good for 5 minutes.
func FuzzCacheFile(f *testing.F) {
	key := strings.Repeat("ab", 32)
	good, _ := json.Marshal(cachedCredentials{Format: cacheFormat, Key: key, AccessKeyID: "A", SecretAccessKey: "S",
		SessionToken: "T", Expiration: time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	f.Add(good)
	f.Add([]byte(`{"Format":1}`))
	f.Add([]byte("null"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "c.json")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c := (&FileCache{}).withDefaults()
		creds, err := c.load(p, key)
		if err == nil && (creds.AccessKeyID == "" || creds.SecretAccessKey == "" || time.Until(creds.Expires) <= DefaultCacheMinValid) {
			t.Fatalf("handed out %+v", creds)
		}
	})
}

// TestCacheFingerprintValidity: the cache is keyed only while the leaf is
// valid, PEM and PKCS#12 alike, so an expired certificate never keeps a
// host going on cached credentials. A PKCS#12 file used to be hashed
// without looking at its leaf.
func TestCacheFingerprintValidity(t *testing.T) {
	pem := SourceConfig{Certificate: vec("certs", "ec-leaf-cert.pem"), PrivateKey: vec("certs", "ec-leaf-key.pem")}
	p12 := SourceConfig{Certificate: vec("certs", "ec-leaf.p12")}
	// Both vectors: valid 2026-11-23 to 2036-11-20.
	valid := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		src  SourceConfig
		now  time.Time
		ok   bool
	}{
		{"PEM valid", pem, valid, true},
		{"PEM expired", pem, time.Date(2037, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"PEM not yet valid", pem, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"PKCS#12 valid", p12, valid, true},
		{"PKCS#12 expired", p12, time.Date(2037, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"PKCS#12 not yet valid", p12, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp, err := certificateFingerprint(tc.src, tc.now)
			if tc.ok != (err == nil) || tc.ok != (len(fp) == 32) {
				t.Fatalf("fingerprint %x, err %v; want ok=%v", fp, err, tc.ok)
			}
		})
	}
}
