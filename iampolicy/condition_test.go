package iampolicy

import (
	"fmt"
	"testing"
)

type ctxMap = map[string][]string

// condCase evaluates one condition {op: {key: values}} against ctx.
type condCase struct {
	op, key, values string // values is JSON
	ctx             ctxMap
	want            bool
}

func runCondCases(t *testing.T, cases []condCase) {
	t.Helper()
	for i, c := range cases {
		doc := fmt.Sprintf(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{%q:{%q:%s}}}}`, c.op, c.key, c.values)
		p, err := Parse([]byte(doc))
		if err != nil {
			t.Errorf("case %d: Parse: %v", i, err)
			continue
		}
		got := p.Evaluate(Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k", Context: c.ctx}) == Allow
		if got != c.want {
			t.Errorf("case %d: %s {%s: %s} with %v = %v, want %v", i, c.op, c.key, c.values, c.ctx, got, c.want)
		}
	}
}

func kv(k string, v ...string) ctxMap { return ctxMap{k: v} }

func TestStringOperators(t *testing.T) {
	runCondCases(t, []condCase{
		{"StringEquals", "k", `"a"`, kv("k", "a"), true},
		{"StringEquals", "k", `"a"`, kv("k", "A"), false},
		{"StringEquals", "k", `"a"`, kv("K", "a"), true}, // keys case-insensitive
		{"StringEquals", "K", `"a"`, kv("k", "a"), true},
		{"StringEquals", "k", `["a","b"]`, kv("k", "b"), true}, // values OR'ed
		{"StringEquals", "k", `["a","b"]`, kv("k", "c"), false},
		{"StringEquals", "k", `"a"`, nil, false},            // missing key
		{"StringEquals", "k", `"a*"`, kv("k", "ab"), false}, // no wildcards
		{"StringNotEquals", "k", `"a"`, kv("k", "b"), true},
		{"StringNotEquals", "k", `"a"`, kv("k", "a"), false},
		{"StringNotEquals", "k", `["a","b"]`, kv("k", "b"), false},
		{"StringNotEquals", "k", `"a"`, nil, true}, // negated on missing key
		{"StringEqualsIgnoreCase", "k", `"Web-01"`, kv("k", "WEB-01"), true},
		{"StringEqualsIgnoreCase", "k", `"Web-01"`, kv("k", "web-02"), false},
		{"StringEqualsIgnoreCase", "k", `"a"`, nil, false},
		{"StringNotEqualsIgnoreCase", "k", `"a"`, kv("k", "A"), false},
		{"StringNotEqualsIgnoreCase", "k", `"a"`, kv("k", "b"), true},
		{"StringNotEqualsIgnoreCase", "k", `"a"`, nil, true},
		{"StringLike", "k", `"web-*"`, kv("k", "web-01"), true},
		{"StringLike", "k", `"web-*"`, kv("k", "db-01"), false},
		{"StringLike", "k", `"web-??"`, kv("k", "web-01"), true},
		{"StringLike", "k", `"web-??"`, kv("k", "web-001"), false},
		{"StringLike", "k", `"Web-*"`, kv("k", "web-01"), false}, // case-sensitive
		{"StringLike", "k", `"*:*"`, kv("k", "a:b:c"), true},     // * crosses colons here
		{"StringLike", "k", `"web-*"`, nil, false},
		{"StringNotLike", "k", `"web-*"`, kv("k", "db-01"), true},
		{"StringNotLike", "k", `"web-*"`, kv("k", "web-01"), false},
		{"StringNotLike", "k", `"web-*"`, nil, true},
	})
}

func TestNumericDateBoolBinaryIPOperators(t *testing.T) {
	runCondCases(t, []condCase{
		{"NumericEquals", "n", `10`, kv("n", "10"), true},
		{"NumericEquals", "n", `"10"`, kv("n", "10.0"), true},
		{"NumericEquals", "n", `10`, kv("n", "11"), false},
		{"NumericEquals", "n", `10`, kv("n", "ten"), false},
		{"NumericEquals", "n", `10`, nil, false},
		{"NumericNotEquals", "n", `10`, kv("n", "11"), true},
		{"NumericNotEquals", "n", `10`, kv("n", "10"), false},
		{"NumericNotEquals", "n", `10`, nil, true},
		{"NumericLessThan", "n", `10`, kv("n", "9"), true},
		{"NumericLessThan", "n", `10`, kv("n", "10"), false},
		{"NumericLessThanEquals", "n", `10`, kv("n", "10"), true},
		{"NumericLessThanEquals", "n", `10`, kv("n", "11"), false},
		{"NumericGreaterThan", "n", `10`, kv("n", "11"), true},
		{"NumericGreaterThan", "n", `10`, kv("n", "10"), false},
		{"NumericGreaterThanEquals", "n", `10`, kv("n", "10"), true},
		{"NumericGreaterThanEquals", "n", `10`, kv("n", "-1"), false},
		{"NumericLessThan", "n", `10`, nil, false},

		{"DateEquals", "t", `"2026-12-01T12:00:00Z"`, kv("t", "2026-12-01T13:00:00+01:00"), true},
		{"DateEquals", "t", `"2026-12-01T12:00:00Z"`, kv("t", "2026-12-01T12:00:01Z"), false},
		{"DateNotEquals", "t", `"2026-12-01T12:00:00Z"`, kv("t", "2026-12-01T12:00:01Z"), true},
		{"DateNotEquals", "t", `"2026-12-01T12:00:00Z"`, kv("t", "2026-12-01T12:00:00Z"), false},
		{"DateNotEquals", "t", `"2026-12-01T12:00:00Z"`, nil, true},
		{"DateLessThan", "aws:CurrentTime", `"2027-01-01T00:00:00Z"`, kv("aws:CurrentTime", "2026-12-01T12:00:00Z"), true},
		{"DateLessThan", "aws:CurrentTime", `"2026-01-01"`, kv("aws:CurrentTime", "2026-12-01T12:00:00Z"), false},
		{"DateLessThanEquals", "t", `"2026-12-01T12:00:00Z"`, kv("t", "2026-12-01T12:00:00Z"), true},
		{"DateLessThanEquals", "t", `"2026-12-01T12:00:00Z"`, kv("t", "2026-12-01T12:00:01Z"), false},
		{"DateGreaterThan", "t", `"2026-12-01T12:00:00Z"`, kv("t", "1796126401"), true}, // epoch seconds, 12:00:01Z
		{"DateGreaterThan", "t", `"2026-12-01T12:00:00Z"`, kv("t", "2026-12-01T12:00:00Z"), false},
		{"DateGreaterThanEquals", "t", `1796126400`, kv("t", "2026-12-01T12:00:00Z"), true},
		{"DateGreaterThanEquals", "t", `"2026-12-01T12:00:00Z"`, kv("t", "yesterday"), false},
		{"DateGreaterThan", "t", `"2026-12-01T12:00:00Z"`, nil, false},

		{"Bool", "aws:SecureTransport", `"true"`, kv("aws:SecureTransport", "true"), true},
		{"Bool", "aws:SecureTransport", `true`, kv("aws:SecureTransport", "TRUE"), true},
		{"Bool", "aws:SecureTransport", `false`, kv("aws:SecureTransport", "true"), false},
		{"Bool", "aws:SecureTransport", `"true"`, nil, false},
		{"BoolIfExists", "aws:MultiFactorAuthPresent", `"true"`, nil, true},
		{"BoolIfExists", "aws:MultiFactorAuthPresent", `"true"`, kv("aws:MultiFactorAuthPresent", "false"), false},

		{"BinaryEquals", "b", `"QmluYXJ5"`, kv("b", "QmluYXJ5"), true},
		{"BinaryEquals", "b", `"QmluYXJ5"`, kv("b", "QmluYXJ6"), false},
		{"BinaryEquals", "b", `"QmluYXJ5"`, nil, false},

		{"IpAddress", "aws:SourceIp", `"203.0.113.0/24"`, kv("aws:SourceIp", "203.0.113.7"), true},
		{"IpAddress", "aws:SourceIp", `"203.0.113.0/24"`, kv("aws:SourceIp", "203.0.114.7"), false},
		{"IpAddress", "aws:SourceIp", `"2001:db8::/32"`, kv("aws:SourceIp", "2001:db8::1"), true},
		{"IpAddress", "aws:SourceIp", `["10.0.0.0/8","203.0.113.9"]`, kv("aws:SourceIp", "203.0.113.9"), true},
		{"IpAddress", "aws:SourceIp", `"203.0.113.0/24"`, kv("aws:SourceIp", "not-an-ip"), false},
		{"IpAddress", "aws:SourceIp", `"203.0.113.0/24"`, nil, false},
		{"NotIpAddress", "aws:SourceIp", `"203.0.113.0/24"`, kv("aws:SourceIp", "198.51.100.1"), true},
		{"NotIpAddress", "aws:SourceIp", `"203.0.113.0/24"`, kv("aws:SourceIp", "203.0.113.1"), false},
		{"NotIpAddress", "aws:SourceIp", `"203.0.113.0/24"`, nil, true},
	})
}

func TestArnOperators(t *testing.T) {
	const a = anchorARN
	runCondCases(t, []condCase{
		{"ArnEquals", "aws:SourceArn", `"` + a + `"`, kv("aws:SourceArn", a), true},
		{"ArnEquals", "aws:SourceArn", `"` + a + `"`, kv("aws:SourceArn", a+"0"), false},
		{"ArnEquals", "aws:SourceArn", `"arn:aws:rolesanywhere:*:111122223333:trust-anchor/*"`, kv("aws:SourceArn", a), true}, // ArnEquals takes wildcards too
		{"ArnEquals", "aws:SourceArn", `"` + a + `"`, nil, false},
		{"ArnLike", "aws:SourceArn", `"arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/*"`, kv("aws:SourceArn", a), true},
		{"ArnLike", "aws:SourceArn", `"arn:aws:rolesanywhere:us-east-1:444455556666:trust-anchor/*"`, kv("aws:SourceArn", a), false},
		{"ArnLike", "aws:SourceArn", `"arn:aws:rolesanywhere:us-east-?:111122223333:*"`, kv("aws:SourceArn", a), true},
		{"ArnLike", "aws:SourceArn", `"arn:aws:rolesanywhere:*"`, kv("aws:SourceArn", a), false}, // six components each
		{"ArnLike", "aws:SourceArn", `"arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/*"`, kv("aws:SourceArn", "not-an-arn"), false},
		{"ArnLike", "aws:SourceArn", `"arn:aws:s3:::bucket/*"`, kv("aws:SourceArn", "arn:aws:s3:::bucket/a:b"), true}, // the sixth keeps its colons
		{"ArnLike", "aws:SourceArn", `"*"`, kv("aws:SourceArn", a), true},
		{"ArnLike", "aws:SourceArn", `"` + a + `"`, nil, false},
		{"ArnNotEquals", "aws:SourceArn", `"` + a + `"`, kv("aws:SourceArn", a), false},
		{"ArnNotEquals", "aws:SourceArn", `"` + a + `"`, kv("aws:SourceArn", a+"0"), true},
		{"ArnNotEquals", "aws:SourceArn", `"` + a + `"`, nil, true},
		{"ArnNotLike", "aws:SourceArn", `"arn:aws:rolesanywhere:*:111122223333:*"`, kv("aws:SourceArn", a), false},
		{"ArnNotLike", "aws:SourceArn", `"arn:aws:rolesanywhere:*:444455556666:*"`, kv("aws:SourceArn", a), true},
		{"ArnNotLike", "aws:SourceArn", `"arn:aws:rolesanywhere:*:444455556666:*"`, nil, true},
	})
}

func TestNullAndIfExists(t *testing.T) {
	runCondCases(t, []condCase{
		{"Null", "aws:TokenIssueTime", `"true"`, nil, true},
		{"Null", "aws:TokenIssueTime", `"true"`, kv("aws:TokenIssueTime", "2026-12-01T00:00:00Z"), false},
		{"Null", "aws:TokenIssueTime", `"false"`, kv("aws:TokenIssueTime", "2026-12-01T00:00:00Z"), true},
		{"Null", "aws:TokenIssueTime", `false`, nil, false},
		{"Null", "k", `"true"`, kv("k"), true}, // present with no values counts as absent
		{"StringEqualsIfExists", "k", `"a"`, nil, true},
		{"StringEqualsIfExists", "k", `"a"`, kv("k", "a"), true},
		{"StringEqualsIfExists", "k", `"a"`, kv("k", "b"), false},
		{"StringNotEqualsIfExists", "k", `"a"`, nil, true},
		{"StringNotEqualsIfExists", "k", `"a"`, kv("k", "a"), false},
		{"StringLikeIfExists", "k", `"a*"`, kv("k", "b"), false},
		{"ArnLikeIfExists", "aws:SourceArn", `"arn:aws:rolesanywhere:*:*:*"`, nil, true},
		{"NumericLessThanIfExists", "n", `5`, nil, true},
		{"NumericLessThanIfExists", "n", `5`, kv("n", "6"), false},
		{"DateLessThanIfExists", "t", `"2026-01-01"`, nil, true},
		{"IpAddressIfExists", "aws:SourceIp", `"10.0.0.0/8"`, nil, true},
		{"IpAddressIfExists", "aws:SourceIp", `"10.0.0.0/8"`, kv("aws:SourceIp", "11.0.0.1"), false},
	})
}

func TestSetQualifiers(t *testing.T) {
	tags := func(v ...string) ctxMap { return ctxMap{"aws:TagKeys": v} }
	runCondCases(t, []condCase{
		{"ForAllValues:StringEquals", "aws:TagKeys", `["env","team"]`, tags("env"), true},
		{"ForAllValues:StringEquals", "aws:TagKeys", `["env","team"]`, tags("env", "team"), true},
		{"ForAllValues:StringEquals", "aws:TagKeys", `["env","team"]`, tags("env", "cost"), false},
		{"ForAllValues:StringEquals", "aws:TagKeys", `["env","team"]`, nil, true},    // missing key
		{"ForAllValues:StringEquals", "aws:TagKeys", `["env","team"]`, tags(), true}, // empty set
		{"ForAnyValue:StringEquals", "aws:TagKeys", `["env","team"]`, tags("cost", "env"), true},
		{"ForAnyValue:StringEquals", "aws:TagKeys", `["env","team"]`, tags("cost"), false},
		{"ForAnyValue:StringEquals", "aws:TagKeys", `["env","team"]`, nil, false},    // missing key
		{"ForAnyValue:StringEquals", "aws:TagKeys", `["env","team"]`, tags(), false}, // empty set
		{"ForAnyValue:StringLike", "aws:TagKeys", `"team-*"`, tags("env", "team-a"), true},
		{"ForAllValues:StringLike", "aws:TagKeys", `"team-*"`, tags("team-b", "team-a"), true},
		{"ForAllValues:StringLike", "aws:TagKeys", `"team-*"`, tags("env", "team-a"), false},
		{"ForAnyValue:StringNotEquals", "aws:TagKeys", `"env"`, tags("env", "team"), true}, // team is not env
		{"ForAnyValue:StringNotEquals", "aws:TagKeys", `"env"`, tags("env"), false},
		{"ForAllValues:StringNotEquals", "aws:TagKeys", `["secret","admin"]`, tags("env", "team"), true},
		{"ForAllValues:StringNotEquals", "aws:TagKeys", `["secret","admin"]`, tags("env", "admin"), false},
		{"ForAllValues:StringNotEquals", "aws:TagKeys", `"secret"`, nil, true},
		{"ForAnyValue:StringNotEquals", "aws:TagKeys", `"secret"`, nil, false},
		{"ForAnyValue:StringEqualsIgnoreCase", "aws:TagKeys", `"ENV"`, tags("env"), true},
		{"ForAnyValue:StringEqualsIfExists", "aws:TagKeys", `"env"`, nil, true},
		{"ForAllValues:ArnLike", "k", `"arn:aws:iam::1:role/*"`, kv("k", "arn:aws:iam::1:role/a", "arn:aws:iam::1:role/b"), true},
		{"ForAllValues:ArnLike", "k", `"arn:aws:iam::1:role/*"`, kv("k", "arn:aws:iam::1:role/a", "arn:aws:iam::2:role/b"), false},
		// Without a qualifier, a multivalued key: positive = any matches, negated = none matches.
		{"StringEquals", "aws:TagKeys", `"env"`, tags("team", "env"), true},
		{"StringNotEquals", "aws:TagKeys", `"env"`, tags("team", "env"), false},
		{"StringNotEquals", "aws:TagKeys", `"env"`, tags("team", "cost"), true},
	})
}

func TestConditionsAndedAcrossKeysAndOperators(t *testing.T) {
	p := mustParse(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*",
		"Condition":{"StringEquals":{"a":"1","b":["2","3"]},"StringLike":{"c":"x*"}}}}`)
	tests := []struct {
		ctx  ctxMap
		want Decision
	}{
		{ctxMap{"a": {"1"}, "b": {"3"}, "c": {"xy"}}, Allow},
		{ctxMap{"a": {"1"}, "b": {"3"}, "c": {"y"}}, ImplicitDeny},
		{ctxMap{"a": {"1"}, "b": {"4"}, "c": {"xy"}}, ImplicitDeny},
		{ctxMap{"b": {"2"}, "c": {"xy"}}, ImplicitDeny},
	}
	for i, tt := range tests {
		if got := p.Evaluate(Request{Action: "s3:GetObject", Resource: "*", Context: tt.ctx}); got != tt.want {
			t.Errorf("%d: %v = %v, want %v", i, tt.ctx, got, tt.want)
		}
	}
}

