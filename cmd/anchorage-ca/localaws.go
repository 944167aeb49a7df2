package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/anchorage-pki/anchorage/caserver"
	"github.com/anchorage-pki/anchorage/localaws"
	"github.com/spf13/cobra"
)

// newLocalAWSCmd runs the strict local IAM Roles Anywhere + STS endpoint
// (package localaws) for scripts and tests that need "AWS" without AWS.
func newLocalAWSCmd() *cobra.Command {
	var (
		listen, stateFile, region, account string
		accessKeyID, secretAccessKey       string
		readyFile                          string
		noRateLimit                        bool
	)
	cmd := &cobra.Command{
		Use:   "localaws",
		Short: "Serve a strict local IAM Roles Anywhere and STS endpoint",
		Long: "Serve a local stand-in for IAM Roles Anywhere (CreateSession and the control plane) and\n" +
			"STS GetCallerIdentity on one plain-HTTP address. Control-plane calls must be SigV4-signed\n" +
			"with the admin key pair (--access-key-id/--secret-access-key, default the AWS_ACCESS_KEY_ID\n" +
			"and AWS_SECRET_ACCESS_KEY environment) or with session credentials it issued.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if accessKeyID == "" {
				accessKeyID = os.Getenv("AWS_ACCESS_KEY_ID")
			}
			if secretAccessKey == "" {
				secretAccessKey = os.Getenv("AWS_SECRET_ACCESS_KEY")
			}
			if accessKeyID == "" || secretAccessKey == "" {
				return errors.New("localaws: no admin key pair: pass --access-key-id and --secret-access-key or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
			}
			cfg := localaws.Config{
				Region: region, Account: account, AccessKeyID: accessKeyID, SecretAccessKey: secretAccessKey,
				StateFile: stateFile, Logger: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)),
			}
			if noRateLimit {
				cfg.RateLimits = localaws.NoRateLimits
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serveLocalAWS(ctx, cfg, listen, readyFile)
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:0", "address to listen on (port 0 picks a free port; see --ready-file)")
	f.StringVar(&stateFile, "state", "", "JSON file that keeps anchors, profiles, CRLs and issued credentials across restarts")
	f.StringVar(&region, "region", "us-east-1", "the one region this endpoint answers for")
	f.StringVar(&account, "account", "123456789012", "the 12-digit account that owns every resource")
	f.StringVar(&accessKeyID, "access-key-id", "", "admin access key id (default $AWS_ACCESS_KEY_ID)")
	f.StringVar(&secretAccessKey, "secret-access-key", "", "admin secret access key (default $AWS_SECRET_ACCESS_KEY)")
	f.StringVar(&readyFile, "ready-file", "", "write the base URL (http://HOST:PORT) to this file once listening")
	f.BoolVar(&noRateLimit, "no-rate-limit", false, "turn off the AWS request quotas (1/s per control-plane group, 10/s CreateSession)")
	return cmd
}

// serveLocalAWS listens, announces the URL, and serves until ctx ends, then
// shuts down gracefully.
func serveLocalAWS(ctx context.Context, cfg localaws.Config, listen, readyFile string) error {
	handler, err := localaws.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("localaws: listen on %s: %w", listen, err)
	}
	baseURL := "http://" + ln.Addr().String()
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if readyFile != "" {
		if err := caserver.WriteReadyFile(readyFile, baseURL); err != nil {
			_ = srv.Close()
			return err
		}
	}
	cfg.Logger.Info("localaws listening", "url", baseURL, "region", cfg.Region, "state", cfg.StateFile)
	select {
	case err := <-errc:
		return fmt.Errorf("localaws: serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("localaws: shutdown: %w", err)
	}
	return nil
}
