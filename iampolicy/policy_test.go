package iampolicy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseShapes(t *testing.T) {
	p := mustParse(t, `{
	  "Version": "2012-10-17",
	  "Id": "p1",
	  "Statement": {
	    "Sid": "One",
	    "Effect": "Allow",
	    "Action": "s3:GetObject",
	    "Resource": ["arn:aws:s3:::b/*", "arn:aws:s3:::c/*"],
	    "Condition": {
	      "ForAnyValue:StringLikeIfExists": {"aws:TagKeys": ["a*", "b*"]},
	      "Bool": {"aws:SecureTransport": true},
	      "NumericLessThan": {"s3:max-keys": 10}
	    }
	  }
	}`)
	want := &Policy{Version: "2012-10-17", ID: "p1", Statements: []Statement{{
		Index: 0, Sid: "One", Effect: "Allow",
		Action:   []string{"s3:GetObject"},
		Resource: []string{"arn:aws:s3:::b/*", "arn:aws:s3:::c/*"},
		Conditions: []Condition{
			{Operator: "ForAnyValue:StringLikeIfExists", Key: "aws:TagKeys", Values: []string{"a*", "b*"}, Base: "StringLike", Set: SetForAnyValue, IfExists: true},
			{Operator: "Bool", Key: "aws:SecureTransport", Values: []string{"true"}, Base: "Bool"},
			{Operator: "NumericLessThan", Key: "s3:max-keys", Values: []string{"10"}, Base: "NumericLessThan"},
		},
	}}}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got  %+v\nwant %+v", p, want)
	}

	trust := mustParse(t, rolesAnywhereTrust)
	if s := trust.Statements[0]; !reflect.DeepEqual(s.Principal, map[string][]string{"Service": {"rolesanywhere.amazonaws.com"}}) ||
		len(s.Action) != 3 || s.Resource != nil || len(s.Conditions) != 2 {
		t.Errorf("trust statement = %+v", s)
	}
	star := mustParse(t, `{"Version":"2008-10-17","Statement":[{"Effect":"Deny","Principal":"*","NotAction":"s3:Get*"}]}`)
	if s := star.Statements[0]; !s.AnyPrincipal() || !reflect.DeepEqual(s.NotAction, []string{"s3:Get*"}) {
		t.Errorf("star statement = %+v", s)
	}
	if _, err := Parse([]byte(`{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`)); err != nil {
		t.Errorf("absent Version: %v", err)
	}
}

