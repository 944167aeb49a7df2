package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/internal/pgtest"
	"github.com/anchorage-pki/anchorage/storage"
)

// With the server down, reads and writes fail with storage.ErrUnavailable
// (the API answers 503), a missing record is still ErrNotFound, and once
// the server is back the same DB works again without being reopened.
func TestOutageIsUnavailable(t *testing.T) {
	pg := pgtest.Private(t)
	d := open(t, pg.URL(t), "outage")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cert := &storage.Cert{Serial: "0c", Subject: "s", NotAfter: time.Now().Add(time.Hour), Status: storage.StatusValid}
	if err := d.PutCert(ctx, cert); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Cert(ctx, "0d"); !errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("missing record with the server up: %v", err)
	}
	pg.Stop(t)
	calls := []struct {
		name string
		call func() error
	}{
		{"Cert", func() error { _, err := d.Cert(ctx, "0c"); return err }},
		{"ListCerts", func() error { _, err := d.ListCerts(ctx, storage.Filter{}, time.Now()); return err }},
		{"RevokeSerial", func() error { _, err := d.RevokeSerial(ctx, "0c", 1, time.Now()); return err }},
		{"PutCert", func() error {
			return d.PutCert(ctx, &storage.Cert{Serial: "0e", Subject: "s", NotAfter: time.Now().Add(time.Hour)})
		}},
		{"TokenUsed", func() error { _, err := d.TokenUsed(ctx, "jti"); return err }},
		{"CRLNumber", func() error { _, _, err := d.CRLNumber(ctx); return err }},
		{"Leases", func() error { _, err := d.Leases(ctx); return err }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s with the server down: %v, want storage.ErrUnavailable", c.name, err)
		}
	}
	pg.Start(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := d.Cert(ctx, "0c")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pool did not reconnect within 10 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
