package iampolicy

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// pelem is one element of a compiled wildcard pattern.
type pelem struct {
	kind pkind
	r    rune // for kLit
}

type pkind uint8

const (
	kLit         pkind = iota
	kOne               // ? : any one rune
	kOneNoColon        // ? inside an ARN segment of a Resource element
	kStar              // * : any run of runes
	kStarNoColon       // * inside (not at the end of) a Resource ARN segment
)

// part is a piece of a policy value after variable substitution; literal
// parts came from a variable and have no wildcard meaning.
type part struct {
	text    string
	literal bool
}

func joinParts(ps []part) string {
	if len(ps) == 1 {
		return ps[0].text
	}
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.text)
	}
	return b.String()
}

// compileParts turns a value into a pattern. fold lower-cases it (actions).
// resource applies the Resource element's rule: a * or ? stays inside its
// colon-separated ARN segment, except that a * that ends a segment (is
// followed by ':' or ends the pattern) may match across colons.
func compileParts(ps []part, fold, resource bool) []pelem {
	var out []pelem
	for _, p := range ps {
		t := p.text
		if fold {
			t = strings.ToLower(t)
		}
		for _, r := range t {
			switch {
			case p.literal:
				out = append(out, pelem{kLit, r})
			case r == '*':
				out = append(out, pelem{kStar, 0})
			case r == '?':
				if resource {
					out = append(out, pelem{kOneNoColon, 0})
				} else {
					out = append(out, pelem{kOne, 0})
				}
			default:
				out = append(out, pelem{kLit, r})
			}
		}
	}
	if resource {
		for i := range out {
			if out[i].kind == kStar && i+1 < len(out) && !(out[i+1].kind == kLit && out[i+1].r == ':') {
				out[i].kind = kStarNoColon
			}
		}
	}
	return out
}

func compile(s string, fold, resource bool) []pelem {
	return compileParts([]part{{s, false}}, fold, resource)
}

// matchPattern reports whether s matches p in full. It is a dynamic
// programme over (pattern element, rune of s): O(len(p)·len(s)) time and
// O(len(s)) space whatever the input, so no pattern can make it backtrack
// exponentially.
func matchPattern(p []pelem, s string) bool {
	if len(p) == 1 && p[0].kind == kStar {
		return true
	}
	wild := false
	for _, e := range p {
		if e.kind != kLit {
			wild = true
			break
		}
	}
	if !wild {
		if len(p) > len(s) {
			return false
		}
		i := 0
		for _, r := range s {
			if i >= len(p) || p[i].r != r {
				return false
			}
			i++
		}
		return i == len(p)
	}
	rs := []rune(s)
	if !utf8.ValidString(s) {
		// Invalid UTF-8 decodes to U+FFFD; it can still only match wildcards.
		rs = []rune(strings.ToValidUTF8(s, "\uFFFD"))
	}
	cur := make([]bool, len(rs)+1)
	next := make([]bool, len(rs)+1)
	cur[0] = true
	for _, e := range p {
		next[0] = false
		switch e.kind {
		case kStar, kStarNoColon:
			next[0] = cur[0]
			for j := 1; j <= len(rs); j++ {
				next[j] = cur[j] || (next[j-1] && (e.kind == kStar || rs[j-1] != ':'))
			}
		default:
			for j := 1; j <= len(rs); j++ {
				c := rs[j-1]
				var ok bool
				switch e.kind {
				case kLit:
					ok = c == e.r
				case kOne:
					ok = true
				case kOneNoColon:
					ok = c != ':'
				}
				next[j] = cur[j-1] && ok
			}
		}
		cur, next = next, cur
	}
	return cur[len(rs)]
}

// matchARN is ArnEquals/ArnLike: each of the six colon-separated components
// is matched on its own (the sixth, the resource, keeps any further colons).
// A bare "*" matches any value.
func matchARN(p []pelem, s string) bool {
	if len(p) == 1 && p[0].kind == kStar {
		return true
	}
	var segs [][]pelem
	start := 0
	for i, e := range p {
		if len(segs) == 5 {
			break
		}
		if e.kind == kLit && e.r == ':' {
			segs = append(segs, p[start:i])
			start = i + 1
		}
	}
	if len(segs) != 5 {
		return false
	}
	segs = append(segs, p[start:])
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 {
		return false
	}
	for i := range segs {
		if !matchPattern(segs[i], parts[i]) {
			return false
		}
	}
	return true
}

