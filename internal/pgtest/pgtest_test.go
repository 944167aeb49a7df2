package pgtest

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// Without PostgreSQL's binaries the error says what to install.
func TestMissingInitdbSaysWhatToInstall(t *testing.T) {
	t.Setenv("PGTEST_BIN", t.TempDir())
	if _, err := binDir(); err == nil || !strings.Contains(err.Error(), "install the postgresql package") {
		t.Errorf("binDir without initdb: %v", err)
	}
}

// The cluster starts, hands out separate databases, and answers.
func TestURL(t *testing.T) {
	a, b := URL(t), URL(t)
	if a == b {
		t.Fatalf("two tests share database %s", a)
	}
	if cluster == nil || cluster.pid == 0 {
		t.Fatal("no postmaster PID recorded")
	}
}

// A private cluster stops (connections fail, the postmaster is gone by
// PID) and starts again with its data.
func TestPrivateStopStart(t *testing.T) {
	c := Private(t)
	url := c.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	exec := func() error {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS kept (n int)")
		return err
	}
	if err := exec(); err != nil {
		t.Fatal(err)
	}
	pid := c.s.pid
	c.Stop(t)
	if syscall.Kill(pid, 0) == nil {
		t.Fatalf("postmaster %d still runs after Stop", pid)
	}
	if err := exec(); err == nil {
		t.Fatal("a stopped cluster answered")
	}
	c.Start(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT * FROM kept"); err != nil {
		t.Fatalf("the table made before the outage: %v", err)
	}
}
