package iampolicy

import "strings"

// Decision is the outcome of evaluating policies against a request.
type Decision int

const (
	// ImplicitDeny: nothing allows the request (AWS's default deny).
	ImplicitDeny Decision = iota
	// Allow: some statement allows it and none denies it.
	Allow
	// ExplicitDeny: a Deny statement matches; nothing can override it.
	ExplicitDeny
)

func (d Decision) String() string {
	switch d {
	case Allow:
		return "Allow"
	case ExplicitDeny:
		return "ExplicitDeny"
	}
	return "ImplicitDeny"
}

// Request is what a policy is evaluated against.
type Request struct {
	// Principal is the caller, by type: {"Service": {"rolesanywhere.amazonaws.com"}}
	// or {"AWS": {"arn:aws:sts::111122223333:assumed-role/r/s"}}. Several values
	// of a type all identify the caller (a session ARN and its role ARN, say);
	// any of them matching is enough. nil for identity-policy checks and for
	// anonymous callers.
	Principal map[string][]string
	// Action is "service:Action", e.g. "sts:AssumeRole".
	Action string
	// Resource is the ARN acted on; "" when evaluating a trust policy, whose
	// statements have no Resource.
	Resource string
	// Context maps condition keys (case-insensitive, as in AWS) to their
	// values; a key with several values is multivalued (ForAnyValue/ForAllValues).
	Context map[string][]string
}

// Evaluate decides the request against this policy alone.
func (p *Policy) Evaluate(r Request) Decision { return Evaluate(r, p) }

// Evaluate decides the request against a set of policies of the same type:
// an explicit Deny in any of them wins, else Allow if any statement allows,
// else ImplicitDeny. nil policies are skipped.
func Evaluate(r Request, policies ...*Policy) Decision {
	return evaluate(r, newContext(r.Context), policies)
}

func evaluate(r Request, ctx context, policies []*Policy) Decision {
	return evaluateMode(r, ctx, policies, false)
}

// evaluateMode with upper decides the auditor's upper bound: Allow statements
// count whatever their conditions (and a policy variable without a value
// matches anything), Deny statements count only if unconditional.
func evaluateMode(r Request, ctx context, policies []*Policy, upper bool) Decision {
	d := ImplicitDeny
	for _, p := range policies {
		if p == nil {
			continue
		}
		subst := p.Version == VersionCurrent
		for i := range p.Statements {
			s := &p.Statements[i]
			if !s.matchesMode(r, ctx, subst, upper) {
				continue
			}
			if s.Effect == EffectDeny {
				return ExplicitDeny
			}
			if s.Effect == EffectAllow {
				d = Allow
			}
		}
	}
	return d
}

// Matches reports whether the statement applies to the request (principal,
// action, resource and every condition), whatever its effect. substitute
// says whether policy variables are replaced (true for 2012-10-17 policies).
func (s *Statement) Matches(r Request, substitute bool) bool {
	return s.matches(r, newContext(r.Context), substitute)
}

func (s *Statement) matches(r Request, ctx context, subst bool) bool {
	return s.matchesMode(r, ctx, subst, false)
}

func (s *Statement) matchesMode(r Request, ctx context, subst, upper bool) bool {
	wideOpen := upper && s.Effect == EffectAllow
	if upper && s.Effect != EffectAllow && len(s.Conditions) > 0 {
		return false
	}
	if s.Principal != nil && !matchPrincipals(s.Principal, r.Principal) {
		return false
	}
	if s.NotPrincipal != nil && matchPrincipals(s.NotPrincipal, r.Principal) {
		return false
	}
	switch {
	case s.Action != nil:
		if !matchAnyAction(s.Action, r.Action) {
			return false
		}
	case s.NotAction != nil:
		if matchAnyAction(s.NotAction, r.Action) {
			return false
		}
	default:
		return false // no action element: not built by Parse
	}
	switch {
	case s.Resource != nil:
		if !matchAnyResource(s.Resource, r.Resource, ctx, subst, wideOpen) {
			return false
		}
	case s.NotResource != nil:
		// For the upper bound a Deny's NotResource excludes as much as it
		// could: a variable without a value matches anything.
		if matchAnyResource(s.NotResource, r.Resource, ctx, subst, upper && s.Effect == EffectDeny) {
			return false
		}
	}
	if wideOpen {
		return true
	}
	for i := range s.Conditions {
		if !evalCondition(&s.Conditions[i], ctx, subst) {
			return false
		}
	}
	return true
}

