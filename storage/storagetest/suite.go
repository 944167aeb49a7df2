package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/anchorage-pki/anchorage/storage"
)

// Opener returns a fresh, empty backend for one test; it closes it itself
// (t.Cleanup) or leaves that to the test.
type Opener func(t *testing.T) Backend

// Run runs every conformance test against backends made by open.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		run  func(t *testing.T, open Opener)
	}{
		{"CertsAndRevocations", testCertsAndRevocations},
		{"RevocationGrace", testRevocationGrace},
		{"RecoverRevocations", testRecoverRevocations},
		{"TokenSingleUse", testTokenSingleUse},
		{"TokenExpiredAtCommit", testTokenExpiredAtCommit},
		{"TokenPruneBoundary", testTokenPruneBoundary},
		{"ConcurrentTokenUse", testConcurrentTokenUse},
		{"FailingWritersIsolated", testFailingWritersIsolated},
		{"DuplicateSerialKeepsToken", testDuplicateSerialKeepsToken},
		{"CRLNumberStrictlyIncreases", testCRLNumberStrictlyIncreases},
		{"AnchorStatus", testAnchorStatus},
		{"AuditSnapshot", testAuditSnapshot},
		{"LineageRenewal", testLineageRenewal},
		{"RenewalRaceWithRevoke", testRenewalRaceWithRevoke},
		{"WatchSignalsAfterCommits", testWatch},
		{"HoldAndLeases", testHoldAndLeases},
		{"ACMEOrderIssuedWithCertificate", testACMEOrderIssuedWithCertificate},
		{"ACMEResolveProcessing", testACMEResolveProcessing},
		{"ACMEPrune", testACMEPrune},
		{"ACMEOrderLimits", testACMEOrderLimits},
		{"ACMEAccounts", testACMEAccounts},
		{"ACMEEmpty", testACMEEmpty},
		{"NonceKey", testNonceKey},
		{"NonceSingleUse", testNonceSingleUse},
		{"ConcurrentNonceUse", testConcurrentNonceUse},
		{"NoncePrune", testNoncePrune},
		{"RecordRoundTrip", testRecordRoundTrip},
		{"Paging", testPaging},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open) })
	}
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Cert is a certificate record as the issuing core would store it.
func cert(serial, subject string, notAfter time.Time) *Cert {
	return &Cert{Serial: serial, Subject: subject, NotBefore: notAfter.Add(-24 * time.Hour), NotAfter: notAfter,
		Status: StatusValid, Method: "token", DER: []byte{1, 2, 3}}
}

// renewal is a successor record as the issuing core would hand it in.
func renewal(serial, subject string, notAfter time.Time, key string) *Cert {
	c := cert(serial, subject, notAfter)
	c.Method, c.KeyID = MethodRenew, key
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, d Backend, serial string) *Cert {
	t.Helper()
	c, err := d.Cert(context.Background(), serial)
	if err != nil {
		t.Fatalf("cert %s: %v", serial, err)
	}
	return c
}

func testCertsAndRevocations(t *testing.T, open Opener) {
	ctx := context.Background()
	now := time.Now()
	d := open(t)
	for _, c := range []*Cert{
		cert("0a", "web", now.Add(time.Hour)),
		cert("0b", "web", now.Add(2*time.Hour)),
		cert("0c", "web", now.Add(-time.Hour)), // expired
		cert("0d", "db", now.Add(time.Hour)),
	} {
		must(t, d.PutCert(ctx, c))
	}
	if err := d.PutCert(ctx, cert("0a", "web", now.Add(time.Hour))); err == nil {
		t.Error("a serial recorded twice")
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
	if _, err := d.Cert(ctx, "ff"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown cert: %v", err)
	}
	if seq, err := d.RevocationSeq(ctx); seq != 2 || err != nil {
		t.Errorf("revocation sequence %d %v, want 2", seq, err)
	}
	set, err := d.Revocations(ctx, now)
	if err != nil || len(set.Entries) != 2 || set.Seq != 2 {
		t.Fatalf("revoked: %+v %v", set, err)
	}
	for _, e := range set.Entries {
		if e.Reason != 1 || e.RevokedAt.Unix() != now.Unix() || e.NotAfter.IsZero() {
			t.Errorf("entry %+v", e)
		}
	}
	// Once 0a is past expiry by more than the grace it leaves the CRL
	// source (0b, an hour later, is still within its grace).
	set, _ = d.Revocations(ctx, now.Add(time.Hour+RevocationGrace+30*time.Minute))
	if len(set.Entries) != 1 || set.Entries[0].Serial != "0b" {
		t.Errorf("expired revocations: %v", set)
	}
	if n, err := d.PruneRevoked(ctx, now.Add(time.Hour+RevocationRetention+30*time.Minute)); n != 1 || err != nil {
		t.Errorf("PruneRevoked removed %d (%v), want 1", n, err)
	}
	if set, _ = d.Revocations(ctx, now); len(set.Entries) != 1 || set.Entries[0].Serial != "0b" || set.Seq != 2 {
		t.Errorf("after pruning: %v", set)
	}
	if c, err := d.Cert(ctx, "0a"); err != nil || c.Status != StatusRevoked {
		t.Errorf("the certificate record must keep its revocation: %+v %v", c, err)
	}
	tests := []struct {
		name string
		f    Filter
		want []string
	}{
		{"all", Filter{}, []string{"0a", "0b", "0c", "0d"}},
		{"subject", Filter{Subject: "web"}, []string{"0a", "0b", "0c"}},
		{"revoked", Filter{Status: StatusRevoked}, []string{"0a", "0b"}},
		{"valid live", Filter{Status: StatusValid, Live: true}, []string{"0d"}},
		{"limit", Filter{Limit: 2}, []string{"0a", "0b"}},
		{"prefix is not a match", Filter{Subject: "we"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.ListCerts(ctx, tt.f, now)
			var serials []string
			for _, c := range got {
				serials = append(serials, c.Serial)
			}
			if err != nil || fmt.Sprint(serials) != fmt.Sprint(tt.want) {
				t.Errorf("got %v (%v), want %v", serials, err, tt.want)
			}
		})
	}
	// A record reads back as it was stored.
	c := cert("0e", "round", now.Add(time.Hour).Truncate(time.Microsecond))
	c.SANs, c.KeyID, c.TokenID, c.IssuedBy = []string{"a.internal"}, "k", "jti", "init"
	must(t, d.PutCerts(ctx, []*Cert{c}))
	if got := get(t, d, "0e"); got.Lineage != "0e" || !got.NotAfter.Equal(c.NotAfter) || len(got.SANs) != 1 || got.KeyID != "k" || string(got.DER) != "\x01\x02\x03" {
		t.Errorf("read back %+v", got)
	}
}

func testTokenSingleUse(t *testing.T, open Opener) {
	ctx := context.Background()
	d := open(t)
	exp := time.Now().Add(time.Minute)
	must(t, d.PutCertUsingToken(ctx, cert("01", "a", exp), "jti-1", exp))
	err := d.PutCertUsingToken(ctx, cert("02", "a", exp), "jti-1", exp)
	if !errors.Is(err, ErrTokenUsed) {
		t.Fatalf("replay: %v", err)
	}
	if _, err := d.Cert(ctx, "02"); !errors.Is(err, ErrNotFound) {
		t.Errorf("certificate of a refused token was stored: %v", err)
	}
	if used, _ := d.TokenUsed(ctx, "jti-1"); !used {
		t.Error("jti not recorded")
	}
	if used, _ := d.TokenUsed(ctx, "jti-2"); used {
		t.Error("unknown jti reported used")
	}
	n, _ := d.PruneTokens(ctx, exp.Add(time.Hour))
	if used, _ := d.TokenUsed(ctx, "jti-1"); n != 1 || used {
		t.Errorf("prune: %d removed, still used=%v", n, used)
	}
}

// A token whose keep-until time has passed when its commit runs is refused
// there, whatever the verifier said earlier.
func testTokenExpiredAtCommit(t *testing.T, open Opener) {
	ctx := context.Background()
	d := open(t)
	past := time.Now().Add(-time.Second)
	if err := d.PutCertUsingToken(ctx, cert("01", "a", time.Now().Add(time.Hour)), "late", past); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("commit after keep-until: %v", err)
	}
	if _, err := d.Cert(ctx, "01"); !errors.Is(err, ErrNotFound) {
		t.Errorf("certificate of an expired token was stored: %v", err)
	}
	if used, _ := d.TokenUsed(ctx, "late"); used {
		t.Error("the refused token was recorded")
	}
}