// matchAction: case-insensitive, with * and ? anywhere. It is the classic
// two-pointer glob (backtracking only to the last *), which is exact for a
// single kind of star, allocates nothing, and runs in O(len(pattern)·len(action)).
func matchAction(pattern, action string) bool {
	if pattern == "*" {
		return true
	}
	p, s := 0, 0
	starP, starS := -1, 0
	for s < len(action) {
		if p < len(pattern) {
			pr, pn := utf8.DecodeRuneInString(pattern[p:])
			sr, sn := utf8.DecodeRuneInString(action[s:])
			switch {
			case pr == '*':
				starP, starS = p, s
				p += pn
				continue
			case pr == '?' || foldEqual(pr, sr):
				p += pn
				s += sn
				continue
			}
		}
		if starP < 0 {
			return false
		}
		// Let the last star take one more rune and retry after it.
		_, sn := utf8.DecodeRuneInString(action[starS:])
		starS += sn
		s = starS
		p = starP + 1
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func foldEqual(a, b rune) bool {
	if a == b {
		return true
	}
	return unicode.ToLower(a) == unicode.ToLower(b)
}

func matchAnyAction(patterns []string, action string) bool {
	for _, p := range patterns {
		if matchAction(p, action) {
			return true
		}
	}
	return false
}

// matchResource: case-sensitive, wildcards per the Resource element's
// segment rule, policy variables substituted when the version allows.
func matchResource(pattern, resource string, ctx context, substitute bool) bool {
	return matchResourceMode(pattern, resource, ctx, substitute, false)
}

// matchResourceMode with wideOpen (the auditor's upper bound) lets a variable
// without a value match anything in its place.
func matchResourceMode(pattern, resource string, ctx context, substitute, wideOpen bool) bool {
	if pattern == "*" {
		return true
	}
	if !strings.ContainsAny(pattern, "*?$") {
		return pattern == resource
	}
	parts, ok := expandMode(pattern, ctx, substitute, wideOpen)
	if !ok {
		return false
	}
	return matchPattern(compileParts(parts, false, true), resource)
}

func matchAnyResource(patterns []string, resource string, ctx context, substitute, wideOpen bool) bool {
	for _, p := range patterns {
		if matchResourceMode(p, resource, ctx, substitute, wideOpen) {
			return true
		}
	}
	return false
}

// expand substitutes policy variables: ${key} (the key's single value in the
// request context, case-insensitive), ${key, 'default'}, and ${*}, ${?}, ${$}
// for the literal characters. ok is false when a variable has no value (the
// key is absent or multivalued) and no default: the value then matches
// nothing. Without substitute (policy version 2008-10-17) the text is taken
// as written.
func expand(raw string, ctx context, substitute bool) ([]part, bool) {
	return expandMode(raw, ctx, substitute, false)
}

// expandMode with wideOpen turns a variable without a value into a wildcard *.
func expandMode(raw string, ctx context, substitute, wideOpen bool) ([]part, bool) {
	if !substitute || !strings.Contains(raw, "${") {
		return []part{{raw, false}}, true
	}
	var out []part
	rest := raw
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			break
		}
		if i > 0 {
			out = append(out, part{rest[:i], false})
		}
		name := strings.TrimSpace(rest[i+2 : i+j])
		rest = rest[i+j+1:]
		switch name {
		case "*", "?", "$":
			out = append(out, part{name, true})
			continue
		}
		def, hasDef := "", false
		if k, d, ok := strings.Cut(name, ","); ok {
			d = strings.TrimSpace(d)
			if len(d) >= 2 && d[0] == '\'' && d[len(d)-1] == '\'' {
				def, hasDef = d[1:len(d)-1], true
				name = strings.TrimSpace(k)
			}
		}
		if vs, ok := ctx.lookup(name); ok && len(vs) == 1 {
			out = append(out, part{vs[0], true})
		} else if hasDef {
			out = append(out, part{def, true})
		} else if wideOpen {
			out = append(out, part{"*", false})
		} else {
			return nil, false
		}
	}
	if rest != "" {
		out = append(out, part{rest, false})
	}
	if len(out) == 0 {
		out = []part{{"", false}}
	}
	return out, true
}

// context is a request context with lower-cased keys.
type context map[string][]string

func newContext(m map[string][]string) context {
	c := make(context, len(m))
	for k, vs := range m {
		lk := strings.ToLower(k)
		c[lk] = append(c[lk], vs...)
	}
	return c
}

func (c context) lookup(key string) ([]string, bool) {
	vs, ok := c[strings.ToLower(key)]
	return vs, ok
}