// matchPrincipals reports whether the caller is one of the statement's
// principals.
func matchPrincipals(stmt, caller map[string][]string) bool {
	for typ, vals := range stmt {
		for _, v := range vals {
			if v == "*" && (typ == PrincipalAny || typ == PrincipalAWS) {
				return true // everyone, anonymous included
			}
			for _, cv := range caller[typ] {
				if v == "*" || principalEqual(typ, v, cv) {
					return true
				}
			}
		}
	}
	return false
}

// principalEqual compares one policy principal with one caller identity.
// Service principals compare case-insensitively. An AWS account, as
// "111122223333" or "arn:aws:iam::111122223333:root", matches every
// principal of that account (the account delegates to its own identity
// policies, which this package does not see). A role ARN matches the role's
// sessions (arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION).
func principalEqual(typ, policy, caller string) bool {
	switch typ {
	case PrincipalService:
		return strings.EqualFold(policy, caller)
	case PrincipalAWS:
	default:
		return policy == caller
	}
	policy, caller = accountRoot(policy), accountRoot(caller)
	if policy == caller {
		return true
	}
	pa, ok := splitARN(policy)
	if !ok {
		return false
	}
	ca, ok := splitARN(caller)
	if !ok || pa.partition != ca.partition || pa.account != ca.account {
		return false
	}
	if pa.service == "iam" && pa.resource == "root" {
		return true
	}
	if pa.service == "iam" && strings.HasPrefix(pa.resource, "role/") &&
		ca.service == "sts" && strings.HasPrefix(ca.resource, "assumed-role/") {
		roleName := pa.resource[strings.LastIndexByte(pa.resource, '/')+1:]
		name, _, _ := strings.Cut(strings.TrimPrefix(ca.resource, "assumed-role/"), "/")
		return name == roleName
	}
	return false
}

// accountRoot turns a bare 12-digit account id into its root ARN.
func accountRoot(s string) string {
	if len(s) != 12 {
		return s
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return s
		}
	}
	return "arn:aws:iam::" + s + ":root"
}

type arnParts struct{ partition, service, region, account, resource string }

func splitARN(s string) (arnParts, bool) {
	f := strings.SplitN(s, ":", 6)
	if len(f) != 6 || f[0] != "arn" {
		return arnParts{}, false
	}
	return arnParts{f[1], f[2], f[3], f[4], f[5]}, true
}

// Effective models the permissions of a role session: allowed iff some
// identity policy allows, no policy of any type denies, every permissions
// boundary type present allows (if Boundary is set), and some session policy
// allows (if Session is set). Session holds all the session's session
// policies (the inline one and the managed ones passed to AssumeRole or set
// on a Roles Anywhere profile); AWS treats them as one policy type, so an
// allow in any of them counts and the result is the intersection of that
// type with the identity policies.
type Effective struct {
	Identity []*Policy
	Session  []*Policy
	// Boundary is the role's permissions boundary, if any (at most one in
	// AWS; a slice for symmetry).
	Boundary []*Policy
}

// Allows decides action on resource for the session, with ctx as the request
// context.
func (e Effective) Allows(action, resource string, ctx map[string][]string) Decision {
	return e.decide(Request{Action: action, Resource: resource, Context: ctx})
}

// Decide is Allows for a full Request.
func (e Effective) Decide(r Request) Decision { return e.decide(r) }

func (e Effective) decide(r Request) Decision {
	return e.decideMode(r, newContext(r.Context), false)
}

func (e Effective) decideMode(r Request, ctx context, upper bool) Decision {
	types := [][]*Policy{e.Identity, nonNil(e.Boundary), nonNil(e.Session)}
	allowed := true
	for i, ps := range types {
		if i > 0 && len(ps) == 0 {
			continue // boundary and session policies only ever restrict
		}
		switch evaluateMode(r, ctx, ps, upper) {
		case ExplicitDeny:
			return ExplicitDeny
		case ImplicitDeny:
			allowed = false
		}
	}
	if allowed {
		return Allow
	}
	return ImplicitDeny
}

func nonNil(ps []*Policy) []*Policy {
	var out []*Policy
	for _, p := range ps {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}
