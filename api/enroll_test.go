package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/enroll"
	"github.com/anchorage-pki/anchorage/events"
	"github.com/anchorage-pki/anchorage/problem"
	"github.com/anchorage-pki/anchorage/storage"
)

type noneUsed struct{}

func (noneUsed) TokenUsed(context.Context, string) (bool, error) { return false, nil }

// fakeIssuer returns err, or a self-signed certificate for the request.
type fakeIssuer struct {
	err error
	got ca.Request
}

func (f *fakeIssuer) Issue(_ context.Context, r ca.Request) (*ca.Issued, error) {
	f.got = r
	if f.err != nil {
		return nil, f.err
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: r.Subject},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	return &ca.Issued{Cert: cert, Chain: []*x509.Certificate{cert},
		Record: &storage.Cert{Serial: "07", Subject: r.Subject}}, nil
}

// TestEnrollHandler: each refusal has its own status and problem type, and
// a grant reaches the issuer as the token said, not as the CSR did.
func TestEnrollHandler(t *testing.T) {
	const aud = "https://ca.example.com:8443"
	provKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	mint := func(key *ecdsa.PrivateKey, audience string, ttl time.Duration) string {
		tok, err := enroll.Mint(key, audience, "h.example.com", []string{"DNS:h.example.com"}, ttl, now.Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	csrFor := func(names ...string) string {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: names}, k)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	}
	body := func(tok, csr string) string {
		b, _ := json.Marshal(apiv1.EnrollRequest{Token: tok, CSR: csr})
		return string(b)
	}
	good := csrFor("h.example.com")
	tests := []struct {
		name      string
		method    string
		body      string
		issueErr  error
		status    int
		problem   string // type, for refusals
		wantIssue bool
	}{
		{"issued", http.MethodPost, body(mint(provKey, aud, 10*time.Minute), good), nil, http.StatusCreated, "", true},
		{"GET", http.MethodGet, "", nil, http.StatusMethodNotAllowed, problem.MethodNotAllowed, false},
		{"not JSON", http.MethodPost, "{", nil, http.StatusBadRequest, problem.Malformed, false},
		{"no CSR", http.MethodPost, body(mint(provKey, aud, 10*time.Minute), ""), nil, http.StatusBadRequest, problem.BadCSR, false},
		{"other key", http.MethodPost, body(mint(otherKey, aud, 10*time.Minute), good), nil, http.StatusUnauthorized, problem.TokenInvalid, false},
		{"other CA", http.MethodPost, body(mint(provKey, "https://other.example.com", 10*time.Minute), good), nil, http.StatusUnauthorized, problem.TokenAudience, false},
		{"expired", http.MethodPost, body(mint(provKey, aud, time.Second), good), nil, http.StatusUnauthorized, problem.TokenExpired, false},
		{"name not granted", http.MethodPost, body(mint(provKey, aud, 10*time.Minute), csrFor("other.example.com")), nil, http.StatusForbidden, problem.NameNotAllowed, false},
		{"used in the same commit", http.MethodPost, body(mint(provKey, aud, 10*time.Minute), good), storage.ErrTokenUsed, http.StatusForbidden, problem.TokenReplayed, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss := &fakeIssuer{err: tt.issueErr}
			h := &EnrollHandler{
				Verifier: &enroll.Verifier{Key: provKey.Public(), Audience: aud, MaxTTL: time.Hour, Used: noneUsed{}, Now: time.Now},
				CA:       iss,
				Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
			}
			r := httptest.NewRequest(tt.method, "/v1/enroll", strings.NewReader(tt.body))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.problem != "" {
				var p problem.Error
				if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Type != tt.problem {
					t.Errorf("problem %+v (%v), want type %s", p, err, tt.problem)
				}
			}
			if issued := iss.got.CSR != nil; issued != tt.wantIssue {
				t.Fatalf("issuer called: %v, want %v", issued, tt.wantIssue)
			}
			if tt.wantIssue && (iss.got.Subject != "h.example.com" || iss.got.Method != "token" || iss.got.TokenID == "") {
				t.Errorf("issue request %+v: want the token's subject, method token and its id", iss.got)
			}
		})
	}
}

type eventLog struct{ got []events.Event }

func (l *eventLog) Emit(_ context.Context, e events.Event) { l.got = append(l.got, e) }

// TestRefusalEventNamesOnlyVerifiedTokens: a token whose signature does not
// verify is recorded as unverified, its jti only quoted as a claim; a token
// refused after its signature verified (here: for another CA) is named by
// its jti.
func TestRefusalEventNamesOnlyVerifiedTokens(t *testing.T) {
	const aud = "https://ca.example.com:8443"
	provKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tt := range []struct {
		name      string
		key       *ecdsa.PrivateKey
		audience  string
		wantActor func(jti string) string
		wantID    func(jti string) string
		wantQuote bool
	}{
		{"forged", forger, aud, func(string) string { return "unverified-token" }, func(string) string { return "" }, true},
		{"other CA", provKey, "https://other.example.com", func(j string) string { return "token:" + j }, func(j string) string { return j }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := enroll.Mint(tt.key, tt.audience, "h.example.com", []string{"DNS:h.example.com"}, 10*time.Minute, time.Now().Add(-time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			jti := enroll.ClaimedID(tok)
			log := &eventLog{}
			h := &EnrollHandler{
				Verifier: &enroll.Verifier{Key: provKey.Public(), Audience: aud, MaxTTL: time.Hour, Used: noneUsed{}, Now: time.Now},
				CA:       &fakeIssuer{},
				Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
				Events:   log,
			}
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"h.example.com"}}, k)
			b, _ := json.Marshal(apiv1.EnrollRequest{Token: tok, CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))})
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/enroll", strings.NewReader(string(b))))
			if w.Code != http.StatusUnauthorized || len(log.got) != 1 {
				t.Fatalf("status %d, %d events", w.Code, len(log.got))
			}
			e := log.got[0]
			if e.Actor != tt.wantActor(jti) || e.TokenID != tt.wantID(jti) {
				t.Errorf("actor %q token id %q", e.Actor, e.TokenID)
			}
			if quoted := strings.Contains(e.Error, fmt.Sprintf("claimed jti %q", jti)); quoted != tt.wantQuote {
				t.Errorf("error %q: claim quoted %v, want %v", e.Error, quoted, tt.wantQuote)
			}
			if strings.Contains(w.Body.String(), "claimed jti") {
				t.Errorf("the answer echoes the claim: %s", w.Body)
			}
		})
	}
}
