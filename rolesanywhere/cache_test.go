package rolesanywhere

import (
	"context"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func newTestCache(t *testing.T, f *fakeService, src IdentitySource) *Cache {
	t.Helper()
	client, err := NewClient(f.config())
	if err != nil {
		t.Fatal(err)
	}
	return NewCache(client, src, 0)
}

func TestCacheSingleFlight(t *testing.T) {
	f := newFakeService(t)
	release := make(chan struct{})
	f.reply = func(int, seen) (int, http.Header, string) {
		<-release // hold the first call until every caller is waiting
		return 0, nil, ""
	}
	src, err := NewFileSource(context.Background(), vectorSource("ec", false))
	if err != nil {
		t.Fatal(err)
	}
	c := newTestCache(t, f, src)
	const callers = 20
	var wg sync.WaitGroup
	keys := make([]string, callers)
	for i := range callers {
		wg.Go(func() {
			creds, _, err := c.Credentials(context.Background())
			if err != nil {
				t.Error(err)
			}
			keys[i] = creds.AccessKeyID
		})
	}
	time.Sleep(200 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d CreateSession calls for %d concurrent callers, want 1", n, callers)
	}
	for i, k := range keys {
		if k != "ASIATESTFAKE0001" {
			t.Errorf("caller %d got %q", i, k)
		}
	}
}

func TestCacheRefreshWindow(t *testing.T) {
	tests := []struct {
		name      string
		ttl       time.Duration
		wantCalls int
	}{
		{"fresh credentials are reused", time.Hour, 1},
		{"less than 10 minutes left refreshes", 9 * time.Minute, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeService(t)
			f.ttl = tt.ttl
			src, err := NewFileSource(context.Background(), vectorSource("ec", false))
			if err != nil {
				t.Fatal(err)
			}
			c := newTestCache(t, f, src)
			for range 3 {
				if _, _, err := c.Credentials(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if n := len(f.requests()); n != tt.wantCalls {
				t.Errorf("%d calls, want %d", n, tt.wantCalls)
			}
		})
	}
}

// TestCacheInvalidatedByNewCertificate: credentials issued for a replaced
// certificate are not served again.
func TestCacheInvalidatedByNewCertificate(t *testing.T) {
	f := newFakeService(t)
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certPath, keyPath, 1)
	src, err := NewFileSource(context.Background(), SourceConfig{Certificate: certPath, PrivateKey: keyPath})
	if err != nil {
		t.Fatal(err)
	}
	c := newTestCache(t, f, src)
	first, _, err := c.Credentials(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if again, _, _ := c.Credentials(context.Background()); again != first {
		t.Fatal("unchanged certificate: credentials not reused")
	}
	writeSelfSigned(t, certPath, keyPath, 2)
	second, _, err := c.Credentials(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if second == first || len(reqs) != 2 {
		t.Fatalf("rotation did not refresh: %d calls", len(reqs))
	}
	if reqs[1].leaf.SerialNumber.Int64() != 2 {
		t.Errorf("second call signed with serial %v, want 2", reqs[1].leaf.SerialNumber)
	}
}

// TestCacheKeepsValidCredentialsOnError: a failed refresh inside the
// window still hands out the unexpired credentials, with the error.
func TestCacheKeepsValidCredentialsOnError(t *testing.T) {
	f := newFakeService(t)
	f.ttl = 9 * time.Minute
	src, err := NewFileSource(context.Background(), vectorSource("ec", false))
	if err != nil {
		t.Fatal(err)
	}
	c := newTestCache(t, f, src)
	first, _, err := c.Credentials(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f.reply = func(int, seen) (int, http.Header, string) {
		return 403, http.Header{"X-Amzn-Errortype": {"AccessDeniedException"}}, `{"message":"revoked"}`
	}
	got, _, err := c.Credentials(context.Background())
	if err == nil || got != first {
		t.Errorf("got %v, %v; want the cached credentials and an error", got.AccessKeyID, err)
	}
}
