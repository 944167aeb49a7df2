package signer_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"path/filepath"
	"testing"

	"github.com/anchorage-pki/anchorage/signer"
	"github.com/anchorage-pki/anchorage/signer/signertest"
)

// BenchmarkSign is one ECDSA P-256 signature over a SHA-256 digest per
// backend — what a CreateSession, a renewal handshake or a CA issuance
// costs in key time:
//
//	go test -run '^$' -bench Sign -benchtime 2s ./signer/
func BenchmarkSign(b *testing.B) {
	ctx := context.Background()
	sum := sha256.Sum256([]byte("anchorage"))
	run := func(b *testing.B, s crypto.Signer) {
		b.Helper()
		for b.Loop() {
			if _, err := s.Sign(rand.Reader, sum[:], crypto.SHA256); err != nil {
				b.Fatal(err)
			}
		}
	}
	h := signertest.Token(b, "bench")
	tp := signertest.SWTPM(b)
	dir := b.TempDir()

	b.Run("file", func(b *testing.B) {
		p, err := signer.Create(ctx, filepath.Join(dir, "k.pem"), signer.EC)
		if err != nil {
			b.Fatal(err)
		}
		p.Save()
		s, err := signer.Open(ctx, filepath.Join(dir, "k.pem"))
		if err != nil {
			b.Fatal(err)
		}
		run(b, s)
	})
	b.Run("pkcs11-softhsm", func(b *testing.B) {
		p, err := signer.Create(ctx, h.URI("bench"), signer.EC)
		if err != nil && p == nil {
			p2, err2 := signer.Open(ctx, h.URI("bench"))
			if err2 != nil {
				b.Fatal(err, err2)
			}
			run(b, p2)
			return
		}
		run(b, p)
	})
	b.Run("tpm-swtpm-tss2", func(b *testing.B) {
		p, err := signer.Create(ctx, "tpm:"+filepath.Join(dir, "k.tss2"), signer.EC, signer.WithTPMDevice(tp.Socket))
		if err != nil {
			b.Fatal(err)
		}
		run(b, p)
	})
	b.Run("tpm-swtpm-handle", func(b *testing.B) {
		p, err := signer.Create(ctx, "handle:0x81000030", signer.EC, signer.WithTPMDevice(tp.Socket))
		if err != nil {
			s, err2 := signer.Open(ctx, "handle:0x81000030", signer.WithTPMDevice(tp.Socket))
			if err2 != nil {
				b.Fatal(err, err2)
			}
			run(b, s)
			return
		}
		run(b, p)
	})
}
