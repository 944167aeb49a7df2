package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/anchorage-pki/anchorage/agent"
)

func newAgentCmd() *cobra.Command {
	var configFile string
	var c agent.Config
	var debug bool
	cmd := &cobra.Command{
		Use:   "agent --config FILE [flags]",
		Short: "Keep this workload's certificate renewed (and serve AWS credentials) until stopped",
		Long: `agent enrolls on first start (when there is no certificate and a token file is
configured), renews at about 2/3 of the certificate's lifetime with jitter, retries
with backoff while the CA is down, writes the certificate atomically, runs a reload
hook, reports health on --health-listen and in --status-file, metrics on --metrics,
and optionally serves
AWS credentials through IAM Roles Anywhere. Flags override the config file.
SIGTERM stops it cleanly. Exit status 3 means the certificate was revoked.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := &agent.Config{}
			if configFile != "" {
				var err error
				if cfg, err = agent.LoadConfig(configFile); err != nil {
					return err
				}
			}
			fl := cmd.Flags()
			set := func(name string, dst *string, v string) {
				if fl.Changed(name) {
					*dst = v
				}
			}
			set("ca", &cfg.CA, c.CA)
			set("root", &cfg.Root, c.Root)
			set("cert", &cfg.Cert, c.Cert)
			set("key", &cfg.Key, c.Key)
			set("key-type", &cfg.KeyType, c.KeyType)
			set("token-file", &cfg.TokenFile, c.TokenFile)
			set("pkcs11-lib", &cfg.PKCS11Lib, c.PKCS11Lib)
			set("tpm-device", &cfg.TPMDevice, c.TPMDevice)
			set("reload-hook", &cfg.ReloadHook, c.ReloadHook)
			set("health-listen", &cfg.HealthListen, c.HealthListen)
			set("metrics", &cfg.MetricsListen, c.MetricsListen)
			set("status-file", &cfg.StatusFile, c.StatusFile)
			if fl.Changed("rekey") {
				cfg.Rekey = c.Rekey
			}
			level := slog.LevelInfo
			if debug {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			a, err := agent.New(*cfg, log)
			if err != nil {
				if configFile != "" {
					return fmt.Errorf("config %s: %w", configFile, err)
				}
				return err
			}
			ctx, stop := signalContext(cmd)
			defer stop()
			err = a.Run(ctx)
			if errors.Is(err, agent.ErrRevoked) {
				fmt.Fprintln(os.Stderr, "anchorage: agent: the certificate was revoked; enroll this host again with a new token")
				os.Exit(3)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "agent config file (JSON; see dist/agent.json)")
	f.StringVar(&c.CA, "ca", "", "CA URL")
	f.StringVar(&c.Root, "root", "", "the CA's root certificate")
	f.StringVar(&c.Cert, "cert", "", "certificate chain file (written)")
	f.StringVar(&c.Key, "key", "", keyHelp)
	f.StringVar(&c.KeyType, "key-type", "", "key type for enrollment: ec, p384, rsa, rsa3072, rsa4096")
	f.StringVar(&c.TokenFile, "token-file", "", "one-time token for the first start")
	f.StringVar(&c.PKCS11Lib, "pkcs11-lib", "", "PKCS#11 module for pkcs11: keys without module-path")
	f.StringVar(&c.TPMDevice, "tpm-device", "", "TPM device or swtpm socket (default $TPM_DEVICE, /dev/tpmrm0)")
	f.StringVar(&c.ReloadHook, "reload-hook", "", "command run with /bin/sh -c after each new certificate")
	f.StringVar(&c.HealthListen, "health-listen", "", "serve GET /health on this loopback address, e.g. 127.0.0.1:9912")
	f.StringVar(&c.MetricsListen, "metrics", "", "serve Prometheus metrics at /metrics on this address, e.g. 127.0.0.1:9913 (certificate expiry, renewal and credential refresh state)")
	f.StringVar(&c.StatusFile, "status-file", "", "keep the status JSON in this file")
	f.BoolVar(&c.Rekey, "rekey", false, "new key at every renewal (key files only)")
	f.BoolVar(&debug, "debug", false, "debug logging")
	return cmd
}
