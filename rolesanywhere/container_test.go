package rolesanywhere

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckServeAddress(t *testing.T) {
	tests := []struct {
		addr  string
		allow bool
		want  string // "" ok; else a substring of the error
	}{
		{"127.0.0.1:9911", false, ""},
		{"127.0.0.2:0", false, ""},
		{"[::1]:9911", false, ""},
		{"localhost:9911", false, ""},
		{"0.0.0.0:1234", false, "not a loopback address"},
		{":1234", false, "not a loopback address"},
		{"192.0.2.1:1234", false, "not a loopback address"},
		{"[::]:1234", false, "not a loopback address"},
		{"example.com:1234", false, "not a loopback address"},
		{"0.0.0.0:1234", true, ""},
		{"192.0.2.1:1234", true, ""},
		{"127.0.0.1", false, "want HOST:PORT"},
		{"127.0.0.1:http-alt-nope", false, "bad port"},
	}
	for _, tt := range tests {
		err := CheckServeAddress(tt.addr, tt.allow)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s (allow %v): %v", tt.addr, tt.allow, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s (allow %v): got %v, want %q", tt.addr, tt.allow, err, tt.want)
		case tt.want == "not a loopback address" && !errors.Is(err, ErrNonLoopback):
			t.Errorf("%s: %v is not ErrNonLoopback", tt.addr, err)
		}
	}
}

func TestReadAuthToken(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string // "" ok
	}{
		{"good", "s3cr3t", 0o600, ""},
		{"owner read only", "s3cr3t", 0o400, ""},
		{"group readable", "s3cr3t", 0o640, "lets others read it"},
		{"world readable", "s3cr3t", 0o644, "lets others read it"},
		{"empty", "", 0o600, "is empty"},
		{"trailing newline", "s3cr3t\n", 0o600, "contains a newline"},
		{"carriage return", "s3\rcr3t", 0o600, "contains a newline"},
		{"too long", strings.Repeat("x", maxAuthTokenBytes+1), 0o600, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, tt.mode)
			got, err := ReadAuthToken(p)
			if tt.want == "" {
				if err != nil || string(got) != tt.content {
					t.Fatalf("got %q, %v", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("error shows the token: %v", err)
			}
		})
	}
	// A 0600 file of another user: that user can read and replace the
	// token. It used to be accepted.
	if os.Geteuid() == 0 {
		p := filepath.Join(dir, "nobodys")
		if err := os.WriteFile(p, []byte("s3cr3t"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadAuthToken(p); err == nil || !strings.Contains(err.Error(), "owned by another user") {
			t.Errorf("file of another user: %v", err)
		}
	} else {
		t.Log("not root: the other-owner case needs chown")
	}
	if _, err := ReadAuthToken(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	if _, err := ReadAuthToken(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file accepted")
	}
}

// TestContainerEndpoint: the wire protocol, answered from a Cache.
func TestContainerEndpoint(t *testing.T) {
	f := newFakeService(t)
	client, err := NewClient(f.config())
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewFileSource(context.Background(), vectorSource("ec", true))
	if err != nil {
		t.Fatal(err)
	}
	const token = "tok-0123456789"
	var logBuf bytes.Buffer
	e := NewContainerEndpoint(NewCache(client, src, 0), StaticToken(token), vecRole, log.New(&logBuf, "", 0), nil)
	tests := []struct {
		name, method, path string
		auth               []string
		status             int
		code               string
	}{
		{"ok", http.MethodGet, ContainerCredentialsPath, []string{token}, 200, ""},
		{"ok again from the cache", http.MethodGet, ContainerCredentialsPath, []string{token}, 200, ""},
		{"no header", http.MethodGet, ContainerCredentialsPath, nil, 401, "Unauthorized"},
		{"empty header", http.MethodGet, ContainerCredentialsPath, []string{""}, 401, "Unauthorized"},
		{"wrong", http.MethodGet, ContainerCredentialsPath, []string{"tok-0123456788"}, 403, "AccessDenied"},
		{"prefix", http.MethodGet, ContainerCredentialsPath, []string{token[:5]}, 403, "AccessDenied"},
		{"longer", http.MethodGet, ContainerCredentialsPath, []string{token + "x"}, 403, "AccessDenied"},
		{"two headers", http.MethodGet, ContainerCredentialsPath, []string{token, "x"}, 403, "AccessDenied"},
		{"bearer prefix", http.MethodGet, ContainerCredentialsPath, []string{"Bearer " + token}, 403, "AccessDenied"},
		{"put", http.MethodPut, ContainerCredentialsPath, []string{token}, 405, "MethodNotAllowed"},
		{"imds path", http.MethodGet, "/latest/meta-data/iam/security-credentials/", []string{token}, 404, "NotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			for _, a := range tt.auth {
				req.Header.Add("Authorization", a)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != tt.status || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("status %d %q, want %d: %s", rec.Code, rec.Header().Get("Content-Type"), tt.status, rec.Body)
			}
			var doc map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				t.Fatal(err)
			}
			if tt.status != 200 {
				if doc["code"] != tt.code || doc["message"] == "" || len(doc) != 2 {
					t.Fatalf("error document %v", doc)
				}
				return
			}
			exp, err := time.Parse(time.RFC3339, doc["Expiration"])
			if err != nil || time.Until(exp) < 50*time.Minute {
				t.Fatalf("Expiration %q: %v", doc["Expiration"], err)
			}
			want := map[string]string{"AccessKeyId": "ASIATESTFAKE0001", "Token": "token-1", "RoleArn": vecRole, "AccountId": "123456789012"}
			for k, v := range want {
				if doc[k] != v {
					t.Errorf("%s = %q, want %q", k, doc[k], v)
				}
			}
			if !strings.HasPrefix(doc["SecretAccessKey"], "secret/") {
				t.Errorf("SecretAccessKey %q", doc["SecretAccessKey"])
			}
		})
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d CreateSession calls, want 1 (the cache)", n)
	}
	if logged := logBuf.String(); strings.Contains(logged, token[:5]) || strings.Count(logged, "refused") != 7 {
		t.Errorf("log:\n%s", logged)
	}
}

