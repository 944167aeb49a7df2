package iampolicy

import (
	"sort"
	"strings"
)

// RolesAnywhereService is the service principal Roles Anywhere assumes roles as.
const RolesAnywhereService = "rolesanywhere.amazonaws.com"

// RolesAnywhereActions are the actions a role's trust policy must allow
// RolesAnywhereService for CreateSession to succeed.
var RolesAnywhereActions = []string{"sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"}

// RolesAnywhereTrust decides whether a role's trust policy lets Roles
// Anywhere create a session for a certificate whose request context is ctx
// (aws:PrincipalTag/x509Subject/..., x509Issuer/..., x509SAN/..., aws:SourceArn
// = the trust anchor ARN, aws:SourceAccount). It is Allow only if every one
// of RolesAnywhereActions is; otherwise it returns the decision for the first
// action that is not allowed, and that action.
func RolesAnywhereTrust(trust *Policy, ctx map[string][]string) (Decision, string) {
	for _, a := range RolesAnywhereActions {
		r := Request{Principal: map[string][]string{PrincipalService: {RolesAnywhereService}}, Action: a, Context: ctx}
		if d := trust.Evaluate(r); d != Allow {
			return d, a
		}
	}
	return Allow, ""
}

// EvaluateUpperBound is Evaluate for an auditor who does not know the
// request context: every Allow statement counts whatever its conditions (and
// a policy variable without a value in r.Context matches anything in it), a
// Deny only if it has no conditions. Allow means some context could allow the
// request; ImplicitDeny or ExplicitDeny that none can.
func EvaluateUpperBound(r Request, policies ...*Policy) Decision {
	return evaluateMode(r, newContext(r.Context), policies, true)
}

// ConditionKeys lists the condition keys the policy's statements use,
// lower-cased (keys are case-insensitive), sorted and without repeats:
// what an auditor checks against a profile's attribute mappings.
func (p *Policy) ConditionKeys() []string {
	seen := map[string]bool{}
	var out []string
	for i := range p.Statements {
		for _, c := range p.Statements[i].Conditions {
			k := strings.ToLower(c.Key)
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}
