package localaws

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/anchorage-pki/anchorage/iampolicy"
)

// What CreateSession asks of IAM (§5.1, §11): Roles Anywhere calls STS
// AssumeRole as the service principal rolesanywhere.amazonaws.com, always
// passing the certificate's attributes as session tags and the subject CN
// (or serial) as source identity. STS therefore authorises three actions
// against the role's trust policy, and each must be allowed on its own:
//
//   - sts:AssumeRole        — the assumption itself;
//   - sts:TagSession        — required because session tags are passed
//     (Roles Anywhere always passes them);
//   - sts:SetSourceIdentity — required because a source identity is set.
//
// All three are evaluated with the same request context: the principal tags
// as aws:PrincipalTag/<key> (what AWS documents for trust-policy conditions)
// and aws:RequestTag/<key> with aws:TagKeys (what STS gives TagSession),
// aws:SourceArn (the trust anchor), aws:SourceAccount, sts:SourceIdentity and
// aws:SourceIdentity, sts:RoleSessionName, and the global
// aws:PrincipalServiceName, aws:CurrentTime and aws:EpochTime. Explicit Deny anywhere wins; a
// missing Allow for any action is a denial.
//
// The session's permissions are then the role's identity policies (inline
// and attached managed) bounded by the profile's session policies (its
// sessionPolicy and managedPolicyArns), as STS bounds a session by the
// policies passed to AssumeRole.

// rolesAnywherePrincipal is the service principal of the evaluation;
// iampolicy.RolesAnywhereTrust evaluates iampolicy.RolesAnywhereActions.
const rolesAnywherePrincipal = iampolicy.RolesAnywhereService

// sessionContext is what one CreateSession presents to IAM.
type sessionContext struct {
	anchorArn, account, roleArn, sessionName, sourceIdentity string
	tags                                                     map[string]string
	now                                                      time.Time
}

// requestContext is the condition-key context of the trust evaluation.
func (sc *sessionContext) requestContext() map[string][]string {
	ctx := map[string][]string{
		"aws:SourceArn":       {sc.anchorArn},
		"aws:SourceAccount":   {sc.account},
		"sts:SourceIdentity":  {sc.sourceIdentity},
		"aws:SourceIdentity":  {sc.sourceIdentity},
		"sts:RoleSessionName": {sc.sessionName},
		// Global keys present in every request a service principal makes.
		"aws:PrincipalServiceName": {rolesAnywherePrincipal},
		"aws:CurrentTime":          {sc.now.UTC().Format(time.RFC3339)},
		"aws:EpochTime":            {strconv.FormatInt(sc.now.Unix(), 10)},
	}
	keys := make([]string, 0, len(sc.tags))
	for k, v := range sc.tags {
		keys = append(keys, k)
		ctx["aws:PrincipalTag/"+k] = []string{v}
		ctx["aws:RequestTag/"+k] = []string{v}
	}
	sort.Strings(keys)
	if len(keys) > 0 {
		ctx["aws:TagKeys"] = keys
	}
	return ctx
}

// msgAssumeDenied is the wire message when IAM refuses the role (the real
// service's wording for this case is unverified).
const msgAssumeDenied = "Unable to assume role"

// assumeRoleLocked finds the role in IAM of acct, evaluates its trust policy
// for the three actions and resolves the profile's session policies. It
// returns the role and the session policy documents.
func (s *Server) assumeRoleLocked(acct *accountState, prof *profile, sc *sessionContext) (*iamRole, []string, *apiError) {
	if roleAccount(sc.roleArn) != acct.id {
		return nil, nil, accessDenied(msgAssumeDenied, fmt.Sprintf("role %s is not in the trust anchor's account %s", sc.roleArn, acct.id))
	}
	role := acct.Roles[strings.ToLower(roleName(sc.roleArn))]
	if role == nil || roleArnOf(acct.id, role) != sc.roleArn {
		return nil, nil, accessDenied(msgAssumeDenied, "role "+sc.roleArn+" does not exist in IAM")
	}
	trust, e := parsePolicy(role.TrustPolicy, iampolicy.KindTrust)
	if e != nil {
		return nil, nil, internalError("stored trust policy of " + sc.roleArn + " does not parse: " + e.Message)
	}
	if d, action := iampolicy.RolesAnywhereTrust(trust, sc.requestContext()); d != iampolicy.Allow {
		return nil, nil, accessDenied(msgAssumeDenied, fmt.Sprintf("trust policy of %s: %s for %s", sc.roleArn, d, action))
	}
	var docs []string
	if prof.SessionPolicy != "" {
		if _, e := parsePolicy(prof.SessionPolicy, iampolicy.KindIdentity); e != nil {
			return nil, nil, accessDenied(msgAssumeDenied, "profile session policy: "+e.Message)
		}
		docs = append(docs, prof.SessionPolicy)
	}
	for _, arn := range prof.ManagedPolicyArns {
		p, e := s.policyLocked(acct, arn)
		if e != nil {
			return nil, nil, accessDenied(msgAssumeDenied, "profile managed policy: "+e.Message)
		}
		docs = append(docs, p.Document)
	}
	return role, docs, nil
}

// identityPoliciesLocked are a role's inline and attached managed policies.
// Attachments to policies deleted since are skipped (IAM refuses to delete
// an attached policy, so this only guards a hand-edited state file).
func (s *Server) identityPoliciesLocked(acct *accountState, role *iamRole) ([]*iampolicy.Policy, error) {
	var docs []string
	names := make([]string, 0, len(role.InlinePolicies))
	for n := range role.InlinePolicies {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		docs = append(docs, role.InlinePolicies[n])
	}
	for _, arn := range role.Attached {
		if p, e := s.policyLocked(acct, arn); e == nil {
			docs = append(docs, p.Document)
		}
	}
	return parseAll(docs)
}

func parseAll(docs []string) ([]*iampolicy.Policy, error) {
	out := make([]*iampolicy.Policy, 0, len(docs))
	for _, d := range docs {
		p, err := iampolicy.ParseAs([]byte(d), iampolicy.KindIdentity)
		if err != nil {
			return nil, fmt.Errorf("localaws: stored policy does not parse: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// SessionPolicy returns the effective permissions of the session issued
// with accessKeyID: the role's identity policies as IAM holds them now (STS
// evaluates those at request time) and the session policies fixed when the
// session was issued. It is how the audit reads back what a certificate's
// session may do. An unknown key, or a role deleted since, is an error.
func (s *Server) SessionPolicy(accessKeyID string) (iampolicy.Effective, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cred := s.st.Credentials[accessKeyID]
	if cred == nil {
		return iampolicy.Effective{}, fmt.Errorf("localaws: no session with access key %s", accessKeyID)
	}
	acct := s.st.lookup(cred.Account)
	var role *iamRole
	if acct != nil {
		role = acct.Roles[strings.ToLower(roleName(cred.RoleArn))]
	}
	if role == nil || roleArnOf(acct.id, role) != cred.RoleArn {
		return iampolicy.Effective{}, fmt.Errorf("localaws: role %s of session %s no longer exists", cred.RoleArn, accessKeyID)
	}
	identity, err := s.identityPoliciesLocked(acct, role)
	if err != nil {
		return iampolicy.Effective{}, err
	}
	session, err := parseAll(cred.SessionPolicies)
	if err != nil {
		return iampolicy.Effective{}, err
	}
	return iampolicy.Effective{Identity: identity, Session: session}, nil
}