func TestPolicyVariables(t *testing.T) {
	doc := func(version, resource, cond string) string {
		v := ""
		if version != "" {
			v = `"Version":"` + version + `",`
		}
		return `{` + v + `"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"` + resource + `"` + cond + `}}`
	}
	cn := ctxMap{"aws:PrincipalTag/x509Subject/CN": {"web-01"}}
	tests := []struct {
		name, doc, resource string
		ctx                 ctxMap
		want                Decision
	}{
		{"resource variable", doc("2012-10-17", "arn:aws:s3:::b/${aws:PrincipalTag/x509Subject/CN}/*", ""), "arn:aws:s3:::b/web-01/k", cn, Allow},
		{"resource variable other", doc("2012-10-17", "arn:aws:s3:::b/${aws:PrincipalTag/x509Subject/CN}/*", ""), "arn:aws:s3:::b/web-02/k", cn, ImplicitDeny},
		{"variable key case-insensitive", doc("2012-10-17", "arn:aws:s3:::b/${AWS:principaltag/X509Subject/cn}/*", ""), "arn:aws:s3:::b/web-01/k", cn, Allow},
		{"missing variable matches nothing", doc("2012-10-17", "arn:aws:s3:::b/${aws:PrincipalTag/x509Subject/CN}/*", ""), "arn:aws:s3:::b/${aws:PrincipalTag/x509Subject/CN}/k", nil, ImplicitDeny},
		{"default value", doc("2012-10-17", "arn:aws:s3:::b/${aws:PrincipalTag/team, 'shared'}/*", ""), "arn:aws:s3:::b/shared/k", nil, Allow},
		{"value wins over default", doc("2012-10-17", "arn:aws:s3:::b/${aws:PrincipalTag/team, 'shared'}/*", ""), "arn:aws:s3:::b/red/k", ctxMap{"aws:PrincipalTag/team": {"red"}}, Allow},
		{"substituted star is literal", doc("2012-10-17", "arn:aws:s3:::b/${aws:PrincipalTag/team}", ""), "arn:aws:s3:::b/anything", ctxMap{"aws:PrincipalTag/team": {"*"}}, ImplicitDeny},
		{"substituted star matches itself", doc("2012-10-17", "arn:aws:s3:::b/${aws:PrincipalTag/team}", ""), "arn:aws:s3:::b/*", ctxMap{"aws:PrincipalTag/team": {"*"}}, Allow},
		{"${*} literal", doc("2012-10-17", "arn:aws:s3:::b/${*}", ""), "arn:aws:s3:::b/*", nil, Allow},
		{"${*} not a wildcard", doc("2012-10-17", "arn:aws:s3:::b/${*}", ""), "arn:aws:s3:::b/x", nil, ImplicitDeny},
		{"multivalued key is no variable", doc("2012-10-17", "arn:aws:s3:::b/${k}", ""), "arn:aws:s3:::b/x", ctxMap{"k": {"x", "y"}}, ImplicitDeny},
		{"2008 version: no substitution", doc("2008-10-17", "arn:aws:s3:::b/${aws:username}", ""), "arn:aws:s3:::b/${aws:username}", ctxMap{"aws:username": {"bob"}}, Allow},
		{"absent version: no substitution", doc("", "arn:aws:s3:::b/${aws:username}", ""), "arn:aws:s3:::b/bob", ctxMap{"aws:username": {"bob"}}, ImplicitDeny},
		{"condition variable", doc("2012-10-17", "*", `,"Condition":{"StringEquals":{"aws:PrincipalTag/x509Subject/CN":"${aws:username}"}}`), "*",
			ctxMap{"aws:username": {"web-01"}, "aws:PrincipalTag/x509Subject/CN": {"web-01"}}, Allow},
		{"condition variable mismatch", doc("2012-10-17", "*", `,"Condition":{"StringEquals":{"aws:PrincipalTag/x509Subject/CN":"${aws:username}"}}`), "*",
			ctxMap{"aws:username": {"web-02"}, "aws:PrincipalTag/x509Subject/CN": {"web-01"}}, ImplicitDeny},
		{"condition variable missing, negated op", doc("2012-10-17", "*", `,"Condition":{"StringNotEquals":{"k":"${aws:username}"}}`), "*",
			ctxMap{"k": {"x"}}, Allow},
		{"variable then wildcard in StringLike", doc("2012-10-17", "*", `,"Condition":{"StringLike":{"k":"${aws:username}-*"}}`), "*",
			ctxMap{"k": {"bob-1"}, "aws:username": {"bob"}}, Allow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, tt.doc)
			if got := p.Evaluate(Request{Action: "s3:GetObject", Resource: tt.resource, Context: tt.ctx}); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
