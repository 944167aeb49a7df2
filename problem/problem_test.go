package problem_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/anchorage-pki/anchorage/problem"
)

type unavailable struct{}

func (unavailable) Error() string     { return "db down at 10.0.0.5: secret detail" }
func (unavailable) Unavailable() bool { return true }

// Write answers problems as they are, a dependency that is unavailable
// with 503 (Retry-After, nothing internal), anything else with a 500.
func TestWriteStatus(t *testing.T) {
	for _, c := range []struct {
		name   string
		err    error
		status int
		typ    string
	}{
		{"problem", problem.New(http.StatusForbidden, problem.Forbidden, "no"), 403, problem.Forbidden},
		{"unavailable wrapped", fmt.Errorf("storage: cert: %w", unavailable{}), 503, problem.Unavailable},
		{"other", errors.New("boom"), 500, problem.Internal},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			problem.Write(rec, httptest.NewRequest(http.MethodGet, "/v1/x", nil), c.err)
			var d problem.Details
			if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil {
				t.Fatal(err)
			}
			if rec.Code != c.status || d.Status != c.status || d.Type != c.typ || rec.Header().Get("Content-Type") != problem.ContentType {
				t.Errorf("%d %s %+v", rec.Code, rec.Header().Get("Content-Type"), d)
			}
			if c.status == 503 && (rec.Header().Get("Retry-After") == "" || d.Detail == unavailable{}.Error()) {
				t.Errorf("503 without Retry-After or with the internal detail: %v %+v", rec.Header(), d)
			}
		})
	}
}
