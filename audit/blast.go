package audit

import (
	"crypto/x509"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/anchorage-pki/anchorage/iampolicy"
)

// sessionContext is the request context of CreateSession's AssumeRole, as
// localaws builds it (and as AWS documents the keys): the session tags the
// profile makes of the certificate, as aws:PrincipalTag/… and, since they
// are passed as session tags, aws:RequestTag/… with aws:TagKeys; the trust
// anchor and its account as source; the source identity Roles Anywhere
// sets; the default session name (the serial in hex).
func sessionContext(anchorARN, accountID string, c *x509.Certificate, tags map[string]string, now time.Time) map[string][]string {
	si := sourceIdentity(c)
	ctx := map[string][]string{
		"aws:SourceArn":       {anchorARN},
		"aws:SourceAccount":   {accountID},
		"sts:SourceIdentity":  {si},
		"aws:SourceIdentity":  {si},
		"sts:RoleSessionName": {serialHex(c)},
		// Global keys of every request a service principal makes.
		"aws:PrincipalServiceName": {iampolicy.RolesAnywhereService},
		"aws:CurrentTime":          {now.UTC().Format(time.RFC3339)},
		"aws:EpochTime":            {strconv.FormatInt(now.Unix(), 10)},
	}
	keys := make([]string, 0, len(tags))
	for k, v := range tags {
		k = strings.TrimPrefix(k, "aws:PrincipalTag/")
		keys = append(keys, k)
		ctx["aws:PrincipalTag/"+k] = []string{v}
		ctx["aws:RequestTag/"+k] = []string{v}
	}
	sort.Strings(keys)
	if len(keys) > 0 {
		ctx["aws:TagKeys"] = keys
	}
	// Condition keys are case-insensitive: lower-case them once here, so
	// a trust policy's keys are looked up directly (parsed.project).
	lower := make(map[string][]string, len(ctx))
	for k, v := range ctx {
		lower[strings.ToLower(k)] = v
	}
	return lower
}

func serialHex(c *x509.Certificate) string { return fmt.Sprintf("%x", c.SerialNumber.Bytes()) }

// sourceIdentity is Roles Anywhere's rule (§5.5): CN=<cn> up to 61
// characters, the bare CN for 62-64, else ID=<serial hex>.
func sourceIdentity(c *x509.Certificate) string {
	cn := c.Subject.CommonName
	switch {
	case cn != "" && len(cn) <= 61:
		return "CN=" + cn
	case len(cn) >= 62 && len(cn) <= 64:
		return cn
	}
	return "ID=" + serialHex(c)
}

// canAssume reports whether the role's trust policy lets Roles Anywhere
// assume the role with the session context of a certificate, anchor and
// profile (sessionContext): every action CreateSession performs is
// allowed.
func canAssume(tp *parsed, ctx map[string][]string) bool {
	d, _ := iampolicy.RolesAnywhereTrust(tp.p, tp.project(ctx))
	return d == iampolicy.Allow
}

// Access levels, weighted for the blast radius.
const (
	LevelPermissions = "permissions-management"
	LevelWrite       = "write"
	LevelRead        = "read"
)

var levelWeight = map[string]int{LevelPermissions: 10, LevelWrite: 4, LevelRead: 1}

// Resource breadths, multiplying the level's weight.
const (
	BreadthAll     = "all"
	BreadthPattern = "pattern"
	BreadthExact   = "exact"
)

var breadthWeight = map[string]int{BreadthAll: 10, BreadthPattern: 3, BreadthExact: 1}

// readVerbs start the names of actions that only read.
var readVerbs = []string{"get", "list", "describe", "head", "read", "query", "scan", "select", "search", "view", "lookup", "batchget", "check", "validate", "simulate", "preview", "estimate"}

// permVerbs mark actions that change who may do what.
var permVerbs = []string{"policy", "permission", "grant", "passrole", "attach", "detach", "assumerole", "createrole", "createuser", "createaccesskey", "createloginprofile", "updateloginprofile", "addusertogroup", "acl"}

