package iampolicy

// maxIntersect is the most patterns intersect takes at once.
const maxIntersect = 6

// intersect finds a short string that every pattern matches in full, by a
// breadth-first search over the product of the patterns' positions. ok is
// false when the patterns share no string or the search would visit more
// than maxStates states (patterns from real policies are far below it).
func intersect(ps ...[]pelem) (string, bool) { return intersectFold(false, ps...) }

// intersectFold with fold compares literals case-insensitively, as for
// actions; where several patterns demand a letter the witness takes the last
// one's spelling, so that a witness built from a policy's own action keeps
// its case ("s3:PutObject", not "s3:putobject").
func intersectFold(fold bool, ps ...[]pelem) (string, bool) {
	const maxStates = 1 << 14
	if len(ps) == 0 {
		return "", false
	}
	if len(ps) > maxIntersect {
		return "", false
	}
	type state struct {
		pos    [maxIntersect]int32
		parent int
		r      rune // rune consumed to get here; -1 for a wildcard skip
	}
	for _, p := range ps {
		if len(p) > 1<<20 {
			return "", false
		}
	}
	var start [maxIntersect]int32
	states := []state{{pos: start, parent: -1, r: -1}}
	seen := map[[maxIntersect]int32]bool{start: true}
	push := func(pos [maxIntersect]int32, parent int, r rune) {
		if !seen[pos] {
			seen[pos] = true
			states = append(states, state{pos, parent, r})
		}
	}
	for q := 0; q < len(states); q++ {
		if len(states) > maxStates {
			return "", false
		}
		cur := states[q].pos
		done := true
		for i, p := range ps {
			if int(cur[i]) < len(p) {
				done = false
				break
			}
		}
		if done {
			var rs []rune
			for s := q; s > 0; s = states[s].parent {
				if states[s].r >= 0 {
					rs = append(rs, states[s].r)
				}
			}
			for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
				rs[i], rs[j] = rs[j], rs[i]
			}
			return string(rs), true
		}
		// Skip a star in any one pattern (it matches the empty string).
		for i, p := range ps {
			if int(cur[i]) < len(p) && (p[cur[i]].kind == kStar || p[cur[i]].kind == kStarNoColon) {
				next := cur
				next[i]++
				push(next, q, -1)
			}
		}
		// Consume one rune: a literal if some pattern demands one, else 'x'.
		var r rune = -1
		feasible := true
		for i, p := range ps {
			if int(cur[i]) >= len(p) {
				feasible = false
				break
			}
			if e := p[cur[i]]; e.kind == kLit {
				if r >= 0 && r != e.r && !(fold && foldEqual(r, e.r)) {
					feasible = false
					break
				}
				r = e.r
			}
		}
		if !feasible {
			continue
		}
		if r < 0 {
			r = 'x'
		}
		var next [maxIntersect]int32
		for i, p := range ps {
			e := p[cur[i]]
			switch e.kind {
			case kLit, kOne:
				next[i] = cur[i] + 1
			case kOneNoColon:
				if r == ':' {
					feasible = false
				}
				next[i] = cur[i] + 1
			case kStar:
				next[i] = cur[i]
			case kStarNoColon:
				if r == ':' {
					feasible = false
				}
				next[i] = cur[i]
			}
		}
		if feasible {
			push(next, q, r)
		}
	}
	return "", false
}
