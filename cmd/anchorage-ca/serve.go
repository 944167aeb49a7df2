package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/anchorage-pki/anchorage/caserver"
	"github.com/anchorage-pki/anchorage/config"
)

func newServeCmd() *cobra.Command {
	var dir, listen, readyFile, logFormat, db string
	cmd := &cobra.Command{
		Use:   "serve --dir DIR [--listen ADDR]",
		Short: "Serve enrollment, renewal, revocation and CRLs over HTTPS",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return fmt.Errorf("--dir is required")
			}
			cfg, err := config.Load(dir)
			if err != nil {
				return err
			}
			if listen != "" {
				cfg.Listen = listen
			}
			if db != "" {
				if err := cfg.UsePostgres("--db", db); err != nil {
					return err
				}
			}
			var h slog.Handler = slog.NewTextHandler(os.Stderr, nil)
			if logFormat == "json" {
				h = slog.NewJSONHandler(os.Stderr, nil)
			}
			log := slog.New(h)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			srv, err := caserver.Open(ctx, cfg, log)
			if err != nil {
				return err
			}
			defer srv.Close()
			ln, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			addr := ln.Addr().String()
			log.Info("CA listening", "addr", addr, "url", cfg.URL)
			if readyFile != "" {
				if err := caserver.WriteReadyFile(readyFile, "https://"+addr); err != nil {
					return err
				}
			}
			// SIGHUP (systemctl reload) applies trust anchors added to
			// config.json since start.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
						if err := srv.Reload(ctx); err != nil {
							log.Error("reload failed; keeping the running configuration", "err", err)
						}
					}
				}
			}()
			return srv.Serve(ctx, ln)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "CA directory")
	f.StringVar(&listen, "listen", "", "listen address (default from config)")
	f.StringVar(&readyFile, "ready-file", "", "write the listening URL here once serving")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&db, "db", "", `keep the records in this PostgreSQL database (postgres://USER@HOST/DB?sslmode=verify-full) instead of the config's "storage"`)
	return cmd
}