// A token id is kept through its keep-until second and pruned after it.
func testTokenPruneBoundary(t *testing.T, open Opener) {
	ctx := context.Background()
	d := open(t)
	keep := time.Now().Add(time.Hour).Truncate(time.Second)
	must(t, d.PutCertUsingToken(ctx, cert("01", "a", keep), "j", keep))
	for _, tt := range []struct {
		at   time.Time
		want int
	}{
		{keep.Add(-time.Second), 0},
		{keep, 0},
		{keep.Add(999 * time.Millisecond), 0},
		{keep.Add(time.Second), 1},
	} {
		if n, err := d.PruneTokens(ctx, tt.at); n != tt.want || err != nil {
			t.Errorf("prune at keep-until%+v: %d (%v), want %d", tt.at.Sub(keep), n, err, tt.want)
		}
	}
}

func testConcurrentTokenUse(t *testing.T, open Opener) {
	ctx := context.Background()
	d := open(t)
	exp := time.Now().Add(time.Minute)
	var wg sync.WaitGroup
	var wins atomic.Int64
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := d.PutCertUsingToken(ctx, cert(fmt.Sprintf("%02x", i+1), "a", exp), "same", exp)
			if err == nil {
				wins.Add(1)
			} else if !errors.Is(err, ErrTokenUsed) {
				t.Errorf("writer %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d writers consumed the same token", wins.Load())
	}
	if all, _ := d.ListCerts(ctx, Filter{}, time.Now()); len(all) != 1 {
		t.Errorf("%d certificates stored, want 1", len(all))
	}
}

// A certificate whose serial is already recorded is refused, and its
// token is not used up by the refusal: token and certificate are one write.
func testDuplicateSerialKeepsToken(t *testing.T, open Opener) {
	ctx := context.Background()
	d := open(t)
	exp := time.Now().Add(time.Minute)
	must(t, d.PutCertUsingToken(ctx, cert("0a", "a", exp), "first", exp))
	err := d.PutCertUsingToken(ctx, cert("0a", "b", exp), "second", exp)
	if err == nil || errors.Is(err, ErrTokenUsed) {
		t.Fatalf("duplicate serial: %v", err)
	}
	if used, _ := d.TokenUsed(ctx, "second"); used {
		t.Error("the refused write used up its token")
	}
	if c, err := d.Cert(ctx, "0a"); err != nil || c.Subject != "a" {
		t.Errorf("first record changed: %+v %v", c, err)
	}
	must(t, d.PutCertUsingToken(ctx, cert("0b", "b", exp), "second", exp))
}

// One failing writer among concurrent ones must not sink the others.
func testFailingWritersIsolated(t *testing.T, open Opener) {
	ctx := context.Background()
	d := open(t)
	exp := time.Now().Add(time.Minute)
	must(t, d.PutCertUsingToken(ctx, cert("ff", "a", exp), "dup", exp))
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
	if all, _ := d.ListCerts(ctx, Filter{}, time.Now()); len(all) != 28 {
		t.Errorf("%d certificates stored, want 28", len(all))
	}
}

func testCRLNumberStrictlyIncreases(t *testing.T, open Opener) {
	ctx := context.Background()
	d := open(t)
	if c, err := d.CRL(ctx); err != nil || c.Number != 0 || c.DER != nil {
		t.Errorf("no CRL yet: %+v %v", c, err)
	}
	must(t, d.SaveCRL(ctx, CRL{Number: 1, DER: []byte("a")}))
	for _, n := range []uint64{1, 0} {
		if err := d.SaveCRL(ctx, CRL{Number: n, DER: []byte("b")}); !errors.Is(err, ErrStaleCRL) {
			t.Errorf("save %d after 1: %v", n, err)
		}
	}
	must(t, d.SaveCRL(ctx, CRL{Number: 2, Seq: 7, DER: []byte("c")}))
	if c, _ := d.CRL(ctx); c.Number != 2 || c.Seq != 7 || string(c.DER) != "c" {
		t.Errorf("got %+v", c)
	}
	if n, s, err := d.CRLNumber(ctx); n != 2 || s != 7 || err != nil {
		t.Errorf("CRLNumber %d %d %v", n, s, err)
	}
	// Racing builders: each number is stored once, never going back.
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := d.SaveCRL(ctx, CRL{Number: uint64(3 + i%2), DER: []byte("d")})
			if err == nil {
				ok.Add(1)
			} else if !errors.Is(err, ErrStaleCRL) {
				t.Errorf("racing save: %v", err)
			}
		}()
	}
	wg.Wait()
	if n, _, _ := d.CRLNumber(ctx); ok.Load() < 1 || ok.Load() > 2 || n != 4 && ok.Load() == 2 {
		t.Errorf("%d racing saves stored, number now %d", ok.Load(), n)
	}
}

