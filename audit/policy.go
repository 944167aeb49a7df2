package audit

import (
	"strings"

	"github.com/anchorage-pki/anchorage/iampolicy"
)

// parsed is a policy document parsed once per audit, with what the
// findings need to know about it.
type parsed struct {
	p   *iampolicy.Policy
	err error
	// admin: some unconditioned Allow grants every action (or all of IAM,
	// which grants itself the rest) on every resource.
	admin bool
	// wildcardAction and wildcardResource name (Sid or #index) the first
	// Allow statement with Action "*" / Resource "*".
	wildcardAction, wildcardResource string
	// keys are the condition keys (lower-case) the policy reads; nil when a
	// policy variable may read any key. Evaluating with only these keys
	// gives the same decision for less work (iampolicy rebuilds its
	// case-folded context on every Evaluate).
	keys map[string]bool
}

// project keeps the context keys the policy reads; ctx's keys are
// lower-case (condition keys are case-insensitive).
func (p *parsed) project(ctx map[string][]string) map[string][]string {
	if p.keys == nil {
		return ctx
	}
	out := make(map[string][]string, len(p.keys))
	for k := range p.keys {
		if v, ok := ctx[k]; ok {
			out[k] = v
		}
	}
	return out
}

func (an *analysis) parse(doc string) *parsed {
	if p, ok := an.policies[doc]; ok {
		return p
	}
	p := &parsed{}
	p.p, p.err = iampolicy.Parse([]byte(doc))
	if p.err == nil {
		for i := range p.p.Statements {
			s := &p.p.Statements[i]
			if !s.Allows() {
				continue
			}
			allRes := s.NotResource == nil && (s.Resource == nil || contains(s.Resource, "*"))
			allAct := s.NotAction != nil || contains(s.Action, "*")
			if allRes && len(s.Conditions) == 0 && (allAct || containsFold(s.Action, "iam:*")) {
				p.admin = true
			}
			if allAct && p.wildcardAction == "" {
				p.wildcardAction = stmtName(s)
			}
			if s.NotResource == nil && contains(s.Resource, "*") && p.wildcardResource == "" {
				p.wildcardResource = stmtName(s)
			}
		}
	}
	if p.err == nil {
		p.keys = map[string]bool{}
		for i := range p.p.Statements {
			st := &p.p.Statements[i]
			for _, c := range st.Conditions {
				p.keys[strings.ToLower(c.Key)] = true
				for _, v := range c.Values {
					if strings.Contains(v, "${") {
						p.keys = nil
						break
					}
				}
				if p.keys == nil {
					break
				}
			}
			if p.keys == nil {
				break
			}
		}
	}
	if p.err == nil && !p.admin {
		// iampolicy also knows the escalation paths (iam:PutRolePolicy on
		// *, PassRole with RunInstances, ...) that make a policy admin.
		p.admin = iampolicy.Classify(iampolicy.Effective{Identity: []*iampolicy.Policy{p.p}}).AdminEquivalent
	}
	an.policies[doc] = p
	return p
}

func contains(xs []string, v string) bool {
	for _, x := range xs {
		if x == v {
			return true
		}
	}
	return false
}

func containsFold(xs []string, v string) bool {
	for _, x := range xs {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

func stmtName(s *iampolicy.Statement) string {
	if s.Sid != "" {
		return s.Sid
	}
	return "#" + itoa(s.Index)
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	neg := i < 0
	if neg {
		i = -i
	}
	for i > 0 {
		b = append([]byte{byte('0' + i%10)}, b...)
		i /= 10
	}
	if neg {
		b = append([]byte{'-'}, b...)
	}
	return string(b)
}

// servicePrincipal is who CreateSession assumes roles as.
const servicePrincipal = iampolicy.RolesAnywhereService

// trustConditions reports, over the Allow statements of a trust policy that
// admit rolesanywhere.amazonaws.com, whether every one of them pins the
// certificate (a condition on a subject or SAN tag) and whether every one
// pins the trust anchor (aws:SourceArn), and whether there is any.
func trustConditions(tp *parsed) (subject, sourceArn, any bool) {
	subject, sourceArn = true, true
	for i := range tp.p.Statements {
		s := &tp.p.Statements[i]
		if !s.Allows() || !admitsService(s) {
			continue
		}
		any = true
		var subj, src bool
		for _, c := range s.Conditions {
			if isSubjectOrSANKey(c.Key) && !c.Negated() && !allWildcards(c.Values) {
				subj = true
			}
			if strings.EqualFold(c.Key, "aws:SourceArn") && !c.Negated() {
				src = true
			}
		}
		subject = subject && subj
		sourceArn = sourceArn && src
	}
	return subject, sourceArn, any
}

// allWildcards reports values that match anything ("*"): a condition that
// pins nothing.
func allWildcards(vs []string) bool {
	for _, v := range vs {
		if strings.Trim(v, "*") != "" {
			return false
		}
	}
	return true
}

// admitsService reports whether a statement lets the Roles Anywhere service
// principal perform sts:AssumeRole.
func admitsService(s *iampolicy.Statement) bool {
	r := iampolicy.Request{Principal: map[string][]string{iampolicy.PrincipalService: {servicePrincipal}}, Action: "sts:AssumeRole"}
	// Matches without conditions: the question is who the statement is
	// for, not whether this request meets it.
	c := *s
	c.Conditions = nil
	return c.Matches(r, false)
}
