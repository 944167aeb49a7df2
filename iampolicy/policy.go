package iampolicy

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Policy versions IAM accepts. Only VersionCurrent substitutes policy variables.
const (
	VersionCurrent = "2012-10-17"
	VersionLegacy  = "2008-10-17"
)

// MaxDocumentSize bounds the raw document Parse accepts. IAM's own limits are
// smaller and count characters without whitespace (managed policy 6,144, role
// inline policies 10,240 in total, trust policy 2,048 by default and 4,096 at
// most, session policies 2,048); this bound only keeps a hostile input cheap.
const MaxDocumentSize = 128 << 10

// ErrMalformed is what every Parse error matches with errors.Is, the way IAM
// answers MalformedPolicyDocument.
var ErrMalformed = errors.New("malformed policy document")

// ParseError says where a document is malformed.
type ParseError struct {
	Statement int    // index into Statement, or -1 for the document itself
	Sid       string // the statement's Sid, if it had one
	Field     string // e.g. "Action", "Condition.StringEquals.aws:SourceArn"
	Err       error
}

func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("iampolicy: malformed policy document")
	if e.Statement >= 0 {
		fmt.Fprintf(&b, ": statement %d", e.Statement)
		if e.Sid != "" {
			fmt.Fprintf(&b, " (Sid %q)", e.Sid)
		}
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": %s", e.Field)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *ParseError) Unwrap() error { return e.Err }

// Is makes every ParseError match ErrMalformed.
func (e *ParseError) Is(target error) bool { return target == ErrMalformed }

// Effects.
const (
	EffectAllow = "Allow"
	EffectDeny  = "Deny"
)

// Principal types IAM accepts as keys of Principal/NotPrincipal. PrincipalAny is
// this package's key for the bare "*" form (everyone, including anonymous).
const (
	PrincipalAWS           = "AWS"
	PrincipalService       = "Service"
	PrincipalFederated     = "Federated"
	PrincipalCanonicalUser = "CanonicalUser"
	PrincipalAny           = "*"
)

// Policy is a parsed policy document. Its fields are plain data so that an
// auditor can walk them; build one with Parse so that Evaluate can trust it.
type Policy struct {
	Version    string // "2012-10-17", "2008-10-17" or "" (absent: IAM treats it as 2008-10-17)
	ID         string // the optional top-level Id
	Statements []Statement
}

// Statement is one statement. A nil slice or map means the element was absent.
type Statement struct {
	Index  int // position in the document's Statement list
	Sid    string
	Effect string // EffectAllow or EffectDeny

	// Principal and NotPrincipal map a principal type (PrincipalAWS, …) to its
	// values as written. The bare "*" form is {PrincipalAny: {"*"}}.
	Principal, NotPrincipal map[string][]string

	Action, NotAction     []string
	Resource, NotResource []string

	// Conditions are AND'ed; each holds one operator and one key, in document
	// order of operators then keys.
	Conditions []Condition
}

// Allows reports whether the statement's effect is Allow.
func (s *Statement) Allows() bool { return s.Effect == EffectAllow }

// HasPrincipal reports whether the statement names principals (Principal or
// NotPrincipal), as resource-based and trust policies do.
func (s *Statement) HasPrincipal() bool { return s.Principal != nil || s.NotPrincipal != nil }

// AnyPrincipal reports whether Principal is "*" or {"AWS": "*"}, which IAM
// treats alike: anyone, including anonymous callers.
func (s *Statement) AnyPrincipal() bool {
	for t, vs := range s.Principal {
		if t == PrincipalAny || t == PrincipalAWS {
			for _, v := range vs {
				if v == "*" {
					return true
				}
			}
		}
	}
	return false
}

// Kind says which kind of policy a document must be, for ParseAs.
type Kind int

const (
	// KindAny accepts identity and resource-based policies alike; see Parse.
	KindAny Kind = iota
	// KindIdentity is an identity policy, permissions boundary or session
	// policy: no Principal/NotPrincipal, Resource or NotResource required.
	KindIdentity
	// KindTrust is a role trust policy: Principal required (IAM refuses NotPrincipal there),
	// no Resource/NotResource.
	KindTrust
	// KindResource is another resource-based policy (bucket, key, queue):
	// Principal or NotPrincipal required; Resource/NotResource optional.
	KindResource
)

func (k Kind) String() string {
	switch k {
	case KindIdentity:
		return "identity"
	case KindTrust:
		return "trust"
	case KindResource:
		return "resource"
	}
	return "any"
}

// Parse reads an IAM policy document of any kind and validates it the way IAM
// would answer MalformedPolicyDocument: Version 2012-10-17 or 2008-10-17 (or
// absent), Statement an object or a non-empty array, Effect Allow|Deny,
// exactly one of Action/NotAction, at most one of Resource/NotResource and of
// Principal/NotPrincipal, unique Sids, known condition operators, and no
// unknown or duplicate fields. The document's kind is inferred: if no
// statement names a principal it is an identity policy and every statement
// needs Resource or NotResource; otherwise every statement must name a
// principal. Use ParseAs to insist on a kind.
func Parse(doc []byte) (*Policy, error) { return ParseAs(doc, KindAny) }

