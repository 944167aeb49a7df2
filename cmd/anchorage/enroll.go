package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/anchorage-pki/anchorage/agent"
	"github.com/anchorage-pki/anchorage/signer"
)

// keyFlags are the key settings enroll, renew and agent share.
type keyFlags struct {
	pkcs11Lib, tpmDevice string
}

func (k *keyFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&k.pkcs11Lib, "pkcs11-lib", "", "PKCS#11 module for pkcs11: keys without module-path (default p11-kit-proxy.so)")
	cmd.Flags().StringVar(&k.tpmDevice, "tpm-device", "", "TPM device or swtpm socket (default $TPM_DEVICE, /dev/tpmrm0)")
}

func (k *keyFlags) options() []signer.Option {
	return []signer.Option{signer.WithPKCS11Module(k.pkcs11Lib), signer.WithTPMDevice(k.tpmDevice)}
}

const keyHelp = "private key: a file (written, mode 0600), pkcs11:token=…;object=…?pin-source=… " +
	"(made in the token), handle:0x81000010 (TPM persistent) or tpm:FILE (TPM key, TSS2 file)"

func newEnrollCmd() *cobra.Command {
	var caURL, root, token, tokenFile, certFile, keyRef, keyType string
	var force bool
	var kf keyFlags
	cmd := &cobra.Command{
		Use:   "enroll --ca URL --root ROOT --token TOKEN --cert FILE --key FILE|URI [--key-type ec|rsa]",
		Short: "Get this workload's first certificate with a one-time token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tokenFile != "" {
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return fmt.Errorf("read token: %w", err)
				}
				token = strings.TrimSpace(string(b))
			}
			if caURL == "" || root == "" || token == "" || certFile == "" || keyRef == "" {
				return fmt.Errorf("--ca, --root, --token (or --token-file), --cert and --key are required")
			}
			if token == "-" {
				b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 16<<10))
				if err != nil {
					return err
				}
				token = strings.TrimSpace(string(b))
			}
			kt, err := signer.ParseKeyType(keyType)
			if err != nil {
				return err
			}
			paths := []string{certFile}
			if p, ok := signer.FilePath(keyRef); ok {
				paths = append(paths, p)
			}
			if !force {
				for _, p := range paths {
					if _, err := os.Stat(p); err == nil {
						return fmt.Errorf("%s already exists: this host looks enrolled (use anchorage renew, or --force to replace it)", p)
					}
				}
			}
			// The key is made here (in the token or TPM for those
			// references) and never leaves; it is committed only once the
			// CA has issued, so a refusal leaves nothing behind.
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			o := agent.EnrollOptions{CA: caURL, Root: root, Token: token, Cert: certFile, Key: keyRef, KeyType: kt, Signer: kf.options()}
			if force {
				// signer.Create never overwrites a key file; --force moves
				// the old one aside and puts it back if enrollment fails.
				if p, ok := signer.FilePath(keyRef); ok {
					if _, err := os.Stat(p); err == nil {
						old := p + ".replaced"
						if err := os.Rename(p, old); err != nil {
							return err
						}
						defer func() {
							if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
								os.Rename(old, p)
							} else {
								os.Remove(old)
							}
						}()
					}
				}
			}
			res, err := agent.Enroll(ctx, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Enrolled %q: certificate %s (serial %s) valid until %s; key %s\n",
				res.Subject, certFile, res.Serial, res.NotAfter.UTC().Format(time.RFC3339), signer.Redact(keyRef))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&caURL, "ca", "", "CA URL, e.g. https://ca.internal:8443")
	f.StringVar(&root, "root", "", "the CA's root certificate (root.crt)")
	f.StringVar(&token, "token", "", "one-time enrollment token (- reads it from stdin)")
	f.StringVar(&tokenFile, "token-file", "", "read the token from this file (keeps it out of the process list)")
	f.StringVar(&certFile, "cert", "", "where to write the certificate chain")
	f.StringVar(&keyRef, "key", "", keyHelp)
	f.StringVar(&keyType, "key-type", "ec", "key type: ec (P-256), p384, rsa (2048), rsa3072, rsa4096")
	f.BoolVar(&force, "force", false, "replace an existing certificate and key file")
	kf.register(cmd)
	return cmd
}

func newRenewCmd() *cobra.Command {
	var caURL, root, certFile, keyRef, keyType string
	var rekey bool
	var kf keyFlags
	cmd := &cobra.Command{
		Use:   "renew --ca URL --root ROOT --cert FILE --key FILE|URI [--rekey]",
		Short: "Renew this workload's certificate over mTLS with the current one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if caURL == "" || root == "" || certFile == "" || keyRef == "" {
				return fmt.Errorf("--ca, --root, --cert and --key are required")
			}
			kt, err := signer.ParseKeyType(keyType)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			res, err := agent.Renew(ctx, agent.RenewOptions{CA: caURL, Root: root, Cert: certFile, Key: keyRef, Rekey: rekey, KeyType: kt, Signer: kf.options()})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Renewed %q: serial %s valid until %s\n", res.Subject, res.Serial, res.NotAfter.UTC().Format(time.RFC3339))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&caURL, "ca", "", "CA URL")
	f.StringVar(&root, "root", "", "the CA's root certificate")
	f.StringVar(&certFile, "cert", "", "current certificate chain (replaced)")
	f.StringVar(&keyRef, "key", "", "current private key: file, pkcs11: URI, handle:0x81… or tpm:FILE")
	f.BoolVar(&rekey, "rekey", false, "generate a new key as well (key files only)")
	f.StringVar(&keyType, "key-type", "ec", "key type with --rekey: ec, p384, rsa, rsa3072, rsa4096")
	kf.register(cmd)
	return cmd
}
