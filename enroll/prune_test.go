package enroll_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/enroll"
	"github.com/anchorage-pki/anchorage/storage"
)

// A used token id must outlive every moment the verifier could still
// accept the token: the verifier allows exp + Leeway, so the pruner keeps
// the id until then. Around that boundary, with an injected clock, the
// token is refused as replayed (id kept) or as expired (id gone), never
// accepted.
func TestTokenPruneBoundary(t *testing.T) {
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	minted := time.Unix(1_900_000_000, 0)
	exp := minted.Add(10 * time.Minute)
	tok, err := enroll.Mint(key, aud, "h.example.com", nil, 10*time.Minute, minted)
	if err != nil {
		t.Fatal(err)
	}
	db, err := storage.Create(filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	verifier := func(now time.Time) *enroll.Verifier {
		return &enroll.Verifier{Key: key.Public(), Audience: aud, MaxTTL: time.Hour, Used: db, Now: func() time.Time { return now }}
	}
	g, err := verifier(minted.Add(time.Minute)).Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if !g.KeepUntil().Equal(exp.Add(enroll.Leeway)) {
		t.Fatalf("KeepUntil %s, want exp + Leeway", g.KeepUntil())
	}
	rec := &storage.Cert{Serial: "01", Subject: "h.example.com", NotAfter: exp, Status: storage.StatusValid, Method: storage.MethodToken}
	if err := db.PutCertUsingToken(ctx, rec, g.ID, g.KeepUntil()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		at   time.Time
		want error
	}{
		{"before expiry", exp.Add(-time.Second), enroll.ErrReplayed},
		{"at expiry", exp, enroll.ErrReplayed},
		{"inside the leeway", exp.Add(enroll.Leeway - time.Second), enroll.ErrReplayed},
		{"last accepted instant", exp.Add(enroll.Leeway), enroll.ErrReplayed},
		{"past the leeway", exp.Add(enroll.Leeway + time.Second), enroll.ErrExpired},
		{"an hour later", exp.Add(time.Hour), enroll.ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := db.PruneTokens(ctx, tt.at); err != nil {
				t.Fatal(err)
			}
			if _, err := verifier(tt.at).Verify(ctx, tok); !errors.Is(err, tt.want) {
				t.Errorf("verify at exp%+v after pruning: %v, want %v", tt.at.Sub(exp), err, tt.want)
			}
		})
	}
	if used, _ := db.TokenUsed(ctx, g.ID); used {
		t.Error("the id was kept long after the token expired: pruning does nothing")
	}
}
