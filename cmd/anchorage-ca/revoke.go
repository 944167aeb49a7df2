package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/anchorage-pki/anchorage/apiv1"
)

func newRevokeCmd() *cobra.Command {
	var a adminFlags
	var serial, subject, reason string
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "revoke (--serial HEX | --subject CN) [--reason keyCompromise] [--dir DIR | --ca URL --root ROOT --admin-cert F --admin-key F]",
		Short: "Revoke one certificate, or every live certificate of a host, and publish a new CRL",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (serial == "") == (subject == "") {
				return fmt.Errorf("give exactly one of --serial or --subject")
			}
			c, err := a.client(true)
			if err != nil {
				return err
			}
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), max(timeout, time.Minute))
			defer cancel()
			res, err := c.Revoke(ctx, apiv1.RevokeRequest{Serial: serial, Subject: subject, Reason: reason})
			if err != nil {
				return fmt.Errorf("revoke: %w", err)
			}
			out := cmd.OutOrStdout()
			for _, r := range res.Revoked {
				with := ""
				if r.RevokedWith != "" {
					with = ", renewed from " + r.RevokedWith
				}
				fmt.Fprintf(out, "revoked %s  %s  (%s at %s%s)\n", r.Serial, r.Subject, r.Reason, r.RevokedAt.UTC().Format(time.RFC3339), with)
			}
			for _, r := range res.AlreadyRevoked {
				fmt.Fprintf(out, "already revoked %s  %s  (%s at %s)\n", r.Serial, r.Subject, r.Reason, r.RevokedAt.UTC().Format(time.RFC3339))
			}
			for _, r := range res.IssuedByRevoked {
				via := ""
				if r.IssuedBy != r.IssuerRevoked {
					via = " (through admin " + r.IssuedBy + ")"
				}
				fmt.Fprintf(out, "note: admin %s  %s  issued by the revoked admin %s%s is still valid until %s: revoke it with --serial %s\n",
					r.Serial, r.Subject, r.IssuerRevoked, via, r.NotAfter.UTC().Format(time.RFC3339), r.Serial)
			}
			if res.CRLNumber > 0 {
				fmt.Fprintf(out, "CRL number %d published\n", res.CRLNumber)
			} else {
				fmt.Fprintf(out, "revocation committed (sequence %d); the CA has not built its CRL yet\n", res.RevocationSeq)
			}
			if !wait {
				return nil
			}
			wctx, wcancel := context.WithDeadline(context.Background(), start.Add(timeout))
			defer wcancel()
			want := res.CRLNumber
			if want == 0 {
				if want, err = waitCRL(wctx, c, res.RevocationSeq); err != nil {
					return err
				}
				fmt.Fprintf(out, "CRL number %d published\n", want)
			}
			_, err = waitAnchors(wctx, c, want, start, cmd)
			return err
		},
	}
	a.register(cmd, true)
	f := cmd.Flags()
	f.StringVar(&serial, "serial", "", "serial number (hex) of the certificate to revoke")
	f.StringVar(&subject, "subject", "", "revoke every live certificate with this subject CN")
	f.BoolVar(&wait, "wait", false, "return only when every trust anchor holds the new CRL")
	f.DurationVar(&timeout, "timeout", 60*time.Second, "with --wait: give up (non-zero exit) after this long")
	f.StringVar(&reason, "reason", "", "RFC 5280 reason: keyCompromise, superseded, cessationOfOperation, affiliationChanged, ... (default unspecified)")
	return cmd
}
