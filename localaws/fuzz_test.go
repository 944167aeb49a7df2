package localaws

import (
	"net/url"
	"testing"
)

// Fuzz targets for the parsers of untrusted input: they must never panic,
// and what they accept must be self-consistent.

func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-X509-ECDSA-SHA256 Credential=112943600045244981071365726556514916412/20261123/us-east-1/rolesanywhere/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-x509, Signature=3044")
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20261123/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e,Credential=a/b/c/d/e")
	f.Fuzz(func(t *testing.T, v string) {
		a, err := parseAuthorization(v)
		if err != nil {
			return
		}
		if a.Algorithm == "" || len(a.Signature) == 0 || len(a.SignedHeaders) == 0 {
			t.Fatalf("accepted incomplete header %q: %+v", v, a)
		}
		for i := 1; i < len(a.SignedHeaders); i++ {
			if a.SignedHeaders[i-1] >= a.SignedHeaders[i] {
				t.Fatalf("accepted unsorted signed headers %q", v)
			}
		}
	})
}

func FuzzCanonicalQuery(f *testing.F) {
	f.Add("profileArn=arn%3Aaws%3Arolesanywhere&roleArn=x&trustAnchorArn=y")
	f.Add("a=1&a=0&b=%20+&c")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := canonicalQuery(raw)
		if err != nil {
			return
		}
		// The canonical form is a fixed point: canonicalising it again
		// must not change it.
		again, err := canonicalQuery(q)
		if err != nil || again != q {
			t.Fatalf("canonicalQuery(%q) = %q, then %q (%v)", raw, q, again, err)
		}
	})
}

func FuzzParseSessionParams(f *testing.F) {
	f.Add("profileArn=arn%3Aaws%3Arolesanywhere%3Aus-east-1%3A123456789012%3Aprofile%2Fx", `{"durationSeconds":900}`)
	f.Add("", `{"durationSeconds":3600,"roleSessionName":"vector-session","instanceProperties":{"a":"b"}}`)
	f.Fuzz(func(t *testing.T, rawQuery, body string) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		p, apiErr := parseSessionParams(q, []byte(body))
		if apiErr == nil && (p.ProfileArn == "" || p.RoleArn == "" || p.TrustAnchorArn == "") {
			t.Fatalf("accepted parameters without ARNs: %+v", p)
		}
	})
}
