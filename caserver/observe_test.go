package caserver_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/caclient"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/events/stream"
	"github.com/anchorage-pki/anchorage/internal/testenv"
	"github.com/anchorage-pki/anchorage/problem"
	"github.com/anchorage-pki/anchorage/signer"
)

// startObservedCA is a CA writing its audit stream to DIR/events.jsonl.
func startObservedCA(t *testing.T) (*testCA, string) {
	t.Helper()
	c := testenv.InitCA(t)
	c.Cfg.Events = &config.Events{File: "events.jsonl"}
	if err := c.Cfg.Save(); err != nil {
		t.Fatal(err)
	}
	c.Start(t)
	return &testCA{c}, filepath.Join(c.Dir, "events.jsonl")
}

func tlsPair(t *testing.T, chain string, key *ecdsa.PrivateKey) tls.Certificate {
	t.Helper()
	keyPEM, _ := signer.Encode(key)
	pair, err := tls.X509KeyPair([]byte(chain), keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

func jti(t *testing.T, token string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Jti string }
	json.Unmarshal(b, &c)
	return c.Jti
}

// TestMetricsAndEvents runs enroll, a replayed token, renew, a superseded
// renewal and revoke against a real CA, and reads /metrics with
// Prometheus's parser and the audit stream line by line.
func TestMetricsAndEvents(t *testing.T) {
	tc, file := startObservedCA(t)
	ctx := context.Background()

	before := tc.Scrape(t)
	for _, fam := range []string{
		"go_goroutines", "process_cpu_seconds_total", "process_resident_memory_bytes",
		"anchorage_crl_number", "anchorage_crl_entries", "anchorage_crl_pem_bytes", "anchorage_crl_pem_max_bytes",
		"anchorage_crl_next_update_timestamp_seconds", "anchorage_crl_file_ok", "anchorage_lease_held",
		"anchorage_lease_held_since_timestamp_seconds", "anchorage_certificates_expiring", "anchorage_ca_expires_in_seconds",
		"anchorage_certificates_revoked_total", "anchorage_renewals_superseded_total", "anchorage_events_write_failures_total",
	} {
		if before[fam] == nil {
			t.Errorf("/metrics has no family %s", fam)
		}
	}
	for _, c := range []string{"root", "issuing", "admin", "service"} {
		if v, ok := before.Value("anchorage_ca_expires_in_seconds", "ca", c); !ok || v < 3600 {
			t.Errorf("%s CA expires in %v s (%v)", c, v, ok)
		}
	}
	for _, l := range []string{"crl", "push"} {
		if v, _ := before.Value("anchorage_lease_held", "lease", l); v != 1 {
			t.Errorf("lease %s held = %v, want 1", l, v)
		}
	}
	if v, _ := before.Value("anchorage_crl_pem_max_bytes"); v != 300000 {
		t.Errorf("anchorage_crl_pem_max_bytes %v", v)
	}

	// Enroll, then replay the same token.
	tok := tc.token(t, "web-01.example.com", nil, 10*time.Minute, time.Now())
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := caclient.NewCSR(key, "web-01.example.com", nil)
	res, err := tc.Client(t, nil).Enroll(ctx, tok, csr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Client(t, nil).Enroll(ctx, tok, csr); problemType(err) != problem.TokenReplayed {
		t.Fatalf("replayed token: %v", err)
	}
	pair := tlsPair(t, res.Chain, key)
	// Renew, then renew the predecessor again with another key.
	key2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr2, _ := caclient.NewCSR(key2, "x", nil)
	ren, err := tc.Client(t, &pair).Renew(ctx, csr2)
	if err != nil {
		t.Fatal(err)
	}
	key3, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr3, _ := caclient.NewCSR(key3, "x", nil)
	if _, err := tc.Client(t, &pair).Renew(ctx, csr3); problemType(err) != problem.CertSuperseded {
		t.Fatalf("superseded renewal: %v", err)
	}
	rr, err := tc.Admin(t).Revoke(ctx, apiv1.RevokeRequest{Serial: res.Serial, Reason: "keyCompromise"})
	if err != nil || len(rr.Revoked) != 2 {
		t.Fatalf("revoke: %+v %v", rr, err)
	}

	after := tc.Scrape(t)
	moved := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"anchorage_issuance_requests_total", []string{"method", "token", "result", "ok"}, 1},
		{"anchorage_issuance_requests_total", []string{"method", "token", "result", "token_replayed"}, 1},
		{"anchorage_issuance_duration_seconds", []string{"method", "token", "result", "ok"}, 1},
		{"anchorage_renewal_requests_total", []string{"method", "mtls", "result", "ok"}, 1},
		{"anchorage_renewal_requests_total", []string{"method", "mtls", "result", "superseded"}, 1},
		{"anchorage_renewal_duration_seconds", []string{"method", "mtls"}, 2},
		{"anchorage_revocation_requests_total", []string{"method", "admin", "result", "ok"}, 1},
		{"anchorage_revocation_duration_seconds", []string{"method", "admin", "result", "ok"}, 1},
		{"anchorage_certificates_issued_total", []string{"method", "token"}, 1},
		{"anchorage_certificates_issued_total", []string{"method", "renew"}, 1},
		{"anchorage_certificates_revoked_total", nil, 2},
		{"anchorage_renewals_superseded_total", nil, 1},
		{"anchorage_crl_entries", nil, 2},
		{"anchorage_crl_number", nil, float64(rr.CRLNumber)},
	}
	for _, m := range moved {
		if v, _ := after.Value(m.name, m.labels...); v != m.want {
			t.Errorf("%s%v = %v, want %v", m.name, m.labels, v, m.want)
		}
	}

	// The audit stream, in order.
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(tok)) || bytes.Contains(raw, []byte("PRIVATE KEY")) {
		t.Fatalf("the audit stream holds a token or a key:\n%s", raw)
	}
	type line struct {
		Time                                                           time.Time
		Event, Serial, Subject, Lineage, Method, Actor, Remote, Result string
		Reason, Error, TokenID, RenewedFrom                            string `json:",omitempty"`
	}
	var got []line
	for _, l := range bytes.Split(bytes.TrimSpace(raw), []byte{'\n'}) {
		var e struct {
			line
			TokenID     string `json:"token_id"`
			RenewedFrom string `json:"renewed_from"`
		}
		if err := json.Unmarshal(l, &e); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		e.line.TokenID, e.line.RenewedFrom = e.TokenID, e.RenewedFrom
		got = append(got, e.line)
	}
	adminActor := "admin:anchorage-admin "
	want := []line{
		{Event: "issue", Serial: res.Serial, Subject: "web-01.example.com", Lineage: res.Serial, Method: "token", Actor: "token:" + jti(t, tok), Result: "ok", TokenID: jti(t, tok)},
		{Event: "issue", Method: "token", Actor: "token:" + jti(t, tok), Result: "refused", Reason: "token_replayed", TokenID: jti(t, tok)},
		{Event: "renew", Serial: ren.Serial, Subject: "web-01.example.com", Lineage: res.Serial, Method: "mtls", Actor: "cert:" + res.Serial, Result: "ok", RenewedFrom: res.Serial},
		{Event: "renew", Serial: res.Serial, Subject: "web-01.example.com", Lineage: res.Serial, Method: "mtls", Actor: "cert:" + res.Serial, Result: "refused", Reason: "superseded"},
		{Event: "revoke", Serial: res.Serial, Subject: "web-01.example.com", Lineage: res.Serial, Method: "admin", Actor: adminActor, Result: "ok", Reason: "keyCompromise"},
		{Event: "revoke", Serial: ren.Serial, Subject: "web-01.example.com", Lineage: res.Serial, Method: "admin", Actor: adminActor, Result: "ok", Reason: "keyCompromise"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d:\n%s", len(got), len(want), raw)
	}
	for i, w := range want {
		g := got[i]
		if g.Time.IsZero() || !strings.HasPrefix(g.Remote, "127.0.0.1:") || (g.Result != "ok") != (g.Error != "") {
			t.Errorf("event %d: time %v remote %q error %q", i+1, g.Time, g.Remote, g.Error)
		}
		g.Time, g.Remote, g.Error = time.Time{}, "", ""
		if strings.HasPrefix(w.Actor, adminActor) && strings.HasPrefix(g.Actor, adminActor) {
			g.Actor = adminActor
		}
		if g != w {
			t.Errorf("event %d:\n got %+v\nwant %+v", i+1, g, w)
		}
	}

	// The chain holds; one byte changed in line 3 is named.
	if _, err := stream.Verify(file); err != nil {
		t.Fatalf("verify: %v", err)
	}
	lines := bytes.SplitAfter(raw, []byte{'\n'})
	lines[2] = bytes.Replace(lines[2], []byte(`"result":"ok"`), []byte(`"result":"no"`), 1)
	os.WriteFile(file, bytes.Join(lines, nil), 0o600)
	if _, err := stream.Verify(file); err == nil || !strings.Contains(err.Error(), "events.jsonl:3 was changed") {
		t.Fatalf("verify after an edit of line 3: %v", err)
	}
}
