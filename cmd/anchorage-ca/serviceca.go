package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/anchorage-pki/anchorage/caserver"
	"github.com/anchorage-pki/anchorage/config"
)

// newServiceCACmd makes the service intermediate for a CA made before it
// existed, so the API's TLS certificate stops being signed by the issuing
// CA (a trust anchor). It writes two files and needs no database, so serve
// may keep running.
func newServiceCACmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "service-ca --dir DIR",
		Short: "Make the service intermediate that signs the API's TLS certificate (CAs made before it; needs root.key)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return fmt.Errorf("--dir is required")
			}
			cfg, err := config.Load(dir)
			if err != nil {
				return err
			}
			cert, made, err := caserver.MakeServiceCA(cmd.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				return err
			}
			path, _ := cfg.ServiceCAPaths()
			if !made {
				fmt.Fprintf(cmd.OutOrStdout(), "%s already exists (%s); nothing to do.\n", path, cert.Subject.CommonName)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Made %s (%s, never a trust anchor); move %s offline again.\n", path, cert.Subject.CommonName, cfg.Path(cfg.Paths.RootKey))
			fmt.Fprintf(cmd.OutOrStdout(), "Send SIGHUP to anchorage-ca serve (systemctl reload) or restart it: it re-issues tls.pem from the service intermediate.\n")
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "CA directory")
	return cmd
}
