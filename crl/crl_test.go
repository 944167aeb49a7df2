package crl_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/crl"
	"github.com/anchorage-pki/anchorage/internal/pkitest"
	"github.com/anchorage-pki/anchorage/storage"
)

func issuer(t testing.TB) (*x509.Certificate, *ecdsa.PrivateKey) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Issuing CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * 365 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, k
}

func newUpdater(t testing.TB) (*crl.Updater, *storage.DB, *x509.Certificate) {
	u, db, iss, _ := newUpdaterKey(t)
	return u, db, iss
}

func newUpdaterKey(t testing.TB) (*crl.Updater, *storage.DB, *x509.Certificate, *ecdsa.PrivateKey) {
	iss, key := issuer(t)
	db, err := storage.Create(filepath.Join(t.TempDir(), "crl.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	u, err := crl.New(context.Background(), crl.Options{Issuer: iss, Signer: key, Store: db,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return u, db, iss, key
}

func TestUpdaterSync(t *testing.T) {
	ctx := context.Background()
	u, db, iss, key := newUpdaterKey(t)
	now := time.Now()
	put := func(serial string, notAfter time.Time) {
		if err := db.PutCert(ctx, &storage.Cert{Serial: serial, Subject: "s", NotAfter: notAfter, Status: storage.StatusValid}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.RevokeSerial(ctx, serial, 1, now.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	c1, err := u.Sync(ctx)
	if err != nil || c1.Number != 1 || c1.Entries != 0 || c1.Seq != 0 {
		t.Fatalf("first CRL: %+v %v", c1, err)
	}
	// Nothing new: Sync keeps the stored CRL.
	if c, err := u.Sync(ctx); err != nil || c.Number != 1 {
		t.Fatalf("sync with nothing new: %+v %v", c, err)
	}
	put("0a0b", now.Add(time.Hour))
	put("0c0d", now.Add(-storage.RevocationGrace-time.Minute)) // expired beyond the grace: must not appear
	put("0e0f", now.Add(-10*time.Minute))                      // expired by the CA's clock, within the grace: stays
	c, err := u.Sync(ctx)
	if err != nil || c.Number != 2 || c.Seq != 3 {
		t.Fatalf("second CRL: %+v %v", c, err)
	}
	rl, err := x509.ParseRevocationList(c.DER)
	if err != nil {
		t.Fatal(err)
	}
	if err := rl.CheckSignatureFrom(iss); err != nil {
		t.Error(err)
	}
	var serials []string
	for _, e := range rl.RevokedCertificateEntries {
		serials = append(serials, e.SerialNumber.Text(16))
	}
	if slices.Sort(serials); !slices.Equal(serials, []string{"a0b", "e0f"}) {
		t.Errorf("entries %v, want a0b and e0f", serials)
	}
	if d := rl.NextUpdate.Sub(rl.ThisUpdate); d != 24*time.Hour+crl.Backdate {
		t.Errorf("validity %s", d)
	}
	// thisUpdate is backdated (a relying party slightly behind accepts
	// it); every revocation time is at or before it.
	if rl.ThisUpdate.After(now.Add(-crl.Backdate)) || rl.ThisUpdate.Before(now.Add(-crl.Backdate-2*time.Second)) {
		t.Errorf("thisUpdate %s, want about %s", rl.ThisUpdate, now.Add(-crl.Backdate))
	}
	for _, e := range rl.RevokedCertificateEntries {
		if e.RevocationTime.After(rl.ThisUpdate) {
			t.Errorf("revocation time %s after thisUpdate %s", e.RevocationTime, rl.ThisUpdate)
		}
	}
	pkitest.LintCRL(t, c.DER)

	// A new updater on the same store continues the numbering.
	u2, err := crl.New(ctx, crl.Options{Issuer: iss, Signer: key, Store: db})
	if err != nil {
		t.Fatal(err)
	}
	if u2.Current().Number != 2 {
		t.Errorf("reloaded CRL number %d", u2.Current().Number)
	}
	// And what one updater stores, another reads at once.
	if c3, err := u2.Update(ctx); err != nil || u.Current().Number != c3.Number {
		t.Errorf("reader sees CRL %d after another stored %+v (%v)", u.Current().Number, c3, err)
	}
}

// Run builds from storage alone: a revocation committed with no call into
// the updater is on a stored CRL soon after, and WaitFor returns it.
func TestRunFollowsStorage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, db, _ := newUpdater(t)
	go u.Run(ctx)
	if _, err := u.WaitFor(ctx, 0); err != nil {
		t.Fatalf("first CRL: %v", err)
	}
	if err := db.PutCert(ctx, &storage.Cert{Serial: "0a", Subject: "s", NotAfter: time.Now().Add(time.Hour), Status: storage.StatusValid}); err != nil {
		t.Fatal(err)
	}
	res, err := db.RevokeSerial(ctx, "0a", 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := u.WaitFor(ctx, res.Seq)
	if err != nil || c.Entries != 1 || c.Seq < res.Seq {
		t.Fatalf("CRL after the revocation: %+v %v", c, err)
	}
}

func TestConcurrentSyncsShareBuilds(t *testing.T) {
	ctx := context.Background()
	u, db, _ := newUpdater(t)
	wake, stop := db.Watch(storage.TopicCRL)
	defer stop()
	var wg sync.WaitGroup
	nums := make(chan uint64, 30)
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := u.Sync(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			nums <- c.Number
		}()
	}
	wg.Wait()
	close(nums)
	for n := range nums {
		if n != 1 {
			t.Errorf("30 concurrent syncs with nothing to add built CRL %d; one build serves all", n)
		}
	}
	select {
	case <-wake:
	default:
		t.Error("watcher was not signalled")
	}
}

func TestCheckRejects(t *testing.T) {
	iss, key := issuer(t)
	other, _ := issuer(t)
	now := time.Now().Truncate(time.Second)
	der, err := crl.Build(iss, key, 5, nil, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		issuer *x509.Certificate
		prev   uint64
		now    time.Time
		want   []storage.Revocation
	}{
		{"ok", iss, 4, now, nil},
		{"number not above previous", iss, 5, now, nil},
		{"wrong issuer", other, 4, now, nil},
		{"already stale", iss, 4, now.Add(2 * time.Hour), nil},
		{"entry count", iss, 4, now, revocations(1)},
	}
	revs := revocations(6000)
	big, err := crl.Build(iss, key, 6, revs, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Over the cap, the CRL is otherwise fully checked and returned.
	if chk, err := crl.Check(big, iss, 5, now, revs); !errors.Is(err, crl.ErrTooLarge) || chk == nil || chk.Entries != 6000 {
		t.Errorf("a CRL over the Roles Anywhere cap: %+v %v", chk, err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := crl.Check(der, c.issuer, c.prev, c.now, c.want)
			if (err == nil) != (c.name == "ok") {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func revocations(n int) []storage.Revocation {
	out := make([]storage.Revocation, n)
	now := time.Now()
	for i := range out {
		b := make([]byte, 20)
		rand.Read(b)
		b[0] &= 0x7f
		b[0] |= 0x10
		out[i] = storage.Revocation{Serial: fmt.Sprintf("%x", b), RevokedAt: now.Add(-time.Hour), Reason: 1, NotAfter: now.Add(time.Hour)}
	}
	return out
}

// BenchmarkUpdate is a whole re-sign: bbolt read, build, check (zlint
// included), fsynced save, at the largest sizes under the Roles Anywhere
// cap.
func BenchmarkUpdate(b *testing.B) {
	for _, n := range []int{1_000, 4_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			ctx := context.Background()
			p, db, _ := newUpdater(b)
			var certs []*storage.Cert
			for _, r := range revocations(n) {
				certs = append(certs, &storage.Cert{Serial: r.Serial, Subject: "s", NotAfter: r.NotAfter, Status: storage.StatusValid})
			}
			if err := db.PutCerts(ctx, certs); err != nil {
				b.Fatal(err)
			}
			if _, err := db.RevokeSubject(ctx, "s", 1, time.Now()); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := p.Update(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(p.Current().PEM)), "pem-bytes")
		})
	}
}

// raceStore lets another replica's updater store its CRL just before this
// one's SaveCRL, as when a replica starting up builds outside the crl
// lease while the holder builds.
type raceStore struct {
	*storage.DB
	first func()
	once  sync.Once
}

func (r *raceStore) SaveCRL(ctx context.Context, c storage.CRL) error {
	r.once.Do(r.first)
	return r.DB.SaveCRL(ctx, c)
}

// A build that loses its CRL number to another replica serves the newer
// stored CRL instead of failing.
func TestSyncLosesNumberToAnotherReplica(t *testing.T) {
	ctx := context.Background()
	holder, db, iss, key := newUpdaterKey(t)
	if _, err := holder.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	rs := &raceStore{DB: db}
	starting, err := crl.New(ctx, crl.Options{Issuer: iss, Signer: key, Store: rs, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutCert(ctx, &storage.Cert{Serial: "0b", Subject: "s", NotAfter: time.Now().Add(time.Hour), Status: storage.StatusValid}); err != nil {
		t.Fatal(err)
	}
	res, err := db.RevokeSerial(ctx, "0b", 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var won *crl.CRL
	rs.first = func() {
		if won, err = holder.Sync(ctx); err != nil {
			t.Error(err)
		}
	}
	c, err := starting.Sync(ctx)
	if err != nil {
		t.Fatalf("Sync that lost the number: %v", err)
	}
	if won == nil || c.Number != won.Number || c.Seq < res.Seq {
		t.Fatalf("Sync served CRL %+v; the other replica stored %+v", c, won)
	}
}
