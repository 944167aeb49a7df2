package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/caserver"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/internal/pgtest"
	"github.com/anchorage-pki/anchorage/storage"
	"github.com/anchorage-pki/anchorage/storage/postgres"
)

// migrateStore is what the test compares on both backends.
type migrateStore interface {
	ListCerts(ctx context.Context, f storage.Filter, now time.Time) ([]*storage.Cert, error)
	Revocations(ctx context.Context, now time.Time) (storage.RevocationSet, error)
	CRL(ctx context.Context) (storage.CRL, error)
	TokenUsed(ctx context.Context, jti string) (bool, error)
	AnchorStatuses(ctx context.Context) (map[string]storage.AnchorStatus, error)
	ACMEAccount(ctx context.Context, id string) (*storage.ACMEAccount, error)
	ACMEAccountByKey(ctx context.Context, provisioner, thumbprint string) (*storage.ACMEAccount, error)
	ACMEOrder(ctx context.Context, id string) (*storage.ACMEOrder, error)
	ACMEAuthz(ctx context.Context, id string) (*storage.ACMEAuthz, error)
	RevocationSeq(ctx context.Context) (uint64, error)
	PutRenewal(ctx context.Context, pred string, succ *storage.Cert, now time.Time) error
	CreateACMEAccount(ctx context.Context, a *storage.ACMEAccount) (*storage.ACMEAccount, error)
}

