package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/internal/testenv"
	"github.com/anchorage-pki/anchorage/localaws"
)

// buildCLI builds cmd/anchorage into a temporary directory, so the
// processes below start as a real install would (no test binary).
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "anchorage")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build anchorage: %v\n%s", err, out)
	}
	return bin
}

type processCreds struct {
	Version         int
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string
	SessionToken    string
	Expiration      string
}

// runProcesses starts n credential-process runs at once and returns their
// parsed outputs; any failure fails the test.
func runProcesses(t *testing.T, n int, bin string, env, args []string) []processCreds {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type res struct {
		out, errb bytes.Buffer
		err       error
	}
	results := make([]res, n)
	cmds := make([]*exec.Cmd, n)
	for i := range cmds {
		cmds[i] = exec.CommandContext(ctx, bin, args...)
		cmds[i].Env = env
		cmds[i].Stdout, cmds[i].Stderr = &results[i].out, &results[i].errb
	}
	var wg sync.WaitGroup
	for i, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { results[i].err = c.Wait() })
	}
	wg.Wait()
	out := make([]processCreds, n)
	for i := range results {
		r := &results[i]
		if r.err != nil {
			t.Fatalf("process %d: %v: %s", i, r.err, r.errb.String())
		}
		if err := json.Unmarshal(r.out.Bytes(), &out[i]); err != nil || out[i].Version != 1 ||
			out[i].AccessKeyID == "" || out[i].SecretAccessKey == "" || out[i].SessionToken == "" {
			t.Fatalf("process %d printed %q (%v)", i, r.out.String(), err)
		}
		if _, err := time.Parse(time.RFC3339, out[i].Expiration); err != nil {
			t.Fatalf("process %d: Expiration %q: %v", i, out[i].Expiration, err)
		}
	}
	return out
}

// timeRuns runs one credential-process k times in a row and returns the
// mean wall time.
func timeRuns(t *testing.T, k int, bin string, env, args []string) time.Duration {
	t.Helper()
	start := time.Now()
	for range k {
		runProcesses(t, 1, bin, env, args)
	}
	return time.Since(start) / time.Duration(k)
}

// TestCredentialProcessCache runs credential-process as separate
// processes against the local Roles Anywhere endpoint: 50 at once share
// one CreateSession, --no-cache makes one each, a new certificate is a
// miss, and a spoiled cache file is replaced by a private one.
func TestCredentialProcessCache(t *testing.T) {
	bin := buildCLI(t)
	c := initCA(t, "")
	aws := testenv.StartAWSWithLimits(t, localaws.NoRateLimits)
	anchor, profile := aws.Setup(t, c.CACert(t))
	dir := t.TempDir()
	_, crt, key := c.Enroll(t, dir, "cache-host")
	runtime := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(runtime, 0o700); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "XDG_RUNTIME_DIR="+runtime)
	args := append([]string{"credential-process", "--certificate", crt, "--private-key", key}, credentialArgs(anchor, profile, aws.URL)...)
	noCache := append([]string{"credential-process", "--no-cache"}, args[1:]...)
	sessions := func() int64 { return aws.Count("POST", "/sessions") }
	cacheDir := filepath.Join(runtime, "anchorage")
	checkPrivate := func() {
		t.Helper()
		fi, err := os.Stat(cacheFile(t, cacheDir))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("cache file: %v %v", fi.Mode(), err)
		}
		if fi, err := os.Stat(cacheDir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("cache dir: %v %v", fi.Mode(), err)
		}
	}

	const n = 50
	start := time.Now()
	out := runProcesses(t, n, bin, env, args)
	t.Logf("%d concurrent cached runs (cold cache): %v", n, time.Since(start).Round(time.Millisecond))
	if got := sessions(); got != 1 {
		t.Fatalf("%d concurrent runs made %d CreateSession calls, want 1", n, got)
	}
	for i, o := range out {
		if o.AccessKeyID != out[0].AccessKeyID || o.SessionToken != out[0].SessionToken {
			t.Fatalf("run %d got AccessKeyId %s, run 0 %s", i, o.AccessKeyID, out[0].AccessKeyID)
		}
	}
	checkPrivate()
	first := out[0]

	before := sessions()
	start = time.Now()
	out = runProcesses(t, n, bin, env, noCache)
	t.Logf("%d concurrent --no-cache runs: %v", n, time.Since(start).Round(time.Millisecond))
	if got := sessions() - before; got != n {
		t.Fatalf("%d --no-cache runs made %d CreateSession calls, want %d", n, got, n)
	}
	keys := map[string]bool{}
	for _, o := range out {
		keys[o.AccessKeyID] = true
	}
	if len(keys) != n {
		t.Errorf("--no-cache runs got %d distinct AccessKeyIds, want %d", len(keys), n)
	}

	// Wall time of one run: from the cache, and cold (empty cache, so a
	// CreateSession and the cache write).
	// Wall time of one run, interleaved so load from elsewhere hits all
	// three alike: from the cache; cold (empty cache: CreateSession and
	// the cache write); --no-cache.
	const k = 10
	before = sessions()
	var cached, cold, direct time.Duration
	for range k {
		cached += timeRuns(t, 1, bin, env, args)
		direct += timeRuns(t, 1, bin, env, noCache)
		os.RemoveAll(cacheDir)
		cold += timeRuns(t, 1, bin, env, args)
	}
	if got := sessions() - before; got != 2*k {
		t.Fatalf("%d cached, %d --no-cache and %d cold runs made %d CreateSession calls, want %d", k, k, k, got, 2*k)
	}
	mean := func(d time.Duration) time.Duration { return (d / k).Round(100 * time.Microsecond) }
	t.Logf("one credential-process run, mean of %d: cached %v, cold %v, --no-cache %v", k, mean(cached), mean(cold), mean(direct))
	// Keep the cold run's credentials from now on.
	first = runProcesses(t, 1, bin, env, args)[0]

	t.Run("certificate replaced", func(t *testing.T) {
		_, crt2, key2 := c.Enroll(t, t.TempDir(), "cache-host")
		for _, p := range [][2]string{{key2, key}, {crt2, crt}} {
			b, err := os.ReadFile(p[0])
			if err != nil {
				t.Fatal(err)
			}
			tmp := p[1] + ".new"
			if err := os.WriteFile(tmp, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, p[1]); err != nil {
				t.Fatal(err)
			}
		}
		before := sessions()
		got := runProcesses(t, 1, bin, env, args)[0]
		if sessions()-before != 1 || got.AccessKeyID == first.AccessKeyID {
			t.Fatalf("after a new certificate: %d CreateSession calls, AccessKeyId %s (old %s); want a new session",
				sessions()-before, got.AccessKeyID, first.AccessKeyID)
		}
		if again := runProcesses(t, 1, bin, env, args)[0]; again.AccessKeyID != got.AccessKeyID || sessions()-before != 1 {
			t.Fatalf("second run after the new certificate was not served from the cache")
		}
		first = got
	})

	tests := []struct {
		name  string
		spoil func(path string) error
	}{
		{"mode 0644", func(p string) error { return os.Chmod(p, 0o644) }},
		{"garbage", func(p string) error { return os.WriteFile(p, []byte("\x00garbage{"), 0o600) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := cacheFile(t, cacheDir)
			if err := tt.spoil(path); err != nil {
				t.Fatal(err)
			}
			before := sessions()
			got := runProcesses(t, 1, bin, env, args)[0]
			if sessions()-before != 1 || got.AccessKeyID == first.AccessKeyID {
				t.Fatalf("spoiled cache: %d CreateSession calls; want the file ignored and one new session", sessions()-before)
			}
			checkPrivate()
			if again := runProcesses(t, 1, bin, env, args)[0]; again.AccessKeyID != got.AccessKeyID || sessions()-before != 1 {
				t.Fatal("the replaced cache file is not used")
			}
			first = got
		})
	}
}

