package acme_test

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.step.sm/crypto/jose"
	xacme "golang.org/x/crypto/acme"

	"github.com/anchorage-pki/anchorage/acme"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/storage"
)

// readyOrder makes an order for name and validates it over http-01.
func (tc *testCA) readyOrder(t *testing.T, c *xacme.Client, h *http01, name string) *xacme.Order {
	t.Helper()
	ctx := context.Background()
	o, err := c.AuthorizeOrder(ctx, xacme.DomainIDs(name))
	if err != nil {
		t.Fatal(err)
	}
	z, err := c.GetAuthorization(ctx, o.AuthzURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	ch := pick(z, "http-01")
	h.set(c, ch.Token, false)
	if _, err := c.Accept(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if o, err = c.WaitOrder(ctx, o.URI); err != nil || o.Status != xacme.StatusReady {
		t.Fatalf("order %s: %v %v", name, o, err)
	}
	return o
}

// certsOfOrder lists the certificates storage holds for an ACME order.
func (tc *testCA) certsOfOrder(t *testing.T, orderURL string) []*storage.Cert {
	t.Helper()
	id := orderURL[strings.LastIndex(orderURL, "/")+1:]
	all, err := tc.srv.Store.ListCerts(context.Background(), storage.Filter{}, tc.srv.Issuer.NotBefore)
	if err != nil {
		t.Fatal(err)
	}
	var out []*storage.Cert
	for _, c := range all {
		if c.Order == id {
			out = append(out, c)
		}
	}
	return out
}

// A finalize stopped as a crash would stop it — right after the claim, or
// right after the certificate's commit — leaves nothing inconsistent: at
// restart the order is ready again (no certificate) or valid with its one
// certificate, which the account can download; never processing.
func TestFinalizeCrashResolvedAtRestart(t *testing.T) {
	for _, tt := range []struct {
		stage string
		after string
	}{
		{"claimed", xacme.StatusReady},
		{"issued", xacme.StatusValid},
	} {
		t.Run(tt.stage, func(t *testing.T) {
			tc := startCA(t, nil)
			h := tc.serveHTTP01(t)
			c := tc.client(t)
			ctx := context.Background()
			name := "crash-" + tt.stage + "." + testDomain
			o := tc.readyOrder(t, c, h, name)

			restore := acme.SetFaultHook(func(stage string) {
				if stage == tt.stage {
					runtime.Goexit() // the request ends here, like the process would
				}
			})
			key := newKey(t)
			if _, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csrFor(t, key, name, name), false); err == nil {
				t.Fatal("finalize answered although it was stopped")
			}
			restore()
			if got, _ := c.GetOrder(ctx, o.URI); got == nil || got.Status != xacme.StatusProcessing && got.Status != xacme.StatusValid {
				t.Fatalf("order before restart: %+v", got)
			}

			tc.restart(t)
			got, err := c.GetOrder(ctx, o.URI)
			if err != nil || got.Status != tt.after {
				t.Fatalf("order after restart: %+v %v, want %s", got, err, tt.after)
			}
			if tt.after == xacme.StatusReady {
				if len(tc.certsOfOrder(t, o.URI)) != 0 {
					t.Fatal("a certificate was stored although the crash came before issuing")
				}
				ders, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csrFor(t, key, name, name), true)
				if err != nil {
					t.Fatalf("finalize after restart: %v", err)
				}
				tc.checkIssued(t, chainPEM(ders), name)
			} else {
				ders, err := c.FetchCert(ctx, got.CertURL, true)
				if err != nil {
					t.Fatalf("download after restart: %v", err)
				}
				tc.checkIssued(t, chainPEM(ders), name)
				if _, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csrFor(t, key, name, name), false); problemType(err) != errNS+"orderNotReady" {
					t.Errorf("finalize of the valid order: %v", err)
				}
			}
			if n := len(tc.certsOfOrder(t, o.URI)); n != 1 {
				t.Errorf("%d certificates for the order, want 1", n)
			}
		})
	}
}

