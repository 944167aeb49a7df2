package rolesanywhere

import (
	"bytes"
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// IdentitySource yields the identity to sign with; FileSource is one.
// It is called before every use so a source can pick up rotated files.
type IdentitySource interface {
	Identity(ctx context.Context) (Identity, error)
}

// SessionCreator is the one Client method the cache needs.
type SessionCreator interface {
	CreateSession(ctx context.Context, id Identity) (*Session, error)
}

// DefaultRefreshWindow is how long before expiry serve fetches new
// credentials: the helper refreshes when less than 10 minutes remain.
const DefaultRefreshWindow = 10 * time.Minute

// Cache holds the latest credentials and refreshes them ahead of expiry.
// Concurrent callers that find them stale share one CreateSession call.
// A changed certificate invalidates the cached credentials, because they
// were issued for the old one (which may have been revoked).
type Cache struct {
	client SessionCreator
	source IdentitySource
	window time.Duration
	now    func() time.Time

	group singleflight.Group

	mu      sync.Mutex
	creds   Credentials
	certRaw []byte
	updated time.Time
}

// NewCache returns an empty cache; window ≤ 0 means DefaultRefreshWindow.
func NewCache(client SessionCreator, source IdentitySource, window time.Duration) *Cache {
	if window <= 0 {
		window = DefaultRefreshWindow
	}
	return &Cache{client: client, source: source, window: window, now: time.Now}
}

// Credentials returns cached credentials that are good for more than the
// refresh window, or fetches new ones. If a refresh fails while the cached
// credentials (for the same certificate) have not expired yet, those are
// returned with the error so a caller may keep serving them.
func (c *Cache) Credentials(ctx context.Context) (Credentials, time.Time, error) {
	creds, updated, _, err := c.credentials(ctx)
	return creds, updated, err
}

// credentialsForCert is Credentials with the certificate (DER) they were
// issued for; an error means no fresh credentials.
func (c *Cache) credentialsForCert(ctx context.Context) (Credentials, []byte, error) {
	creds, _, certRaw, err := c.credentials(ctx)
	if err != nil {
		return Credentials{}, nil, err
	}
	return creds, certRaw, nil
}

func (c *Cache) credentials(ctx context.Context) (Credentials, time.Time, []byte, error) {
	id, err := c.source.Identity(ctx)
	if err != nil {
		creds, updated, err := c.stillValid(nil, err)
		return creds, updated, nil, err
	}
	c.mu.Lock()
	fresh := c.certRaw != nil && bytes.Equal(c.certRaw, id.Certificate.Raw) &&
		!c.creds.Expires.IsZero() && c.creds.Expires.Sub(c.now()) > c.window
	creds, updated := c.creds, c.updated
	c.mu.Unlock()
	if fresh {
		return creds, updated, id.Certificate.Raw, nil
	}
	creds, updated, err = c.refresh(ctx, id)
	return creds, updated, id.Certificate.Raw, err
}

// Refresh fetches new credentials now, whatever the cache holds.
func (c *Cache) Refresh(ctx context.Context) (Credentials, time.Time, error) {
	id, err := c.source.Identity(ctx)
	if err != nil {
		return Credentials{}, time.Time{}, err
	}
	return c.refresh(ctx, id)
}

type cacheEntry struct {
	creds   Credentials
	updated time.Time
}

func (c *Cache) refresh(ctx context.Context, id Identity) (Credentials, time.Time, error) {
	// The key includes the certificate so a caller holding a new
	// certificate does not receive credentials issued for the old one.
	key := string(id.Certificate.Raw)
	v, err, _ := c.group.Do(key, func() (any, error) {
		// Detach from the first caller's cancellation: others wait on it.
		sess, err := c.client.CreateSession(context.WithoutCancel(ctx), id)
		if err != nil {
			return nil, err
		}
		e := cacheEntry{creds: sess.Credentials, updated: c.now().UTC()}
		c.mu.Lock()
		c.creds, c.certRaw, c.updated = e.creds, id.Certificate.Raw, e.updated
		c.mu.Unlock()
		return e, nil
	})
	if err != nil {
		return c.stillValid(id.Certificate.Raw, err)
	}
	e := v.(cacheEntry)
	return e.creds, e.updated, nil
}

// stillValid returns the cached credentials along with err when they are
// unexpired and were issued for certRaw (nil: any certificate).
func (c *Cache) stillValid(certRaw []byte, err error) (Credentials, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.certRaw != nil && (certRaw == nil || bytes.Equal(certRaw, c.certRaw)) &&
		c.creds.Expires.After(c.now()) {
		return c.creds, c.updated, err
	}
	return Credentials{}, time.Time{}, err
}
