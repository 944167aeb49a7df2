package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/enroll"
	"github.com/anchorage-pki/anchorage/signer"
)

func newTokenCmd() *cobra.Command {
	var dir, name string
	var sans []string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "token --dir DIR --name CN [--san DNS:x|URI:spiffe://..|IP:..] [--ttl 10m]",
		Short: "Print a single-use enrollment token for one workload",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" || name == "" {
				return fmt.Errorf("--dir and --name are required")
			}
			cfg, err := config.Load(dir)
			if err != nil {
				return err
			}
			if ttl == 0 {
				ttl = cfg.Token.DefaultTTL.D()
			}
			if ttl <= 0 || ttl > cfg.Token.MaxTTL.D() {
				return fmt.Errorf("--ttl %s: must be positive and at most %s", ttl, cfg.Token.MaxTTL.D())
			}
			key, err := signer.Open(context.Background(), cfg.Path(cfg.Paths.ProvisionerKey))
			if err != nil {
				return err
			}
			root, err := rootFingerprint(cfg.Path(cfg.Paths.Root))
			if err != nil {
				return err
			}
			tok, err := enroll.Mint(key, cfg.URL, name, sans, ttl, time.Now(), enroll.WithRootFingerprint(root))
			if err != nil {
				return err
			}
			// Recorded before it is printed: no token exists that the
			// audit stream does not name.
			if err := emitMint(cfg, name, tok); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "CA directory")
	f.StringVar(&name, "name", "", "workload name: the certificate's subject CN")
	f.StringSliceVar(&sans, "san", nil, "extra name the certificate may carry: DNS:host, IP:addr, URI:spiffe://... (repeatable)")
	f.DurationVar(&ttl, "ttl", 0, "token lifetime (default from config, 10m; at most 24h)")
	return cmd
}

// rootFingerprint is the hex SHA-256 of the root certificate's DER, the
// token's sha claim.
func rootFingerprint(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("root certificate: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return "", fmt.Errorf("root certificate %s: not a PEM certificate", path)
	}
	sum := sha256.Sum256(blk.Bytes)
	return hex.EncodeToString(sum[:]), nil
}