// ParseAs is Parse for a known kind of policy.
func ParseAs(doc []byte, kind Kind) (*Policy, error) {
	top := func(field string, err error) error {
		return &ParseError{Statement: -1, Field: field, Err: err}
	}
	if len(doc) > MaxDocumentSize {
		return nil, top("", fmt.Errorf("document is %d bytes, more than %d", len(doc), MaxDocumentSize))
	}
	members, err := decodeObject(doc)
	if err != nil {
		return nil, top("", err)
	}
	p := &Policy{}
	var stmtRaw []byte
	for _, m := range members {
		switch m.name {
		case "Version":
			if err := jsonString(m.value, &p.Version); err != nil {
				return nil, top("Version", err)
			}
			if p.Version != VersionCurrent && p.Version != VersionLegacy {
				return nil, top("Version", fmt.Errorf("%q is not %s or %s", p.Version, VersionCurrent, VersionLegacy))
			}
		case "Id":
			if err := jsonString(m.value, &p.ID); err != nil {
				return nil, top("Id", err)
			}
		case "Statement":
			stmtRaw = m.value
		default:
			return nil, top(m.name, errors.New("unknown field"))
		}
	}
	if stmtRaw == nil {
		return nil, top("Statement", errors.New("missing"))
	}
	var raws [][]byte
	switch firstByte(stmtRaw) {
	case '{':
		raws = [][]byte{stmtRaw}
	case '[':
		var items []jsonRaw
		if err := unmarshal(stmtRaw, &items); err != nil {
			return nil, top("Statement", err)
		}
		if len(items) == 0 {
			return nil, top("Statement", errors.New("empty"))
		}
		for _, it := range items {
			raws = append(raws, it)
		}
	default:
		return nil, top("Statement", errors.New("must be an object or an array of objects"))
	}
	sids := map[string]int{}
	withPrincipal := 0
	for i, raw := range raws {
		s, err := parseStatement(i, raw, p.Version)
		if err != nil {
			return nil, err
		}
		if s.Sid != "" {
			if j, dup := sids[s.Sid]; dup {
				return nil, &ParseError{Statement: i, Sid: s.Sid, Field: "Sid", Err: fmt.Errorf("duplicate of statement %d", j)}
			}
			sids[s.Sid] = i
		}
		if s.HasPrincipal() {
			withPrincipal++
		}
		p.Statements = append(p.Statements, s)
	}
	for i := range p.Statements {
		s := &p.Statements[i]
		fail := func(field, msg string) error {
			return &ParseError{Statement: i, Sid: s.Sid, Field: field, Err: errors.New(msg)}
		}
		hasResource := s.Resource != nil || s.NotResource != nil
		switch kind {
		case KindIdentity:
			if s.HasPrincipal() {
				return nil, fail("Principal", "not allowed in an identity policy")
			}
			if !hasResource {
				return nil, fail("Resource", "missing (an identity policy statement needs Resource or NotResource)")
			}
		case KindTrust:
			// IAM refuses NotPrincipal in a role trust policy; taken as
			// "every caller not listed", an Allow with it would let
			// Roles Anywhere (and anyone else) assume the role.
			if s.NotPrincipal != nil {
				return nil, fail("NotPrincipal", "not allowed in a role trust policy (use Principal, or a Deny with a condition on aws:PrincipalArn)")
			}
			if s.Principal == nil {
				return nil, fail("Principal", "missing (a trust policy statement needs Principal)")
			}
			if hasResource {
				return nil, fail("Resource", "not allowed in a trust policy")
			}
		case KindResource:
			if !s.HasPrincipal() {
				return nil, fail("Principal", "missing (a resource-based policy statement needs Principal or NotPrincipal)")
			}
		default:
			if withPrincipal == 0 && !hasResource {
				return nil, fail("Resource", "missing (a statement without Principal needs Resource or NotResource)")
			}
			if withPrincipal > 0 && !s.HasPrincipal() {
				return nil, fail("Principal", "missing (other statements name principals, so this is a resource-based policy)")
			}
		}
	}
	return p, nil
}