// permServices are services whose writes all manage permissions.
var permServices = map[string]bool{"iam": true, "organizations": true, "sso": true, "identitystore": true}

// AccessLevel classifies an action pattern by what it can do at most:
// permissions-management (changes who may do what), write, or read.
// Without the per-service action catalogue it goes by the verb: a pattern
// whose literal prefix could still start a write counts as a write.
func AccessLevel(action string) string {
	if !strings.ContainsAny(action, "*?") {
		// A concrete action: iampolicy's classification.
		switch iampolicy.ActionAccessLevel(action) {
		case iampolicy.LevelRead:
			return LevelRead
		case iampolicy.LevelPermissionsManagement:
			return LevelPermissions
		}
		if svc, _, _ := strings.Cut(strings.ToLower(action), ":"); permServices[svc] && !isRead(action) {
			return LevelPermissions
		}
		return LevelWrite // write and tagging
	}
	if action == "*" {
		return LevelPermissions
	}
	svc, name, ok := strings.Cut(strings.ToLower(action), ":")
	if !ok {
		return LevelWrite
	}
	lit := name
	if i := strings.IndexAny(name, "*?"); i >= 0 {
		lit = name[:i]
	}
	wild := lit != name
	for _, v := range readVerbs {
		if strings.HasPrefix(lit, v) && (!wild || len(lit) >= len(v)) {
			return LevelRead
		}
	}
	if permServices[svc] {
		return LevelPermissions
	}
	if name == "*" {
		// svc:* includes the service's resource-policy actions.
		return LevelPermissions
	}
	for _, v := range permVerbs {
		if strings.Contains(name, v) {
			return LevelPermissions
		}
	}
	return LevelWrite
}

func isRead(action string) bool { return iampolicy.ActionAccessLevel(action) == iampolicy.LevelRead }

// Breadth classifies a resource pattern.
func Breadth(resource string) string {
	switch {
	case resource == "*":
		return BreadthAll
	case strings.ContainsAny(resource, "*?"):
		return BreadthPattern
	}
	return BreadthExact
}

