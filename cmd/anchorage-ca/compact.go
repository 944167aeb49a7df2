package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/storage"
)

func newCompactCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "compact --dir DIR",
		Short: "Rewrite a stopped CA's bbolt database into a smaller file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return errors.New("compact needs --dir DIR")
			}
			cfg, err := config.Load(dir)
			if err != nil {
				return err
			}
			if cfg.Storage != nil && cfg.Storage.Postgres != nil {
				return errors.New("compact rewrites a bbolt database; this CA keeps its records in PostgreSQL (use VACUUM there)")
			}
			path := cfg.Path(cfg.Paths.DB)
			res, err := storage.CompactWith(path, storage.OpenOptions{Logger: stderrLogger(cmd.ErrOrStderr())})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Compacted %s: %s to %s.\n", path, mib(res.Before), mib(res.After))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "CA directory; the CA must not be running")
	return cmd
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// stderrLogger is the logger of a command that opens the bbolt file
// itself: a migration of a file from an older release (it can take half a
// minute at a million certificates) is said on stderr, not done silently.
func stderrLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
