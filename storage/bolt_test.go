package storage

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
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

// A subject holding a NUL cannot make another certificate look like one
// of a shorter subject's: bbolt's subject index is subject ‖ 0 ‖ serial
// bytes, so under the prefix "host" ‖ 0 the key of subject "host\x00\x0a"
// and serial 02 reads as serial 0a0002, another subject's certificate.
// Listing and revoking by subject check the record's subject. (PostgreSQL's
// text refuses a NUL, so this is bbolt's own test.)
func TestSubjectWithNULIsNotAnotherSubject(t *testing.T) {
	ctx := context.Background()
	d, _ := openTemp(t)
	now := time.Now()
	for _, c := range []*Cert{
		cert("0a01", "host", now.Add(time.Hour)),
		cert("0a0002", "other", now.Add(time.Hour)),
		cert("02", "host\x00\x0a", now.Add(time.Hour)),
	} {
		if err := d.PutCert(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	got, err := d.ListCerts(ctx, Filter{Subject: "host"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Serial != "0a01" {
		var serials []string
		for _, c := range got {
			serials = append(serials, c.Serial+" "+strconv.Quote(c.Subject))
		}
		t.Fatalf("listing subject %q: %v", "host", serials)
	}
	res, err := d.RevokeSubject(ctx, "host", 1, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changed) != 1 || res.Changed[0].Serial != "0a01" {
		t.Fatalf("revoking subject %q revoked %d certificates", "host", len(res.Changed))
	}
	for _, s := range []string{"0a0002", "02"} {
		if c, err := d.Cert(ctx, s); err != nil || c.Status != StatusValid {
			t.Fatalf("certificate %s of another subject: %v, %v", s, c, err)
		}
	}
}

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
