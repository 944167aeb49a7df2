package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/anchorage-pki/anchorage/audit"
	"github.com/anchorage-pki/anchorage/caserver"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/storage"
)

// auditFlags are the options of `anchorage-ca audit`.
type auditFlags struct {
	dir, endpoint, region string
	format, html, failOn  string
	json                  bool
	noSubjects, noSave    bool
	keepGoing             bool
	timeout               time.Duration
}

func newAuditCmd() *cobra.Command {
	var f auditFlags
	cmd := &cobra.Command{
		Use:   "audit --dir DIR [--endpoint URL] [--json | --format table|json|dot] [--html FILE] [--fail-on high|medium|low]",
		Short: "Report which certificate can become which AWS role, with what permissions, and what looks wrong",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runAudit(cmd, &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dir, "dir", "", "CA directory")
	fl.StringVar(&f.endpoint, "endpoint", "", "Roles Anywhere/IAM/STS endpoint URL for every account (localaws); AWS's by default")
	fl.StringVar(&f.region, "region", "us-east-1", "region when --endpoint is given and config names no account")
	fl.StringVar(&f.format, "format", "table", "output: table, json or dot")
	fl.BoolVar(&f.json, "json", false, "same as --format json")
	fl.StringVar(&f.html, "html", "", "also write a self-contained HTML page of the map to FILE")
	fl.StringVar(&f.failOn, "fail-on", "", "exit non-zero when a finding at or above this severity (high, medium, low) exists")
	fl.BoolVar(&f.noSubjects, "no-subjects", false, "skip ListSubjects/GetSubject (one call per subject at 1 request/s); no anomalies")
	fl.BoolVar(&f.noSave, "no-save", false, "do not store this audit's snapshot for the next one")
	fl.BoolVar(&f.keepGoing, "keep-going", false, "report an unreadable account as a finding instead of failing")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Minute, "give up after this long")
	return cmd
}

// errFindings is returned by --fail-on; the report is printed already.
type errFindings struct {
	n   int
	sev audit.Severity
}

func (e *errFindings) Error() string {
	s := "s"
	if e.n == 1 {
		s = ""
	}
	return fmt.Sprintf("audit: %d finding%s at severity %s or above", e.n, s, e.sev)
}