func TestParseRefuses(t *testing.T) {
	ok := `"Effect":"Allow","Action":"s3:GetObject","Resource":"*"`
	doc := func(stmt string) string { return `{"Version":"2012-10-17","Statement":{` + stmt + `}}` }
	tests := []struct {
		name, doc, inErr string
	}{
		{"not JSON", `{`, "JSON"},
		{"array", `[]`, "object"},
		{"trailing", doc(ok) + ` {}`, "trailing"},
		{"bad version", `{"Version":"2012-10-18","Statement":{` + ok + `}}`, "Version"},
		{"numeric version", `{"Version":2012,"Statement":{` + ok + `}}`, "Version"},
		{"unknown top field", `{"Version":"2012-10-17","Statements":{` + ok + `}}`, "Statements"},
		{"lower-case field", `{"version":"2012-10-17","Statement":{` + ok + `}}`, "version"},
		{"duplicate field", `{"Version":"2012-10-17","Version":"2012-10-17","Statement":{` + ok + `}}`, "duplicate"},
		{"no statement", `{"Version":"2012-10-17"}`, "Statement: missing"},
		{"empty statements", `{"Version":"2012-10-17","Statement":[]}`, "Statement: empty"},
		{"statement string", `{"Version":"2012-10-17","Statement":"x"}`, "Statement"},
		{"statement array of strings", `{"Version":"2012-10-17","Statement":["x"]}`, "statement 0"},
		{"no effect", doc(`"Action":"s3:GetObject","Resource":"*"`), "Effect: missing"},
		{"effect case", doc(`"Effect":"allow","Action":"s3:GetObject","Resource":"*"`), "Effect"},
		{"no action", doc(`"Effect":"Allow","Resource":"*"`), "Action: missing"},
		{"action and notaction", doc(ok + `,"NotAction":"s3:Put*"`), "NotAction"},
		{"resource and notresource", doc(ok + `,"NotResource":"arn:aws:s3:::x"`), "NotResource"},
		{"no resource in identity policy", doc(`"Effect":"Allow","Action":"s3:GetObject"`), "Resource: missing"},
		{"empty action array", doc(`"Effect":"Allow","Action":[],"Resource":"*"`), "Action"},
		{"action number", doc(`"Effect":"Allow","Action":1,"Resource":"*"`), "Action"},
		{"action array with number", doc(`"Effect":"Allow","Action":["s3:GetObject",1],"Resource":"*"`), "Action"},
		{"action without service", doc(`"Effect":"Allow","Action":"GetObject","Resource":"*"`), "Action"},
		{"action wildcard service", doc(`"Effect":"Allow","Action":"s*:GetObject","Resource":"*"`), "Action"},
		{"action two colons", doc(`"Effect":"Allow","Action":"s3:Get:Object","Resource":"*"`), "Action"},
		{"resource not arn", doc(`"Effect":"Allow","Action":"s3:GetObject","Resource":"bucket"`), "Resource"},
		{"unknown statement field", doc(ok + `,"Principals":"*"`), "Principals"},
		{"duplicate statement field", doc(ok + `,"Action":"s3:PutObject"`), "duplicate"},
		{"principal and notprincipal", doc(`"Effect":"Allow","Principal":"*","NotPrincipal":{"AWS":"1"},"Action":"s3:GetObject"`), "NotPrincipal"},
		{"principal string", doc(`"Effect":"Allow","Principal":"arn:aws:iam::1:root","Action":"s3:GetObject"`), "Principal"},
		{"principal type", doc(`"Effect":"Allow","Principal":{"Role":"x"},"Action":"s3:GetObject"`), "Principal"},
		{"principal empty", doc(`"Effect":"Allow","Principal":{},"Action":"s3:GetObject"`), "Principal"},
		{"principal partial wildcard", doc(`"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:role/*"},"Action":"s3:GetObject"`), "wildcard"},
		{"unknown operator", doc(ok + `,"Condition":{"StringEqual":{"k":"v"}}`), "Condition.StringEqual"},
		{"unknown qualifier", doc(ok + `,"Condition":{"ForSomeValues:StringEquals":{"k":"v"}}`), "qualifier"},
		{"null ifexists", doc(ok + `,"Condition":{"NullIfExists":{"k":"true"}}`), "Null"},
		{"condition not object", doc(ok + `,"Condition":["x"]`), "Condition"},
		{"condition keys not object", doc(ok + `,"Condition":{"StringEquals":"v"}`), "Condition.StringEquals"},
		{"condition no keys", doc(ok + `,"Condition":{"StringEquals":{}}`), "no condition keys"},
		{"condition value object", doc(ok + `,"Condition":{"StringEquals":{"k":{"a":"b"}}}`), "Condition.StringEquals.k"},
		{"condition value null", doc(ok + `,"Condition":{"StringEquals":{"k":null}}`), "Condition.StringEquals.k"},
		{"condition value empty array", doc(ok + `,"Condition":{"StringEquals":{"k":[]}}`), "empty"},
		{"numeric value", doc(ok + `,"Condition":{"NumericLessThan":{"k":"ten"}}`), "not a number"},
		{"date value", doc(ok + `,"Condition":{"DateLessThan":{"k":"soon"}}`), "date"},
		{"ip value", doc(ok + `,"Condition":{"IpAddress":{"k":"10.0.0.0/33"}}`), "IP"},
		{"bool value", doc(ok + `,"Condition":{"Bool":{"k":"yes"}}`), "true or false"},
		{"duplicate sid", `{"Version":"2012-10-17","Statement":[{"Sid":"a",` + ok + `},{"Sid":"a",` + ok + `}]}`, "duplicate of statement 0"},
		{"sid number", doc(`"Sid":1,` + ok), "Sid"},
		{"mixed principal and none", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"},{` + ok + `}]}`, "statement 1"},
		{"too large", `{"Version":"2012-10-17","Statement":{` + ok + `,"Sid":"` + strings.Repeat("a", MaxDocumentSize) + `"}}`, "bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse accepted %s", tt.doc)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v is not ErrMalformed", err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("error %v is not a *ParseError", err)
			}
			if !strings.Contains(err.Error(), tt.inErr) {
				t.Errorf("error %q does not mention %q", err, tt.inErr)
			}
		})
	}
}

