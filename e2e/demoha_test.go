package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemoHA runs `make demo-ha`'s script as a user would, on fresh ports
// and in a temporary directory: two replicas on a private PostgreSQL, a
// revocation through the replica that does not push, kill -9 of the one
// that does, the survivor taking the lease and pushing. The script checks
// each step and exits non-zero if one fails; here we also check that it
// stopped PostgreSQL.
func TestDemoHA(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and three servers")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed (.ci/install-deps installs it)")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "../cmd/anchorage-ca", "../cmd/anchorage", "../internal/cmd/awsdemo")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "demo-ha")
	ports := freePorts(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "../scripts/demo-ha.sh")
	// On the deadline the script gets SIGTERM, so its trap still stops
	// the replicas and PostgreSQL.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	cmd.Env = append(os.Environ(), "DEMO_BIN="+bin, "DEMO_HA_DIR="+dir,
		"DEMO_HA_PORT="+strconv.Itoa(ports[0]), "DEMO_HA_PORT_B="+strconv.Itoa(ports[1]), "DEMO_HA_PG_PORT="+strconv.Itoa(ports[2]))
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("demo-ha.sh took %v", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("demo-ha.sh: %v\n%s", err, out)
	}
	for _, want := range []string{"Certificate is revoked", "holds the push lease:", "the anchor holds the new CRL:", "denied at CreateSession:"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "pg", "data", "postmaster.pid")); err == nil {
		t.Errorf("PostgreSQL still has its postmaster.pid after the script ended")
	}
}

// freePorts returns n distinct loopback ports free a moment ago.
func freePorts(t *testing.T, n int) []int {
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}
