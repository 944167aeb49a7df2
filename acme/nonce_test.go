package acme

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.step.sm/crypto/jose"

	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/storage"
)

// recordingStore is the storage a Server gets in these tests: the nonce
// methods are served from memory and counted; the rest of Store is nil,
// so any other call panics and fails the test.
type recordingStore struct {
	Store
	mu                 sync.Mutex
	key                []byte
	used               map[string]time.Time
	keyCalls, useCalls int
}

func newRecordingStore() *recordingStore {
	k := make([]byte, storage.NonceKeySize)
	rand.Read(k)
	return &recordingStore{key: k, used: map[string]time.Time{}}
}

func (s *recordingStore) NonceKey(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keyCalls++
	return s.key, nil
}

func (s *recordingStore) UseNonce(ctx context.Context, id string, expires time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.useCalls++
	if _, ok := s.used[id]; ok {
		return false, nil
	}
	s.used[id] = expires
	return true, nil
}

func (s *recordingStore) PruneNonces(ctx context.Context, now time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, exp := range s.used {
		if exp.Before(now) {
			delete(s.used, id)
			n++
		}
	}
	return n, nil
}

func (s *recordingStore) ResolveACMEOrders(ctx context.Context, fn func(*storage.ACMEOrder, *storage.Cert)) (int, error) {
	return 0, nil
}

func (s *recordingStore) ACMEAccountByKey(ctx context.Context, provisioner, thumbprint string) (*storage.ACMEAccount, error) {
	return nil, storage.ErrNotFound
}

func (s *recordingStore) uses() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.useCalls
}

func TestNonceCheck(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st := newRecordingStore()
	n, err := newNonceMinter(context.Background(), st, clock)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := newNonceMinter(context.Background(), newRecordingStore(), clock) // another CA's key
	at := func(d time.Duration) string {
		m := *n
		m.now = func() time.Time { return now.Add(d) }
		return m.issue()
	}
	flip := func(v string, i int) string {
		b, _ := base64.RawURLEncoding.DecodeString(v)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	good := n.issue()
	for _, tt := range []struct {
		name, nonce string
		ok          bool
	}{
		{"fresh", good, true},
		{"at the end of its lifetime", at(-nonceLifetime), true},
		{"past its lifetime", at(-nonceLifetime - time.Millisecond), false},
		{"from a replica a little ahead", at(nonceSkew), true},
		{"from too far in the future", at(nonceSkew + time.Millisecond), false},
		{"time changed", flip(good, 7), false},
		{"random part changed", flip(good, 12), false},
		{"MAC changed", flip(good, nonceLen-1), false},
		{"another CA's", other.issue(), false},
		{"truncated", good[:len(good)-2], false},
		{"padded base64", good + "=", false},
		{"not base64url", strings.Repeat("!", len(good)), false},
		{"empty", "", false},
		{"old random nonce", "bm90LWEtbm9uY2U", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id, keep, pr := n.check(tt.nonce)
			if (pr == nil) != tt.ok {
				t.Fatalf("check: %v, want ok=%v", pr, tt.ok)
			}
			if pr != nil {
				if pr.Type != ErrBadNonce || pr.Status != http.StatusBadRequest || id != "" {
					t.Errorf("refusal %+v id %q, want badNonce 400", pr, id)
				}
				return
			}
			// Issued within [now-lifetime, now+skew], kept lifetime+skew after.
			if lo, hi := now.Add(nonceSkew), now.Add(nonceLifetime+2*nonceSkew); id == "" || keep.Before(lo) || keep.After(hi) {
				t.Errorf("id %q kept until %v", id, keep)
			}
		})
	}
	if st.uses() != 0 {
		t.Fatalf("check wrote %d nonces to storage", st.uses())
	}
	id, keep, _ := n.check(good)
	if pr := n.use(context.Background(), id, keep); pr != nil {
		t.Fatalf("first use: %v", pr)
	}
	if pr := n.use(context.Background(), id, keep); pr == nil || pr.Type != ErrBadNonce {
		t.Fatalf("second use: %v, want badNonce", pr)
	}
}

