package main

import (
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/atomicfile"
	"github.com/anchorage-pki/anchorage/caclient"
	"github.com/anchorage-pki/anchorage/signer"
)

func newEnrollCmd() *cobra.Command {
	var caURL, root, token, tokenFile, certFile, keyFile, keyType string
	var force bool
	cmd := &cobra.Command{
		Use:   "enroll --ca URL --root ROOT --token TOKEN --cert FILE --key FILE [--key-type ec|rsa]",
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
			if caURL == "" || root == "" || token == "" || certFile == "" || keyFile == "" {
				return fmt.Errorf("--ca, --root, --token (or --token-file), --cert and --key are required")
			}
			if token == "-" {
				b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 16<<10))
				if err != nil {
					return err
				}
				token = strings.TrimSpace(string(b))
			}
			if !force {
				for _, p := range []string{certFile, keyFile} {
					if _, err := os.Stat(p); err == nil {
						return fmt.Errorf("%s already exists: this host looks enrolled (use anchorage renew, or --force to replace it)", p)
					}
				}
			}
			kt, err := signer.ParseKeyType(keyType)
			if err != nil {
				return err
			}
			claims, err := caclient.InspectToken(token)
			if err != nil {
				return err
			}
			// The key is made here and never leaves this host; it is written
			// only once the CA has issued, so a refused token leaves nothing.
			key, err := signer.Generate(kt)
			if err != nil {
				return err
			}
			csr, err := caclient.NewCSR(key, claims.Subject, claims.SANs)
			if err != nil {
				return err
			}
			c, err := caclient.New(caURL, root, nil)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := c.Enroll(ctx, token, csr)
			if err != nil {
				return fmt.Errorf("enroll: %w", err)
			}
			if err := writeIssued(certFile, keyFile, key, res); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Enrolled %q: certificate %s (serial %s) valid until %s; key %s\n",
				res.Subject, certFile, res.Serial, res.NotAfter.UTC().Format(time.RFC3339), keyFile)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&caURL, "ca", "", "CA URL, e.g. https://ca.internal:8443")
	f.StringVar(&root, "root", "", "the CA's root certificate (root.crt)")
	f.StringVar(&token, "token", "", "one-time enrollment token (- reads it from stdin)")
	f.StringVar(&tokenFile, "token-file", "", "read the token from this file (keeps it out of the process list)")
	f.StringVar(&certFile, "cert", "", "where to write the certificate chain")
	f.StringVar(&keyFile, "key", "", "where to write the private key (mode 0600)")
	f.StringVar(&keyType, "key-type", "ec", "key type: ec (P-256) or rsa (2048)")
	f.BoolVar(&force, "force", false, "replace an existing certificate and key")
	return cmd
}

func newRenewCmd() *cobra.Command {
	var caURL, root, certFile, keyFile, keyType string
	var rekey bool
	cmd := &cobra.Command{
		Use:   "renew --ca URL --root ROOT --cert FILE --key FILE [--rekey]",
		Short: "Renew this workload's certificate over mTLS with the current one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if caURL == "" || root == "" || certFile == "" || keyFile == "" {
				return fmt.Errorf("--ca, --root, --cert and --key are required")
			}
			pair, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				return fmt.Errorf("current certificate and key: %w", err)
			}
			key, ok := pair.PrivateKey.(crypto.Signer)
			if !ok {
				return errors.New("current key cannot sign")
			}
			newKey := key
			if rekey {
				kt, err := signer.ParseKeyType(keyType)
				if err != nil {
					return err
				}
				if newKey, err = signer.Generate(kt); err != nil {
					return err
				}
			}
			// Subject and names come from the current certificate on the CA
			// side; the CSR only proves possession of the (new) key.
			csr, err := caclient.NewCSR(newKey, pair.Leaf.Subject.CommonName, nil)
			if err != nil {
				return err
			}
			c, err := caclient.New(caURL, root, &pair)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := c.Renew(ctx, csr)
			if err != nil {
				return fmt.Errorf("renew: %w", err)
			}
			var writeKey crypto.Signer
			if rekey {
				writeKey = newKey
			}
			if err := writeIssued(certFile, keyFile, writeKey, res); err != nil {
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
	f.StringVar(&keyFile, "key", "", "current private key")
	f.BoolVar(&rekey, "rekey", false, "generate a new key as well")
	f.StringVar(&keyType, "key-type", "ec", "key type with --rekey: ec or rsa")
	return cmd
}

// writeIssued stores the key (when new) and then the chain, each
// atomically, the key with mode 0600.
func writeIssued(certFile, keyFile string, key crypto.Signer, res *apiv1.CertResponse) error {
	if key != nil {
		if err := signer.WriteFile(keyFile, key); err != nil {
			return err
		}
	}
	return atomicfile.Write(certFile, []byte(res.Chain), 0o644)
}
