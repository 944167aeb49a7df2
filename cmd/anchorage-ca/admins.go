package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/anchorage-pki/anchorage/api"
	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/atomicfile"
	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/caclient"
	"github.com/anchorage-pki/anchorage/caserver"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/events"
	"github.com/anchorage-pki/anchorage/signer"
	"github.com/anchorage-pki/anchorage/storage"
)

// newAdminCmd groups the commands that manage admin client certificates.
// They go through the running CA's API (serve holds the database), as an
// admin: one admin issues another, and `revoke --serial` cuts one.
func newAdminCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Issue and list admin client certificates",
	}
	cmd.AddCommand(newAdminIssueCmd(), newAdminListCmd())
	return cmd
}

func newAdminIssueCmd() *cobra.Command {
	var a adminFlags
	var name, outCert, outKey string
	var lifetime time.Duration
	var local bool
	cmd := &cobra.Command{
		Use:   "issue --name WHO [--lifetime 720h] [--out-cert F --out-key F] [--dir DIR | --ca URL --root ROOT --admin-cert F --admin-key F | --dir DIR --local]",
		Short: "Issue an admin client certificate for a person or a tool (the key is made here and never sent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return fmt.Errorf("--name is required")
			}
			if (outCert == "" || outKey == "") && strings.ContainsAny(name, `/\`) {
				return fmt.Errorf("--name %q has a path separator: give --out-cert and --out-key", name)
			}
			if outCert == "" {
				outCert = name + "-admin.crt"
			}
			if outKey == "" {
				outKey = name + "-admin.key"
			}
			for _, p := range []string{outCert, outKey} {
				if _, err := os.Stat(p); err == nil {
					return fmt.Errorf("%s already exists: refusing to overwrite it", p)
				}
			}
			if local && a.dir == "" {
				return fmt.Errorf("--local needs --dir")
			}
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return err
			}
			csr, err := caclient.NewCSR(key, name, nil)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var res *apiv1.CertResponse
			if local {
				res, err = issueAdminLocal(ctx, a.dir, name, csr, lifetime)
			} else {
				res, err = issueAdminAPI(ctx, &a, name, csr, lifetime)
			}
			if err != nil {
				return fmt.Errorf("admin issue: %w", err)
			}
			if err := signer.WriteFile(outKey, key); err != nil {
				return err
			}
			if err := atomicfile.Write(outCert, []byte(res.Chain), 0o644); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "issued admin certificate %s for %q, valid until %s\n", res.Serial, res.Subject, res.NotAfter.UTC().Format(time.RFC3339))
			fmt.Fprintf(out, "  certificate %s\n  key         %s  (keep it private; revoke with: anchorage-ca revoke --serial %s)\n", outCert, outKey, res.Serial)
			return nil
		},
	}
	a.register(cmd, true)
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "who the certificate is for (its subject CN)")
	f.DurationVar(&lifetime, "lifetime", 0, "how long it is valid (default 720h = 30 days; at most 2160h)")
	f.StringVar(&outCert, "out-cert", "", "write the certificate chain here (default NAME-admin.crt)")
	f.StringVar(&outKey, "out-key", "", "write the private key here, mode 0600 (default NAME-admin.key)")
	f.BoolVar(&local, "local", false, "break-glass with serve stopped: sign with DIR's admin intermediate and record in DIR's database directly")
	return cmd
}

// issueAdminAPI asks the running CA, as an admin.
func issueAdminAPI(ctx context.Context, a *adminFlags, name string, csr []byte, lifetime time.Duration) (*apiv1.CertResponse, error) {
	c, err := a.client(true)
	if err != nil {
		return nil, err
	}
	req := apiv1.AdminRequest{Name: name, CSR: string(csr)}
	if lifetime > 0 {
		req.Lifetime = lifetime.String()
	}
	return c.IssueAdmin(ctx, req)
}

// issueAdminLocal signs with the CA directory's admin intermediate and
// records the certificate in its database, which, with the bbolt file,
// only works while serve is stopped (it holds the file lock); a PostgreSQL
// database ("storage.postgres") takes the record while replicas run. Whoever can read the admin
// intermediate's key and write the database has this power anyway; the
// flag only makes it usable when no admin certificate is left.
func issueAdminLocal(ctx context.Context, dir, name string, csrPEM []byte, lifetime time.Duration) (*apiv1.CertResponse, error) {
	cfg, err := config.Load(dir)
	if err != nil {
		return nil, err
	}
	store, err := caserver.OpenStore(ctx, cfg, stderrLogger(os.Stderr))
	if err != nil {
		return nil, err
	}
	defer store.Close()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	adm, err := caserver.AdminIssuer(ctx, cfg, store, log)
	if err != nil {
		return nil, err
	}
	csr, err := api.ParseCSR(string(csrPEM))
	if err != nil {
		return nil, err
	}
	// No admin certificate asked: record the host the break-glass ran on.
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	iss, err := adm.Issue(ctx, ca.AdminRequest{Name: name, CSR: csr, Lifetime: lifetime, By: "local", IssuedBy: "local:" + host})
	if err != nil {
		return nil, err
	}
	// Recorded, as it is stored already; a break-glass admin is what an
	// audit most needs to see.
	if err := emitLocal(cfg, events.Event{Event: events.Issue, Serial: iss.Record.Serial, Subject: name, Lineage: iss.Record.LineageID(),
		Method: string(storage.MethodAdmin), Result: events.OK, Reason: "break-glass"}); err != nil {
		return nil, err
	}
	r := api.CertResponse(iss)
	return &r, nil
}

func newAdminListCmd() *cobra.Command {
	var a adminFlags
	cmd := &cobra.Command{
		Use:   "list [--dir DIR | --ca URL --root ROOT --admin-cert F --admin-key F]",
		Short: "List admin client certificates and their status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client(true)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			list, err := c.Admins(ctx)
			if err != nil {
				return fmt.Errorf("admin list: %w", err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SERIAL\tNAME\tSTATUS\tNOT AFTER\tISSUED BY")
			for _, c := range list.Certs {
				st := c.Status
				if c.Reason != "" {
					st += " (" + c.Reason + ")"
				}
				if c.IssuerRevoked != "" {
					// What a leaked admin left behind: revoke it too.
					st += ", issued by revoked " + c.IssuerRevoked
				}
				by := c.IssuedBy
				if by == "" {
					by = "-" // recorded before the CA kept who issued admins
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Serial, c.Subject, st, c.NotAfter.UTC().Format(time.RFC3339), by)
			}
			return tw.Flush()
		},
	}
	a.register(cmd, true)
	return cmd
}
