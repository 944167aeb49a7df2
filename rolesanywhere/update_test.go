package rolesanywhere

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// vectorCreds are the credentials of the rsa-update capture.
var vectorCreds = Credentials{
	AccessKeyID:     "ASIAEXAMPLEVECTOR001",
	SecretAccessKey: "testonly/NotARealSecretAccessKey0000000000",
	SessionToken:    "TESTONLY-session-token-not-valid-anywhere",
}

func TestSetProfileMatchesHelper(t *testing.T) {
	before := readFile(t, vec("rsa-update", "credentials.before"))
	tests := []struct {
		profile string
		in      string
		want    string
	}{
		{"vector", string(before), string(readFile(t, vec("rsa-update", "credentials.after-profile-vector")))},
		{"brandnew", string(before), string(readFile(t, vec("rsa-update", "credentials.after-profile-brandnew")))},
		{"default", "", "[default]\naws_access_key_id = ASIAEXAMPLEVECTOR001\naws_secret_access_key = testonly/NotARealSecretAccessKey0000000000\naws_session_token = TESTONLY-session-token-not-valid-anywhere\n\n"},
		{"x", "[x]\naws_session_token=old\naws_secret_access_key = old\naws_access_key_id = old", "[x]\naws_session_token = TESTONLY-session-token-not-valid-anywhere\naws_secret_access_key = testonly/NotARealSecretAccessKey0000000000\naws_access_key_id = ASIAEXAMPLEVECTOR001\n"},
		{"other", "[other]\n# comment = kept\nregion=x\n", "[other]\n# comment = kept\nregion=x\naws_access_key_id = ASIAEXAMPLEVECTOR001\naws_secret_access_key = testonly/NotARealSecretAccessKey0000000000\naws_session_token = TESTONLY-session-token-not-valid-anywhere\n"},
	}
	for _, tt := range tests {
		t.Run(tt.profile, func(t *testing.T) {
			if got := string(SetProfile([]byte(tt.in), tt.profile, vectorCreds)); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// TestUpdateOnce runs update --once against the loopback service on copies
// of credentials.before, as the capture did.
func TestUpdateOnce(t *testing.T) {
	for _, profile := range []string{"vector", "brandnew"} {
		t.Run(profile, func(t *testing.T) {
			f := newFakeService(t)
			dir := t.TempDir()
			path := filepath.Join(dir, "credentials")
			os.WriteFile(path, readFile(t, vec("rsa-update", "credentials.before")), 0o644)
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", path)
			if err := Update(context.Background(), f.options("rsa", false), UpdateConfig{Profile: profile, Once: true}); err != nil {
				t.Fatal(err)
			}
			got := string(readFile(t, path))
			want := string(readFile(t, vec("rsa-update", "credentials.after-profile-"+profile)))
			serial := "53f6a39f05b14c898890866b16b433ae"
			want = strings.NewReplacer(vectorCreds.AccessKeyID, "ASIATESTFAKE0001",
				vectorCreds.SecretAccessKey, "secret/"+serial, vectorCreds.SessionToken, "token-1").Replace(want)
			if got != want {
				t.Errorf("file\n%s\nwant\n%s", got, want)
			}
			fi, _ := os.Stat(path)
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", fi.Mode().Perm())
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("temp files left behind: %v", entries)
			}
			if r := f.requests(); len(r) != 1 || r[0].err != nil {
				t.Errorf("requests %+v", r)
			}
		})
	}
}

func TestUpdateCreatesFile(t *testing.T) {
	f := newFakeService(t)
	path := filepath.Join(t.TempDir(), "home", ".aws", "credentials")
	if err := Update(context.Background(), f.options("ec", false), UpdateConfig{Path: path, Once: true}); err != nil {
		t.Fatal(err)
	}
	got := string(readFile(t, path))
	if !strings.HasPrefix(got, "[default]\naws_access_key_id = ASIATESTFAKE0001\n") {
		t.Errorf("file %q", got)
	}
}

// TestUpdateLoop: without --once the file is rewritten before expiry, and
// cancelling stops the loop cleanly.
func TestUpdateLoop(t *testing.T) {
	old := minUpdateSleep
	minUpdateSleep = 50 * time.Millisecond
	t.Cleanup(func() { minUpdateSleep = old })

	f := newFakeService(t)
	f.ttl = UpdateMargin // expiry − 5 min is now: update again at once
	path := filepath.Join(t.TempDir(), "credentials")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Update(ctx, f.options("ec", false), UpdateConfig{Path: path, Profile: "loop"}) }()
	// An Update that gives up early (a vector file missing, say) is seen at
	// once rather than after the whole wait.
	var err error
	returned := false
	deadline := time.After(10 * time.Second)
wait:
	for len(f.requests()) < 3 {
		select {
		case err = <-done:
			returned = true
			break wait
		case <-deadline:
			break wait
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if !returned {
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Update did not return within 10s of its context ending")
		}
	}
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	n := len(f.requests())
	if n < 3 {
		t.Fatalf("%d updates, want at least 3", n)
	}
	got := string(readFile(t, path))
	if strings.Count(got, "[loop]") != 1 || strings.Count(got, "aws_access_key_id") != 1 {
		t.Errorf("profile duplicated:\n%s", got)
	}
}

func TestUpdateStopsOnError(t *testing.T) {
	f := newFakeService(t)
	f.reply = func(int, seen) (int, http.Header, string) {
		return 403, http.Header{"X-Amzn-Errortype": {"AccessDeniedException"}}, `{"message":"no"}`
	}
	path := filepath.Join(t.TempDir(), "credentials")
	err := Update(context.Background(), f.options("ec", false), UpdateConfig{Path: path})
	if err == nil || !strings.Contains(err.Error(), "AccessDeniedException: no") {
		t.Fatalf("error %v", err)
	}
	if _, statErr := os.Stat(path); !os.IsNotExist(statErr) {
		t.Error("file written despite the error")
	}
}
