package main

import (
	"bytes"
	"context"
	"encoding/json"
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
		readyFile, accountsFile            string
		noRateLimit                        bool
	)
	cmd := &cobra.Command{
		Use:   "localaws",
		Short: "Serve a strict local IAM Roles Anywhere, IAM and STS endpoint",
		Long: "Serve a local stand-in for IAM Roles Anywhere (CreateSession and the control plane), IAM\n" +
			"(roles, trust policies, inline and managed role policies: `aws iam ... --endpoint-url`) and\n" +
			"STS GetCallerIdentity on one plain-HTTP address. Calls must be SigV4-signed with an admin key\n" +
			"pair or with session credentials it issued; CreateSession evaluates the role's trust policy.\n" +
			"\n" +
			"Accounts: --account with --access-key-id/--secret-access-key (default the AWS_ACCESS_KEY_ID\n" +
			"and AWS_SECRET_ACCESS_KEY environment) is the default account. --accounts FILE adds more, each\n" +
			"with its own admin key pair; a request's access key selects its account:\n" +
			"\n" +
			"  {\"accounts\": [{\"id\": \"210987654321\", \"accessKeyId\": \"AKID...\", \"secretAccessKey\": \"...\"}]}",
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
			if accountsFile != "" {
				accounts, err := readAccountsFile(accountsFile)
				if err != nil {
					return err
				}
				cfg.Accounts = accounts
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
	f.StringVar(&account, "account", "123456789012", "the 12-digit default account (the one of --access-key-id)")
	f.StringVar(&accountsFile, "accounts", "", "JSON file listing further accounts and their admin key pairs (see above)")
	f.StringVar(&accessKeyID, "access-key-id", "", "admin access key id (default $AWS_ACCESS_KEY_ID)")
	f.StringVar(&secretAccessKey, "secret-access-key", "", "admin secret access key (default $AWS_SECRET_ACCESS_KEY)")
	f.StringVar(&readyFile, "ready-file", "", "write the base URL (http://HOST:PORT) to this file once listening")
	f.BoolVar(&noRateLimit, "no-rate-limit", false, "turn off the AWS request quotas (1/s per control-plane group, 10/s CreateSession)")
	return cmd
}

// readAccountsFile decodes an --accounts file strictly: unknown keys and
// trailing data are errors that name the file.
func readAccountsFile(path string) ([]localaws.Account, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("localaws: --accounts: %w", err)
	}
	var f struct {
		Accounts []localaws.Account `json:"accounts"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("localaws: --accounts %s: %w", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("localaws: --accounts %s: data after the JSON document", path)
	}
	if len(f.Accounts) == 0 {
		return nil, fmt.Errorf("localaws: --accounts %s: \"accounts\" lists no account", path)
	}
	return f.Accounts, nil
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