func testAnchorStatus(t *testing.T, open Opener) {
	ctx := context.Background()
	d := open(t)
	s := AnchorStatus{ARN: "arn:aws:rolesanywhere:us-east-1:1:trust-anchor/x", CRLNumber: 3, CRLID: "id", PushedAt: t0}
	must(t, d.PutAnchorStatus(ctx, s))
	s.CRLNumber, s.Attempts = 4, 2
	must(t, d.PutAnchorStatus(ctx, s))
	must(t, d.PutAnchorStatus(ctx, AnchorStatus{ARN: "other", LastError: "boom"}))
	all, err := d.AnchorStatuses(ctx)
	if err != nil || len(all) != 2 || all[s.ARN].CRLNumber != 4 || all[s.ARN].Attempts != 2 || all[s.ARN].CRLID != "id" || !all[s.ARN].PushedAt.Equal(t0) || all["other"].LastError != "boom" {
		t.Errorf("%v %v", all, err)
	}
}

// The audit snapshot is absent until the first one, then the newest wins.
func testAuditSnapshot(t *testing.T, open Opener) {
	ctx := context.Background()
	d := open(t)
	if _, err := d.AuditSnapshot(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("before any audit: %v, want ErrNotFound", err)
	}
	tests := []struct {
		at   time.Time
		data string
	}{
		{t0, `{"subjects":["a"]}`},
		{t0.Add(time.Hour), `{"subjects":["a","b"],"n":2}`},
	}
	for _, tt := range tests {
		must(t, d.PutAuditSnapshot(ctx, AuditSnapshot{TakenAt: tt.at, Data: []byte(tt.data)}))
		got, err := d.AuditSnapshot(ctx)
		must(t, err)
		if !got.TakenAt.Equal(tt.at) || string(got.Data) != tt.data {
			t.Errorf("got %v %s, want %v %s", got.TakenAt, got.Data, tt.at, tt.data)
		}
	}
	if err := d.PutAuditSnapshot(ctx, AuditSnapshot{TakenAt: t0, Data: []byte("{not json")}); err == nil {
		t.Error("a snapshot that is not JSON was stored")
	}
}

func testLineageRenewal(t *testing.T, open Opener) {
	ctx := context.Background()
	now := time.Now()
	exp := now.Add(time.Hour)
	tests := []struct {
		name string
		run  func(t *testing.T, d Backend)
	}{
		{"renewal extends the lineage and supersedes its predecessor", func(t *testing.T, d Backend) {
			must(t, d.PutCert(ctx, cert("01", "web", exp)))
			must(t, d.PutRenewal(ctx, "01", renewal("02", "web", exp, "k2"), now))
			must(t, d.PutRenewal(ctx, "02", renewal("03", "web", exp, "k3"), now))
			c1, c2, c3 := get(t, d, "01"), get(t, d, "02"), get(t, d, "03")
			if c1.Lineage != "01" || c2.Lineage != "01" || c3.Lineage != "01" {
				t.Errorf("lineages %q %q %q, want all 01", c1.Lineage, c2.Lineage, c3.Lineage)
			}
			if c1.RenewedTo != "02" || c2.RenewedFrom != "01" || c2.RenewedTo != "03" || c3.RenewedTo != "" {
				t.Errorf("links: %+v / %+v / %+v", c1, c2, c3)
			}
		}},
		{"a superseded certificate cannot renew again", func(t *testing.T, d Backend) {
			must(t, d.PutCert(ctx, cert("01", "web", exp)))
			must(t, d.PutRenewal(ctx, "01", renewal("02", "web", exp, "k2"), now))
			err := d.PutRenewal(ctx, "01", renewal("03", "web", exp, "k3"), now)
			var sup *SupersededError
			if !errors.As(err, &sup) || sup.Successor.Serial != "02" || sup.Successor.KeyID != "k2" {
				t.Fatalf("second renewal of 01: %v", err)
			}
			// What lost is recorded, revoked as superseded and undelivered,
			// and kept off the CRL.
			c3 := get(t, d, "03")
			if c3.Status != StatusRevoked || c3.Reason != ReasonSuperseded || !c3.Undelivered || c3.Lineage != "01" {
				t.Errorf("lost renewal recorded as %s reason %d undelivered %v", c3.Status, c3.Reason, c3.Undelivered)
			}
			set, _ := d.Revocations(ctx, now)
			if len(set.Entries) != 0 || set.Seq != 0 {
				t.Errorf("CRL source: %+v", set)
			}
			if get(t, d, "01").RenewedTo != "02" {
				t.Error("the refused renewal moved the lineage head")
			}
		}},
		{"revoked or expired predecessor renews nothing", func(t *testing.T, d Backend) {
			must(t, d.PutCert(ctx, cert("01", "web", exp)))
			must(t, d.PutCert(ctx, cert("02", "db", now.Add(-time.Second))))
			if _, err := d.RevokeSerial(ctx, "01", 1, now); err != nil {
				t.Fatal(err)
			}
			if err := d.PutRenewal(ctx, "01", renewal("03", "web", exp, "k"), now); !errors.Is(err, ErrRevoked) {
				t.Errorf("revoked: %v", err)
			}
			if err := d.PutRenewal(ctx, "02", renewal("04", "db", exp, "k"), now); !errors.Is(err, ErrExpired) {
				t.Errorf("expired: %v", err)
			}
			if err := d.PutRenewal(ctx, "ff", renewal("05", "db", exp, "k"), now); !errors.Is(err, ErrNotFound) {
				t.Errorf("unknown: %v", err)
			}
			for _, s := range []string{"03", "04", "05"} {
				if _, err := d.Cert(ctx, s); !errors.Is(err, ErrNotFound) {
					t.Errorf("refused renewal %s was stored: %v", s, err)
				}
			}
		}},
		{"revoking an ancestor revokes every member in one commit", func(t *testing.T, d Backend) {
			must(t, d.PutCert(ctx, cert("01", "web", exp)))
			must(t, d.PutRenewal(ctx, "01", renewal("02", "web", exp, "k2"), now))
			must(t, d.PutRenewal(ctx, "02", renewal("03", "web", exp, "k3"), now))
			must(t, d.PutCert(ctx, cert("10", "web", exp))) // another lineage, same name
			res, err := d.RevokeSerial(ctx, "01", 1, now)
			if err != nil || len(res.Changed) != 3 || res.Seq != 3 {
				t.Fatalf("revoke 01: %+v %v", res, err)
			}
			for _, s := range []string{"02", "03"} {
				if c := get(t, d, s); c.Status != StatusRevoked || c.RevokedWith != "01" {
					t.Errorf("%s: %s, revoked with %q", s, c.Status, c.RevokedWith)
				}
			}
			if get(t, d, "10").Status != StatusValid {
				t.Error("another lineage of the same name was revoked by serial")
			}
		}},
		{"revoking a middle member revokes the whole lineage", func(t *testing.T, d Backend) {
			must(t, d.PutCert(ctx, cert("01", "web", exp)))
			must(t, d.PutRenewal(ctx, "01", renewal("02", "web", exp, "k2"), now))
			must(t, d.PutRenewal(ctx, "02", renewal("03", "web", exp, "k3"), now))
			if _, err := d.RevokeSerial(ctx, "02", 1, now); err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{"01", "03"} {
				if c := get(t, d, s); c.Status != StatusRevoked || c.RevokedWith != "02" {
					t.Errorf("revoke 02 must revoke %s too (same lineage): %s, revoked with %q", s, c.Status, c.RevokedWith)
				}
			}
			err := d.PutRenewal(ctx, "01", renewal("04", "web", exp, "k2"), now)
			var sup *SupersededError
			if !errors.Is(err, ErrRevoked) && !errors.As(err, &sup) {
				t.Errorf("renewing the lineage's valid ancestor: %v", err)
			}
		}},
		{"expired members are left as they are", func(t *testing.T, d Backend) {
			must(t, d.PutCert(ctx, cert("01", "web", now.Add(time.Minute))))
			must(t, d.PutRenewal(ctx, "01", renewal("02", "web", exp, "k2"), now))
			res, err := d.RevokeSerial(ctx, "02", 1, now.Add(2*time.Minute))
			if err != nil || len(res.Changed) != 1 || res.Seq != 1 {
				t.Fatalf("revoke: %+v %v", res, err)
			}
			if get(t, d, "01").Status != StatusValid {
				t.Error("an expired predecessor was revoked")
			}
		}},
		{"admin revocations stay off the issuing CA's CRL", func(t *testing.T, d Backend) {
			a := cert("0a", "admin", exp)
			a.Method = MethodAdmin
			must(t, d.PutCert(ctx, a))
			res, err := d.RevokeSerial(ctx, "0a", 1, now)
			if err != nil || len(res.Changed) != 1 {
				t.Fatal(res, err)
			}
			if set, _ := d.Revocations(ctx, now); len(set.Entries) != 0 || set.Seq != 1 {
				t.Errorf("CRL source: %+v", set)
			}
			if get(t, d, "0a").Status != StatusRevoked {
				t.Error("admin record not revoked")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open(t)) })
	}
}

