package localaws

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Policy documents as IAM stores them. The grammar and evaluation are
// package iampolicy's; here are the checks IAM makes on top of it that
// depend on where a document is used: a trust policy names a Principal and
// no Resource, an identity policy the other way round, and each kind has
// its size quota.

// policyShape is the part of a document these checks read.
type policyShape struct {
	Statements []map[string]json.RawMessage
}

// shapeOf decodes the statements of doc (Statement may be one object or a
// list). Syntax is left to iampolicy; errors here are only about shape.
func shapeOf(doc string) (*policyShape, *apiError) {
	var top map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(doc))
	if err := dec.Decode(&top); err != nil || top == nil {
		return nil, iamMalformed("Syntax errors in policy.")
	}
	if dec.More() {
		return nil, iamMalformed("Syntax errors in policy.")
	}
	raw, ok := top["Statement"]
	if !ok {
		return nil, iamMalformed("Missing required field Statement")
	}
	sh := &policyShape{}
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		var one map[string]json.RawMessage
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, iamMalformed("Syntax errors in policy.")
		}
		sh.Statements = append(sh.Statements, one)
	} else if err := json.Unmarshal(raw, &sh.Statements); err != nil {
		return nil, iamMalformed("Syntax errors in policy.")
	}
	if len(sh.Statements) == 0 {
		return nil, iamMalformed("Missing required field Statement")
	}
	return sh, nil
}

// checkTrustPolicy validates an AssumeRolePolicyDocument.
func checkTrustPolicy(doc string) *apiError {
	if policyChars(doc) > maxTrustPolicyChars {
		return iamConflict("LimitExceeded", "Cannot exceed quota for ACLSizePerRole: %d", maxTrustPolicyChars)
	}
	if e := parsePolicy(doc); e != nil {
		return e
	}
	sh, e := shapeOf(doc)
	if e != nil {
		return e
	}
	for _, st := range sh.Statements {
		for _, f := range []string{"Resource", "NotResource"} {
			if _, ok := st[f]; ok {
				return iamMalformed("Has prohibited field %s", f)
			}
		}
		_, p := st["Principal"]
		_, np := st["NotPrincipal"]
		if !p && !np {
			return iamMalformed("Missing required field Principal")
		}
	}
	return nil
}

// checkIdentityPolicy validates an inline or managed identity policy.
func checkIdentityPolicy(doc string) *apiError {
	if e := parsePolicy(doc); e != nil {
		return e
	}
	sh, e := shapeOf(doc)
	if e != nil {
		return e
	}
	for _, st := range sh.Statements {
		for _, f := range []string{"Principal", "NotPrincipal"} {
			if _, ok := st[f]; ok {
				return iamMalformed("Policy document should not specify a principal.")
			}
		}
		_, r := st["Resource"]
		_, nr := st["NotResource"]
		if !r && !nr {
			return iamMalformed("Policy statement must contain resources.")
		}
	}
	return nil
}

// parsePolicy is the grammar check (iampolicy.Parse).
func parsePolicy(doc string) *apiError {
	if !json.Valid([]byte(doc)) {
		return iamMalformed("Syntax errors in policy.")
	}
	return nil
}
