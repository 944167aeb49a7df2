package acme

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// http-01 failures say what went wrong and never repeat the body, which
// the validated server controls.
func TestHTTP01FailureDetail(t *testing.T) {
	const token = "tok-abc"
	const thumb = "thumbprint-0123456789012345678901234567890"
	keyAuth := token + "." + thumb
	secret := "SECRET-PAGE-CONTENT"
	for _, tt := range []struct {
		name    string
		handler http.HandlerFunc
		typ     string
		want    string
	}{
		{"ok", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, keyAuth+"\n") }, "", ""},
		{"status", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, secret, 404) }, ErrUnauthorized, "status 404, want 200"},
		{"redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "http://elsewhere/"+secret, 302) }, ErrUnauthorized, "does not follow redirects"},
		// Never answers (until the validator hangs up), however fast the machine.
		{"timeout", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, ErrConnection, "no response within"},
		{"tooLong", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, strings.Repeat(secret, 500)) }, ErrIncorrectResponse, "over 4096 bytes"},
		{"wrongLength", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, secret) }, ErrIncorrectResponse, "has 19 bytes, not the"},
		{"empty", func(w http.ResponseWriter, _ *http.Request) {}, ErrIncorrectResponse, "body is empty"},
		{"otherAccount", func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, token+"."+strings.Repeat("x", len(thumb)))
		}, ErrIncorrectResponse, "another account key"},
		{"otherToken", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "old-tok."+thumb) }, ErrIncorrectResponse, "another token"},
		{"sameLength", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, strings.Repeat("y", len(keyAuth))) }, ErrIncorrectResponse, "not the key authorization"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			port := srv.Listener.Addr().(*net.TCPAddr).Port
			// Only the server that never answers should meet the deadline:
			// every other case gets one a loaded machine cannot miss.
			timeout := 10 * time.Second
			if tt.name == "timeout" {
				timeout = 200 * time.Millisecond
			}
			v := &validator{httpPort: port, timeout: timeout, resolver: net.DefaultResolver}
			ctx, cancel := context.WithTimeout(context.Background(), v.timeout)
			defer cancel()
			err := v.http01(ctx, ident{Type: "ip", Value: "127.0.0.1"}, token, keyAuth)
			if tt.typ == "" {
				if err != nil {
					t.Fatalf("the right key authorization: %v", err)
				}
				return
			}
			pr, ok := err.(*Problem)
			if !ok {
				t.Fatalf("want a *Problem, got %T %v", err, err)
			}
			if pr.Type != tt.typ || !strings.Contains(pr.Detail, tt.want) {
				t.Errorf("got %s %q, want %s containing %q", pr.Type, pr.Detail, tt.typ, tt.want)
			}
			if strings.Contains(pr.Detail, secret) || strings.Contains(pr.Detail, "xxxx") {
				t.Errorf("the detail repeats the response: %q", pr.Detail)
			}
		})
	}
}
