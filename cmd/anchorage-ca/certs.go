package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newCertsCmd() *cobra.Command {
	var a adminFlags
	var subject, status string
	var limit int
	cmd := &cobra.Command{
		Use:   "certs [--subject CN] [--status valid|revoked|expired] [--dir DIR | --ca URL --root ROOT --admin-cert F --admin-key F]",
		Short: "List issued certificates",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client(true)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			list, err := c.Certs(ctx, subject, status, limit)
			if err != nil {
				return fmt.Errorf("list: %w", err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SERIAL\tSUBJECT\tSTATUS\tMETHOD\tLINEAGE\tNOT AFTER\tSANS")
			for _, c := range list.Certs {
				st := c.Status
				if c.Reason != "" {
					st += " (" + c.Reason + ")"
				}
				if c.Undelivered {
					st += " never delivered"
				}
				if c.RevokedWith != "" {
					st += " revoked with " + c.RevokedWith
				}
				if c.Status == "valid" && c.RenewedTo != "" {
					st += " superseded by " + c.RenewedTo
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Serial, c.Subject, st, c.Method, c.Lineage, c.NotAfter.UTC().Format(time.RFC3339), strings.Join(c.SANs, ","))
			}
			return tw.Flush()
		},
	}
	a.register(cmd, true)
	f := cmd.Flags()
	f.StringVar(&subject, "subject", "", "only this subject CN")
	f.StringVar(&status, "status", "", "only valid, revoked or expired")
	f.IntVar(&limit, "limit", 0, "at most this many")
	return cmd
}