// TestAuthTokenFileRotation: a rotated token file is picked up without a
// restart, whether rewritten in place, replaced by rename or chmodded; a
// rotation that breaks a check refuses every request (fails closed) until
// the file is fixed.
func TestAuthTokenFileRotation(t *testing.T) {
	f := newFakeService(t)
	client, err := NewClient(f.config())
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewFileSource(context.Background(), vectorSource("ec", true))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	if err := os.WriteFile(path, []byte("tok-first"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenAuthTokenFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing token file accepted at start")
	}
	tf, err := OpenAuthTokenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	e := NewContainerEndpoint(NewCache(client, src, 0), tf, vecRole, log.New(&logBuf, "", 0), nil)
	ask := func(token string) int {
		req := httptest.NewRequest(http.MethodGet, ContainerCredentialsPath, nil)
		req.Header.Set("Authorization", token)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec.Code
	}
	rewrite := func(content string, mode os.FileMode) func(t *testing.T) {
		return func(t *testing.T) {
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name   string
		rotate func(t *testing.T)
		want   map[string]int // token sent → status
	}{
		{"as started", func(*testing.T) {}, map[string]int{"tok-first": 200, "tok-other": 403}},
		{"rewritten in place, same length", rewrite("tok-secnd", 0o600), map[string]int{"tok-secnd": 200, "tok-first": 403}},
		{"replaced by rename", func(t *testing.T) {
			tmp := filepath.Join(dir, "token.new")
			if err := os.WriteFile(tmp, []byte("tok-third-longer"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}, map[string]int{"tok-third-longer": 200, "tok-secnd": 403}},
		{"made group readable", func(t *testing.T) { os.Chmod(path, 0o640) }, map[string]int{"tok-third-longer": 503, "tok-secnd": 503}},
		{"fixed", func(t *testing.T) { os.Chmod(path, 0o600) }, map[string]int{"tok-third-longer": 200}},
		{"newline added", rewrite("tok-fourth\n", 0o600), map[string]int{"tok-fourth": 503, "tok-third-longer": 503}},
		{"emptied", rewrite("", 0o600), map[string]int{"tok-third-longer": 503}},
		{"removed", func(t *testing.T) { os.Remove(path) }, map[string]int{"tok-third-longer": 503}},
		{"back", rewrite("tok-fifth", 0o600), map[string]int{"tok-fifth": 200, "tok-third-longer": 403}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.rotate(t)
			for token, want := range tt.want {
				if got := ask(token); got != want {
					t.Errorf("token %q: status %d, want %d", token, got, want)
				}
			}
			if got := ask(""); got != 401 {
				t.Errorf("no token: status %d, want 401", got)
			}
		})
	}
	if logged := logBuf.String(); strings.Contains(logged, "tok-") || !strings.Contains(logged, "authorization token unusable") {
		t.Errorf("log:\n%s", logged)
	}
}
