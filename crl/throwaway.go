package crl

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"sync"
)

var throwaways sync.Map // string (kind) → crypto.Signer

// throwaway returns a process-wide key of the same kind as pub (curve, or
// RSA size) to sign lint copies with; generated once, never stored.
func throwaway(pub crypto.PublicKey) (crypto.Signer, error) {
	var kind string
	var gen func() (crypto.Signer, error)
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		kind = "ecdsa-" + k.Curve.Params().Name
		gen = func() (crypto.Signer, error) { return ecdsa.GenerateKey(k.Curve, rand.Reader) }
	case *rsa.PublicKey:
		kind = fmt.Sprintf("rsa-%d", k.N.BitLen())
		gen = func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, k.N.BitLen()) }
	case ed25519.PublicKey:
		kind = "ed25519"
		gen = func() (crypto.Signer, error) { _, s, err := ed25519.GenerateKey(rand.Reader); return s, err }
	default:
		return nil, fmt.Errorf("crl: unsupported issuer key %T", pub)
	}
	if s, ok := throwaways.Load(kind); ok {
		return s.(crypto.Signer), nil
	}
	s, err := gen()
	if err != nil {
		return nil, err
	}
	actual, _ := throwaways.LoadOrStore(kind, s)
	return actual.(crypto.Signer), nil
}
