package main

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/anchorage-pki/anchorage/rolesanywhere"
	"github.com/anchorage-pki/anchorage/signer"
)

// awsFlags are the flags credential-process, serve and update share with
// aws_signing_helper v1.8.0, same names and defaults, so existing
// credential_process lines and unit files keep working.
type awsFlags struct {
	certificate, privateKey, intermediates string
	trustAnchorARN, profileARN, roleARN    string
	sessionDuration                        int
	region, endpoint                       string
	noVerifySSL, withProxy, debug          bool
	roleSessionName                        string
	pkcs8Password                          string

	// Hardware keys (signer.Open).
	pkcs11Lib, tpmKeyPassword  string
	noTPMKeyPassword, reusePin bool

	// Accepted for compatibility; they fail with a clear message when set.
	certSelector, systemStoreName string
	useLatestExpiringCert         bool
}

func (f *awsFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.certificate, "certificate", "", "path to the certificate (PEM, or PKCS#12 without --private-key)")
	fs.StringVar(&f.privateKey, "private-key", "", "private key: PEM file (PKCS#8, encrypted PKCS#8, SEC1, PKCS#1), pkcs11: URI, TPM handle:0x81…, or a TSS2 PRIVATE KEY file (also as tpm:FILE)")
	fs.StringVar(&f.intermediates, "intermediates", "", "path to a PEM bundle of intermediate certificates")
	fs.StringVar(&f.trustAnchorARN, "trust-anchor-arn", "", "trust anchor ARN")
	fs.StringVar(&f.profileARN, "profile-arn", "", "profile ARN")
	fs.StringVar(&f.roleARN, "role-arn", "", "role ARN to assume")
	fs.IntVar(&f.sessionDuration, "session-duration", rolesanywhere.DefaultSessionDuration, "session duration in seconds")
	fs.StringVar(&f.region, "region", "", "signing region (default: the trust anchor ARN's region)")
	fs.StringVar(&f.endpoint, "endpoint", "", "base URL of the service (default: derived from the region)")
	fs.BoolVar(&f.noVerifySSL, "no-verify-ssl", false, "skip TLS certificate verification (testing only)")
	fs.BoolVar(&f.withProxy, "with-proxy", false, "use HTTP(S)_PROXY from the environment (always done, kept for compatibility)")
	fs.BoolVar(&f.debug, "debug", false, "log each CreateSession attempt to stderr")
	fs.StringVar(&f.roleSessionName, "role-session-name", "", "role session name (the profile must accept it)")
	fs.StringVar(&f.pkcs8Password, "pkcs8-password", "", "password of an ENCRYPTED PRIVATE KEY file")
	fs.StringVar(&f.certSelector, "cert-selector", "", "OS certificate store selector (Windows and macOS only)")
	fs.StringVar(&f.systemStoreName, "system-store-name", "MY", "Windows certificate store name (Windows only)")
	fs.BoolVar(&f.useLatestExpiringCert, "use-latest-expiring-certificate", false, "pick the latest-expiring store certificate (Windows and macOS only)")
	fs.StringVar(&f.pkcs11Lib, "pkcs11-lib", "", "PKCS#11 module for pkcs11: keys without module-path (default p11-kit-proxy.so)")
	fs.BoolVar(&f.reusePin, "reuse-pin", false, "reuse the PKCS#11 user PIN for keys that need a context-specific login (not supported)")
	fs.StringVar(&f.tpmKeyPassword, "tpm-key-password", "", "TPM key password")
	fs.BoolVar(&f.noTPMKeyPassword, "no-tpm-key-password", false, "the TPM key has no password")
}

// options checks the flags that cannot work here and builds the package
// options.
func (f *awsFlags) options(cmd *cobra.Command) (rolesanywhere.Options, error) {
	changed := cmd.Flags().Changed
	switch {
	case changed("cert-selector") || changed("system-store-name") || changed("use-latest-expiring-certificate"):
		return rolesanywhere.Options{}, errors.New("unable to use cert store signer on linux: --cert-selector, --system-store-name and --use-latest-expiring-certificate work only on Windows and macOS")
	case changed("reuse-pin"):
		return rolesanywhere.Options{}, errors.New("--reuse-pin: PKCS#11 keys that need a context-specific login (CKA_ALWAYS_AUTHENTICATE) are not supported")
	case changed("tpm-key-password") && changed("no-tpm-key-password"):
		return rolesanywhere.Options{}, errors.New("--tpm-key-password and --no-tpm-key-password cannot be used together")
	case strings.HasPrefix(f.certificate, "pkcs11:"):
		return rolesanywhere.Options{}, errors.New("--certificate: certificates in a PKCS#11 token are not supported; pass the certificate file and --private-key pkcs11:…")
	}
	keyOpts := []signer.Option{signer.WithPKCS11Module(f.pkcs11Lib), signer.WithTPMKeyPassword(f.tpmKeyPassword)}
	privateKey := f.privateKey
	if signer.KindOf(privateKey) == signer.KindTPM && strings.HasPrefix(privateKey, "tpm:") {
		// rolesanywhere reads a TSS2 file by its content.
		privateKey, _ = signer.FilePath(privateKey)
	}
	var logger *slog.Logger
	if f.debug {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	var password []byte
	if f.pkcs8Password != "" {
		password = []byte(f.pkcs8Password)
	}
	return rolesanywhere.Options{
		Client: rolesanywhere.Config{
			TrustAnchorARN:  f.trustAnchorARN,
			ProfileARN:      f.profileARN,
			RoleARN:         f.roleARN,
			Region:          f.region,
			Endpoint:        f.endpoint,
			SessionDuration: f.sessionDuration,
			RoleSessionName: f.roleSessionName,
			NoVerifySSL:     f.noVerifySSL,
			Logger:          logger,
		},
		Source: rolesanywhere.SourceConfig{
			Certificate:   f.certificate,
			PrivateKey:    privateKey,
			Intermediates: f.intermediates,
			PKCS8Password: password,
			OpenKey: func(ctx context.Context, ref string) (crypto.Signer, error) {
				return signer.Open(ctx, ref, keyOpts...)
			},
		},
	}, nil
}

// signalContext ends on SIGINT or SIGTERM so serve and update stop cleanly.
func signalContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
}