// glob matches s against a pattern with * and ?; fold compares case-
// insensitively (actions).
func glob(pattern, s string, fold bool) bool {
	if fold {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	// Iterative wildcard match with backtracking to the last '*'.
	p, i, star, mark := 0, 0, -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// narrower returns the narrower of two patterns that overlap (one matches
// the other), and false when neither contains the other.
func narrower(a, b string, fold bool) (string, bool) {
	switch {
	case glob(a, b, fold):
		return b, true
	case glob(b, a, fold):
		return a, true
	}
	return "", false
}

// grant is one (action, resource) pair an Allow statement of a role policy
// grants, where it came from.
type grant struct {
	policy, stmt     string
	action, resource string
}

// grants lists the Allow (action, resource) pairs of a role's policies. A
// NotAction statement grants "*" (less what it lists); a NotResource one
// "*" likewise: the blast radius errs on the wide side.
func (an *analysis) grants(ro *Role) []grant {
	var out []grant
	for _, np := range ro.Policies {
		pp := an.parse(np.Document)
		if pp.err != nil {
			continue
		}
		for i := range pp.p.Statements {
			s := &pp.p.Statements[i]
			if !s.Allows() {
				continue
			}
			acts, res := s.Action, s.Resource
			if s.NotAction != nil {
				acts = []string{"*"}
			}
			if s.NotResource != nil || res == nil {
				res = []string{"*"}
			}
			for _, a := range acts {
				for _, r := range res {
					out = append(out, grant{policy: np.Name, stmt: stmtName(s), action: a, resource: r})
				}
			}
		}
	}
	return out
}

// policiesOf parses documents, skipping those that do not parse (reported
// elsewhere).
func (an *analysis) policiesOf(nps []NamedPolicy) []*iampolicy.Policy {
	var out []*iampolicy.Policy
	for _, np := range nps {
		if pp := an.parse(np.Document); pp.err == nil {
			out = append(out, pp.p)
		}
	}
	return out
}

// blast scores a role's permissions inside a profile's session policies:
// each (action, resource) an identity statement grants, cut down to what
// some session statement also grants (the narrower pattern of the two when
// they overlap), unless an explicit Deny of either kind covers it, is worth
// level weight × breadth weight. Parts are merged per statement, keeping
// the widest (action, resource) pair's points.
func (an *analysis) blast(a *Account, ro *Role, p Profile) []ScorePart {
	identity := an.policiesOf(ro.Policies)
	session := an.policiesOf(sessionPolicies(p))
	eff := iampolicy.Effective{Identity: identity, Session: session}
	type key struct{ policy, stmt, action, resource string }
	seen := map[key]bool{}
	var parts []ScorePart
	for _, g := range an.grants(ro) {
		pairs := [][2]string{{g.action, g.resource}}
		if len(sessionPolicies(p)) > 0 {
			pairs = an.intersect(g, session)
		}
		for _, pr := range pairs {
			// Conditions and denies are judged on the pair itself; a
			// conditioned grant counts (the condition may well hold).
			if denied(eff, pr[0], pr[1]) {
				continue
			}
			k := key{g.policy, g.stmt, pr[0], pr[1]}
			if seen[k] {
				continue
			}
			seen[k] = true
			lv, br := AccessLevel(pr[0]), Breadth(pr[1])
			parts = append(parts, ScorePart{Account: a.Name, Role: ro.ARN, Profile: p.ARN, Policy: g.policy, Statement: g.stmt,
				Action: pr[0], Resource: pr[1], Level: lv, Breadth: br, Points: levelWeight[lv] * breadthWeight[br]})
		}
	}
	sort.SliceStable(parts, func(i, j int) bool { return parts[i].Points > parts[j].Points })
	return parts
}

// intersect cuts a grant down by the session policies' Allow statements.
func (an *analysis) intersect(g grant, session []*iampolicy.Policy) [][2]string {
	var out [][2]string
	for _, sp := range session {
		for i := range sp.Statements {
			s := &sp.Statements[i]
			if !s.Allows() {
				continue
			}
			acts, res := s.Action, s.Resource
			if s.NotAction != nil {
				acts = []string{"*"}
			}
			if s.NotResource != nil || res == nil {
				res = []string{"*"}
			}
			for _, sa := range acts {
				act, ok := narrower(g.action, sa, true)
				if !ok {
					continue
				}
				for _, sr := range res {
					if r, ok := narrower(g.resource, sr, false); ok {
						out = append(out, [2]string{act, r})
					}
				}
			}
		}
	}
	return out
}

// denied reports an explicit Deny of the pair as written (wildcards taken
// literally, so a Deny of "s3:*" covers a grant of "s3:Get*").
func denied(eff iampolicy.Effective, action, resource string) bool {
	return eff.Allows(action, resource, nil) == iampolicy.ExplicitDeny
}

// summary condenses a role's own policies for its node on the map.
func (an *analysis) summary(ro *Role) PermissionSummary {
	s := PermissionSummary{Policies: len(ro.Policies), Level: "none"}
	rank := map[string]int{"none": 0, LevelRead: 1, LevelWrite: 2, LevelPermissions: 3}
	stmts := map[string]bool{}
	for _, np := range ro.Policies {
		if pp := an.parse(np.Document); pp.err == nil && pp.admin {
			s.Admin = true
		}
	}
	for _, g := range an.grants(ro) {
		stmts[g.policy+"\x00"+g.stmt] = true
		if lv := AccessLevel(g.action); rank[lv] > rank[s.Level] {
			s.Level = lv
		}
		if g.resource == "*" {
			s.Wildcard = true
		}
		s.Score += levelWeight[AccessLevel(g.action)] * breadthWeight[Breadth(g.resource)]
	}
	s.Statements = len(stmts)
	return s
}
