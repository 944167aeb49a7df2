package storage

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
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

func TestCertsAndRevocations(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	d, path := openTemp(t)
	for _, c := range []*Cert{
		cert("0a", "web", now.Add(time.Hour)),
		cert("0b", "web", now.Add(2*time.Hour)),
		cert("0c", "web", now.Add(-time.Hour)), // expired
		cert("0d", "db", now.Add(time.Hour)),
	} {
		if err := d.PutCert(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	res, err := d.RevokeSubject(ctx, "web", 1, now)
	if err != nil || len(res.Changed) != 2 || len(res.Already) != 0 || res.Seq != 2 {
		t.Fatalf("revoke subject: %+v, %v", res, err)
	}
	res, err = d.RevokeSerial(ctx, "0a", 4, now)
	if err != nil || len(res.Changed) != 0 || len(res.Already) != 1 || res.Already[0].Reason != 1 || res.Seq != 2 {
		t.Fatalf("second revoke must not change the first reason nor the sequence: %+v %v", res, err)
	}
	if _, err := d.RevokeSerial(ctx, "ff", 1, now); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown serial: %v", err)
	}
	if _, err := d.RevokeSubject(ctx, "nobody", 1, now); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown subject: %v", err)
	}
	// Reopen: everything must have been committed.
	d.Close()
	d2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	set, err := d2.Revocations(ctx, now)
	if err != nil || len(set.Entries) != 2 || set.Seq != 2 {
		t.Fatalf("revoked after reopen: %+v %v", set, err)
	}
	// Once 0a is past expiry by more than the grace it leaves the CRL
	// source (0b, an hour later, is still within its grace).
	set, _ = d2.Revocations(ctx, now.Add(time.Hour+RevocationGrace+30*time.Minute))
	if len(set.Entries) != 1 || set.Entries[0].Serial != "0b" {
		t.Errorf("pruning expired revocations: %v", set)
	}
	if n, err := d2.PruneRevoked(ctx, now.Add(time.Hour+RevocationRetention+30*time.Minute)); n != 1 || err != nil {
		t.Errorf("PruneRevoked removed %d (%v), want 1", n, err)
	}
	if set, _ = d2.Revocations(ctx, now); len(set.Entries) != 1 || set.Entries[0].Serial != "0b" || set.Seq != 2 {
		t.Errorf("after pruning: %v", set)
	}
	if c, err := d2.Cert(ctx, "0a"); err != nil || c.Status != StatusRevoked {
		t.Errorf("the certificate record must keep its revocation: %+v %v", c, err)
	}
	tests := []struct {
		name string
		f    Filter
		want int
	}{
		{"all", Filter{}, 4},
		{"subject", Filter{Subject: "web"}, 3},
		{"revoked", Filter{Status: StatusRevoked}, 2},
		{"valid live", Filter{Status: StatusValid, Live: true}, 1},
		{"limit", Filter{Limit: 2}, 2},
		{"prefix is not a match", Filter{Subject: "we"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d2.ListCerts(ctx, tt.f, now)
			if err != nil || len(got) != tt.want {
				t.Errorf("got %d (%v), want %d", len(got), err, tt.want)
			}
		})
	}
}

func TestTokenSingleUse(t *testing.T) {
	ctx := context.Background()
	d, _ := openTemp(t)
	exp := time.Now().Add(time.Minute)
	if err := d.PutCertUsingToken(ctx, cert("01", "a", exp), "jti-1", exp); err != nil {
		t.Fatal(err)
	}
	err := d.PutCertUsingToken(ctx, cert("02", "a", exp), "jti-1", exp)
	if !errors.Is(err, ErrTokenUsed) {
		t.Fatalf("replay: %v", err)
	}
	if _, err := d.Cert(ctx, "02"); !errors.Is(err, ErrNotFound) {
		t.Errorf("certificate of a refused token was stored: %v", err)
	}
	used, _ := d.TokenUsed(ctx, "jti-1")
	if !used {
		t.Error("jti not recorded")
	}
	n, _ := d.PruneTokens(ctx, exp.Add(time.Hour))
	if used, _ := d.TokenUsed(ctx, "jti-1"); n != 1 || used {
		t.Errorf("prune: %d removed, still used=%v", n, used)
	}
}

// A token whose keep-until time has passed when its commit runs is refused
// there, whatever the verifier said earlier: a prune may have forgotten its
// id already.
func TestTokenExpiredAtCommit(t *testing.T) {
	ctx := context.Background()
	d, _ := openTemp(t)
	past := time.Now().Add(-time.Second)
	if err := d.PutCertUsingToken(ctx, cert("01", "a", time.Now().Add(time.Hour)), "late", past); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("commit after keep-until: %v", err)
	}
	if _, err := d.Cert(ctx, "01"); !errors.Is(err, ErrNotFound) {
		t.Errorf("certificate of an expired token was stored: %v", err)
	}
}

