package iampolicy

import "strings"

// Find looks for one action/resource pair that the session allows and the
// query admits. Candidates come from the query and from each Allow statement
// (alone, and paired with each Allow statement of the boundary and session
// policies): the shortest action and resource that the query and those
// statements' patterns all match. Each candidate is decided with Effective's
// rules, so a returned Grant is always allowed. A grant can be missed when
// every such shortest string is denied while longer ones are not (Allow s3:*
// with Deny s3:?), which real policies do not do, or when a huge policy set
// exhausts the search budget (maxFindEvaluations).
func (e Effective) Find(q Query) (Grant, bool) { return e.find(q, nil) }

// find is Find with a cache of compiled statement patterns, which a caller
// making many queries with one Context and mode (classify) can share.
func (e Effective) find(q Query, cache *patternCache) (Grant, bool) {
	if cache == nil {
		cache = newPatternCache()
	}
	f := finder{e: e, q: q, ctx: newContext(q.Context), upper: !q.Exact, seen: map[[2]string]bool{}, cache: cache}
	query := q.Action
	if query == "" {
		query = "*"
	}
	f.action = compile(query, false, false)
	f.literalAction = !strings.ContainsAny(query, "*?")
	switch {
	case q.AllResources:
		f.literalResource = "*"
	case q.Resource != "" && !strings.ContainsAny(q.Resource, "*?"):
		f.literalResource = q.Resource
	case q.Resource == "":
		f.resource = compile("arn:*", false, true)
	default:
		f.resource = compile(q.Resource, false, true)
	}
	identity, restricting := e.allowStatements()
	chains := [][]*Statement{nil}
	for _, s := range identity[0] {
		chains = append(chains, []*Statement{s})
	}
	for _, ss := range restricting {
		for _, t := range ss {
			chains = append(chains, []*Statement{t})
			for _, s := range identity[0] {
				chains = append(chains, []*Statement{s, t})
			}
		}
	}
	for _, c := range chains {
		if g, ok := f.chain(c); ok {
			return g, true
		}
		if f.budget >= maxFindEvaluations {
			break
		}
	}
	return Grant{}, false
}

// maxFindEvaluations bounds the requests one Find decides.
const maxFindEvaluations = 4096

type finder struct {
	e     Effective
	q     Query
	ctx   context
	upper bool

	action          []pelem
	literalAction   bool
	resource        []pelem
	literalResource string

	seen   map[[2]string]bool
	budget int
	cache  *patternCache
}

// patternCache holds each statement's compiled Action and Resource patterns.
type patternCache struct {
	actions   map[*Statement][][]pelem
	resources map[*Statement][][]pelem
}

func newPatternCache() *patternCache {
	return &patternCache{actions: map[*Statement][][]pelem{}, resources: map[*Statement][][]pelem{}}
}

func (f *finder) actionAlts(s *Statement) [][]pelem {
	if alts, ok := f.cache.actions[s]; ok {
		return alts
	}
	var alts [][]pelem
	for _, a := range s.Action {
		alts = append(alts, compile(a, false, false))
	}
	f.cache.actions[s] = alts
	return alts
}

// resourceAlts depends on the query's Context and mode, which a cache's
// users keep fixed.
func (f *finder) resourceAlts(s *Statement) [][]pelem {
	if alts, ok := f.cache.resources[s]; ok {
		return alts
	}
	var alts [][]pelem
	for _, r := range s.Resource {
		if parts, ok := expandMode(r, f.ctx, true, f.upper); ok {
			alts = append(alts, compileParts(parts, false, true))
		}
	}
	f.cache.resources[s] = alts
	return alts
}

// namedAction is "service:name" with both parts non-empty and exactly one
// colon, so that witnesses look like actions ("*:put*" and "s3:get*" must not
// meet in "s3:get:put").
var namedAction = []pelem{{kind: kOneNoColon}, {kind: kStarNoColon}, {kind: kLit, r: ':'}, {kind: kOneNoColon}, {kind: kStarNoColon}}

// chain tries the witnesses that the query shares with every statement of c.
func (f *finder) chain(c []*Statement) (Grant, bool) {
	var actions []string
	if f.literalAction {
		actions = []string{f.q.Action}
	} else {
		var pats [][][]pelem
		for _, s := range c {
			if s.Action != nil {
				pats = append(pats, f.actionAlts(s))
			}
		}
		actions = witnesses(true, [][]pelem{f.action, namedAction}, pats)
	}
	if len(actions) == 0 {
		return Grant{}, false
	}
	var resources []string
	if f.literalResource != "" {
		resources = []string{f.literalResource}
	} else {
		if f.q.Resource == "" {
			resources = append(resources, "*")
		}
		var pats [][][]pelem
		for _, s := range c {
			if s.Resource != nil {
				pats = append(pats, f.resourceAlts(s))
			}
		}
		resources = append(resources, witnesses(false, [][]pelem{f.resource}, pats)...)
	}
	for _, a := range actions {
		for _, r := range resources {
			if f.seen[[2]string{a, r}] {
				continue
			}
			f.seen[[2]string{a, r}] = true
			if f.budget++; f.budget > maxFindEvaluations {
				return Grant{}, false
			}
			req := Request{Action: a, Resource: r, Context: f.q.Context}
			if f.e.decideMode(req, f.ctx, f.upper) != Allow {
				continue
			}
			g := Grant{Action: a, Resource: r}
			if f.upper {
				g.Conditional = f.e.decideMode(req, f.ctx, false) != Allow
			}
			return g, true
		}
	}
	return Grant{}, false
}

// witnesses returns up to maxWitnesses strings matching every pattern of
// fixed and one alternative of each element of choices.
func witnesses(fold bool, fixed [][]pelem, choices [][][]pelem) []string {
	const maxWitnesses = 8
	var out []string
	seen := map[string]bool{}
	pick := make([][]pelem, 0, len(fixed)+len(choices))
	pick = append(pick, fixed...)
	var walk func(i int)
	walk = func(i int) {
		if len(out) >= maxWitnesses {
			return
		}
		if i == len(choices) {
			if w, ok := intersectFold(fold, pick...); ok && !seen[w] {
				seen[w] = true
				out = append(out, w)
			}
			return
		}
		for _, alt := range choices[i] {
			pick = append(pick, alt)
			walk(i + 1)
			pick = pick[:len(pick)-1]
		}
	}
	walk(0)
	return out
}

// allowStatements lists the Allow statements of the identity policies and of
// each restricting policy type in use (boundary, session).
func (e Effective) allowStatements() (identity, restricting [][]*Statement) {
	collect := func(ps []*Policy) []*Statement {
		var out []*Statement
		for _, p := range ps {
			if p == nil {
				continue
			}
			for i := range p.Statements {
				if p.Statements[i].Effect == EffectAllow {
					out = append(out, &p.Statements[i])
				}
			}
		}
		return out
	}
	identity = [][]*Statement{collect(e.Identity)}
	for _, ps := range [][]*Policy{e.Boundary, e.Session} {
		if s := collect(ps); len(s) > 0 {
			restricting = append(restricting, s)
		}
	}
	return identity, restricting
}

// AllowsAny reports whether the session may perform some action matching
// actionPattern on some resource, conditions taken as the caller would want
// them (the upper bound; see Query.Exact), with a witness.
func AllowsAny(e Effective, actionPattern string) (Grant, bool) {
	return e.Find(Query{Action: actionPattern})
}
