package acme

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/anchorage-pki/anchorage/storage"
)

// An internal error never reaches the client's detail; storage that is
// down is a 503 the client retries.
func TestInternalProblemHidesCause(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
	}{
		{fmt.Errorf("put order: %w: dial tcp db.internal:5432: connection refused", storage.ErrUnavailable), http.StatusServiceUnavailable},
		{errors.New("open /var/lib/anchorage-ca/anchorage.db: permission denied"), http.StatusInternalServerError},
	} {
		p := internal(c.err)
		if p.Status != c.status || p.Type != ErrServerInternal {
			t.Errorf("%v: %d %s, want %d serverInternal", c.err, p.Status, p.Type, c.status)
		}
		if strings.Contains(p.Detail, "5432") || strings.Contains(p.Detail, "/var/lib") || p.cause == nil {
			t.Errorf("%v: detail %q leaks the cause (or the cause is lost)", c.err, p.Detail)
		}
	}
}