func TestConcurrentTokenUse(t *testing.T) {
	ctx := context.Background()
	d, _ := openTemp(t)
	exp := time.Now().Add(time.Minute)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d.PutCertUsingToken(ctx, cert(fmt.Sprintf("%02x", i+1), "a", exp), "same", exp) == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d writers consumed the same token", wins)
	}
}

func TestCRLNumberStrictlyIncreases(t *testing.T) {
	ctx := context.Background()
	d, _ := openTemp(t)
	if err := d.SaveCRL(ctx, CRL{Number: 1, DER: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []uint64{1, 0} {
		if err := d.SaveCRL(ctx, CRL{Number: n, DER: []byte("b")}); !errors.Is(err, ErrStaleCRL) {
			t.Errorf("save %d after 1: %v", n, err)
		}
	}
	if err := d.SaveCRL(ctx, CRL{Number: 2, Seq: 7, DER: []byte("c")}); err != nil {
		t.Fatal(err)
	}
	c, _ := d.CRL(ctx)
	if c.Number != 2 || c.Seq != 7 || string(c.DER) != "c" {
		t.Errorf("got %+v", c)
	}
}

func TestAnchorStatus(t *testing.T) {
	ctx := context.Background()
	d, _ := openTemp(t)
	s := AnchorStatus{ARN: "arn:aws:rolesanywhere:us-east-1:1:trust-anchor/x", CRLNumber: 3, CRLID: "id"}
	if err := d.PutAnchorStatus(ctx, s); err != nil {
		t.Fatal(err)
	}
	all, err := d.AnchorStatuses(ctx)
	if err != nil || all[s.ARN].CRLNumber != 3 || all[s.ARN].CRLID != "id" {
		t.Errorf("%v %v", all, err)
	}
}

func TestSecondOpenFailsClearly(t *testing.T) {
	_, path := openTemp(t)
	_, err := Open(path)
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Errorf("second open: %v", err)
	}
}

// One failing writer in a shared commit must not sink the others.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	ctx := context.Background()
	d, _ := openTemp(t)
	exp := time.Now().Add(time.Minute)
	if err := d.PutCertUsingToken(ctx, cert("ff", "a", exp), "dup", exp); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 30)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			jti := fmt.Sprintf("jti-%d", i)
			if i%10 == 0 {
				jti = "dup"
			}
			errs[i] = d.PutCertUsingToken(ctx, cert(fmt.Sprintf("%02x", i+1), "a", exp), jti, exp)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		want := i%10 == 0
		if (err != nil) != want || (want && !errors.Is(err, ErrTokenUsed)) {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	all, _ := d.ListCerts(ctx, Filter{}, time.Now())
	if len(all) != 28 {
		t.Errorf("%d certificates stored, want 28", len(all))
	}
}

// A CA clock running ahead must not drop revocations: an entry stays on the
// CRL source until RevocationGrace past its notAfter, and in storage until
// RevocationRetention past it, so a clock set back brings it back.
func TestRevocationGrace(t *testing.T) {
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	d, _ := openTemp(t)
	notAfter := now.Add(time.Hour)
	if err := d.PutCert(ctx, cert("0a", "web", notAfter)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.RevokeSerial(ctx, "0a", 1, now); err != nil {
		t.Fatal(err)
	}
	onCRL := func(at time.Time) bool {
		t.Helper()
		set, err := d.Revocations(ctx, at)
		if err != nil {
			t.Fatal(err)
		}
		return len(set.Entries) == 1 && set.Entries[0].Serial == "0a"
	}
	for _, tc := range []struct {
		name string
		at   time.Time
		want bool
	}{
		{"before notAfter", notAfter.Add(-time.Second), true},
		{"at notAfter", notAfter, true},
		{"just inside the grace", notAfter.Add(RevocationGrace - time.Second), true},
		{"at the end of the grace", notAfter.Add(RevocationGrace), false},
	} {
		if got := onCRL(tc.at); got != tc.want {
			t.Errorf("%s: on the CRL source %v, want %v", tc.name, got, tc.want)
		}
	}
	// A clock far ahead prunes nothing before the retention ends ...
	if n, err := d.PruneRevoked(ctx, notAfter.Add(RevocationRetention-time.Second)); n != 0 || err != nil {
		t.Fatalf("PruneRevoked before the retention: %d, %v", n, err)
	}
	// ... so once it is set back the entry is on the CRL source again.
	if !onCRL(now) {
		t.Error("after a clock running ahead is set back, the revocation is not on the CRL source")
	}
	if n, err := d.PruneRevoked(ctx, notAfter.Add(RevocationRetention)); n != 1 || err != nil {
		t.Fatalf("PruneRevoked at the end of the retention: %d, %v", n, err)
	}
	if onCRL(now) {
		t.Error("a pruned revocation is still on the CRL source")
	}
}
