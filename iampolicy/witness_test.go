package iampolicy

import (
	"strings"
	"testing"
)

func TestIntersect(t *testing.T) {
	tests := []struct {
		a, b string
		ok   bool
	}{
		{"s3:*", "s3:get*", true},
		{"s3:get*", "*object", true},
		{"s3:get*", "s3:put*", false},
		{"iam:*policy*", "iam:put*", true},
		{"a?c", "ab?", true},
		{"a?c", "abd", false},
		{"*", "*", true},
		{"abc", "abc", true},
	}
	for _, tt := range tests {
		pa, pb := compile(tt.a, true, false), compile(tt.b, true, false)
		w, ok := intersect(pa, pb, compile("*", false, false))
		if ok != tt.ok {
			t.Errorf("intersect(%q, %q) ok = %v, want %v", tt.a, tt.b, ok, tt.ok)
			continue
		}
		if ok && (!matchPattern(pa, w) || !matchPattern(pb, w)) {
			t.Errorf("intersect(%q, %q) = %q, which does not match both", tt.a, tt.b, w)
		}
	}
	// Resource patterns: a mid-segment star cannot take a colon.
	if w, ok := intersect(compile("arn:aws:iam::1:role/a*", false, true), compile("arn:aws:iam::1:role/a*b", false, true)); !ok || w != "arn:aws:iam::1:role/ab" {
		t.Errorf("resource intersect = %q, %v", w, ok)
	}
}

// matchAction's two-pointer glob must agree with the general matcher.
func TestMatchActionAgreesWithMatchPattern(t *testing.T) {
	pats := []string{"*", "s3:*", "s3:get*", "s3:*object", "s3:*o*t", "s3:get?bject", "*:*", "?3:*", "iam:*policy*", "a*b*c", "a**b", "*a", "s3:", "s3:getobject", "ünï*"}
	acts := []string{"s3:GetObject", "S3:GETOBJECT", "s3:", "s3:Get", "iam:PutRolePolicy", "abc", "aXbYc", "ab", "a", "", "b", "s3:GetObjectAcl", "ÜNÏcode", "s3:Get:Object"}
	for _, p := range pats {
		for _, a := range acts {
			want := matchPattern(compile(p, true, false), strings.ToLower(a))
			if got := matchAction(p, a); got != want {
				t.Errorf("matchAction(%q, %q) = %v, matchPattern says %v", p, a, got, want)
			}
		}
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// FuzzActionGlob checks the allocation-free action matcher against the
// general one, and that intersect's witnesses match what they claim to.
func FuzzActionGlob(f *testing.F) {
	f.Add("s3:Get*", "s3:GetObject", "*Object")
	f.Add("a*b?c*", "aXbYcZ", "*c")
	f.Add("**?*", "", "?")
	f.Fuzz(func(t *testing.T, pattern, action, other string) {
		if !isASCII(pattern) || !isASCII(action) || len(pattern) > 64 || len(action) > 64 || len(other) > 64 {
			return
		}
		want := matchPattern(compile(pattern, true, false), strings.ToLower(action))
		if got := matchAction(pattern, action); got != want {
			t.Fatalf("matchAction(%q, %q) = %v, matchPattern says %v", pattern, action, got, want)
		}
		for _, resource := range []bool{false, true} {
			a, b := compile(pattern, false, resource), compile(other, false, resource)
			if w, ok := intersect(a, b); ok && (!matchPattern(a, w) || !matchPattern(b, w)) {
				t.Fatalf("intersect(%q, %q, resource=%v) = %q, which does not match both", pattern, other, resource, w)
			}
		}
	})
}
