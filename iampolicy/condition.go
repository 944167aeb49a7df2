package iampolicy

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// SetQualifier is a condition's ForAnyValue:/ForAllValues: prefix.
type SetQualifier int

const (
	SetNone SetQualifier = iota
	SetForAnyValue
	SetForAllValues
)

// Condition is one operator applied to one key, with the key's values
// (OR'ed). Operator and Key are as written; Base, Set and IfExists are the
// operator taken apart ("ForAnyValue:StringLikeIfExists" is Base
// "StringLike", Set SetForAnyValue, IfExists true).
type Condition struct {
	Operator string
	Key      string
	Values   []string

	Base     string // canonical operator name, e.g. "StringEquals"
	Set      SetQualifier
	IfExists bool
}

// Negated reports whether the base operator is a negated one (StringNotEquals,
// ArnNotLike, NotIpAddress, …), which is true when the key is absent.
func (c *Condition) Negated() bool { return operators[c.Base].negated }

type opFamily int

const (
	famString opFamily = iota
	famNumeric
	famDate
	famBool
	famBinary
	famIP
	famARN
	famNull
)

type opInfo struct {
	name    string
	family  opFamily
	negated bool
	// match reports whether a request value v matches one policy value pv
	// under the positive form of the operator. Policy values have been
	// checked at parse time for families that need a syntax.
	match func(v string, pv value) bool
	// vars: the operator substitutes policy variables into its values.
	vars bool
}

// value is a policy value after variable substitution: text, and for
// wildcard operators the positions of literal (substituted) runes.
type value struct {
	text    string
	pattern []pelem // only for Like/Arn operators
}

var operators = map[string]opInfo{}
var operatorsFold = map[string]string{} // lower-case name -> canonical

func init() {
	add := func(name string, f opFamily, neg, vars bool, m func(string, value) bool) {
		operators[name] = opInfo{name, f, neg, m, vars}
		operatorsFold[strings.ToLower(name)] = name
	}
	eq := func(v string, pv value) bool { return v == pv.text }
	fold := func(v string, pv value) bool { return strings.EqualFold(v, pv.text) }
	like := func(v string, pv value) bool { return matchPattern(pv.pattern, v) }
	add("StringEquals", famString, false, true, eq)
	add("StringNotEquals", famString, true, true, eq)
	add("StringEqualsIgnoreCase", famString, false, true, fold)
	add("StringNotEqualsIgnoreCase", famString, true, true, fold)
	add("StringLike", famString, false, true, like)
	add("StringNotLike", famString, true, true, like)

	num := func(cmp func(a, b float64) bool) func(string, value) bool {
		return func(v string, pv value) bool {
			a, err1 := parseNumber(v)
			b, err2 := parseNumber(pv.text)
			return err1 == nil && err2 == nil && cmp(a, b)
		}
	}
	add("NumericEquals", famNumeric, false, false, num(func(a, b float64) bool { return a == b }))
	add("NumericNotEquals", famNumeric, true, false, num(func(a, b float64) bool { return a == b }))
	add("NumericLessThan", famNumeric, false, false, num(func(a, b float64) bool { return a < b }))
	add("NumericLessThanEquals", famNumeric, false, false, num(func(a, b float64) bool { return a <= b }))
	add("NumericGreaterThan", famNumeric, false, false, num(func(a, b float64) bool { return a > b }))
	add("NumericGreaterThanEquals", famNumeric, false, false, num(func(a, b float64) bool { return a >= b }))

	date := func(cmp func(a, b time.Time) bool) func(string, value) bool {
		return func(v string, pv value) bool {
			a, err1 := parseDate(v)
			b, err2 := parseDate(pv.text)
			return err1 == nil && err2 == nil && cmp(a, b)
		}
	}
	add("DateEquals", famDate, false, false, date(time.Time.Equal))
	add("DateNotEquals", famDate, true, false, date(time.Time.Equal))
	add("DateLessThan", famDate, false, false, date(time.Time.Before))
	add("DateLessThanEquals", famDate, false, false, date(func(a, b time.Time) bool { return !a.After(b) }))
	add("DateGreaterThan", famDate, false, false, date(time.Time.After))
	add("DateGreaterThanEquals", famDate, false, false, date(func(a, b time.Time) bool { return !a.Before(b) }))

	add("Bool", famBool, false, true, func(v string, pv value) bool {
		a, ok1 := parseBool(v)
		b, ok2 := parseBool(pv.text)
		return ok1 && ok2 && a == b
	})
	add("BinaryEquals", famBinary, false, false, func(v string, pv value) bool {
		a, err1 := base64.StdEncoding.DecodeString(v)
		b, err2 := base64.StdEncoding.DecodeString(pv.text)
		if err1 != nil || err2 != nil {
			return v == pv.text
		}
		return bytes.Equal(a, b)
	})
	ip := func(v string, pv value) bool {
		addr, err := netip.ParseAddr(v)
		if err != nil {
			return false
		}
		pfx, err := parsePrefix(pv.text)
		return err == nil && pfx.Contains(addr.Unmap())
	}
	add("IpAddress", famIP, false, false, ip)
	add("NotIpAddress", famIP, true, false, ip)

	arn := func(v string, pv value) bool { return matchARN(pv.pattern, v) }
	add("ArnEquals", famARN, false, true, arn)
	add("ArnNotEquals", famARN, true, true, arn)
	add("ArnLike", famARN, false, true, arn)
	add("ArnNotLike", famARN, true, true, arn)

	add("Null", famNull, false, false, nil)
}

