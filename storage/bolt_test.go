package storage

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openTemp(t testing.TB) (*DB, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "a.db")
	d, err := Create(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, p
}

func cert(serial, subject string, notAfter time.Time) *Cert {
	return &Cert{Serial: serial, Subject: subject, NotBefore: notAfter.Add(-24 * time.Hour), NotAfter: notAfter,
		Status: StatusValid, Method: "token", DER: []byte{1, 2, 3}}
}

// The conformance suite (storagetest, run from conformance_test.go) holds
// the backend-independent tests; what stays here is bbolt's own: the file
// lock, group commit, and that everything is in the file after a reopen.

// Every kind of record is in the file after Close and Open.
func TestDurableAfterReopen(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	d, path := openTemp(t)
	for _, c := range []*Cert{cert("0a", "web", now.Add(time.Hour)), cert("0b", "web", now.Add(2*time.Hour))} {
		if err := d.PutCert(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.PutRenewal(ctx, "0a", cert("0c", "web", now.Add(time.Hour)), now); err != nil {
		t.Fatal(err)
	}
	if _, err := d.RevokeSerial(ctx, "0b", 1, now); err != nil {
		t.Fatal(err)
	}
	if err := d.PutCertUsingToken(ctx, cert("0d", "db", now.Add(time.Hour)), "jti", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := d.SaveCRL(ctx, CRL{Number: 3, Seq: 1, DER: []byte("crl")}); err != nil {
		t.Fatal(err)
	}
	if err := d.PutAnchorStatus(ctx, AnchorStatus{ARN: "a", CRLNumber: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateACMEAccount(ctx, &ACMEAccount{ID: "A", Provisioner: "p", Thumbprint: "tp", EABKeyID: "kid"}); err != nil {
		t.Fatal(err)
	}
	o := newOrder(t, d, "A", "o1", 1, t0.Add(time.Hour))
	makeReady(t, d, o)
	if _, err := d.ClaimACMEOrder(ctx, "o1", t0); err != nil {
		t.Fatal(err)
	}
	if err := d.PutCert(ctx, acmeCert("0e", "o1", now.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if c, err := d.Cert(ctx, "0a"); err != nil || c.RenewedTo != "0c" {
		t.Errorf("renewed certificate after reopen: %+v %v", c, err)
	}
	if set, err := d.Revocations(ctx, now); err != nil || len(set.Entries) != 1 || set.Seq != 1 {
		t.Errorf("revocations after reopen: %+v %v", set, err)
	}
	if used, _ := d.TokenUsed(ctx, "jti"); !used {
		t.Error("used token forgotten on reopen")
	}
	if c, _ := d.CRL(ctx); c.Number != 3 || string(c.DER) != "crl" {
		t.Errorf("CRL after reopen: %+v", c)
	}
	if all, _ := d.AnchorStatuses(ctx); all["a"].CRLNumber != 3 {
		t.Errorf("anchors after reopen: %v", all)
	}
	if _, err := d.CreateACMEAccount(ctx, &ACMEAccount{ID: "B", Provisioner: "p", Thumbprint: "tp2", EABKeyID: "kid"}); !errors.Is(err, ErrACMEEABBound) {
		t.Errorf("EAB binding after reopen: %v", err)
	}
	if got, err := d.ACMEOrder(ctx, "o1"); err != nil || got.Status != ACMEValid || got.CertSerial != "0e" {
		t.Errorf("order after reopen: %+v %v", got, err)
	}
}

func TestSecondOpenFailsClearly(t *testing.T) {
	_, path := openTemp(t)
	_, err := Open(path)
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Errorf("second open: %v", err)
	}
}

// bbolt keeps ACME nonce state in memory (nonce.go): the key is new at
// every Open, so nonces minted before a restart fail their MAC after it,
// and using nonces writes nothing to the file.
func TestNoncesLiveWithTheProcess(t *testing.T) {
	ctx := context.Background()
	d, path := openTemp(t)
	k1, err := d.NonceKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := d.db.Stats()
	before := st.TxStats.GetWrite()
	for i := range 100 {
		if fresh, err := d.UseNonce(ctx, string(rune('a'+i%26))+strings.Repeat("x", i), time.Now().Add(time.Minute)); !fresh || err != nil {
			t.Fatalf("use %d: %v %v", i, fresh, err)
		}
	}
	st = d.db.Stats()
	if w := st.TxStats.GetWrite() - before; w != 0 {
		t.Errorf("100 nonce uses wrote %d pages to the file", w)
	}
	d.Close()
	d2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	k2, err := d2.NonceKey(ctx)
	if err != nil || string(k1) == string(k2) {
		t.Fatalf("the nonce key survived a reopen (%v)", err)
	}
	if fresh, _ := d2.UseNonce(ctx, "a", time.Now().Add(time.Minute)); !fresh {
		t.Error("a used id from before the reopen is held (harmless, since its nonce fails the new key, but not the design)")
	}
}