// Renewals racing a revocation of their subject: whatever the interleaving,
// once the revoke has committed no certificate of the subject is valid and
// every one of them is in the CRL source (or undelivered).
func testRenewalRaceWithRevoke(t *testing.T, open Opener) {
	for round := range 5 {
		RenewRevokeRace(t, fmt.Sprintf("round %d", round), time.Duration(5+round*5)*time.Millisecond, open(t))
	}
}

// RenewRevokeRace runs renewals of one lineage on every backend in ds
// (replicas of one store, or one backend) against a subject revocation
// through the first, after delay, and checks what the revocation left.
func RenewRevokeRace(t *testing.T, name string, delay time.Duration, ds ...Backend) {
	t.Helper()
	ctx := context.Background()
	d := ds[0]
	now := time.Now()
	exp := now.Add(time.Hour)
	must(t, d.PutCert(ctx, cert("01", "web", exp)))
	var head atomic.Value
	head.Store("01")
	var next atomic.Int64
	next.Store(1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var renewed, refused atomic.Int64
	for i := range 4 {
		r := ds[i%len(ds)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				pred := head.Load().(string)
				serial := fmt.Sprintf("%04x", next.Add(1))
				err := r.PutRenewal(ctx, pred, renewal(serial, "web", exp, "k"+serial), now)
				var sup *SupersededError
				switch {
				case err == nil:
					renewed.Add(1)
					head.Store(serial)
				case errors.Is(err, ErrRevoked):
					refused.Add(1)
					return
				case errors.As(err, &sup):
					refused.Add(1)
				default:
					t.Errorf("%s: renewal: %v", name, err)
					return
				}
			}
		}()
	}
	time.Sleep(delay)
	res, err := d.RevokeSubject(ctx, "web", 1, now)
	if err == nil {
		time.Sleep(5 * time.Millisecond) // renewals after the revoke must all be refused
	}
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("%s: revoke: %v", name, err)
	}
	all, _ := d.ListCerts(ctx, Filter{Subject: "web"}, now)
	set, _ := d.Revocations(ctx, now)
	onCRL := map[string]bool{}
	for _, e := range set.Entries {
		onCRL[e.Serial] = true
	}
	for _, c := range all {
		if c.Status != StatusRevoked || !onCRL[c.Serial] && !c.Undelivered {
			t.Errorf("%s: %s is %s (on CRL: %v) after the subject was revoked", name, c.Serial, c.Status, onCRL[c.Serial])
		}
	}
	if len(all) < 2 || renewed.Load() == 0 {
		t.Errorf("%s: the race did not happen (%d certificates, %d renewals)", name, len(all), renewed.Load())
	}
	t.Logf("%s: %d renewals, %d refused, %d revoked by the subject revoke, %d certificates", name,
		renewed.Load(), refused.Load(), len(res.Changed), len(all))
}

// waitSignal fails unless ch is signalled within a few seconds.
func waitSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Errorf("no signal after %s", what)
	}
}

func testWatch(t *testing.T, open Opener) {
	ctx := context.Background()
	d := open(t)
	rev, stopRev := d.Watch(TopicRevocation)
	defer stopRev()
	crl, stopCRL := d.Watch(TopicCRL)
	defer stopCRL()
	anchors, stopAnchors := d.Watch(TopicAnchors)
	defer stopAnchors()
	now := time.Now()
	must(t, d.PutCert(ctx, cert("01", "web", now.Add(time.Hour))))
	if _, err := d.RevokeSerial(ctx, "01", 1, now); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, rev, "a revocation")
	must(t, d.SaveCRL(ctx, CRL{Number: 1, Seq: 1, DER: []byte("x")}))
	waitSignal(t, crl, "a CRL")
	must(t, d.PutAnchorStatus(ctx, AnchorStatus{ARN: "a", CRLNumber: 1}))
	waitSignal(t, anchors, "an anchor status")
	// A signal means a commit: a refused CRL signals nothing.
	if err := d.SaveCRL(ctx, CRL{Number: 1}); !errors.Is(err, ErrStaleCRL) {
		t.Fatal(err)
	}
	select {
	case <-crl:
		t.Error("a refused CRL was signalled")
	case <-time.After(200 * time.Millisecond):
	}
	// A stopped watcher is not signalled.
	stopRev()
	must(t, d.PutCert(ctx, cert("02", "web", now.Add(time.Hour))))
	if _, err := d.RevokeSerial(ctx, "02", 1, now); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rev:
		t.Error("a stopped watcher was signalled")
	case <-time.After(200 * time.Millisecond):
	}
}