func parseStatement(i int, raw []byte, version string) (Statement, error) {
	s := Statement{Index: i}
	fail := func(field string, err error) error {
		return &ParseError{Statement: i, Sid: s.Sid, Field: field, Err: err}
	}
	members, err := decodeObject(raw)
	if err != nil {
		return s, fail("", err)
	}
	// Sid first, so that later errors can name it.
	for _, m := range members {
		if m.name == "Sid" {
			if err := jsonString(m.value, &s.Sid); err != nil {
				return s, fail("Sid", err)
			}
		}
	}
	var condRaw []byte
	for _, m := range members {
		var err error
		switch m.name {
		case "Sid":
		case "Effect":
			if err = jsonString(m.value, &s.Effect); err == nil && s.Effect != EffectAllow && s.Effect != EffectDeny {
				err = fmt.Errorf("%q is not Allow or Deny", s.Effect)
			}
		case "Action":
			s.Action, err = parseActions(m.value)
		case "NotAction":
			s.NotAction, err = parseActions(m.value)
		case "Resource":
			s.Resource, err = parseResources(m.value)
		case "NotResource":
			s.NotResource, err = parseResources(m.value)
		case "Principal":
			s.Principal, err = parsePrincipal(m.value)
		case "NotPrincipal":
			s.NotPrincipal, err = parsePrincipal(m.value)
		case "Condition":
			condRaw = m.value
		default:
			err = errors.New("unknown field")
		}
		if err != nil {
			return s, fail(m.name, err)
		}
	}
	switch {
	case s.Effect == "":
		return s, fail("Effect", errors.New("missing"))
	case s.Action == nil && s.NotAction == nil:
		return s, fail("Action", errors.New("missing (a statement needs Action or NotAction)"))
	case s.Action != nil && s.NotAction != nil:
		return s, fail("NotAction", errors.New("not allowed together with Action"))
	case s.Resource != nil && s.NotResource != nil:
		return s, fail("NotResource", errors.New("not allowed together with Resource"))
	case s.Principal != nil && s.NotPrincipal != nil:
		return s, fail("NotPrincipal", errors.New("not allowed together with Principal"))
	}
	if condRaw != nil {
		conds, field, err := parseConditionBlock(condRaw)
		if err != nil {
			return s, fail(field, err)
		}
		s.Conditions = conds
	}
	return s, nil
}

// parseActions reads Action/NotAction: "*" or "service:action", where the
// service prefix has no wildcard and the action part may.
func parseActions(raw jsonRaw) ([]string, error) {
	acts, err := stringOrArray(raw)
	if err != nil {
		return nil, err
	}
	for _, a := range acts {
		if a == "*" {
			continue
		}
		svc, name, ok := strings.Cut(a, ":")
		switch {
		case !ok || svc == "" || name == "":
			return nil, fmt.Errorf("%q is not \"*\" or service:action", a)
		case strings.ContainsAny(svc, "*?"):
			return nil, fmt.Errorf("%q: the service prefix cannot hold a wildcard", a)
		case strings.Contains(name, ":"):
			return nil, fmt.Errorf("%q: more than one colon", a)
		case !validPrefix(svc):
			return nil, fmt.Errorf("%q: service prefix must be letters, digits and hyphens", a)
		}
	}
	return acts, nil
}

func validPrefix(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// parseResources reads Resource/NotResource: "*" or an ARN pattern.
func parseResources(raw jsonRaw) ([]string, error) {
	rs, err := stringOrArray(raw)
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		if r != "*" && !strings.HasPrefix(r, "arn:") {
			return nil, fmt.Errorf("%q must be \"*\" or an ARN", r)
		}
	}
	return rs, nil
}

// parsePrincipal reads "*" or {"AWS"|"Service"|"Federated"|"CanonicalUser": string-or-array}.
func parsePrincipal(raw jsonRaw) (map[string][]string, error) {
	if firstByte(raw) == '"' {
		var s string
		if err := jsonString(raw, &s); err != nil {
			return nil, err
		}
		if s != "*" {
			return nil, fmt.Errorf("%q: a string principal must be \"*\"", s)
		}
		return map[string][]string{PrincipalAny: {"*"}}, nil
	}
	members, err := decodeObject(raw)
	if err != nil {
		return nil, err
	}
	if len(members) == 0 {
		return nil, errors.New("empty")
	}
	out := map[string][]string{}
	for _, m := range members {
		switch m.name {
		case PrincipalAWS, PrincipalService, PrincipalFederated, PrincipalCanonicalUser:
		default:
			return nil, fmt.Errorf("unknown principal type %q", m.name)
		}
		vs, err := stringOrArray(m.value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.name, err)
		}
		for _, v := range vs {
			if v == "" {
				return nil, fmt.Errorf("%s: empty principal", m.name)
			}
			// IAM refuses partial wildcards ("Invalid principal in policy").
			if v != "*" && strings.ContainsAny(v, "*?") {
				return nil, fmt.Errorf("%s: %q: wildcards are allowed only as \"*\"", m.name, v)
			}
		}
		out[m.name] = vs
	}
	return out, nil
}

// ParseEncoded is Parse for a document as IAM's query API returns it
// (GetRole's AssumeRolePolicyDocument, GetRolePolicy, GetPolicyVersion):
// URL-encoded JSON. A document that is already JSON is parsed as it is.
func ParseEncoded(doc string, kind Kind) (*Policy, error) {
	if t := strings.TrimSpace(doc); t != "" && t[0] == '{' {
		return ParseAs([]byte(doc), kind)
	}
	raw, err := url.QueryUnescape(doc)
	if err != nil {
		return nil, &ParseError{Statement: -1, Err: fmt.Errorf("not URL-encoded JSON: %w", err)}
	}
	return ParseAs([]byte(raw), kind)
}