// Accounts, orders, authorizations and the certificate link are in the
// CA's storage: closing and reopening it changes nothing a client sees.
func TestACMEStateSurvivesRestart(t *testing.T) {
	tc := startCA(t, nil)
	h := tc.serveHTTP01(t)
	c := tc.client(t)
	ctx := context.Background()
	before, err := c.GetReg(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	name := "keep." + testDomain
	o := tc.readyOrder(t, c, h, name)
	ders, certURL, err := c.CreateOrderCert(ctx, o.FinalizeURL, csrFor(t, newKey(t), name, name), true)
	if err != nil {
		t.Fatal(err)
	}
	pending, err := c.AuthorizeOrder(ctx, xacme.DomainIDs("later."+testDomain))
	if err != nil {
		t.Fatal(err)
	}

	stale := tc.nonce(t)
	tc.restart(t)
	// The bbolt CA's nonce key lives only in memory: a nonce from before
	// the restart is refused (clients retry with the fresh one the
	// refusal carries; c below does), and so cannot be replayed.
	newOrder, order := tc.url+"/acme/test/new-order", `{"identifiers":[{"type":"dns","value":"stale.`+testDomain+`"}]}`
	if st, typ := tc.post(t, raw{key: c.Key, kid: before.URI, url: newOrder, nonce: stale}, order); st != 400 || typ != errNS+"badNonce" {
		t.Errorf("nonce from before the restart: %d %s, want badNonce", st, typ)
	}
	if _, err := os.Stat(tc.cfg.Path("acme.db")); !os.IsNotExist(err) {
		t.Errorf("acme.db exists: %v", err)
	}
	after, err := c.GetReg(ctx, "")
	if err != nil || after.URI != before.URI {
		t.Fatalf("account after restart: %v %v, want %s", after, err, before.URI)
	}
	if got, err := c.GetOrder(ctx, o.URI); err != nil || got.Status != xacme.StatusValid {
		t.Errorf("valid order after restart: %+v %v", got, err)
	}
	if got, err := c.GetOrder(ctx, pending.URI); err != nil || got.Status != xacme.StatusPending {
		t.Errorf("pending order after restart: %+v %v", got, err)
	}
	if z, err := c.GetAuthorization(ctx, pending.AuthzURLs[0]); err != nil || z.Status != xacme.StatusPending {
		t.Errorf("authorization after restart: %+v %v", z, err)
	}
	got, err := c.FetchCert(ctx, certURL, true)
	if err != nil || string(chainPEM(got)) != string(chainPEM(ders)) {
		t.Errorf("certificate after restart: %v", err)
	}
	// The ordering account can still revoke it.
	leaf := tc.checkIssued(t, chainPEM(ders), name)
	if err := c.RevokeCert(ctx, nil, leaf.Raw, xacme.CRLReasonSuperseded); err != nil {
		t.Fatalf("revoke by account after restart: %v", err)
	}
	tc.mustBeRevoked(t, leaf.SerialNumber)
}

// Each bound on what a client can make the CA store is refused with its
// ACME error type; those that waiting lifts carry Retry-After.
func TestLimits(t *testing.T) {
	orderOf := func(names ...string) string {
		var ids []string
		for _, n := range names {
			ids = append(ids, `{"type":"dns","value":"`+n+`"}`)
		}
		return `{"identifiers":[` + strings.Join(ids, ",") + `]}`
	}
	names := func(prefix string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("%s%d.%s", prefix, i, testDomain))
		}
		return out
	}
	for _, tt := range []struct {
		name   string
		limits config.ACMELimits
		// Requests in turn; the last must be refused with want.
		newAccounts int      // new accounts, from one address
		orders      []string // then orders by one account
		want        string
		retry       bool
	}{
		{name: "identifiersPerOrder", limits: config.ACMELimits{IdentifiersPerOrder: 3},
			orders: []string{orderOf(names("i", 4)...)}, want: "rejectedIdentifier"},
		{name: "bareWildcard", orders: []string{orderOf("*." + testDomain)}, want: "rejectedIdentifier"},
		{name: "pendingOrdersPerAccount", limits: config.ACMELimits{PendingOrdersPerAccount: 2},
			orders: []string{orderOf("a." + testDomain), orderOf("b." + testDomain), orderOf("c." + testDomain)}, want: "rateLimited", retry: true},
		{name: "pendingAuthorizationsPerAccount", limits: config.ACMELimits{IdentifiersPerOrder: 3, PendingAuthorizationsPerAccount: 5},
			orders: []string{orderOf(names("p", 3)...), orderOf(names("q", 3)...)}, want: "rateLimited", retry: true},
		{name: "newOrdersPerIPPerMinute", limits: config.ACMELimits{NewOrdersPerIPPerMinute: 2},
			orders: []string{orderOf("a." + testDomain), orderOf("b." + testDomain), orderOf("c." + testDomain)}, want: "rateLimited", retry: true},
		{name: "newAccountsPerIPPerMinute", limits: config.ACMELimits{NewAccountsPerIPPerMinute: 2},
			newAccounts: 3, want: "rateLimited", retry: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc := startCAConfig(t, func(a *config.ACME) { a.Limits = tt.limits }, nil)
			newAccount := tc.url + "/acme/test/new-account"
			var st int
			var typ string
			var hdr map[string][]string
			for i := range tt.newAccounts {
				st, typ, hdr = tc.postH(t, raw{key: newKey(t), url: newAccount}, `{"termsOfServiceAgreed":true}`)
				if i < tt.newAccounts-1 && st != 201 {
					t.Fatalf("account %d: %d %s", i, st, typ)
				}
			}
			if len(tt.orders) > 0 {
				c := tc.client(t)
				acct, err := c.GetReg(context.Background(), "")
				if err != nil {
					t.Fatal(err)
				}
				for i, o := range tt.orders {
					st, typ, hdr = tc.postH(t, raw{key: c.Key, kid: acct.URI, url: tc.url + "/acme/test/new-order"}, o)
					if i < len(tt.orders)-1 && st != 201 {
						t.Fatalf("order %d: %d %s", i, st, typ)
					}
				}
			}
			if typ != errNS+tt.want {
				t.Fatalf("last request: %d %s, want %s", st, typ, tt.want)
			}
			ra := hdr["Retry-After"]
			if secs, err := strconv.Atoi(strings.Join(ra, "")); tt.retry && (err != nil || secs < 1) {
				t.Errorf("Retry-After %q, want whole seconds ≥ 1", ra)
			} else if !tt.retry && len(ra) > 0 {
				t.Errorf("Retry-After %q on a refusal that waiting does not lift", ra)
			}
			if tt.retry && st != 429 {
				t.Errorf("status %d, want 429", st)
			}
		})
	}
}

