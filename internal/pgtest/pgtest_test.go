package pgtest

import (
	"os"
	"strings"
	"testing"
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
