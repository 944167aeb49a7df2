package main

import (
	"crypto/tls"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/anchorage-pki/anchorage/caclient"
	"github.com/anchorage-pki/anchorage/config"
)

// adminFlags are the connection flags of the admin commands; --dir fills
// in defaults from a CA directory.
type adminFlags struct {
	dir, url, root, cert, key string
}

func (a *adminFlags) register(cmd *cobra.Command, needCert bool) {
	f := cmd.Flags()
	f.StringVar(&a.dir, "dir", "", "CA directory (defaults for --ca, --root, --admin-cert, --admin-key)")
	f.StringVar(&a.url, "ca", "", "CA URL")
	f.StringVar(&a.root, "root", "", "root certificate to trust")
	if needCert {
		f.StringVar(&a.cert, "admin-cert", "", "admin client certificate")
		f.StringVar(&a.key, "admin-key", "", "admin client key")
	}
}

func (a *adminFlags) client(needCert bool) (*caclient.Client, error) {
	if a.dir != "" {
		cfg, err := config.Load(a.dir)
		if err != nil {
			return nil, err
		}
		if a.url == "" {
			a.url = cfg.URL
		}
		if a.root == "" {
			a.root = cfg.Path(cfg.Paths.Root)
		}
		if a.cert == "" {
			a.cert = filepath.Join(a.dir, "admin.crt")
		}
		if a.key == "" {
			a.key = filepath.Join(a.dir, "admin.key")
		}
	}
	if a.url == "" || a.root == "" {
		return nil, fmt.Errorf("--ca and --root are required (or --dir)")
	}
	var cert *tls.Certificate
	if needCert {
		if a.cert == "" || a.key == "" {
			return nil, fmt.Errorf("--admin-cert and --admin-key are required (or --dir)")
		}
		c, err := tls.LoadX509KeyPair(a.cert, a.key)
		if err != nil {
			return nil, fmt.Errorf("admin certificate: %w", err)
		}
		cert = &c
	}
	return caclient.New(a.url, a.root, cert)
}
