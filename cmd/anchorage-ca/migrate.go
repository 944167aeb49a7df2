package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/anchorage-pki/anchorage/storage"
	"github.com/anchorage-pki/anchorage/storage/postgres"
)

func newMigrateCmd() *cobra.Command {
	var from, to, passwordFile string
	cmd := &cobra.Command{
		Use:   "migrate --from DIR/anchorage.db --to postgres://USER@HOST/DB [--to-password-file F]",
		Short: "Copy a stopped CA's bbolt database into an empty PostgreSQL database",
		Long: `migrate copies every record of a bbolt database (certificates with their
lineages, revocations and the revocation sequence, lineage cuts, used token
ids, the newest CRL, anchor status, ACME state, admin records) into an empty
PostgreSQL database in one transaction, then verifies the counts of every
kind and the newest CRL. The CA must be stopped; a target holding any record
is refused. The config is not changed: migrate prints the "storage" section
to add.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return errors.New("migrate needs --from DIR/anchorage.db and --to postgres://…")
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			var password string
			if passwordFile != "" {
				b, err := os.ReadFile(passwordFile)
				if err != nil {
					return fmt.Errorf("--to-password-file: %w", err)
				}
				password = strings.TrimRight(string(b), "\r\n")
			}
			return migrate(ctx, cmd.OutOrStdout(), from, to, password, passwordFile)
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "the bbolt database (DIR/anchorage.db, or the CA directory); the CA must not be running")
	f.StringVar(&to, "to", "", "the empty PostgreSQL database (postgres://USER@HOST/DB?sslmode=verify-full)")
	f.StringVar(&passwordFile, "to-password-file", "", "file holding the PostgreSQL password, instead of one in the URL")
	return cmd
}

// migrate copies the bbolt database at from into the PostgreSQL database
// at to, verifies the copy and prints progress and a summary to out.
func migrate(ctx context.Context, out io.Writer, from, to, password, passwordFile string) error {
	start := time.Now()
	if fi, err := os.Stat(from); err == nil && fi.IsDir() {
		from = filepath.Join(from, "anchorage.db")
	}
	// ACME state that an older release kept in acme.db is imported into
	// the bbolt database by the CA's next start; PostgreSQL cannot import
	// it, so those accounts would be lost.
	if legacy := filepath.Join(filepath.Dir(from), "acme.db"); fileExists(legacy) {
		return fmt.Errorf("%s has not been imported yet: start the CA once on bbolt (it imports the ACME accounts and renames the file), stop it, then migrate", legacy)
	}
	src, err := storage.OpenWith(from, storage.OpenOptions{Logger: stderrLogger(os.Stderr)})
	if err != nil {
		return err
	}
	defer src.Close()
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	dst, err := postgres.Open(octx, to, postgres.Options{Password: password, MaxConns: 2})
	cancel()
	if err != nil {
		return err
	}
	defer dst.Close()
	target := describeURL(to)

	want, wantCtr, err := src.ExportCounts(ctx)
	if err != nil {
		return fmt.Errorf("read %s: %w", from, err)
	}
	fmt.Fprintf(out, "source %s: %s; revocation sequence %d, CRL number %d\n", from, want, wantCtr.RevSeq, wantCtr.CRL.Number)
	imp, err := dst.Import(ctx)
	if err != nil {
		if errors.Is(err, postgres.ErrNotEmpty) {
			return fmt.Errorf("refusing to migrate into %s: %w; migrate copies into an empty database only", target, err)
		}
		return err
	}
	committed := false
	defer func() {
		if !committed {
			imp.Rollback(ctx)
		}
	}()

	// Progress: a line every 1000 records of a kind and when a kind is done.
	var kind string
	var n int
	var srcCRL storage.CRL
	done := func() {
		if kind != "" && kind != storage.KindCounters {
			fmt.Fprintf(out, "%s %d/%d done\n", kind, n, want[kind])
		}
	}
	err = src.Export(ctx, func(r storage.Record) error {
		if r.Kind != kind {
			done()
			kind, n = r.Kind, 0
		}
		if r.Kind == storage.KindCounters {
			srcCRL = r.Counters.CRL
		}
		if err := imp.Add(ctx, r); err != nil {
			return err
		}
		n++
		if n%1000 == 0 {
			fmt.Fprintf(out, "%s %d/%d …\n", kind, n, want[kind])
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	done()
	if err := imp.Commit(ctx); err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	committed = true

	// Verify against what each side now holds.
	got, gotCtr, err := dst.ExportCounts(ctx)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	for _, k := range storage.Kinds {
		if k != storage.KindCounters && got[k] != want[k] {
			return fmt.Errorf("verify: %s has %d %s, %s has %d", from, want[k], k, target, got[k])
		}
	}
	crl, err := dst.CRL(ctx)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	switch {
	case gotCtr.RevSeq != wantCtr.RevSeq:
		return fmt.Errorf("verify: revocation sequence %d in %s, %d in %s", wantCtr.RevSeq, from, gotCtr.RevSeq, target)
	case crl.Number != srcCRL.Number || crl.Seq != srcCRL.Seq || !bytes.Equal(crl.DER, srcCRL.DER):
		return fmt.Errorf("verify: newest CRL is number %d (seq %d, %d bytes) in %s but number %d (seq %d, %d bytes) in %s",
			srcCRL.Number, srcCRL.Seq, len(srcCRL.DER), from, crl.Number, crl.Seq, len(crl.DER), target)
	}
	if err := verifyRecords(ctx, src, dst); err != nil {
		return fmt.Errorf("verify against %s: %w", target, err)
	}
	fmt.Fprintf(out, "copied into %s in %s and verified: %s; revocation sequence %d, CRL number %d (seq %d)\n",
		target, time.Since(start).Round(time.Millisecond), got, gotCtr.RevSeq, crl.Number, crl.Seq)
	fmt.Fprintf(out, "add to the CA's config.json, then start the CA (keep %s as a backup; do not start a CA on it again):\n", from)
	pw := ""
	if passwordFile != "" {
		if abs, err := filepath.Abs(passwordFile); err == nil {
			passwordFile = abs
		}
		pw = fmt.Sprintf(", %q: %q", "passwordFile", passwordFile)
	}
	fmt.Fprintf(out, "  \"storage\": {\"postgres\": {\"url\": %q%s}}\n", redactURL(to), pw)
	return nil
}

// verifyRecords compares what the CA reads back: every certificate record
// (as `certs` lists them) and every CRL-source entry. PostgreSQL keeps
// timestamps to the microsecond; the CA writes whole seconds.
func verifyRecords(ctx context.Context, src *storage.DB, dst *postgres.DB) error {
	a, err := src.ListCerts(ctx, storage.Filter{}, time.Now())
	if err != nil {
		return err
	}
	b, err := dst.ListCerts(ctx, storage.Filter{}, time.Now())
	if err != nil {
		return err
	}
	if len(a) != len(b) {
		return fmt.Errorf("%d certificates listed, %d in the source", len(b), len(a))
	}
	for i := range a {
		ja, err1 := json.Marshal(a[i])
		jb, err2 := json.Marshal(b[i])
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		if !bytes.Equal(ja, jb) {
			return fmt.Errorf("certificate %s differs from the source's", a[i].Serial)
		}
	}
	// The zero time selects every entry, expired ones included.
	ra, err := src.Revocations(ctx, time.Time{})
	if err != nil {
		return err
	}
	rb, err := dst.Revocations(ctx, time.Time{})
	if err != nil {
		return err
	}
	want := map[string]storage.Revocation{}
	for _, e := range ra.Entries {
		want[e.Serial] = e
	}
	if ra.Seq != rb.Seq || len(ra.Entries) != len(rb.Entries) {
		return fmt.Errorf("%d revocation entries at sequence %d, %d at %d in the source", len(rb.Entries), rb.Seq, len(ra.Entries), ra.Seq)
	}
	for _, e := range rb.Entries {
		w, ok := want[e.Serial]
		if !ok || w.Reason != e.Reason || !w.RevokedAt.Truncate(time.Microsecond).Equal(e.RevokedAt) || !w.NotAfter.Truncate(time.Microsecond).Equal(e.NotAfter) {
			return fmt.Errorf("revocation entry %s differs from the source's", e.Serial)
		}
	}
	return nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// describeURL names a database by host and name, never its password.
func describeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the PostgreSQL database"
	}
	host := u.Host
	if host == "" {
		host = u.Query().Get("host") // a unix socket directory
	}
	return "PostgreSQL " + host + u.Path
}

// redactURL drops a password from a URL for printing.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	}
	return u.String()
}
