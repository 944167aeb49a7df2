package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/anchorage-pki/anchorage/ca"
)

func newCRLCmd() *cobra.Command {
	var a adminFlags
	var asPEM bool
	cmd := &cobra.Command{
		Use:   "crl [--dir DIR | --ca URL --root ROOT] [--pem]",
		Short: "Print the CA's current CRL",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client(false)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			der, err := c.CRL(ctx)
			if err != nil {
				return fmt.Errorf("fetch CRL: %w", err)
			}
			out := cmd.OutOrStdout()
			if asPEM {
				return pem.Encode(out, &pem.Block{Type: "X509 CRL", Bytes: der})
			}
			rl, err := x509.ParseRevocationList(der)
			if err != nil {
				return fmt.Errorf("CA sent a CRL that does not parse: %w", err)
			}
			fmt.Fprintf(out, "Issuer:      %s\n", rl.Issuer)
			fmt.Fprintf(out, "CRL number:  %s\n", rl.Number)
			fmt.Fprintf(out, "This update: %s\n", rl.ThisUpdate.UTC().Format(time.RFC3339))
			fmt.Fprintf(out, "Next update: %s\n", rl.NextUpdate.UTC().Format(time.RFC3339))
			fmt.Fprintf(out, "Entries:     %d\n", len(rl.RevokedCertificateEntries))
			for _, e := range rl.RevokedCertificateEntries {
				fmt.Fprintf(out, "  %s  revoked %s  %s\n", ca.SerialHex(e.SerialNumber), e.RevocationTime.UTC().Format(time.RFC3339), ca.ReasonName(e.ReasonCode))
			}
			return nil
		},
	}
	a.register(cmd, false)
	cmd.Flags().BoolVar(&asPEM, "pem", false, "print the CRL as PEM instead of text")
	return cmd
}
