package localaws

import (
	"sort"
	"strings"
)

// TEMPORARY stub until iampolicy is merged.

type sessionContext struct {
	anchorArn, account, roleArn, sessionName, sourceIdentity string
	tags                                                     map[string]string
}

func (sc *sessionContext) requestContext() map[string][]string {
	ctx := map[string][]string{}
	keys := make([]string, 0, len(sc.tags))
	for k := range sc.tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return ctx
}

func (s *Server) assumeRoleLocked(acct *accountState, prof *profile, sc *sessionContext) (*iamRole, []string, *apiError) {
	role := acct.Roles[strings.ToLower(roleName(sc.roleArn))]
	if role == nil {
		return nil, nil, accessDenied("Unable to assume role", "no role")
	}
	return role, nil, nil
}
