package localaws

import (
	"errors"
	"strings"

	"github.com/anchorage-pki/anchorage/iampolicy"
)

// Policy documents as IAM stores them. The grammar, the kind rules (a trust
// policy names a Principal and no Resource, an identity policy the other way
// round) and evaluation are package iampolicy's; IAM's size quotas and error
// shapes are here.

// parsePolicy parses doc as kind, answering MalformedPolicyDocument (400)
// with iampolicy's reason, as IAM names what it refused.
func parsePolicy(doc string, kind iampolicy.Kind) (*iampolicy.Policy, *apiError) {
	p, err := iampolicy.ParseAs([]byte(doc), kind)
	if err != nil {
		msg := err.Error()
		var pe *iampolicy.ParseError
		if errors.As(err, &pe) {
			msg = strings.TrimPrefix(msg, "iampolicy: ")
		}
		e := iamMalformed("%s", msg)
		e.Reason = "policy document refused: " + err.Error()
		return nil, e
	}
	return p, nil
}

// checkTrustPolicy validates an AssumeRolePolicyDocument.
func checkTrustPolicy(doc string) *apiError {
	if policyChars(doc) > maxTrustPolicyChars {
		return iamConflict("LimitExceeded", "Cannot exceed quota for ACLSizePerRole: %d", maxTrustPolicyChars)
	}
	_, e := parsePolicy(doc, iampolicy.KindTrust)
	return e
}

// checkIdentityPolicy validates an inline or managed identity policy.
func checkIdentityPolicy(doc string) *apiError {
	_, e := parsePolicy(doc, iampolicy.KindIdentity)
	return e
}
