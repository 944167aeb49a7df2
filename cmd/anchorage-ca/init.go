package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/anchorage-pki/anchorage/caserver"
	"github.com/anchorage-pki/anchorage/ceremony"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/signer"
	"github.com/anchorage-pki/anchorage/storage"
)

func newInitCmd() *cobra.Command {
	var dir, name, listen, url, caKey, pgURL, pgPassFile, eventsFile string
	var dns []string
	var lifetime time.Duration
	cmd := &cobra.Command{
		Use:   "init --dir DIR --name NAME [--dns HOST ...]",
		Short: "Create a root CA, an issuing CA, an admin CA, the API's TLS certificate and an admin certificate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" || name == "" {
				return fmt.Errorf("--dir and --name are required")
			}
			cfg := config.Default()
			cfg.Name = name
			cfg.Listen = listen
			if lifetime > 0 {
				cfg.Leaf.DefaultLifetime = config.Duration(lifetime)
				cfg.Leaf.MaxLifetime = config.Duration(max(lifetime, cfg.Leaf.MaxLifetime.D()))
			}
			cfg.SetDir(dir)
			if eventsFile != "" {
				cfg.Events = &config.Events{File: eventsFile}
			}
			if caKey != "" {
				cfg.Paths.CAKey = caKey
			}
			if pgURL != "" {
				cfg.Storage = &config.Storage{Postgres: &config.Postgres{URL: pgURL, PasswordFile: pgPassFile}}
			}
			if _, err := os.Stat(filepath.Join(dir, config.FileName)); err == nil {
				return fmt.Errorf("%s already holds a CA (%s exists); refusing to overwrite it", dir, config.FileName)
			}
			if len(dns) == 0 {
				dns = []string{"localhost", "127.0.0.1"}
			}
			if url == "" {
				_, port, err := net.SplitHostPort(listen)
				if err != nil {
					return fmt.Errorf("--listen %q: %v", listen, err)
				}
				url = "https://" + net.JoinHostPort(dns[0], port)
			}
			cfg.URL = url
			// ACME: a provisioner "acme" at /acme/acme/directory for names
			// under .internal only, validated on ports 80/443 (README "ACME").
			cfg.ACME = &config.ACME{Provisioners: []config.ACMEProvisioner{{Name: "acme", Allow: []string{"*.internal"}}}}
			if err := cfg.Validate(); err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			store, drop, err := createStore(context.Background(), cfg)
			if err != nil {
				os.Remove(dir) // if init made it: only an empty directory goes
				return err
			}
			defer store.Close()
			files := ceremony.FilesFor(cfg)
			_, err = ceremony.Init(context.Background(), ceremony.Options{Name: name, TLSNames: dns, Files: files, Store: store})
			if err != nil {
				// Leave nothing behind (a wrong PIN, a missing token): the
				// empty database, and the directory if init made it.
				store.Close()
				drop()
				os.Remove(dir)
				return err
			}
			if err := cfg.Save(); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Created a new CA %q in %s\n\n", name, dir)
			fmt.Fprintf(out, "  root CA        %s  (key %s: move it offline)\n", files.Root, files.RootKey)
			fmt.Fprintf(out, "  issuing CA     %s  (key %s)  <- register this as the Roles Anywhere trust anchor\n", files.CACert, signer.Redact(files.CAKey))
			fmt.Fprintf(out, "  admin CA       %s  (key %s)  signs admin certificates only; never a trust anchor\n", files.AdminCACert, files.AdminCAKey)
			fmt.Fprintf(out, "  service CA     %s  (key %s)  signs the API's TLS certificate only; never a trust anchor\n", files.ServiceCACert, files.ServiceCAKey)
			fmt.Fprintf(out, "  API TLS        %s  (key and chain) for %v\n", files.TLS, dns)
			fmt.Fprintf(out, "  admin client   %s  (key %s) for revoke, list and admin issue; expires in 30 days\n", files.AdminCert, files.AdminKey)
			fmt.Fprintf(out, "  config         %s  (URL %s, listen %s)\n\n", filepath.Join(dir, config.FileName), cfg.URL, cfg.Listen)
			fmt.Fprintf(out, "Next: anchorage-ca serve --dir %s\n", dir)
			fmt.Fprintf(out, "      anchorage-ca token --dir %s --name HOST   (a one-time enrollment token)\n", dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "CA directory to create")
	f.StringVar(&name, "name", "", "CA name (organisation)")
	f.StringSliceVar(&dns, "dns", nil, "DNS name or IP of the API server (repeatable; default localhost,127.0.0.1)")
	f.StringVar(&listen, "listen", "127.0.0.1:8443", "address the API listens on")
	f.DurationVar(&lifetime, "lifetime", 0, "default workload certificate lifetime (default 24h)")
	f.StringVar(&url, "url", "", "URL workloads use to reach the CA (default https://FIRST-DNS:PORT)")
	f.StringVar(&pgURL, "postgres", "", "keep the CA's records in this empty PostgreSQL database (postgres://USER@HOST/DB?sslmode=verify-full) instead of DIR/anchorage.db")
	f.StringVar(&pgPassFile, "postgres-password-file", "", "file holding the PostgreSQL password, relative to DIR unless absolute")
	f.StringVar(&eventsFile, "events", "", "write the audit event stream to this file (relative to DIR unless absolute; rotated at 100 MB, 10 kept)")
	f.StringVar(&caKey, "ca-key", "", "make the issuing CA key in a PKCS#11 token or TPM instead of DIR/ca.key, e.g. pkcs11:module-path=…;token=ca;object=issuing?pin-source=/etc/anchorage/pin")
	return cmd
}

// createStore makes the new CA's record of truth: the bbolt file, or the
// PostgreSQL database the config names, which must hold no CA yet. drop
// undoes what a failed init left (the bbolt file; on PostgreSQL the
// ceremony's records are few and a retry is refused, so the operator is
// told to empty the database).
func createStore(ctx context.Context, cfg *config.CA) (caserver.Store, func(), error) {
	if cfg.Storage == nil {
		d, err := storage.Create(cfg.Path(cfg.Paths.DB))
		if err != nil {
			return nil, nil, err
		}
		return d, func() { os.Remove(cfg.Path(cfg.Paths.DB)) }, nil
	}
	st, err := caserver.OpenStore(ctx, cfg, nil) // PostgreSQL: nothing to migrate
	if err != nil {
		return nil, nil, err
	}
	if certs, err := st.ListCerts(ctx, storage.Filter{Limit: 1}, time.Now()); err != nil || len(certs) > 0 {
		st.Close()
		if err == nil {
			err = fmt.Errorf("the PostgreSQL database already holds a CA's certificates; refusing to initialise another CA in it")
		}
		return nil, nil, err
	}
	return st, func() {}, nil
}
