package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/caserver"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/internal/pgtest"
	"github.com/anchorage-pki/anchorage/storage"
)

// init --postgres runs the ceremony into an empty PostgreSQL database,
// names it in the config, and refuses a database that holds a CA already.
func TestInitOnPostgres(t *testing.T) {
	url := pgtest.URL(t)
	dir := filepath.Join(t.TempDir(), "ca")
	if code := run([]string{"init", "--dir", dir, "--name", "PG", "--postgres", url}); code != 0 {
		t.Fatalf("init --postgres: exit %d", code)
	}
	cfg, err := config.Load(dir)
	if err != nil || cfg.Storage == nil || cfg.Storage.Postgres == nil || cfg.Storage.Postgres.URL != url {
		t.Fatalf("config after init: %+v %v", cfg, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "anchorage.db")); !os.IsNotExist(err) {
		t.Errorf("init --postgres made a bbolt file too: %v", err)
	}
	st, err := caserver.OpenStore(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	admins, err := st.ListCerts(context.Background(), storage.Filter{}, time.Now())
	st.Close()
	var admin, tls bool
	for _, c := range admins {
		admin = admin || c.Method == storage.MethodAdmin
		tls = tls || c.Method == storage.MethodTLS
	}
	if err != nil || !admin || !tls {
		t.Errorf("records in PostgreSQL after init: %d (admin %v, TLS %v) %v", len(admins), admin, tls, err)
	}
	other := filepath.Join(t.TempDir(), "ca2")
	if code := run([]string{"init", "--dir", other, "--name", "PG2", "--postgres", url}); code == 0 {
		t.Error("a second CA was initialised in the same database")
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("the refused init left %s behind: %v", other, err)
	}
}
