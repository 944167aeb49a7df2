// Package tlsfile keeps a TLS key and its certificate chain in one PEM
// file (mode 0600), so replacing them is one atomic rename: a reader, or a
// restart after a crash, sees the old pair or the new one, never the new
// key with the old certificate. Load also reads the older layout of two
// files (certificate and key apart), which CA directories made before the
// combined file still have until their first renewal.
package tlsfile

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/anchorage-pki/anchorage/atomicfile"
	"github.com/anchorage-pki/anchorage/signer"
)

// write is atomicfile.Write; tests replace it to inject failures.
var write = atomicfile.Write

// Encode renders a chain (leaf first) and its key as one PEM document:
// certificates first, as most servers and openssl expect, then the key.
func Encode(key crypto.Signer, chain ...*x509.Certificate) ([]byte, error) {
	if len(chain) == 0 {
		return nil, errors.New("tlsfile: empty chain")
	}
	var b []byte
	for _, c := range chain {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	k, err := signer.Encode(key)
	if err != nil {
		return nil, err
	}
	return append(b, k...), nil
}

// Write replaces path with the chain and key in one rename.
func Write(path string, key crypto.Signer, chain ...*x509.Certificate) error {
	b, err := Encode(key, chain...)
	if err != nil {
		return err
	}
	if _, err := tls.X509KeyPair(b, b); err != nil {
		return fmt.Errorf("tlsfile: key does not match certificate: %w", err)
	}
	return write(path, b, 0o600)
}

// Load reads the pair: from combined if that file exists, else from the
// separate certFile and keyFile (the older layout). The combined file wins
// because only a newer write makes it; stale separate files left by a
// crash after the rename are ignored.
func Load(combined, certFile, keyFile string) (*tls.Certificate, error) {
	if combined != "" {
		b, err := os.ReadFile(combined)
		switch {
		case err == nil:
			c, err := tls.X509KeyPair(b, b)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", combined, err)
			}
			return &c, nil
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("%s: %w", combined, fs.ErrNotExist)
	}
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", certFile, keyFile, err)
	}
	return &c, nil
}
