// Package signer opens and creates the private keys anchorage signs with,
// for the CA and for workloads alike, behind crypto.Signer. Today keys live
// in PEM files (0600); pkcs11: and tpm: references are recognised and
// refused with a clear message until those backends land.
package signer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.step.sm/crypto/pemutil"

	"github.com/anchorage-pki/anchorage/atomicfile"
)

// KeyType names a key algorithm for Generate.
type KeyType string

const (
	EC  KeyType = "ec"  // ECDSA P-256
	RSA KeyType = "rsa" // RSA 2048
)

// ParseKeyType accepts the --key-type values.
func ParseKeyType(s string) (KeyType, error) {
	switch strings.ToLower(s) {
	case "ec", "ecdsa", "p256", "":
		return EC, nil
	case "rsa":
		return RSA, nil
	}
	return "", fmt.Errorf("unknown key type %q (want ec or rsa)", s)
}

// Generate makes a new software key.
func Generate(t KeyType) (crypto.Signer, error) {
	switch t {
	case EC, "":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RSA:
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return nil, fmt.Errorf("unknown key type %q", t)
}

// Open returns the signer a reference names: a path to a PEM private key.
func Open(ctx context.Context, ref string) (crypto.Signer, error) {
	switch {
	case strings.HasPrefix(ref, "pkcs11:"), strings.HasPrefix(ref, "tpm:"), strings.HasPrefix(ref, "handle:"):
		return nil, fmt.Errorf("key %s: hardware keys are not supported by this build yet", ref)
	}
	b, err := os.ReadFile(ref)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("key file %s does not exist", ref)
		}
		return nil, fmt.Errorf("read key: %w", err)
	}
	return Parse(b, ref)
}

// Parse decodes a PEM private key; name is used in errors.
func Parse(b []byte, name string) (crypto.Signer, error) {
	k, err := pemutil.ParseKey(b, pemutil.WithFilename(name))
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", name, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key %s: %T is not a private key", name, k)
	}
	return s, nil
}

// Encode returns the PKCS#8 PEM encoding of a software key.
func Encode(key crypto.Signer) ([]byte, error) {
	blk, err := pemutil.Serialize(key, pemutil.WithPKCS8(true))
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(blk), nil
}

// WriteFile stores a software key as PKCS#8 PEM with mode 0600, atomically.
func WriteFile(path string, key crypto.Signer) error {
	b, err := Encode(key)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o600)
}
