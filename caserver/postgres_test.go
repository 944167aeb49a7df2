package caserver_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/caclient"
	"github.com/anchorage-pki/anchorage/internal/pgtest"
	"github.com/anchorage-pki/anchorage/internal/testenv"
	"github.com/anchorage-pki/anchorage/storage"
)

// The cluster pgtest starts for the PostgreSQL tests is stopped at the end.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// A CA whose config names "storage.postgres" keeps its records there:
// enroll, renew and revoke through the API land in PostgreSQL, and the CRL
// built from it carries the revoked lineage.
func TestEnrollRenewRevokeOnPostgres(t *testing.T) {
	c := testenv.InitCAOnPostgres(t, pgtest.URL(t))
	c.Start(t)
	tc := &testCA{c}
	ctx := context.Background()
	pair, res := tc.enroll(t, "pg-01.example.com")
	key2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := caclient.NewCSR(key2, "pg-01.example.com", nil)
	ren, err := tc.Client(t, &pair).Renew(ctx, csr)
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	rr, err := tc.Admin(t).Revoke(ctx, apiv1.RevokeRequest{Serial: res.Serial, Reason: "keyCompromise"})
	if err != nil || len(rr.Revoked) != 2 {
		t.Fatalf("revoke: %+v %v", rr, err)
	}
	if _, ok := c.Srv.Store.(interface {
		ImportLegacyACME(context.Context, string) (int, error)
	}); ok {
		t.Fatal("the CA opened the bbolt file, not PostgreSQL")
	}
	rec, err := c.Srv.Store.Cert(ctx, ren.Serial)
	if err != nil || rec.Status != storage.StatusRevoked || rec.RenewedFrom != res.Serial {
		t.Fatalf("renewal record in PostgreSQL: %+v %v", rec, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		der, err := tc.Client(t, nil).CRL(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		on := map[string]bool{}
		for _, e := range rl.RevokedCertificateEntries {
			on[ca.SerialHex(e.SerialNumber)] = true
		}
		if on[res.Serial] && on[ren.Serial] {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CRL %d lacks the revoked lineage %s, %s: %v", rl.Number, res.Serial, ren.Serial, on)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