func newCredentialProcessCmd() *cobra.Command {
	var f awsFlags
	var noCache bool
	cmd := &cobra.Command{
		Use:   "credential-process",
		Short: "Print AWS credentials from IAM Roles Anywhere for credential_process",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The SDKs and the tools that wrap the helper expect exactly one
			// log line on stderr and exit 1, so the package prints the error
			// and we exit here instead of letting the root print it again.
			opts, err := f.options(cmd)
			if err != nil {
				log.New(os.Stderr, "", log.LstdFlags).Println(err)
				os.Exit(1)
			}
			if !noCache {
				opts.Cache = &rolesanywhere.FileCache{Logger: opts.Client.Logger}
			}
			if code := rolesanywhere.CredentialProcess(cmd.Context(), opts, os.Stdout, os.Stderr); code != 0 {
				os.Exit(code)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&noCache, "no-cache", false, "always call CreateSession; by default runs share credentials through a 0600 file under $XDG_RUNTIME_DIR/anchorage (or ~/.cache/anchorage) until 5 minutes before they expire")
	return cmd
}

func newServeCmd() *cobra.Command {
	var f awsFlags
	var port, hopLimit int
	var address, tokenFile string
	var ecs, allowNonLoopback, noSocket bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve IAM Roles Anywhere credentials on a local IMDSv2 or container credentials endpoint",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			changed := cmd.Flags().Changed
			switch {
			case changed("address") && changed("port"):
				return errors.New("--address and --port cannot be used together: --address takes HOST:PORT")
			case changed("auth-token-file") && !ecs:
				return errors.New("--auth-token-file works with --ecs only")
			case ecs && tokenFile == "":
				return errors.New("--ecs needs --auth-token-file: the container endpoint never serves without a token")
			}
			if port < 0 || port > 65535 {
				return fmt.Errorf("invalid --port %d", port)
			}
			if address != "" {
				if err := rolesanywhere.CheckServeAddress(address, allowNonLoopback); errors.Is(err, rolesanywhere.ErrNonLoopback) {
					return fmt.Errorf("--address %w", err)
				} else if err != nil {
					return fmt.Errorf("--address: %w", err)
				}
			}
			if tokenFile != "" {
				abs, err := filepath.Abs(tokenFile)
				if err != nil {
					return fmt.Errorf("--auth-token-file: %w", err)
				}
				tokenFile = abs
			}
			opts, err := f.options(cmd)
			if err != nil {
				return err
			}
			ctx, stop := signalContext(cmd)
			defer stop()
			return rolesanywhere.Serve(ctx, opts, rolesanywhere.ServeConfig{
				Port:             port,
				Address:          address,
				AllowNonLoopback: allowNonLoopback,
				ECS:              ecs,
				AuthTokenFile:    tokenFile,
				HopLimit:         hopLimit,
				NoSocket:         noSocket,
				Stderr:           os.Stderr,
				Logger:           opts.Client.Logger,
			})
		},
	}
	f.register(cmd)
	fs := cmd.Flags()
	fs.IntVar(&port, "port", rolesanywhere.DefaultServePort, "port on 127.0.0.1 (0 picks a free one)")
	fs.StringVar(&address, "address", "", "HOST:PORT to listen on instead of 127.0.0.1:--port; off-host addresses need --allow-non-loopback")
	fs.BoolVar(&allowNonLoopback, "allow-non-loopback", false, "allow an --address that is not loopback: anyone who can reach it gets the role's credentials")
	fs.BoolVar(&ecs, "ecs", false, "serve the container credentials protocol (AWS_CONTAINER_CREDENTIALS_FULL_URI) instead of IMDSv2")
	fs.StringVar(&tokenFile, "auth-token-file", "", "with --ecs: file holding the token clients must send (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE); mode 0600, no newline")
	fs.IntVar(&hopLimit, "hop-limit", rolesanywhere.DefaultHopLimit, "IP TTL of responses (1 keeps them on this host, as EC2 does)")
	fs.BoolVar(&noSocket, "no-socket", false, "do not answer credential-process runs for this identity on a unix socket in $XDG_RUNTIME_DIR/anchorage")
	return cmd
}

func newUpdateCmd() *cobra.Command {
	var f awsFlags
	var profile string
	var once bool
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Keep IAM Roles Anywhere credentials fresh in the shared credentials file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := f.options(cmd)
			if err != nil {
				return err
			}
			ctx, stop := signalContext(cmd)
			defer stop()
			return rolesanywhere.Update(ctx, opts, rolesanywhere.UpdateConfig{
				Profile: profile,
				Once:    once,
				Stderr:  os.Stderr,
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&profile, "profile", "default", "profile to write in the credentials file")
	cmd.Flags().BoolVar(&once, "once", false, "write credentials once and exit")
	return cmd
}