func testHoldAndLeases(t *testing.T, open Opener) {
	ctx := context.Background()
	d := open(t)
	if ls, err := d.Leases(ctx); err != nil || len(ls) != 0 {
		t.Errorf("leases before any Hold: %v %v", ls, err)
	}
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	held := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Hold(hctx, LeaseCRL, func(ctx context.Context) {
			close(held)
			<-ctx.Done()
		})
	}()
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the lease of the only process was not granted")
	}
	ls, err := d.Leases(ctx)
	if err != nil || len(ls) != 1 || ls[0].Name != LeaseCRL || ls[0].Holder == "" || time.Since(ls[0].Since) > time.Minute {
		t.Errorf("leases while held: %+v %v", ls, err)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Hold did not return when its context ended")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ls, err := d.Leases(ctx)
		if err == nil && len(ls) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leases after Hold returned: %+v %v", ls, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// fn returning on its own ends Hold too.
	ran := false
	d.Hold(ctx, LeasePush, func(context.Context) { ran = true })
	if !ran {
		t.Error("fn did not run")
	}
}

// --- ACME ---

// newOrder stores an order of account acct with n authorizations.
func newOrder(t *testing.T, d Backend, acct, id string, n int, expires time.Time) *ACMEOrder {
	t.Helper()
	o := &ACMEOrder{ID: id, AccountID: acct, Status: ACMEPending, Expires: expires}
	var azs []*ACMEAuthz
	for i := range n {
		az := &ACMEAuthz{ID: fmt.Sprintf("%s-az%d", id, i), AccountID: acct, OrderID: id, Status: ACMEPending, Expires: expires,
			Identifier: ACMEIdentifier{Type: "dns", Value: fmt.Sprintf("h%d.internal", i)},
			Challenges: []ACMEChallenge{{Type: "http-01", Token: "tok", Status: ACMEPending}}}
		azs = append(azs, az)
		o.AuthzIDs = append(o.AuthzIDs, az.ID)
	}
	must(t, d.CreateACMEOrder(context.Background(), o, azs, ACMEOrderLimits{}))
	return o
}

// makeReady validates every authorization of order o.
func makeReady(t *testing.T, d Backend, o *ACMEOrder) {
	t.Helper()
	for _, az := range o.AuthzIDs {
		must(t, d.UpdateACMEAuthz(context.Background(), az, func(a *ACMEAuthz, o *ACMEOrder, all []*ACMEAuthz) error {
			a.Status = ACMEValid
			for _, x := range all {
				if x.Status != ACMEValid {
					return nil
				}
			}
			o.Status = ACMEReady
			return nil
		}))
	}
}

// setOrder forces order id (with an authorization id-az0) into a state,
// through the one public write that may change an order freely.
func setOrder(t *testing.T, d Backend, id, status string, certNotAfter time.Time) {
	t.Helper()
	must(t, d.UpdateACMEAuthz(context.Background(), id+"-az0", func(a *ACMEAuthz, o *ACMEOrder, all []*ACMEAuthz) error {
		o.Status, o.CertNotAfter = status, certNotAfter
		return nil
	}))
}

func acmeCert(serial, order string, notAfter time.Time) *Cert {
	c := cert(serial, "web", notAfter)
	c.Method, c.Order = "acme", order
	return c
}

// The certificate and its order's final state commit together; issuing for
// an order nobody claimed stores nothing; a revocation rewrites the record
// without tripping over the order.
func testACMEOrderIssuedWithCertificate(t *testing.T, open Opener) {
	ctx := context.Background()
	d := open(t)
	o := newOrder(t, d, "acct", "o1", 2, t0.Add(time.Hour))
	if err := d.PutCert(ctx, acmeCert("01", "o1", t0.Add(48*time.Hour))); !errors.Is(err, ErrACMEOrderState) {
		t.Fatalf("cert for a pending order: %v, want ErrACMEOrderState", err)
	}
	if _, err := d.Cert(ctx, "01"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused certificate was stored: %v", err)
	}
	if _, err := d.ClaimACMEOrder(ctx, "o1", t0); !errors.Is(err, ErrACMEOrderState) {
		t.Fatalf("claim of a pending order: %v", err)
	}
	if _, err := d.ClaimACMEOrder(ctx, "nope", t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("claim of an unknown order: %v", err)
	}
	makeReady(t, d, o)
	if _, err := d.ClaimACMEOrder(ctx, "o1", t0.Add(2*time.Hour)); !errors.Is(err, ErrACMEOrderState) {
		t.Fatalf("claim of an expired order: %v", err)
	}
	if got, err := d.ClaimACMEOrder(ctx, "o1", t0); err != nil || got.Status != ACMEProcessing {
		t.Fatal(got, err)
	}
	if _, err := d.ClaimACMEOrder(ctx, "o1", t0); !errors.Is(err, ErrACMEOrderState) {
		t.Fatalf("second claim: %v", err)
	}
	must(t, d.PutCert(ctx, acmeCert("02", "o1", t0.Add(48*time.Hour))))
	if err := d.PutCert(ctx, acmeCert("03", "o1", t0.Add(48*time.Hour))); !errors.Is(err, ErrACMEOrderState) {
		t.Errorf("a second certificate for one order: %v", err)
	}
	must(t, d.ReleaseACMEOrder(ctx, "o1", ACMEReady, nil))
	got, err := d.ACMEOrder(ctx, "o1")
	if err != nil || got.Status != ACMEValid || got.CertSerial != "02" || !got.CertNotAfter.Equal(t0.Add(48*time.Hour)) {
		t.Fatalf("order after issue: %+v %v", got, err)
	}
	if a, err := d.ACMEAuthz(ctx, "o1-az1"); err != nil || a.Status != ACMEValid || a.OrderID != "o1" || len(a.Challenges) != 1 {
		t.Errorf("authorization: %+v %v", a, err)
	}
	// A revocation rewrites the record, also once the order is pruned
	// (certificate and order expired): that is no second issuance.
	if o, _, err := d.PruneACME(ctx, t0.Add(49*time.Hour)); err != nil || o != 1 {
		t.Fatalf("prune: %d %v", o, err)
	}
	if res, err := d.RevokeSerial(ctx, "02", 4, t0.Add(47*time.Hour)); err != nil || len(res.Changed) != 1 {
		t.Errorf("revoking an ACME certificate whose order was pruned: %v", err)
	}
	if c, err := d.Cert(ctx, "02"); err != nil || c.Status != StatusRevoked || c.Order != "o1" {
		t.Errorf("certificate after revocation: %+v %v", c, err)
	}
	// A failed finalize releases the claim.
	o2 := newOrder(t, d, "acct", "o2", 1, t0.Add(time.Hour))
	makeReady(t, d, o2)
	if _, err := d.ClaimACMEOrder(ctx, "o2", t0); err != nil {
		t.Fatal(err)
	}
	must(t, d.ReleaseACMEOrder(ctx, "o2", ACMEInvalid, []byte(`{"type":"x"}`)))
	if got, _ := d.ACMEOrder(ctx, "o2"); got.Status != ACMEInvalid || string(got.Error) != `{"type":"x"}` {
		t.Errorf("released order: %+v", got)
	}
}