// Minting nonces — newNonce, the directory, every response's Replay-Nonce —
// and refusing nonces that fail their MAC or age never touch storage; a
// request with a good nonce consumes it once.
func TestNoncesWriteNothingUntilUsed(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	st := newRecordingStore()
	srv, err := New(context.Background(), Options{
		Authority: stubAuthority{}, Store: st, Now: clock,
		Config: &config.ACME{Provisioners: []config.ACMEProvisioner{{Name: "test", Allow: []string{"127.0.0.1"}}}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	base := hs.URL + "/acme/test/"

	const n = 500
	seen := map[string]bool{}
	for i := range n {
		method := []string{http.MethodHead, http.MethodGet}[i%2]
		req, _ := http.NewRequest(method, base+"new-nonce", nil)
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		v := resp.Header.Get("Replay-Nonce")
		if seen[v] || v == "" {
			t.Fatalf("new-nonce %d: nonce %q repeated or missing", i, v)
		}
		seen[v] = true
	}
	if st.keyCalls != 1 || st.uses() != 0 {
		t.Fatalf("%d new-nonce calls: the key read %d times, %d nonces written; want 1 and 0", n, st.keyCalls, st.uses())
	}

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	post := func(nonce string) (int, string, string) {
		t.Helper()
		opts := (&jose.SignerOptions{EmbedJWK: true}).WithHeader("nonce", nonce).WithHeader("url", base+"new-account")
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
		if err != nil {
			t.Fatal(err)
		}
		jws, err := sig.Sign([]byte(`{"onlyReturnExisting":true}`))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hs.Client().Post(base+"new-account", "application/jose+json", strings.NewReader(jws.FullSerialize()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var pr Problem
		json.NewDecoder(resp.Body).Decode(&pr)
		return resp.StatusCode, pr.Type, resp.Header.Get("Replay-Nonce")
	}
	stale := srv.nonces.issue()
	mu.Lock()
	now = now.Add(nonceLifetime + time.Second)
	mu.Unlock()
	for name, nonce := range map[string]string{
		"expired": stale, "forged": "bm90LWEtbm9uY2U", "absent": "",
		"another CA's": func() string {
			o, _ := newNonceMinter(context.Background(), newRecordingStore(), clock)
			return o.issue()
		}(),
	} {
		if code, typ, fresh := post(nonce); code != http.StatusBadRequest || typ != ErrBadNonce || fresh == "" {
			t.Errorf("%s nonce: %d %s, Replay-Nonce %q; want 400 badNonce with a fresh nonce", name, code, typ, fresh)
		}
	}
	if st.uses() != 0 {
		t.Fatalf("refused nonces wrote %d ids to storage", st.uses())
	}
	// A good nonce is consumed, once, by a request whose JWS passed every
	// check (refused after that: onlyReturnExisting for a key without an
	// account).
	nonce := srv.nonces.issue()
	if code, typ, _ := post(nonce); code != http.StatusBadRequest || typ != ErrAccountDoesNotExist || st.uses() != 1 {
		t.Fatalf("good nonce: %d %s with %d nonce writes; want accountDoesNotExist after 1", code, typ, st.uses())
	}
	if code, typ, _ := post(nonce); code != http.StatusBadRequest || typ != ErrBadNonce {
		t.Fatalf("replayed nonce: %d %s, want badNonce", code, typ)
	}
}

type stubAuthority struct{ Authority }

// The prune loop forgets consumed ids once they expire, and only then:
// what storage holds is bounded by the rate of consuming requests times
// the nonce lifetime (plus the skew allowance).
func TestNoncePrune(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	st := newRecordingStore()
	n, _ := newNonceMinter(context.Background(), st, clock)
	for range 100 {
		id, keep, pr := n.check(n.issue())
		if pr != nil || n.use(context.Background(), id, keep) != nil {
			t.Fatal("a fresh nonce was refused")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.prune(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Millisecond)
	}()
	defer func() { cancel(); <-done }()
	held := func() int { st.mu.Lock(); defer st.mu.Unlock(); return len(st.used) }
	for _, tt := range []struct {
		at   time.Duration
		want int
	}{
		{nonceLifetime, 100},             // still acceptable by age: kept
		{nonceLifetime + nonceSkew, 100}, // the last instant a lagging replica may accept it
		{nonceLifetime + nonceSkew + time.Millisecond, 0},
	} {
		mu.Lock()
		now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).Add(tt.at)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond) // several prune rounds
		deadline := time.Now().Add(5 * time.Second)
		for held() != tt.want && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got := held(); got != tt.want {
			t.Errorf("at +%v: %d ids held, want %d", tt.at, got, tt.want)
		}
	}
}
