package enroll

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
	"time"
)

func TestClaimedID(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tok, err := Mint(key, "https://ca.example.com", "w", nil, time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	tests := []struct {
		name, token string
		want        func(string) bool
	}{
		{"minted", tok, func(id string) bool { return len(id) == 32 }},
		{"forged signature still names its claim", parts[0] + "." + parts[1] + ".AAAA", func(id string) bool { return len(id) == 32 }},
		{"two parts", parts[0] + "." + parts[1], func(id string) bool { return id == "" }},
		{"payload not base64", "a.!!!.b", func(id string) bool { return id == "" }},
		{"payload not JSON", "a.bm90IGpzb24.b", func(id string) bool { return id == "" }},
		{"empty", "", func(id string) bool { return id == "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ClaimedID(tt.token); !tt.want(got) {
				t.Errorf("ClaimedID = %q", got)
			}
		})
	}
}

// FuzzClaimedID: any string from the network gives an id no longer than
// 128 characters, and never panics.
func FuzzClaimedID(f *testing.F) {
	f.Add("a.eyJqdGkiOiJ4In0.b")
	f.Add("..")
	f.Fuzz(func(t *testing.T, s string) {
		if id := ClaimedID(s); len(id) > 128 {
			t.Fatalf("id of %d characters", len(id))
		}
	})
}