func TestParseErrorNamesStatementAndField(t *testing.T) {
	_, err := Parse([]byte(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"},
		{"Sid":"Second","Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringEquals":{"k":{}}}}]}`))
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Statement != 1 || pe.Sid != "Second" || pe.Field != "Condition.StringEquals.k" {
		t.Fatalf("got %#v (%v)", pe, err)
	}
	if want := `statement 1 (Sid "Second"): Condition.StringEquals.k`; !strings.Contains(err.Error(), want) {
		t.Errorf("%q does not contain %q", err, want)
	}
}

func TestParseAsKinds(t *testing.T) {
	identity := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}`
	bucket := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}`
	notPrincipalAllow := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]}}`
	notPrincipalDeny := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"rolesanywhere.amazonaws.com"},"Action":"sts:AssumeRole"},{"Effect":"Deny","NotPrincipal":{"Service":"rolesanywhere.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	tests := []struct {
		doc  string
		kind Kind
		ok   bool
	}{
		{identity, KindIdentity, true},
		{identity, KindTrust, false},
		{identity, KindResource, false},
		{rolesAnywhereTrust, KindTrust, true},
		{rolesAnywhereTrust, KindResource, true},
		{rolesAnywhereTrust, KindIdentity, false},
		{bucket, KindResource, true},
		{bucket, KindTrust, false}, // a trust policy has no Resource
		{bucket, KindAny, true},
		// IAM refuses NotPrincipal in a role trust policy, Allow or Deny;
		// an Allow with it was accepted and let every caller assume the role.
		{notPrincipalAllow, KindTrust, false},
		{notPrincipalDeny, KindTrust, false},
		{notPrincipalDeny, KindResource, true},
	}
	for i, tt := range tests {
		_, err := ParseAs([]byte(tt.doc), tt.kind)
		if (err == nil) != tt.ok {
			t.Errorf("%d: ParseAs(%v) err = %v, want ok=%v", i, tt.kind, err, tt.ok)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(rolesAnywhereTrust))
	f.Add([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"iam:*","NotResource":"arn:aws:s3:::${aws:username}/*","Condition":{"ForAllValues:StringLikeIfExists":{"aws:TagKeys":["a*",1,true]},"Null":{"k":"true"},"DateLessThan":{"aws:CurrentTime":"2026-01-01"}}}]}`))
	f.Add([]byte(`{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":["111122223333","arn:aws:iam::1:role/r"]},"Action":"*"}}`))
	f.Add([]byte(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := Parse(doc)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		// Whatever parsed must evaluate without panicking.
		ctx := map[string][]string{"aws:TagKeys": {"a", "b"}, "aws:username": {"bob"}, "aws:SourceIp": {"10.1.2.3"}, "aws:CurrentTime": {"2025-01-01T00:00:00Z"}, "k": {}}
		for _, r := range []Request{
			{Action: "s3:GetObject", Resource: "arn:aws:s3:::bob/k", Context: ctx},
			{Principal: rolesAnywhere, Action: "sts:AssumeRole", Context: ctx},
			{Principal: map[string][]string{"AWS": {"arn:aws:sts::111122223333:assumed-role/r/s"}}, Action: "iam:PassRole", Resource: "*"},
		} {
			_ = p.Evaluate(r)
		}
		_ = Classify(Effective{Identity: []*Policy{p}})
	})
}

func TestParseEncoded(t *testing.T) {
	enc := "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22rolesanywhere.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D"
	p, err := ParseEncoded(enc, KindTrust)
	if err != nil {
		t.Fatal(err)
	}
	if p.Evaluate(Request{Principal: rolesAnywhere, Action: "sts:AssumeRole"}) != Allow {
		t.Error("decoded trust policy does not allow Roles Anywhere")
	}
	if _, err := ParseEncoded(rolesAnywhereTrust, KindTrust); err != nil {
		t.Errorf("plain JSON: %v", err)
	}
	if _, err := ParseEncoded("%zz", KindAny); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad encoding: %v", err)
	}
}

func TestParseErrorTopLevel(t *testing.T) {
	_, err := Parse([]byte(`{"Version":"2012-10-17","Extra":1,"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`))
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Statement != -1 || pe.Field != "Extra" || strings.Contains(err.Error(), "statement") {
		t.Errorf("got %#v (%v)", pe, err)
	}
}
