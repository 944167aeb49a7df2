// Package pgtest starts a private PostgreSQL cluster for tests: initdb
// into a temporary directory, a server listening only on a unix socket
// there, one fresh database per test, and the server stopped by PID when
// the test binary ends. The binaries come from Debian's postgresql package
// (/usr/lib/postgresql/*/bin); when they are missing the test fails and
// says what to install — a storage test that silently skips proves
// nothing. As root (tests run as root in CI) the cluster runs as the
// unprivileged user nobody, since initdb and postgres refuse root.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// and pgtest.URL(t) in each test.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const port = 5432 // on the private socket only; no TCP listener

var (
	once    sync.Once
	cluster *server
	started error
	dbs     atomic.Int64
)

type server struct {
	dir      string // holds data/ and the socket
	bin      string
	cred     *syscall.Credential
	pid      int
	watchdog *os.Process
}

// Main runs the tests and stops the cluster if any test started it. m is
// a *testing.M, or whatever wraps one (testscript.Main's argument).
func Main(m interface{ Run() int }) int {
	code := m.Run()
	if cluster != nil {
		if err := cluster.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// URL creates a fresh database on the shared cluster, starting it on first
// use, and returns its connection URL.
func URL(t testing.TB) string {
	t.Helper()
	once.Do(func() { cluster, started = start() })
	if started != nil {
		t.Fatalf("pgtest: %v", started)
	}
	return cluster.createDB(t)
}

// createDB creates a fresh database on s and returns its URL.
func (s *server) createDB(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d", dbs.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.url("postgres"))
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	return s.url(name)
}

func (s *server) url(db string) string {
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&port=%d&sslmode=disable", db, s.dir, port)
}

// binDir finds the newest Debian PostgreSQL binaries.
func binDir() (string, error) {
	if d := os.Getenv("PGTEST_BIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("PGTEST_BIN=%s has no initdb: install the postgresql package (.ci/install-deps does) or fix PGTEST_BIN", d)
		}
		return d, nil
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(m) == 0 {
		if p, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
		return "", errors.New("initdb not found under /usr/lib/postgresql/*/bin nor on PATH: install the postgresql package (.ci/install-deps does), or set PGTEST_BIN")
	}
	sort.Slice(m, func(i, j int) bool { return version(m[i]) > version(m[j]) })
	return filepath.Dir(m[0]), nil
}

func version(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

func start() (*server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	// Short path: a unix socket path must fit in 107 bytes. As root the
	// cluster runs as nobody, who must be able to reach it: /tmp, not a
	// TMPDIR that may sit in root's private home.
	base := ""
	if os.Geteuid() == 0 {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "pgtest")
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			return nil, fmt.Errorf("running as root and no user nobody to run PostgreSQL as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := s.run(60*time.Second, "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	if err := s.serve(); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// serve starts the postmaster on the cluster's data directory and a
// watchdog for it.
func (s *server) serve() error {
	data := filepath.Join(s.dir, "data")
	// Durability is not under test here; fsync off keeps each test fast.
	opts := fmt.Sprintf("-k %s -c listen_addresses= -p %d -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c timezone=UTC", s.dir, port)
	if out, err := s.run(60*time.Second, "pg_ctl", "-D", data, "-w", "-t", "30", "-l", filepath.Join(s.dir, "log"), "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		s.pid = readPID(data)
		return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	s.pid = readPID(data)
	if s.pid == 0 {
		return errors.New("pg_ctl started PostgreSQL but postmaster.pid has no PID")
	}
	s.startWatchdog()
	return nil
}

// startWatchdog starts a process of its own that stops the cluster if the
// test binary dies without running Main's cleanup (a panic, a timeout, a
// kill): no test run leaves a postmaster behind.
func (s *server) startWatchdog() {
	script := fmt.Sprintf(`while kill -0 %d 2>/dev/null; do sleep 1; done
if [ -f %[2]s/data/postmaster.pid ] && [ "$(head -n1 %[2]s/data/postmaster.pid)" = %[3]d ]; then
  kill -INT %[3]d 2>/dev/null; sleep 5; kill -KILL %[3]d 2>/dev/null
fi
rm -rf %[2]s`, os.Getpid(), s.dir, s.pid)
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if cmd.Start() == nil {
		s.watchdog = cmd.Process
		go cmd.Wait()
	}
}

func readPID(data string) int {
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	return pid
}

// run runs one of the cluster's binaries as the cluster's user, with a
// deadline.
func (s *server) run(timeout time.Duration, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	// pg_ctl leaves the server holding its stdout: wait for pg_ctl only.
	cmd.WaitDelay = 5 * time.Second
	return cmd.CombinedOutput()
}

// stop halts the cluster and removes it.
func (s *server) stop() error {
	errs := []error{s.halt()}
	if err := os.RemoveAll(s.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// halt asks for a fast shutdown and kills the postmaster by PID if it is
// still there after the deadline; the data directory stays.
func (s *server) halt() error {
	var errs []error
	if _, err := s.run(40*time.Second, "pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "fast", "-w", "-t", "30", "stop"); err != nil {
		errs = append(errs, fmt.Errorf("pg_ctl stop: %w", err))
	}
	if s.pid > 0 && syscall.Kill(s.pid, 0) == nil {
		syscall.Kill(s.pid, syscall.SIGKILL)
		for deadline := time.Now().Add(10 * time.Second); syscall.Kill(s.pid, 0) == nil && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if s.watchdog != nil {
		s.watchdog.Kill()
		s.watchdog = nil
	}
	s.pid = 0
	return errors.Join(errs...)
}

// Cluster is a private cluster for one test, which the test may stop and
// start again on the same data and socket: a database outage. The shared
// cluster behind URL is never stopped under other tests.
type Cluster struct {
	mu sync.Mutex
	s  *server
}

// Private starts a cluster of the test's own; it is stopped and removed
// when the test ends (and by its watchdog if the test binary dies).
func Private(t testing.TB) *Cluster {
	t.Helper()
	s, err := start()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	c := &Cluster{s: s}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if err := c.s.stop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return c
}

// URL creates a fresh database on the cluster and returns its URL. The
// cluster must be running.
func (c *Cluster) URL(t testing.TB) string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s.createDB(t)
}

// Stop shuts the cluster down (fast: sessions are terminated, the socket
// goes away) and makes sure by PID that the postmaster is gone.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.s.halt(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
}

// Start brings a stopped cluster back with its data.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.s.serve(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
}