// fillBolt builds a bbolt CA database with a few thousand records of every
// kind: token enrollments (some expired), renewed lineages, revocations
// of single certificates and of lineages, admin certificates, a CRL, an
// anchor status and ACME accounts, orders and authorizations.
func fillBolt(t *testing.T, path string, now time.Time) (tokens []string) {
	t.Helper()
	ctx := context.Background()
	d, err := storage.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cert := func(i int, m storage.Method, notAfter time.Time) *storage.Cert {
		return &storage.Cert{Serial: fmt.Sprintf("%04x%02x", i, int(m[0])), Subject: fmt.Sprintf("host-%d", i%700), SANs: []string{fmt.Sprintf("h%d.example", i)},
			NotBefore: notAfter.Add(-24 * time.Hour), NotAfter: notAfter, IssuedAt: notAfter.Add(-24 * time.Hour), Method: m,
			KeyID: fmt.Sprintf("%064x", i), Status: storage.StatusValid, DER: []byte{0x30, byte(i), byte(i >> 8)}}
	}
	var bulk []*storage.Cert
	for i := range 3000 {
		na := now.Add(time.Duration(i%48-8) * time.Hour) // a sixth expired
		c := cert(i, storage.MethodToken, na)
		c.TokenID = fmt.Sprintf("tok-%d", i)
		bulk = append(bulk, c)
	}
	for i := range 5 {
		c := cert(5000+i, storage.MethodAdmin, now.Add(90*24*time.Hour))
		c.IssuedBy = "init"
		bulk = append(bulk, c)
	}
	if err := d.PutCerts(ctx, bulk); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		jti := fmt.Sprintf("jti-%d", i)
		c := cert(6000+i, storage.MethodToken, now.Add(20*time.Hour))
		c.TokenID = jti
		if err := d.PutCertUsingToken(ctx, c, jti, now.Add(time.Duration(i+1)*time.Hour)); err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, jti)
	}
	// Renewals: 60 lineages of two or three certificates.
	var preds []string
	for _, c := range bulk[2000:] {
		if len(preds) < 60 && c.NotAfter.After(now.Add(time.Hour)) {
			preds = append(preds, c.Serial)
		}
	}
	for i := range 60 {
		pred := preds[i]
		for g := range 1 + i%2 {
			succ := cert(7000+i*4+g, storage.MethodRenew, now.Add(30*time.Hour))
			if err := d.PutRenewal(ctx, pred, succ, now); err != nil {
				t.Fatalf("renew %s: %v", pred, err)
			}
			pred = succ.Serial
		}
	}
	// Revocations: single certificates, whole lineages, a subject, an admin.
	for i := range 25 {
		if _, err := d.RevokeSerial(ctx, bulk[100+i*7].Serial, 1, now.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		if _, err := d.RevokeSerial(ctx, preds[i*3], 4, now.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.RevokeSubject(ctx, "host-333", 3, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.RevokeSerial(ctx, bulk[3001].Serial, 0, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	// A renewal that lost its race: recorded revoked and undelivered.
	err = d.PutRenewal(ctx, preds[1], cert(9999, storage.MethodRenew, now.Add(30*time.Hour)), now)
	if err == nil || !strings.Contains(err.Error(), "already renewed") {
		t.Fatalf("lost renewal: %v", err)
	}
	seq, err := d.RevocationSeq(ctx)
	if err != nil || seq == 0 {
		t.Fatal(seq, err)
	}
	if err := d.SaveCRL(ctx, storage.CRL{Number: 17, Seq: seq - 1, DER: bytes.Repeat([]byte{0x30, 0x82}, 500)}); err != nil {
		t.Fatal(err)
	}
	if err := d.PutAnchorStatus(ctx, storage.AnchorStatus{ARN: "arn:aws:rolesanywhere:eu-west-1:1:trust-anchor/x", CRLID: "c1", CRLNumber: 16, PushedAt: now.Truncate(time.Second), Attempts: 2}); err != nil {
		t.Fatal(err)
	}
	// ACME: two accounts (one with EAB), a pending order with authzs and an
	// order issued with its certificate.
	for _, a := range []*storage.ACMEAccount{
		{ID: "acct1", Provisioner: "acme", Key: json.RawMessage(`{"kty":"EC","crv":"P-256","x":"a","y":"b"}`), Thumbprint: "tp1", Status: "valid", Contact: []string{"mailto:a@example"}, CreatedAt: now.Truncate(time.Second)},
		{ID: "acct2", Provisioner: "acme", Key: json.RawMessage(`{"kty":"EC","crv":"P-256","x":"c","y":"d"}`), Thumbprint: "tp2", Status: "valid", EABKeyID: "kid1", CreatedAt: now.Truncate(time.Second)},
	} {
		if _, err := d.CreateACMEAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		id := fmt.Sprintf("order%d", i)
		az := &storage.ACMEAuthz{ID: "az" + id, AccountID: "acct1", OrderID: id, Identifier: storage.ACMEIdentifier{Type: "dns", Value: fmt.Sprintf("o%d.example", i)},
			Status: storage.ACMEPending, Expires: now.Add(time.Hour).Truncate(time.Second), Challenges: []storage.ACMEChallenge{{Type: "http-01", Token: "t" + id, Status: storage.ACMEPending}}}
		o := &storage.ACMEOrder{ID: id, AccountID: "acct1", Status: storage.ACMEPending, Expires: now.Add(time.Hour).Truncate(time.Second),
			Identifiers: []storage.ACMEIdentifier{az.Identifier}, AuthzIDs: []string{az.ID}}
		if i%4 == 0 {
			o.Status = storage.ACMEProcessing
		}
		if err := d.CreateACMEOrder(ctx, o, []*storage.ACMEAuthz{az}, storage.ACMEOrderLimits{}); err != nil {
			t.Fatal(err)
		}
		if i%4 == 0 {
			c := cert(8000+i, storage.MethodACME, now.Add(24*time.Hour))
			c.Order = id
			if err := d.PutCert(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	return tokens
}

func compareStores(t *testing.T, a, b migrateStore, tokens []string, now time.Time) {
	t.Helper()
	ctx := context.Background()
	for _, f := range []storage.Filter{{}, {Status: storage.StatusRevoked}, {Live: true}, {Subject: "host-333"}} {
		ca, err1 := a.ListCerts(ctx, f, now)
		cb, err2 := b.ListCerts(ctx, f, now)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if len(ca) != len(cb) {
			t.Fatalf("ListCerts(%+v): %d in bbolt, %d in PostgreSQL", f, len(ca), len(cb))
		}
		for i := range ca {
			ja, _ := json.Marshal(ca[i])
			jb, _ := json.Marshal(cb[i])
			if !bytes.Equal(ja, jb) {
				t.Fatalf("ListCerts(%+v)[%d]:\nbbolt %s\npg    %s", f, i, ja, jb)
			}
		}
	}
	ra, err1 := a.Revocations(ctx, now)
	rb, err2 := b.Revocations(ctx, now)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	key := func(s storage.RevocationSet) map[string]string {
		m := map[string]string{}
		for _, e := range s.Entries {
			m[e.Serial] = fmt.Sprint(e.RevokedAt.UTC(), e.Reason, e.NotAfter.UTC())
		}
		return m
	}
	if ra.Seq != rb.Seq || !reflect.DeepEqual(key(ra), key(rb)) || len(ra.Entries) == 0 {
		t.Fatalf("revocations: bbolt seq %d %d entries, PostgreSQL seq %d %d entries", ra.Seq, len(ra.Entries), rb.Seq, len(rb.Entries))
	}
	la, err1 := a.CRL(ctx)
	lb, err2 := b.CRL(ctx)
	if err1 != nil || err2 != nil || la.Number != lb.Number || la.Seq != lb.Seq || !bytes.Equal(la.DER, lb.DER) || la.Number != 17 {
		t.Fatalf("CRL: bbolt %d/%d, PostgreSQL %d/%d %v %v", la.Number, la.Seq, lb.Number, lb.Seq, err1, err2)
	}
	for _, jti := range append(tokens, "never-used") {
		ua, _ := a.TokenUsed(ctx, jti)
		ub, err := b.TokenUsed(ctx, jti)
		if err != nil || ua != ub || ua != (jti != "never-used") {
			t.Fatalf("TokenUsed(%s): bbolt %v, PostgreSQL %v %v", jti, ua, ub, err)
		}
	}
	aa, err1 := a.AnchorStatuses(ctx)
	ab, err2 := b.AnchorStatuses(ctx)
	if err1 != nil || err2 != nil || !reflect.DeepEqual(jsonOf(aa), jsonOf(ab)) || len(aa) != 1 {
		t.Fatalf("anchor statuses: %v / %v %v %v", aa, ab, err1, err2)
	}
	for _, id := range []string{"acct1", "acct2"} {
		x, err1 := a.ACMEAccount(ctx, id)
		y, err2 := b.ACMEAccount(ctx, id)
		if err1 != nil || err2 != nil || jsonOf(x) != jsonOf(y) {
			t.Fatalf("ACME account %s: %s / %s %v %v", id, jsonOf(x), jsonOf(y), err1, err2)
		}
	}
	if y, err := b.ACMEAccountByKey(ctx, "acme", "tp2"); err != nil || y.ID != "acct2" {
		t.Fatalf("ACME account by key in PostgreSQL: %v %v", y, err)
	}
	for i := range 20 {
		id := fmt.Sprintf("order%d", i)
		x, err1 := a.ACMEOrder(ctx, id)
		y, err2 := b.ACMEOrder(ctx, id)
		if err1 != nil || err2 != nil || jsonOf(x) != jsonOf(y) {
			t.Fatalf("ACME order %s: %s / %s %v %v", id, jsonOf(x), jsonOf(y), err1, err2)
		}
		if i%4 == 0 && y.Status != storage.ACMEValid {
			t.Fatalf("order %s is %s in PostgreSQL", id, y.Status)
		}
		p, err1 := a.ACMEAuthz(ctx, "az"+id)
		q, err2 := b.ACMEAuthz(ctx, "az"+id)
		if err1 != nil || err2 != nil || jsonOf(p) != jsonOf(q) {
			t.Fatalf("ACME authz %s: %s / %s %v %v", id, jsonOf(p), jsonOf(q), err1, err2)
		}
	}
}

func jsonOf(v any) string { b, _ := json.Marshal(v); return string(b) }

// migrate copies a bbolt CA of a few thousand records into PostgreSQL:
// the same certificates, revocations and sequence, CRL, token ids, anchor
// status and ACME records; the copy behaves (renewal refusals, token
// replays, EAB bindings); a second migrate into it is refused.
func TestMigrateToPostgres(t *testing.T) {
	// Certificates and revocations carry whole seconds, as X.509 and the
	// CA write them (PostgreSQL keeps microseconds).
	now := time.Now().Truncate(time.Second)
	dir := t.TempDir()
	path := filepath.Join(dir, "anchorage.db")
	tokens := fillBolt(t, path, now)
	url := pgtest.URL(t)

	var out bytes.Buffer
	start := time.Now()
	if err := migrate(context.Background(), &out, dir, url, "", ""); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out.String())
	}
	t.Logf("migrated in %s:\n%s", time.Since(start), out.String())
	for _, want := range []string{"certificates 1000/3", "certificates 3", "/3", "verified", `"storage": {"postgres": {"url":`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}

	ctx := context.Background()
	src, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	compareStores(t, src, dst, tokens, now)

	// The copy acts on what it holds: a renewed certificate does not renew
	// again, a revoked lineage does not renew, a used token is refused, an
	// EAB key stays bound, and the next revocation continues the sequence.
	certs, _ := src.ListCerts(ctx, storage.Filter{}, now)
	var renewed, revoked *storage.Cert
	for _, c := range certs {
		switch {
		case renewed == nil && c.RenewedTo != "" && c.Status == storage.StatusValid && !c.Expired(now):
			renewed = c
		case revoked == nil && c.Status == storage.StatusRevoked && !c.Expired(now) && c.Method == storage.MethodToken:
			revoked = c
		}
	}
	succ := &storage.Cert{Serial: "ffff01", Subject: "x", NotAfter: now.Add(time.Hour), Method: storage.MethodRenew, Status: storage.StatusValid}
	if err := dst.PutRenewal(ctx, renewed.Serial, succ, now); err == nil || !strings.Contains(err.Error(), "already renewed") {
		t.Errorf("renewal of a renewed certificate in PostgreSQL: %v", err)
	}
	if err := dst.PutRenewal(ctx, revoked.Serial, &storage.Cert{Serial: "ffff02", Subject: "x", NotAfter: now.Add(time.Hour), Method: storage.MethodRenew}, now); err != storage.ErrRevoked {
		t.Errorf("renewal of a revoked certificate in PostgreSQL: %v", err)
	}
	if err := dst.PutCertUsingToken(ctx, &storage.Cert{Serial: "ffff03", Subject: "x", NotAfter: now.Add(time.Hour), Method: storage.MethodToken}, tokens[len(tokens)-1], now.Add(time.Hour)); err != storage.ErrTokenUsed {
		t.Errorf("replayed token in PostgreSQL: %v", err)
	}
	if _, err := dst.CreateACMEAccount(ctx, &storage.ACMEAccount{ID: "acct3", Provisioner: "acme", Thumbprint: "tp3", EABKeyID: "kid1"}); err != storage.ErrACMEEABBound {
		t.Errorf("EAB key reused in PostgreSQL: %v", err)
	}
	seq, _ := src.RevocationSeq(ctx)
	certs, _ = dst.ListCerts(ctx, storage.Filter{Live: true, Status: storage.StatusValid, Limit: 1}, now)
	if res, err := dst.RevokeSerial(ctx, certs[0].Serial, 1, now); err != nil || res.Seq != seq+1 {
		t.Errorf("revocation after migrate: %+v %v (source sequence %d)", res, err, seq)
	}

	// A second migrate into the now non-empty database is refused and
	// changes nothing.
	n, _, _ := dst.ExportCounts(ctx)
	src.Close()
	out.Reset()
	err = migrate(ctx, &out, path, url, "", "")
	if err == nil || !strings.Contains(err.Error(), "refusing") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("second migrate: %v", err)
	}
	t.Logf("second migrate: %v", err)
	if m, _, _ := dst.ExportCounts(ctx); !reflect.DeepEqual(n, m) {
		t.Errorf("refused migrate changed the target: %v -> %v", n, m)
	}
}

// The CLI: missing flags and a missing source are one line each, and a
// source locked by a running CA is refused.
func TestMigrateCLIErrors(t *testing.T) {
	if code := run([]string{"migrate", "--to", "postgres://x/y"}); code == 0 {
		t.Error("migrate without --from succeeded")
	}
	missing := filepath.Join(t.TempDir(), "none.db")
	if err := migrate(context.Background(), os.Stdout, missing, "postgres://127.0.0.1:1/x", "", ""); err == nil {
		t.Error("migrate from a missing file succeeded")
	}
}

// A CA made by init on bbolt moves to PostgreSQL with the CLI: its admin
// and TLS records come along, the config snippet printed is what OpenStore
// needs, and a source locked by a running CA is one line.
func TestMigrateCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	if code := run([]string{"init", "--dir", dir, "--name", "Move"}); code != 0 {
		t.Fatalf("init: exit %d", code)
	}
	ctx := context.Background()
	db := filepath.Join(dir, "anchorage.db")

	// A running CA holds the lock: refused in one line, nothing copied.
	held, err := storage.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	url := pgtest.URL(t)
	err = migrate(ctx, new(bytes.Buffer), db, url, "", "")
	held.Close()
	if err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("migrate from a locked database: %v", err)
	}
	t.Logf("locked source: %v", err)

	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("\n"), 0o600) // the test cluster trusts local connections
	if code := run([]string{"migrate", "--from", db, "--to", url, "--to-password-file", pw}); code != 0 {
		t.Fatalf("migrate: exit %d", code)
	}
	if code := run([]string{"migrate", "--from", db, "--to", url}); code == 0 {
		t.Fatal("a second migrate into the same database succeeded")
	}

	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	before, err := caserver.OpenStore(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := before.ListCerts(ctx, storage.Filter{}, time.Now())
	wantCRL, _ := before.CRL(ctx)
	before.Close()
	if err != nil || len(want) < 2 {
		t.Fatalf("records after init: %d %v", len(want), err)
	}
	cfg.Storage = &config.Storage{Postgres: &config.Postgres{URL: url}}
	after, err := caserver.OpenStore(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	got, err := after.ListCerts(ctx, storage.Filter{}, time.Now())
	gotCRL, _ := after.CRL(ctx)
	if err != nil || jsonOf(got) != jsonOf(want) || jsonOf(gotCRL) != jsonOf(wantCRL) {
		t.Fatalf("after migrate: %d records (want %d), CRL %d (want %d) %v", len(got), len(want), gotCRL.Number, wantCRL.Number, err)
	}
	var admin bool
	for _, c := range got {
		admin = admin || c.Method == storage.MethodAdmin
	}
	if !admin {
		t.Error("no admin record in PostgreSQL")
	}
}

// An import that fails leaves the target empty, so migrate can run again.
func TestImportFailureLeavesTargetEmpty(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	dst, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	imp, err := dst.Import(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := &storage.Cert{Serial: "0a", Subject: "x", NotAfter: time.Now().Add(time.Hour), Method: storage.MethodToken, Status: storage.StatusValid}
	for range 2 { // the same serial twice
		if err := imp.Add(ctx, storage.Record{Kind: storage.KindCert, Cert: c}); err != nil {
			t.Fatal(err)
		}
	}
	if err := imp.Add(ctx, storage.Record{Kind: storage.KindCounters, Counters: &storage.Counters{RevSeq: 9, CRL: storage.CRL{Number: 4}}}); err != nil {
		t.Fatal(err)
	}
	if err := imp.Commit(ctx); err == nil {
		t.Fatal("an import with a repeated serial committed")
	}
	n, ctr, err := dst.ExportCounts(ctx)
	if err != nil || n[storage.KindCert] != 0 || ctr.RevSeq != 0 || ctr.CRL.Number != 0 {
		t.Fatalf("after a failed import: %v %+v %v", n, ctr, err)
	}
	dir := t.TempDir()
	fillBolt(t, filepath.Join(dir, "anchorage.db"), time.Now().Truncate(time.Second))
	if err := migrate(ctx, new(bytes.Buffer), dir, url, "", ""); err != nil {
		t.Fatalf("migrate after a failed import: %v", err)
	}
}
