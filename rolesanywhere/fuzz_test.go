package rolesanywhere

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzParseSession: the service's answer is untrusted input; parsing must
// never panic, and a success must carry credentials.
func FuzzParseSession(f *testing.F) {
	f.Add(readFile(f, vec("ec-credential-process", "reply.json")))
	f.Add([]byte(`{"credentialSet":[]}`))
	f.Add([]byte(`{"credentialSet":[{"credentials":{"accessKeyId":"A","secretAccessKey":"S","expiration":"x"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sess, err := parseSession(data)
		if err == nil && (sess.Credentials.AccessKeyID == "" || sess.Credentials.SecretAccessKey == "") {
			t.Fatalf("success without credentials: %+v", sess)
		}
		resp := &http.Response{StatusCode: 400, Header: http.Header{}}
		if e := parseAPIError(resp, data); e.Code == "" || !strings.HasPrefix(e.Error(), "operation error RolesAnywhere: CreateSession, ") {
			t.Fatalf("bad API error %q", e.Error())
		}
	})
}

// FuzzSetProfile: whatever the file holds, the profile ends up with
// exactly the new credentials and other sections' lines survive.
func FuzzSetProfile(f *testing.F) {
	f.Add(string(readFile(f, vec("rsa-update", "credentials.before"))), "vector")
	f.Add("", "default")
	f.Add("[a]\nx=1", "a")
	f.Fuzz(func(t *testing.T, content, profile string) {
		if profile == "" || strings.ContainsAny(profile, "[]\r\n") || strings.TrimSpace(profile) != profile {
			return
		}
		out := string(SetProfile([]byte(content), profile, vectorCreds))
		if !strings.Contains(out, "aws_access_key_id = "+vectorCreds.AccessKeyID+"\n") ||
			!strings.Contains(out, "aws_session_token = "+vectorCreds.SessionToken+"\n") {
			t.Fatalf("credentials missing from\n%q", out)
		}
		again := string(SetProfile([]byte(out), profile, vectorCreds))
		if again != out {
			t.Fatalf("not idempotent:\n%q\n%q", out, again)
		}
	})
}