// An order left processing is settled by what storage holds.
func testACMEResolveProcessing(t *testing.T, open Opener) {
	ctx := context.Background()
	d := open(t)
	for _, id := range []string{"issued", "lost", "expired"} {
		o := newOrder(t, d, "acct", id, 1, t0.Add(time.Hour))
		makeReady(t, d, o)
		if _, err := d.ClaimACMEOrder(ctx, id, t0); err != nil {
			t.Fatal(err)
		}
	}
	// A certificate whose order still says processing: not possible
	// through PutCert alone, but the state an older version could leave.
	must(t, d.PutCert(ctx, acmeCert("0c", "issued", t0.Add(48*time.Hour))))
	setOrder(t, d, "issued", ACMEProcessing, time.Time{})
	n, err := d.ResolveACMEOrders(ctx, func(o *ACMEOrder, c *Cert) {
		switch {
		case c != nil:
			o.Status, o.CertSerial, o.CertNotAfter = ACMEValid, c.Serial, c.NotAfter
		case o.ID == "expired":
			o.Status = ACMEInvalid
		default:
			o.Status = ACMEReady
		}
	})
	if err != nil || n != 3 {
		t.Fatalf("resolved %d, %v", n, err)
	}
	for id, want := range map[string]string{"issued": ACMEValid, "lost": ACMEReady, "expired": ACMEInvalid} {
		if o, _ := d.ACMEOrder(ctx, id); o.Status != want {
			t.Errorf("order %s: %s, want %s", id, o.Status, want)
		}
	}
	if o, _ := d.ACMEOrder(ctx, "issued"); o.CertSerial != "0c" {
		t.Errorf("resolved order has serial %q", o.CertSerial)
	}
	if n, err := d.ResolveACMEOrders(ctx, func(*ACMEOrder, *Cert) { t.Error("nothing is processing any more") }); n != 0 || err != nil {
		t.Errorf("second resolve: %d %v", n, err)
	}
}

func testACMEPrune(t *testing.T, open Opener) {
	ctx := context.Background()
	d := open(t)
	now := t0.Add(10 * time.Hour)
	tests := []struct {
		id     string
		exp    time.Time
		status string
		notAft time.Time // of the certificate, for valid orders
		keep   bool
	}{
		{"pending-live", now.Add(time.Hour), ACMEPending, time.Time{}, true},
		{"pending-expired", now.Add(-time.Hour), ACMEPending, time.Time{}, false},
		{"pending-expires-now", now, ACMEPending, time.Time{}, false},
		{"ready-expired", now.Add(-time.Second), ACMEReady, time.Time{}, false},
		{"invalid-expired", now.Add(-time.Hour), ACMEInvalid, time.Time{}, false},
		{"invalid-live", now.Add(time.Hour), ACMEInvalid, time.Time{}, true},
		{"valid-cert-live", now.Add(-time.Hour), ACMEValid, now.Add(time.Hour), true},
		{"valid-cert-expires-now", now.Add(-time.Hour), ACMEValid, now, false},
		{"valid-cert-expired", now.Add(-2 * time.Hour), ACMEValid, now.Add(-time.Hour), false},
		{"processing-expired", now.Add(-time.Hour), ACMEProcessing, time.Time{}, true},
	}
	for _, tt := range tests {
		newOrder(t, d, "acct", tt.id, 2, tt.exp)
		setOrder(t, d, tt.id, tt.status, tt.notAft)
	}
	orders, authzs, err := d.PruneACME(ctx, now)
	if err != nil || orders != 6 || authzs != 12 {
		t.Fatalf("pruned %d orders %d authzs, %v; want 6, 12", orders, authzs, err)
	}
	for _, tt := range tests {
		_, oerr := d.ACMEOrder(ctx, tt.id)
		_, aerr := d.ACMEAuthz(ctx, tt.id+"-az1")
		if kept := oerr == nil; kept != tt.keep || (aerr == nil) != tt.keep {
			t.Errorf("%s: order %v, authz %v; want kept=%v", tt.id, oerr, aerr, tt.keep)
		}
	}
	// The pruned orders no longer count against the caps.
	if err := d.CreateACMEOrder(ctx, &ACMEOrder{ID: "n", AccountID: "acct", Status: ACMEPending, Expires: now.Add(time.Hour)}, nil,
		ACMEOrderLimits{Orders: 2, Now: now}); err != nil {
		t.Errorf("after prune: %v", err)
	}
}