// parseOperator takes "ForAllValues:StringLikeIfExists" apart.
func parseOperator(op string) (base string, set SetQualifier, ifExists bool, err error) {
	rest := op
	if q, r, ok := strings.Cut(op, ":"); ok {
		switch strings.ToLower(q) {
		case "foranyvalue":
			set = SetForAnyValue
		case "forallvalues":
			set = SetForAllValues
		default:
			return "", 0, false, fmt.Errorf("unknown set qualifier %q", q)
		}
		rest = r
	}
	name, known := operatorsFold[strings.ToLower(rest)]
	if !known && len(rest) > len("IfExists") && strings.EqualFold(rest[len(rest)-len("IfExists"):], "IfExists") {
		name, known = operatorsFold[strings.ToLower(rest[:len(rest)-len("IfExists")])]
		ifExists = true
	}
	if !known {
		return "", 0, false, fmt.Errorf("unknown condition operator %q", op)
	}
	if name == "Null" && ifExists {
		return "", 0, false, errors.New("Null cannot take IfExists")
	}
	return name, set, ifExists, nil
}

// parseConditionBlock reads Condition: {operator: {key: value-or-array}}. It
// returns the field path of an error for the caller's ParseError.
func parseConditionBlock(raw jsonRaw) ([]Condition, string, error) {
	ops, err := decodeObject(raw)
	if err != nil {
		return nil, "Condition", err
	}
	var out []Condition
	for _, op := range ops {
		field := "Condition." + op.name
		base, set, ifExists, err := parseOperator(op.name)
		if err != nil {
			return nil, field, err
		}
		keys, err := decodeObject(op.value)
		if err != nil {
			return nil, field, err
		}
		if len(keys) == 0 {
			return nil, field, errors.New("no condition keys")
		}
		for _, k := range keys {
			field := field + "." + k.name
			if k.name == "" {
				return nil, field, errors.New("empty condition key")
			}
			vals, err := scalarOrArray(k.value)
			if err != nil {
				return nil, field, err
			}
			if err := checkValues(base, vals); err != nil {
				return nil, field, err
			}
			out = append(out, Condition{Operator: op.name, Key: k.name, Values: vals, Base: base, Set: set, IfExists: ifExists})
		}
	}
	return out, "", nil
}

// checkValues refuses policy values an operator could never compare, so that
// a typo is a parse error rather than a condition that is silently false.
func checkValues(base string, vals []string) error {
	info := operators[base]
	for _, v := range vals {
		var err error
		switch info.family {
		case famNumeric:
			_, err = parseNumber(v)
		case famDate:
			_, err = parseDate(v)
		case famIP:
			_, err = parsePrefix(v)
		case famBool, famNull:
			if _, ok := parseBool(v); !ok && !strings.Contains(v, "${") {
				err = fmt.Errorf("%q is not true or false", v)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func parseNumber(s string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return f, nil
}

var dateLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04Z0700",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseDate reads the ISO 8601 forms IAM documents, or epoch seconds.
func parseDate(s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO 8601 date or epoch seconds", s)
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// evalCondition decides one condition against the request context (keys
// already lower-cased).
func evalCondition(c *Condition, ctx context, substitute bool) bool {
	info, ok := operators[c.Base]
	if !ok {
		return false // not built by Parse
	}
	reqVals, present := ctx.lookup(c.Key)
	present = present && len(reqVals) > 0
	if info.family == famNull {
		// "true": the key must be absent; "false": present. Values OR'ed.
		for _, v := range c.Values {
			if want, ok := parseBool(v); ok && want == !present {
				return true
			}
		}
		return false
	}
	if !present {
		switch {
		case c.IfExists:
			return true
		case c.Set == SetForAllValues:
			return true
		case c.Set == SetForAnyValue:
			return false
		default:
			return info.negated
		}
	}
	vals := c.policyValues(info, ctx, substitute)
	// one reports whether a single request value satisfies the operator
	// against the policy values: positive operators need a match with any
	// policy value, negated ones a match with none.
	one := func(v string) bool {
		for _, pv := range vals {
			if info.match(v, pv) {
				return !info.negated
			}
		}
		return info.negated
	}
	switch c.Set {
	case SetForAllValues:
		for _, v := range reqVals {
			if !one(v) {
				return false
			}
		}
		return true
	case SetForAnyValue:
		for _, v := range reqVals {
			if one(v) {
				return true
			}
		}
		return false
	}
	// No qualifier on a multivalued key: a positive operator matches if any
	// request value does; a negated one if no request value matches.
	if info.negated {
		for _, v := range reqVals {
			if !one(v) {
				return false
			}
		}
		return true
	}
	for _, v := range reqVals {
		if one(v) {
			return true
		}
	}
	return false
}

// policyValues substitutes variables and compiles patterns. A value whose
// variable cannot be resolved is dropped: it matches no request value.
func (c *Condition) policyValues(info opInfo, ctx context, substitute bool) []value {
	out := make([]value, 0, len(c.Values))
	wild := info.family == famARN || c.Base == "StringLike" || c.Base == "StringNotLike"
	for _, raw := range c.Values {
		parts, ok := expand(raw, ctx, substitute && info.vars)
		if !ok {
			continue
		}
		v := value{text: joinParts(parts)}
		if wild {
			v.pattern = compileParts(parts, false, false)
		}
		out = append(out, v)
	}
	return out
}