// The attack of the issue: one account posts 40 orders of 100 identifiers
// at once, twice. Three fit under the default cap of 300 unfinished
// authorizations; the rest are refused, and the CA's file stays small.
func TestOrderFloodBounded(t *testing.T) {
	tc := startCA(t, nil)
	c := tc.client(t)
	acct, err := c.GetReg(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	dbPath := tc.cfg.Path(tc.cfg.Paths.DB)
	size := func() int64 {
		fi, err := os.Stat(dbPath)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	flood := func(round int) map[string]int {
		var mu sync.Mutex
		got := map[string]int{}
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 10 {
					var ids []string
					for j := range 100 {
						ids = append(ids, fmt.Sprintf(`{"type":"dns","value":"f%d-%d-%d-%d.%s"}`, round, g, i, j, testDomain))
					}
					st, typ, hdr := tc.postH(t, raw{key: c.Key, kid: acct.URI, url: tc.url + "/acme/test/new-order"},
						`{"identifiers":[`+strings.Join(ids, ",")+`]}`)
					if st != 201 && hdr.Get("Retry-After") == "" {
						t.Errorf("refusal without Retry-After: %d %s", st, typ)
					}
					mu.Lock()
					got[fmt.Sprint(st, " ", typ)]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return got
	}
	start := size()
	if got := flood(0); got["201 "] != 3 || got["429 "+errNS+"rateLimited"] != 37 {
		t.Errorf("answers %v, want 3 created and 37 rateLimited", got)
	}
	first := size()
	// Again: the account's share is used up, so nothing more is stored.
	if got := flood(1); got["429 "+errNS+"rateLimited"] != 40 {
		t.Errorf("second flood: %v, want 40 rateLimited", got)
	}
	end := size()
	t.Logf("anchorage.db: %d KiB before, %d KiB after 40 orders of 100 identifiers, %d KiB after 40 more",
		start>>10, first>>10, end>>10)
	if end-start > 1<<20 {
		t.Errorf("the database grew by %d KiB, want at most 1 MiB", (end-start)>>10)
	}
	if end != first {
		t.Errorf("refused orders grew the database from %d to %d bytes", first, end)
	}
}

func chainPEM(ders [][]byte) []byte {
	var out []byte
	for _, d := range ders {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	return out
}

// An acme.db left by the version that kept ACME state apart is imported
// at start: its accounts keep working with their keys, and the file is
// renamed so it is imported once.
func TestLegacyACMEDBImported(t *testing.T) {
	tc := startCA(t, nil)
	tc.stop()
	key := newKey(t)
	jwk := jose.JSONWebKey{Key: key.Public()}
	jwkJSON, err := jwk.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	tp := base64.RawURLEncoding.EncodeToString(sum)
	legacy := tc.cfg.Path("acme.db")
	db, err := bolt.Open(legacy, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		accts, _ := tx.CreateBucket([]byte("accounts"))
		keys, _ := tx.CreateBucket([]byte("keys"))
		if err := keys.Put([]byte("test\x00"+tp), []byte("legacy1")); err != nil {
			return err
		}
		return accts.Put([]byte("legacy1"), []byte(`{"id":"legacy1","provisioner":"test","key":`+string(jwkJSON)+
			`,"thumbprint":"`+tp+`","status":"valid","createdAt":"2026-01-01T00:00:00Z"}`))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", tc.cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	tc.start(t, ln)
	tc.waitUp(t)
	c := &xacme.Client{Key: key, DirectoryURL: tc.dirURL, HTTPClient: tc.http}
	acct, err := c.GetReg(context.Background(), "")
	if err != nil || !strings.HasSuffix(acct.URI, "/account/legacy1") {
		t.Fatalf("imported account: %v %v", acct, err)
	}
	if _, err := c.AuthorizeOrder(context.Background(), xacme.DomainIDs("old."+testDomain)); err != nil {
		t.Errorf("order by the imported account: %v", err)
	}
	if _, err := os.Stat(legacy + ".imported"); err != nil {
		t.Errorf("acme.db not renamed: %v", err)
	}
}

// newAccountsPerMinute bounds new accounts from every address together:
// clients on distinct addresses, each well within its own per-address
// bucket, are refused past it with rateLimited and Retry-After.
func TestNewAccountsGlobalLimit(t *testing.T) {
	tc := startCAConfig(t, func(a *config.ACME) { a.Limits.NewAccountsPerMinute = 3 }, nil)
	tlsConf := tc.http.Transport.(*http.Transport).TLSClientConfig
	from := func(ip string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
		return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf, DialContext: d.DialContext}}
	}
	orig := tc.http
	defer func() { tc.http = orig }()
	for i := range 4 {
		ip := fmt.Sprintf("127.0.0.%d", 10+i)
		tc.http = from(ip)
		st, typ, hdr := tc.postH(t, raw{key: newKey(t), url: tc.url + "/acme/test/new-account"}, `{"termsOfServiceAgreed":true}`)
		if i < 3 {
			if st != 201 {
				t.Fatalf("account %d from %s: %d %s", i, ip, st, typ)
			}
			continue
		}
		if st != 429 || typ != errNS+"rateLimited" {
			t.Fatalf("account %d from %s, past the global cap: %d %s, want 429 rateLimited", i, ip, st, typ)
		}
		if secs, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || secs < 1 {
			t.Errorf("Retry-After %q, want whole seconds ≥ 1", hdr.Get("Retry-After"))
		}
	}
}