func testACMEOrderLimits(t *testing.T, open Opener) {
	ctx := context.Background()
	d := open(t)
	try := func(acct, id string, n int, lim ACMEOrderLimits) error {
		o := &ACMEOrder{ID: id, AccountID: acct, Status: ACMEPending, Expires: t0.Add(time.Hour)}
		var azs []*ACMEAuthz
		for i := range n {
			az := &ACMEAuthz{ID: fmt.Sprintf("%s-az%d", id, i), OrderID: id, Status: ACMEPending}
			azs, o.AuthzIDs = append(azs, az), append(o.AuthzIDs, az.ID)
		}
		return d.CreateACMEOrder(ctx, o, azs, lim)
	}
	lim := ACMEOrderLimits{Orders: 3, Authzs: 10, Now: t0}
	for _, tt := range []struct {
		acct, id string
		n        int
		want     string // "" = stored, else the limit hit
	}{
		{"a", "1", 4, ""},
		{"a", "2", 4, ""},
		{"a", "3", 3, "authorizations"}, // 11 > 10
		{"a", "4", 2, ""},               // 10
		{"b", "5", 10, ""},              // another account has its own share
		{"b", "6", 11, "authorizations"},
		{"a", "7", 0, "orders"}, // a fourth order
	} {
		err := try(tt.acct, tt.id, tt.n, lim)
		var le *ACMELimitError
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("order %s: %v", tt.id, err)
		case tt.want != "" && (!errors.As(err, &le) || le.What != tt.want):
			t.Errorf("order %s: %v, want the %s limit", tt.id, err, tt.want)
		case tt.want != "" && le.RetryAt.Before(t0):
			t.Errorf("order %s: retry at %v", tt.id, le.RetryAt)
		}
	}
	if _, err := d.ACMEOrder(ctx, "3"); !errors.Is(err, ErrNotFound) {
		t.Errorf("refused order was stored: %v", err)
	}
	// Finished or expired orders free their share.
	must(t, d.ReleaseACMEOrder(ctx, "1", ACMEInvalid, nil)) // not processing: no-op
	setOrder(t, d, "1", ACMEInvalid, time.Time{})
	if err := try("a", "8", 4, lim); err != nil {
		t.Errorf("after one order became invalid: %v", err)
	}
	if err := try("a", "9", 10, ACMEOrderLimits{Orders: 3, Authzs: 10, Now: t0.Add(time.Hour)}); err != nil {
		t.Errorf("once the others expired: %v", err)
	}
	// Concurrent creates cannot overshoot the cap together.
	var wg sync.WaitGroup
	var stored atomic.Int64
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if try("c", fmt.Sprintf("c%d", i), 1, ACMEOrderLimits{Orders: 3, Now: t0}) == nil {
				stored.Add(1)
			}
		}()
	}
	wg.Wait()
	if stored.Load() != 3 {
		t.Errorf("%d concurrent orders stored under a cap of 3", stored.Load())
	}
}