func runAudit(cmd *cobra.Command, f *auditFlags) error {
	if f.json {
		f.format = "json"
	}
	switch f.format {
	case "table", "json", "dot":
	default:
		return fmt.Errorf("--format: want table, json or dot, got %q", f.format)
	}
	var failOn audit.Severity
	if f.failOn != "" {
		var ok bool
		if failOn, ok = audit.ParseSeverity(f.failOn); !ok {
			return fmt.Errorf("--fail-on: want high, medium or low, got %q", f.failOn)
		}
	}
	if f.dir == "" {
		return errors.New("--dir is required")
	}
	cfg, err := config.Load(f.dir)
	if err != nil {
		return err
	}
	targets, err := auditTargets(cfg, f.endpoint, f.region)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	stderr := cmd.ErrOrStderr()
	began := time.Now()
	progress := func(format string, args ...any) {
		fmt.Fprintf(stderr, "audit: %5.1fs "+format+"\n", append([]any{time.Since(began).Seconds()}, args...)...)
	}

	w := &audit.World{Now: time.Now(), MaxLifetime: cfg.AuditLifetime(), Issued: map[string]bool{}}
	if w.CA, err = readCAs(cfg); err != nil {
		return err
	}
	st, err := caserver.OpenStore(ctx, cfg, stderrLogger(stderr))
	if err != nil {
		return err
	}
	defer st.Close()
	if err := loadCerts(ctx, st, w); err != nil {
		return err
	}
	snap, err := st.AuditSnapshot(ctx)
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return fmt.Errorf("audit snapshot: %w", err)
	default:
		if w.Previous, err = audit.DecodeSnapshot(snap.Data); err != nil {
			return err
		}
	}
	fetchStart := time.Now()
	src := &audit.AWSSource{Subjects: !f.noSubjects, Progress: progress}
	for _, t := range targets {
		a, err := src.Account(ctx, t)
		if err != nil {
			if !f.keepGoing {
				return fmt.Errorf("audit: %w", err)
			}
			a = &audit.Account{Name: t.Name, Region: t.Region, Err: err}
		}
		w.Accounts = append(w.Accounts, a)
	}
	progress("%d live certificates of this CA; %d accounts read in %s", len(w.Certs), len(w.Accounts), time.Since(fetchStart).Round(time.Millisecond))
	w.Progress = progress
	analyseStart := time.Now()
	r := audit.Analyze(w)
	progress("analysed in %s", time.Since(analyseStart).Round(time.Millisecond))

	out := cmd.OutOrStdout()
	switch f.format {
	case "json":
		err = r.WriteJSON(out)
	case "dot":
		err = r.WriteDot(out)
	default:
		err = r.WriteTable(out)
	}
	if err != nil {
		return err
	}
	if f.html != "" {
		if err := writeFile(f.html, r.WriteHTML); err != nil {
			return fmt.Errorf("--html: %w", err)
		}
		progress("wrote %s", f.html)
	}
	if !f.noSave {
		data, err := audit.EncodeSnapshot(r.NextSnapshot())
		if err != nil {
			return err
		}
		if err := st.PutAuditSnapshot(ctx, storage.AuditSnapshot{TakenAt: w.Now.UTC(), Data: data}); err != nil {
			return fmt.Errorf("save audit snapshot: %w", err)
		}
	}
	if failOn != "" {
		if n := r.Count(failOn); n > 0 {
			return &errFindings{n: n, sev: failOn}
		}
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(fh); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

// auditTargets are the accounts to read: audit.accounts, else one per
// account and region of trustAnchors, else (with --endpoint) the one the
// endpoint's credentials belong to. --endpoint replaces every endpoint.
func auditTargets(cfg *config.CA, endpoint, region string) ([]audit.Target, error) {
	var ts []audit.Target
	if cfg.Audit != nil && len(cfg.Audit.Accounts) > 0 {
		for _, a := range cfg.Audit.Accounts {
			ts = append(ts, audit.Target{Name: a.Name, Region: a.Region, Endpoint: a.Endpoint, Profile: a.Profile})
		}
	} else {
		seen := map[string]bool{}
		for _, ta := range cfg.TrustAnchors {
			parts := strings.Split(ta.ARN, ":")
			if len(parts) < 6 {
				continue
			}
			reg := parts[3]
			if ta.Region != "" {
				reg = ta.Region
			}
			name := parts[4] + "-" + reg
			if !seen[name] {
				seen[name] = true
				ts = append(ts, audit.Target{Name: name, Region: reg, Endpoint: ta.Endpoint})
			}
		}
	}
	if len(ts) == 0 {
		if endpoint == "" {
			return nil, errors.New(`audit: no AWS account to read: add "audit": {"accounts": [{"name": ..., "region": ...}]} or "trustAnchors" to config.json, or pass --endpoint`)
		}
		ts = append(ts, audit.Target{Name: "default", Region: region})
	}
	if endpoint != "" {
		for i := range ts {
			ts[i].Endpoint = endpoint
		}
	}
	return ts, nil
}

// readCAs reads the issuing CA certificate (with whatever chain the file
// holds) and the root: the certificates this CA's leaves chain to.
func readCAs(cfg *config.CA) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for _, p := range []string{cfg.Paths.CACert, cfg.Paths.Root} {
		data, err := os.ReadFile(cfg.Path(p))
		if err != nil {
			return nil, fmt.Errorf("CA certificate: %w", err)
		}
		for {
			var b *pem.Block
			if b, data = pem.Decode(data); b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("CA certificate %s: %w", p, err)
			}
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("CA certificate %s: no certificate in it", cfg.Path(cfg.Paths.CACert))
	}
	return out, nil
}

// loadCerts reads the live workload certificates of the issuing CA (admin
// certificates come from the admin intermediate and the API's TLS
// certificate from the service intermediate, which no trust anchor holds;
// a legacy TLS certificate of the issuing CA stays in) and the serial of
// every certificate ever recorded.
func loadCerts(ctx context.Context, st storage.Backend, w *audit.World) error {
	all, err := st.ListCerts(ctx, storage.Filter{}, w.Now)
	if err != nil {
		return fmt.Errorf("list certificates: %w", err)
	}
	for _, c := range all {
		w.Issued[c.Serial] = true
		if c.Status != storage.StatusValid || c.Expired(w.Now) || c.Undelivered || !c.Method.OnCRL() {
			continue
		}
		x, err := x509.ParseCertificate(c.DER)
		if err != nil {
			return fmt.Errorf("certificate %s: %w", c.Serial, err)
		}
		if c.Method == storage.MethodTLS && !issuedBy(x, w.CA) {
			// The API's own certificate from the service intermediate,
			// which no trust anchor holds: not an AWS identity.
			continue
		}
		keyID := c.KeyID
		if keyID == "" {
			s := sha256.Sum256(x.RawSubjectPublicKeyInfo)
			keyID = hex.EncodeToString(s[:])
		}
		w.Certs = append(w.Certs, audit.Cert{Serial: c.Serial, Cert: x, KeyID: keyID, Lineage: c.LineageID()})
	}
	sort.Slice(w.Certs, func(i, j int) bool { return w.Certs[i].Serial < w.Certs[j].Serial })
	return nil
}

// issuedBy reports whether one of cas signed c.
func issuedBy(c *x509.Certificate, cas []*x509.Certificate) bool {
	for _, ca := range cas {
		if bytes.Equal(c.RawIssuer, ca.RawSubject) && c.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}
