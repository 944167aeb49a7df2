package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/anchorage-pki/anchorage/storage"
)

// Explain is the plan PostgreSQL chooses for the listing query of f.
func Explain(ctx context.Context, d *DB, f storage.Filter, now time.Time) (string, error) {
	sql, args, err := listQuery(f, now)
	if err != nil {
		return "", err
	}
	rows, err := d.pool.Query(ctx, "EXPLAIN "+sql, args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return "", err
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n"), rows.Err()
}

// Exec runs sql on d's pool (test set-up).
func Exec(ctx context.Context, d *DB, sql string) error {
	_, err := d.pool.Exec(ctx, sql)
	return err
}