// Accounts and their key and EAB bindings: a key is bound once per
// provisioner; key rollover moves the binding.
func testACMEAccounts(t *testing.T, open Opener) {
	ctx := context.Background()
	d := open(t)
	a := &ACMEAccount{ID: "A", Provisioner: "p", Key: []byte(`{"kty":"EC"}`), Thumbprint: "tp1", Status: ACMEValid, EABKeyID: "kid", CreatedAt: t0}
	if got, err := d.CreateACMEAccount(ctx, a); err != nil || got.ID != "A" {
		t.Fatalf("create: %v %v", got, err)
	}
	// The same key again (a racing newAccount) finds the first account.
	if got, err := d.CreateACMEAccount(ctx, &ACMEAccount{ID: "B", Provisioner: "p", Thumbprint: "tp1"}); err != nil || got.ID != "A" {
		t.Errorf("same key: %v %v", got, err)
	}
	if _, err := d.ACMEAccount(ctx, "B"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the second account of one key was stored: %v", err)
	}
	if _, err := d.CreateACMEAccount(ctx, &ACMEAccount{ID: "C", Provisioner: "p", Thumbprint: "tp2", EABKeyID: "kid"}); !errors.Is(err, ErrACMEEABBound) {
		t.Errorf("EAB key reused: %v", err)
	}
	if got, err := d.CreateACMEAccount(ctx, &ACMEAccount{ID: "D", Provisioner: "q", Thumbprint: "tp1"}); err != nil || got.ID != "D" {
		t.Errorf("same key, other provisioner: %v %v", got, err)
	}
	if _, err := d.CreateACMEAccount(ctx, &ACMEAccount{ID: "E", Provisioner: "p", Thumbprint: "tp3"}); err != nil {
		t.Fatal(err)
	}
	var inUse *ACMEKeyInUseError
	if _, err := d.RekeyACMEAccount(ctx, "A", "tp1", "tp3", nil); !errors.As(err, &inUse) || inUse.AccountID != "E" {
		t.Errorf("rekey to a taken key: %v", err)
	}
	if _, err := d.RekeyACMEAccount(ctx, "A", "old", "tp4", nil); !errors.Is(err, ErrACMEStale) {
		t.Errorf("rekey from a stale key: %v", err)
	}
	if _, err := d.RekeyACMEAccount(ctx, "A", "tp1", "tp4", []byte(`{"kty":"OKP"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.UpdateACMEAccount(ctx, "A", func(a *ACMEAccount) error { a.Contact = []string{"mailto:x@example.org"}; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := d.UpdateACMEAccount(ctx, "A", func(a *ACMEAccount) error { a.Thumbprint = "sneaky"; return nil }); err == nil {
		t.Error("UpdateACMEAccount changed the key")
	}
	if _, err := d.UpdateACMEAccount(ctx, "Z", func(*ACMEAccount) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("update of an unknown account: %v", err)
	}
	got, err := d.ACMEAccountByKey(ctx, "p", "tp4")
	if err != nil || got.ID != "A" || string(got.Key) != `{"kty":"OKP"}` || len(got.Contact) != 1 || !got.CreatedAt.Equal(t0) || got.EABKeyID != "kid" {
		t.Errorf("after rekey and update: %+v %v", got, err)
	}
	if _, err := d.ACMEAccountByKey(ctx, "p", "tp1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("old key after rollover: %v", err)
	}
	if got, err := d.ACMEAccount(ctx, "A"); err != nil || got.Thumbprint != "tp4" {
		t.Errorf("by id: %+v %v", got, err)
	}
}

// A store that has never seen ACME reads as empty.
func testACMEEmpty(t *testing.T, open Opener) {
	ctx := context.Background()
	d := open(t)
	if _, err := d.ACMEOrder(ctx, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("order in an empty store: %v", err)
	}
	if _, err := d.ACMEAuthz(ctx, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("authz in an empty store: %v", err)
	}
	if _, err := d.ACMEAccount(ctx, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("account in an empty store: %v", err)
	}
	if _, err := d.ACMEAccountByKey(ctx, "p", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("account by key in an empty store: %v", err)
	}
	if o, a, err := d.PruneACME(ctx, t0); o+a != 0 || err != nil {
		t.Errorf("prune of an empty store: %d %d %v", o, a, err)
	}
	if n, err := d.ResolveACMEOrders(ctx, nil); n != 0 || err != nil {
		t.Errorf("resolve in an empty store: %d %v", n, err)
	}
	if err := d.UpdateACMEAuthz(ctx, "x", func(*ACMEAuthz, *ACMEOrder, []*ACMEAuthz) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("update of an unknown authz: %v", err)
	}
}

// A revoked certificate stays on the CRL source until RevocationGrace past
// its notAfter, and in storage until RevocationRetention past it, so a CA
// clock running ahead and then set back brings it back.
func testRevocationGrace(t *testing.T, open Opener) {
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	d := open(t)
	notAfter := now.Add(time.Hour)
	must(t, d.PutCert(ctx, cert("0a", "web", notAfter)))
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
	if n, err := d.PruneRevoked(ctx, notAfter.Add(RevocationRetention-time.Second)); n != 0 || err != nil {
		t.Fatalf("PruneRevoked before the retention: %d, %v", n, err)
	}
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

// Revocations a trust anchor enforces that the database lost (an older
// backup restored) come back: a known certificate is revoked with its
// lineage, an unknown serial gets an entry kept revokedAt + maxLifetime;
// what the database has already is left alone.
func testRecoverRevocations(t *testing.T, open Opener) {
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	d := open(t)
	must(t, d.PutCert(ctx, cert("0a", "web", now.Add(time.Hour))))
	must(t, d.PutRenewal(ctx, "0a", renewal("0b", "web", now.Add(2*time.Hour), "k"), now))
	must(t, d.PutCert(ctx, cert("0c", "db", now.Add(time.Hour))))
	if _, err := d.RevokeSerial(ctx, "0c", 1, now); err != nil {
		t.Fatal(err)
	}
	before, _ := d.RevocationSeq(ctx)
	entries := []Revocation{
		{Serial: "0a", RevokedAt: now, Reason: 1}, // known, valid: revoked, lineage cut
		{Serial: "0c", RevokedAt: now, Reason: 1}, // already revoked: nothing to do
		{Serial: "ff", RevokedAt: now, Reason: 1}, // never seen here (issued after the backup)
	}
	n, err := d.RecoverRevocations(ctx, entries, 7*24*time.Hour)
	if err != nil || n != 2 {
		t.Fatalf("RecoverRevocations: %d, %v; want 2", n, err)
	}
	if c := get(t, d, "0a"); c.Status != StatusRevoked {
		t.Errorf("recovered known certificate is %s", c.Status)
	}
	if err := d.PutRenewal(ctx, "0b", renewal("0d", "web", now.Add(2*time.Hour), "k"), now); !errors.Is(err, ErrRevoked) {
		t.Errorf("renewing in a lineage cut by a recovered revocation: %v", err)
	}
	set, _ := d.Revocations(ctx, now)
	on := map[string]Revocation{}
	for _, e := range set.Entries {
		on[e.Serial] = e
	}
	if _, ok := on["ff"]; !ok || !on["ff"].NotAfter.Equal(now.Add(7*24*time.Hour)) || set.Seq <= before {
		t.Errorf("CRL source after recovery: %+v (seq %d, before %d)", set, set.Seq, before)
	}
	if n, err := d.RecoverRevocations(ctx, entries, 7*24*time.Hour); err != nil || n != 0 {
		t.Errorf("recovering again: %d, %v; want 0", n, err)
	}
}

// The nonce key is NonceKeySize random bytes, the same at every call.
func testNonceKey(t *testing.T, open Opener) {
	ctx := context.Background()
	d := open(t)
	k1, err := d.NonceKey(ctx)
	must(t, err)
	k2, err := d.NonceKey(ctx)
	must(t, err)
	if len(k1) != NonceKeySize || string(k1) != string(k2) {
		t.Fatalf("keys of %d and %d bytes, equal %v; want one key of %d", len(k1), len(k2), string(k1) == string(k2), NonceKeySize)
	}
	if string(k1) == string(make([]byte, NonceKeySize)) {
		t.Error("the nonce key is all zeros")
	}
}

// A nonce id is fresh once; a replay, even with another expiry, is not.
func testNonceSingleUse(t *testing.T, open Opener) {
	ctx := context.Background()
	d := open(t)
	exp := time.Now().Add(10 * time.Minute)
	for _, tt := range []struct {
		id      string
		expires time.Time
		fresh   bool
	}{
		{"n1", exp, true},
		{"n1", exp, false},
		{"n2", exp, true},
		{"n1", exp.Add(time.Hour), false},
		{"N1", exp, true}, // ids are case-sensitive (base64url)
	} {
		fresh, err := d.UseNonce(ctx, tt.id, tt.expires)
		if err != nil || fresh != tt.fresh {
			t.Errorf("UseNonce(%s): fresh %v (%v), want %v", tt.id, fresh, err, tt.fresh)
		}
	}
}

// Of 50 concurrent uses of one id exactly one is fresh.
func testConcurrentNonceUse(t *testing.T, open Opener) {
	ctx := context.Background()
	d := open(t)
	exp := time.Now().Add(10 * time.Minute)
	var wg sync.WaitGroup
	var fresh atomic.Int64
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := d.UseNonce(ctx, "same", exp)
			if err != nil {
				t.Errorf("use %d: %v", i, err)
			}
			if ok {
				fresh.Add(1)
			}
		}()
	}
	wg.Wait()
	if fresh.Load() != 1 {
		t.Errorf("%d of 50 concurrent uses of one nonce were fresh, want 1", fresh.Load())
	}
}

// A used id is kept through its expiry and pruned after it; pruning
// leaves the ids that have not expired used.
func testNoncePrune(t *testing.T, open Opener) {
	ctx := context.Background()
	d := open(t)
	for i, exp := range []time.Time{t0, t0, t0.Add(time.Minute)} {
		if fresh, err := d.UseNonce(ctx, fmt.Sprint("p", i), exp); !fresh || err != nil {
			t.Fatalf("use p%d: %v %v", i, fresh, err)
		}
	}
	for _, tt := range []struct {
		at   time.Time
		want int
	}{
		{t0.Add(-time.Second), 0},
		{t0, 0},
		{t0.Add(time.Millisecond), 2},
		{t0.Add(time.Millisecond), 0},
	} {
		if n, err := d.PruneNonces(ctx, tt.at); n != tt.want || err != nil {
			t.Errorf("prune at t0%+v: %d (%v), want %d", tt.at.Sub(t0), n, err, tt.want)
		}
	}
	if fresh, err := d.UseNonce(ctx, "p2", t0.Add(time.Minute)); fresh || err != nil {
		t.Errorf("an unexpired id was pruned: fresh %v (%v)", fresh, err)
	}
	if fresh, err := d.UseNonce(ctx, "p0", t0.Add(time.Minute)); !fresh || err != nil {
		t.Errorf("a pruned id is still held: fresh %v (%v)", fresh, err)
	}
}
