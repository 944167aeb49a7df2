package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/audit"
	"github.com/anchorage-pki/anchorage/caserver"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/internal/pgtest"
	"github.com/anchorage-pki/anchorage/localaws"
)

// On PostgreSQL the audit reads the CA's certificates and keeps its
// snapshot in the database, while the CA could be serving: the second
// audit finds the first one's snapshot there.
func TestAuditOnPostgres(t *testing.T) {
	url := pgtest.URL(t)
	dir := filepath.Join(t.TempDir(), "ca")
	if code := run([]string{"init", "--dir", dir, "--name", "PG", "--postgres", url}); code != 0 {
		t.Fatalf("init --postgres: exit %d", code)
	}
	endpoint := localAWS(t, localaws.RateLimits{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := must(config.Load(dir))
	caPEM := must(os.ReadFile(cfg.Path(cfg.Paths.CACert)))
	prod := newAccount(endpoint, "prod", keyProd, secProd)
	anchorARN := prod.anchor(t, ctx, "main", caPEM)
	role := prod.role(t, ctx, "any", trustPolicy(""), nil)
	prod.profile(t, ctx, "open", "", role)
	awsProfiles(t)
	t.Setenv("AWS_ACCESS_KEY_ID", keyProd)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secProd)

	for i, wantPrevious := range []bool{false, true} {
		stdout, stderr, err := runAuditCmd(t, "--dir", dir, "--endpoint", endpoint, "--json")
		if err != nil {
			t.Fatalf("audit %d: %v\n%s", i, err, stderr)
		}
		var r audit.Report
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatal(err)
		}
		if (r.Snapshot != nil) != wantPrevious {
			t.Errorf("audit %d: previous audit %+v, want one: %v", i, r.Snapshot, wantPrevious)
		}
		// The CA's only live certificates are its TLS and admin ones, from
		// the service and admin intermediates: no AWS identity, even with
		// role any behind the anchor.
		if len(r.Certificates) != 0 || len(r.Anchors) != 1 || r.Anchors[0].ARN != anchorARN {
			t.Errorf("audit %d: certificates %+v anchors %+v", i, r.Certificates, r.Anchors)
		}
	}
	st := must(caserver.OpenStore(ctx, cfg, nil))
	defer st.Close()
	snap := must(st.AuditSnapshot(ctx))
	if s, err := audit.DecodeSnapshot(snap.Data); err != nil || s.Certs != 0 || time.Since(snap.TakenAt) > time.Minute {
		t.Errorf("snapshot in PostgreSQL: %+v %v", s, err)
	}
}
