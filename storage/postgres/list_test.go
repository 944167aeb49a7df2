package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/internal/pgtest"
	"github.com/anchorage-pki/anchorage/storage"
	"github.com/anchorage-pki/anchorage/storage/postgres"
)

// Every listing shape is an index range scan in the listing's order (no
// sequential scan, no sort), so a page costs O(log n + page) at any size.
func TestListUsesIndexes(t *testing.T) {
	d := open(t, pgtest.URL(t), "")
	ctx := context.Background()
	// 200,000 rows: 1,000 subjects, one in ten revoked, expiries spread
	// over a year either side of now.
	err := postgres.Exec(ctx, d, `INSERT INTO certs (serial, subject, not_after, status, lineage, rec)
		SELECT lpad(to_hex(i * 7919), 12, '0'), 'host-' || (i % 1000), now() + ((i % 730) - 365) * interval '1 day',
			CASE WHEN i % 10 = 3 THEN 'revoked' ELSE 'valid' END, lpad(to_hex(i * 7919), 12, '0'), '{}'
		FROM generate_series(1, 200000) AS i;
		ANALYZE certs`)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cursor := storage.EncodeCursor(&storage.Cert{Serial: "00000000ffff", NotAfter: now})
	for _, f := range []storage.Filter{
		{Limit: 100},
		{Limit: 100, Cursor: cursor},
		{Subject: "host-7", Limit: 100},
		{Subject: "host-7", Limit: 100, Cursor: cursor},
		{Status: storage.StatusRevoked, Limit: 100},
		{Status: storage.StatusRevoked, Limit: 100, Cursor: cursor},
		{Status: storage.StatusValid, Live: true, Limit: 100},
		{Status: storage.StatusValid, Live: true, Limit: 100, Cursor: cursor},
		{Status: storage.StatusValid, Expired: true, Limit: 100, Cursor: cursor},
		{Live: true, Limit: 100, Cursor: cursor},
		{Status: storage.StatusValid, Live: true, Before: now.Add(24 * time.Hour), Limit: 1000},
	} {
		plan, err := postgres.Explain(ctx, d, f, now)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(plan, "Seq Scan") || strings.Contains(plan, "Sort") || !strings.Contains(plan, "Index") {
			t.Errorf("%+v:\n%s", f, plan)
		} else {
			first, _, _ := strings.Cut(plan, "\n")
			t.Logf("%+v: %s", f, strings.TrimSpace(strings.SplitN(plan, "\n", 3)[min(1, strings.Count(plan, "\n"))]+" | "+first))
		}
	}
}
