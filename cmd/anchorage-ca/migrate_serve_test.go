package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/internal/pgtest"
	"github.com/anchorage-pki/anchorage/internal/testenv"
	"github.com/anchorage-pki/anchorage/storage/postgres"
)

// A CA that served on bbolt serves, after migrate, the same `certs` listing
// and the same CRL from PostgreSQL, and keeps going: the next revocation
// gives a CRL with a higher number carrying both entries.
func TestMigratedCAServes(t *testing.T) {
	ctx := context.Background()
	c := testenv.InitCA(t)
	c.Start(t)
	first, _, _ := c.Enroll(t, t.TempDir(), "m-01.example.com")
	second, _, _ := c.Enroll(t, t.TempDir(), "m-02.example.com")
	if _, err := c.Admin(t).Revoke(ctx, apiv1.RevokeRequest{Serial: first.Serial, Reason: "keyCompromise"}); err != nil {
		t.Fatal(err)
	}
	crl := servedCRLWith(t, c, first.Serial)
	wantCerts, err := c.Admin(t).Certs(ctx, "", "", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	c.Stop()

	url := pgtest.URL(t)
	if err := migrate(ctx, new(bytes.Buffer), c.Dir, url, "", ""); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage = &config.Storage{Postgres: &config.Postgres{URL: url}}
	if err := cfg.Save(); err != nil {
		t.Fatal(err)
	}
	c.Start(t)
	if _, ok := c.Srv.Store.(*postgres.DB); !ok {
		t.Fatalf("the CA serves from %T, not PostgreSQL", c.Srv.Store)
	}
	got, err := c.Client(t, nil).CRL(ctx)
	if err != nil || !bytes.Equal(got, crl) {
		t.Fatalf("CRL served from PostgreSQL differs from the one served before (%v)", err)
	}
	gotCerts, err := c.Admin(t).Certs(ctx, "", "", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(wantCerts)
	b, _ := json.Marshal(gotCerts)
	if !bytes.Equal(a, b) {
		t.Fatalf("certs listing changed:\nbefore %s\nafter  %s", a, b)
	}
	old, _ := x509.ParseRevocationList(crl)
	if _, err := c.Admin(t).Revoke(ctx, apiv1.RevokeRequest{Serial: second.Serial, Reason: "keyCompromise"}); err != nil {
		t.Fatal(err)
	}
	rl, _ := x509.ParseRevocationList(servedCRLWith(t, c, second.Serial))
	if rl.Number.Cmp(old.Number) <= 0 || len(rl.RevokedCertificateEntries) != 2 {
		t.Fatalf("CRL after a revocation on PostgreSQL: number %v (was %v), %d entries", rl.Number, old.Number, len(rl.RevokedCertificateEntries))
	}
}

// servedCRLWith returns the served CRL once it lists serial (hex).
func servedCRLWith(t *testing.T, c *testenv.CA, serial string) []byte {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		der, err := c.Client(t, nil).CRL(context.Background())
		if err == nil {
			if rl, err := x509.ParseRevocationList(der); err == nil {
				for _, e := range rl.RevokedCertificateEntries {
					if e.SerialNumber.Text(16) == serial || "0"+e.SerialNumber.Text(16) == serial {
						return der
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("CRL without %s after 15s (%v)", serial, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
