package rolesanywhere

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/anchorage-pki/anchorage/atomicfile"
)

// UpdateMargin is how long before expiry update fetches new credentials.
const UpdateMargin = 5 * time.Minute

// minUpdateSleep keeps a server that returns very short-lived credentials
// from turning the update loop into a busy loop.
var minUpdateSleep = 10 * time.Second

// UpdateConfig holds the update command's own settings.
type UpdateConfig struct {
	// Profile is the section to write; "" means "default".
	Profile string
	// Once writes one set of credentials and returns.
	Once bool
	// Path of the credentials file; "" means CredentialsFilePath().
	Path string
	// Stderr gets progress lines; nil means discarded.
	Stderr io.Writer
}

// CredentialsFilePath is $AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials.
func CredentialsFilePath() (string, error) {
	if p := os.Getenv("AWS_SHARED_CREDENTIALS_FILE"); p != "" {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("locate credentials file: %w", err)
	}
	return filepath.Join(home, ".aws", "credentials"), nil
}

// Update writes credentials into the shared credentials file and, unless
// Once is set, rewrites them UpdateMargin before they expire, until ctx
// ends. Any CreateSession error ends the loop, as in the helper: a
// supervisor restarting us is clearer than stale credentials.
func Update(ctx context.Context, opts Options, uc UpdateConfig) error {
	if uc.Profile == "" {
		uc.Profile = "default"
	}
	if strings.ContainsAny(uc.Profile, "[]\r\n") {
		return fmt.Errorf("invalid profile name %q", uc.Profile)
	}
	path := uc.Path
	if path == "" {
		var err error
		if path, err = CredentialsFilePath(); err != nil {
			return err
		}
	}
	if uc.Stderr == nil {
		uc.Stderr = io.Discard
	}
	out := log.New(uc.Stderr, "", log.LstdFlags)
	client, src, err := opts.open(ctx)
	if err != nil {
		return err
	}
	// In the loop, the context ending is the way to stop, wherever it
	// lands: mid-request it is as clean a stop as mid-sleep. With Once it
	// means the one write did not happen, so that stays an error.
	stopped := func(err error) error {
		if !uc.Once && ctx.Err() != nil {
			return nil
		}
		return err
	}
	for {
		id, err := src.Identity(ctx)
		if err != nil {
			return stopped(err)
		}
		sess, err := client.CreateSession(ctx, id)
		if err != nil {
			return stopped(err)
		}
		if err := UpdateCredentialsFile(path, uc.Profile, sess.Credentials); err != nil {
			return err
		}
		if uc.Once {
			return nil
		}
		if sess.Credentials.Expires.IsZero() {
			return fmt.Errorf("cannot schedule the next update: expiration %q is not RFC 3339", sess.Credentials.Expiration)
		}
		wait := max(time.Until(sess.Credentials.Expires.Add(-UpdateMargin)), minUpdateSleep)
		out.Printf("Credentials for profile %s written to %s; next update in %s", uc.Profile, path, wait.Round(time.Second))
		if err := sleep(ctx, wait); err != nil {
			return nil // cancelled: a clean stop
		}
	}
}

// UpdateCredentialsFile writes c into [profile] of the file at path,
// keeping every other line. The new file replaces the old one atomically
// (temp file, fsync, rename), so a reader never sees half a file.
func UpdateCredentialsFile(path, profile string, c Credentials) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read credentials file: %w", err)
	}
	// Replace the target of a symlink, not the link itself.
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		path = resolved
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create credentials directory: %w", err)
	}
	return atomicfile.Write(path, SetProfile(old, profile, c), 0o600)
}

// SetProfile returns content with the three credential keys of [profile]
// set to c, the way the helper edits the file: existing keys are replaced
// in place, missing ones go at the end of the section (before the next
// section header), and a missing section is appended at the end.
func SetProfile(content []byte, profile string, c Credentials) []byte {
	keys := []struct{ name, value string }{
		{"aws_access_key_id", c.AccessKeyID},
		{"aws_secret_access_key", c.SecretAccessKey},
		{"aws_session_token", c.SessionToken},
	}
	text := string(content)
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	lines := strings.SplitAfter(text, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}

	start, end := -1, len(lines)
	for i, l := range lines {
		name, ok := sectionName(l)
		if !ok {
			continue
		}
		if start >= 0 {
			end = i
			break
		}
		if name == profile {
			start = i
		}
	}
	if start < 0 {
		var b strings.Builder
		b.WriteString(text)
		b.WriteString("[" + profile + "]\n")
		for _, k := range keys {
			b.WriteString(k.name + " = " + k.value + "\n")
		}
		b.WriteString("\n")
		return []byte(b.String())
	}

	var missing []string
	for _, k := range keys {
		found := false
		for i := start + 1; i < end; i++ {
			if lineKey(lines[i]) == k.name {
				lines[i] = k.name + " = " + k.value + "\n"
				found = true
			}
		}
		if !found {
			missing = append(missing, k.name+" = "+k.value+"\n")
		}
	}
	out := append([]string{}, lines[:end]...)
	out = append(out, missing...)
	out = append(out, lines[end:]...)
	return []byte(strings.Join(out, ""))
}

// sectionName returns the name in a "[name]" line.
func sectionName(line string) (string, bool) {
	l := strings.TrimSpace(line)
	if len(l) < 2 || l[0] != '[' || l[len(l)-1] != ']' {
		return "", false
	}
	return strings.TrimSpace(l[1 : len(l)-1]), true
}

// lineKey returns the key of a "key = value" line, or "".
func lineKey(line string) string {
	k, _, ok := strings.Cut(line, "=")
	if !ok {
		return ""
	}
	return strings.ToLower(strings.TrimSpace(k))
}
