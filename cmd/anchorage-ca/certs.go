package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/anchorage-pki/anchorage/apiv1"
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
			// Page by page, each printed as it arrives: memory stays one
			// page whatever the CA holds, and --limit stops the listing.
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			cursor, printed := "", 0
			for {
				size := certsPage
				if limit > 0 {
					size = min(size, limit-printed)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				list, err := c.Certs(ctx, subject, status, size, cursor)
				cancel()
				if err != nil {
					return fmt.Errorf("list: %w", err)
				}
				if cursor == "" {
					fmt.Fprintln(tw, "SERIAL\tSUBJECT\tSTATUS\tMETHOD\tLINEAGE\tNOT AFTER\tSANS")
				}
				for _, c := range list.Certs {
					printCert(tw, c)
				}
				printed += len(list.Certs)
				if err := tw.Flush(); err != nil {
					return err
				}
				if list.Next == "" || (limit > 0 && printed >= limit) {
					return nil
				}
				cursor = list.Next
			}
		},
	}
	a.register(cmd, true)
	f := cmd.Flags()
	f.StringVar(&subject, "subject", "", "only this subject CN")
	f.StringVar(&status, "status", "", "only valid, revoked or expired")
	f.IntVar(&limit, "limit", 0, "at most this many (default: all, fetched a page at a time)")
	return cmd
}

// certsPage is how many certificates `certs` asks for at a time.
const certsPage = 500

func printCert(tw *tabwriter.Writer, c apiv1.CertInfo) {
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
