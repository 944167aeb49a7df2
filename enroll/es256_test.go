package enroll

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
	"time"
)

// es256Token signs header.payload as a compact JWS with key.
func es256Token(t testing.TB, key *ecdsa.PrivateKey, header, payload []byte) string {
	in := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	d := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, key, d[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// TestMintTakesFastPath: what Mint writes is what verifyES256 reads, with
// the claims go-jose reads.
func TestMintTakesFastPath(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tok, err := Mint(key, "https://ca.example.com", "w", []string{"DNS:w.example.com", "IP:10.0.0.1"}, time.Minute, time.Now(),
		WithRootFingerprint(strings.Repeat("ab", 32)))
	if err != nil {
		t.Fatal(err)
	}
	fast, ok := verifyES256(&key.PublicKey, tok, nil)
	if !ok {
		t.Fatal("a minted token missed the ES256 path")
	}
	slow, err := (&Verifier{Key: key.Public()}).claimsJOSE(tok)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("claims differ:\nfast %+v\njose %+v", fast, slow)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, ok := verifyES256(&other.PublicKey, tok, nil); ok {
		t.Fatal("accepted under another key")
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, ok := verifyES256(&p384.PublicKey, tok, nil); ok {
		t.Fatal("accepted under a P-384 key")
	}
	for _, mangled := range []string{tok + "=", " " + tok, strings.Replace(tok, ".", "..", 1), tok + ".x", strings.ToUpper(tok[:1]) + tok[1:]} {
		if mangled == tok {
			continue
		}
		if _, ok := verifyES256(&key.PublicKey, mangled, nil); ok {
			t.Errorf("fast path took %q", mangled)
		}
	}
}

// FuzzVerifyES256 is the differential test of the fast path against
// go-jose: for any header and payload, signed by the key, whatever
// verifyES256 accepts go-jose accepts with the same claims; and for any
// string, the fast path never accepts what go-jose refuses.
func FuzzVerifyES256(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tok, _ := Mint(key, "https://ca.example.com", "w", []string{"DNS:w.example.com"}, time.Minute, time.Now())
	parts := strings.Split(tok, ".")
	h, _ := base64.RawURLEncoding.DecodeString(parts[0])
	p, _ := base64.RawURLEncoding.DecodeString(parts[1])
	f.Add(h, p, tok)
	f.Add([]byte(`{"alg":"ES256","crit":["exp"],"exp":1}`), p, "")
	f.Add([]byte(`{"alg":"ES256","kid":1}`), p, "")
	f.Add([]byte(`{"alg":"ES256","ALG":"none"}`), p, "")
	f.Add([]byte(`{"alg":"ES256","alg":"HS256"}`), p, "")
	f.Add([]byte(`{"alg":"ES256","b64":false}`), p, "")
	f.Add(h, []byte(`{"ISS":"anchorage","sub":"w","jti":"1","exp":1e12,"iat":1}`), "")
	f.Add(h, []byte(`{"iss":"anchorage","aud":["a","b"],"sans":null}`), "a.b.c")
	f.Add(h, []byte(`{"exp":"1"}`), "e30.e30.e30")
	v := &Verifier{Key: key.Public()}
	f.Fuzz(func(t *testing.T, header, payload []byte, raw string) {
		for _, s := range []string{es256Token(t, key, header, payload), raw} {
			fast, ok := verifyES256(&key.PublicKey, s, nil)
			// The header memo, shared across inputs, changes nothing.
			memo, memoOK := verifyES256(&key.PublicKey, s, &v.header)
			if memoOK != ok || !reflect.DeepEqual(memo, fast) {
				t.Fatalf("%q: with the header memo %v %+v, without %v %+v", s, memoOK, memo, ok, fast)
			}
			if !ok {
				continue
			}
			slow, err := v.claimsJOSE(s)
			if err != nil {
				t.Fatalf("fast path accepted %q, go-jose refused: %v", s, err)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("claims of %q differ:\nfast %+v\njose %+v", s, fast, slow)
			}
		}
	})
}