// cacheFile is the newest credential file in dir: the current
// certificate's (the one before a renewal stays until it is pruned).
func cacheFile(t *testing.T, dir string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	newest, at := "", time.Time{}
	for _, p := range m {
		if fi, err := os.Stat(p); err == nil && fi.ModTime().After(at) {
			newest, at = p, fi.ModTime()
		}
	}
	if newest == "" {
		t.Fatalf("no cache file in %s", dir)
	}
	return newest
}

// TestCredentialProcessAsksServe: with `serve` running for an identity,
// credential-process runs for it are answered over the unix socket in
// $XDG_RUNTIME_DIR/anchorage: 20 concurrent processes cost no
// CreateSession at localaws and get serve's credentials.
func TestCredentialProcessAsksServe(t *testing.T) {
	bin := buildCLI(t)
	c := initCA(t, "")
	aws := testenv.StartAWSWithLimits(t, localaws.NoRateLimits)
	anchor, profile := aws.Setup(t, c.CACert(t))
	dir := t.TempDir()
	_, crt, key := c.Enroll(t, dir, "socket-host")
	// A short path: unix socket paths must stay under 108 bytes.
	runtime, err := os.MkdirTemp("", "ae")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runtime) })
	t.Setenv("XDG_RUNTIME_DIR", runtime) // for serve, started from os.Environ()
	env := append(os.Environ(), "XDG_RUNTIME_DIR="+runtime)
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("socket-test-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	creds := credentialArgs(anchor, profile, aws.URL)
	uri, _ := startServe(t, append([]string{"--ecs", "--address", "127.0.0.1:0", "--auth-token-file", tokenFile,
		"--certificate", crt, "--private-key", key}, creds...)...)
	sockets := func() []string {
		m, _ := filepath.Glob(filepath.Join(runtime, "anchorage", "s-*.sock"))
		return m
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(sockets()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("serve made no credential socket within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if fi, err := os.Lstat(sockets()[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v %v", fi.Mode(), err)
	}
	sessions := func() int64 { return aws.Count("POST", "/sessions") }
	before := sessions()

	args := append([]string{"credential-process", "--certificate", crt, "--private-key", key}, creds...)
	const n = 20
	out := runProcesses(t, n, bin, env, args)
	if got := sessions() - before; got != 0 {
		t.Fatalf("%d credential-process runs with serve running made %d CreateSession calls, want 0", n, got)
	}
	// They got serve's credentials.
	req, _ := http.NewRequest(http.MethodGet, uri, nil)
	req.Header.Set("Authorization", "socket-test-token")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var served struct{ AccessKeyId string }
	json.NewDecoder(resp.Body).Decode(&served)
	resp.Body.Close()
	for i, o := range out {
		if o.AccessKeyID != served.AccessKeyId {
			t.Fatalf("run %d got %s, serve has %s", i, o.AccessKeyID, served.AccessKeyId)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(runtime, "anchorage", "*.json")); len(m) != 0 {
		t.Errorf("cache files written although serve answered: %v", m)
	}
	if got := sessions() - before; got != 0 {
		t.Fatalf("%d CreateSession calls in all, want 0", got)
	}
	t.Logf("%d concurrent credential-process runs with serve running: %d CreateSession calls", n, sessions()-before)
}
