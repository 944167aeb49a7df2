package caserver_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/api"
	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/caclient"
	"github.com/anchorage-pki/anchorage/enroll"
	"github.com/anchorage-pki/anchorage/signer"
)

type enrollInput struct {
	token string
	csr   []byte
}

func enrollInputs(b *testing.B, tc *testCA, n int) []enrollInput {
	b.Helper()
	key, err := signer.Open(context.Background(), tc.Cfg.Path("provisioner.key"))
	if err != nil {
		b.Fatal(err)
	}
	out := make([]enrollInput, n)
	for i := range out {
		name := fmt.Sprintf("bench-%d.example.com", i)
		tok, err := enroll.Mint(key, tc.URL, name, []string{"DNS:" + name}, 10*time.Minute, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csr, _ := caclient.NewCSR(k, name, []string{"DNS:" + name})
		out[i] = enrollInput{tok, csr}
	}
	return out
}

// BenchmarkEnroll is the enrollment core without HTTP: token verify (ES256
// + jti lookup), CSR parse and signature check, name check, certificate
// signature, and the durable bbolt commit of certificate + jti, with 16
// concurrent callers so commits are shared.
func BenchmarkEnroll(b *testing.B) {
	tc := startCA(b)
	inputs := enrollInputs(b, tc, b.N+16)
	v := &enroll.Verifier{Key: mustPub(b, tc), Audience: tc.URL, Used: tc.Srv.Store, Now: time.Now}
	var next atomic.Int64
	b.SetParallelism(8) // 8 × GOMAXPROCS(2) = 16 callers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			in := inputs[next.Add(1)-1]
			csr, err := api.ParseCSR(string(in.csr))
			if err != nil {
				b.Fatal(err)
			}
			g, err := v.Verify(context.Background(), in.token)
			if err != nil {
				b.Fatal(err)
			}
			if err := g.CheckCSR(csr); err != nil {
				b.Fatal(err)
			}
			if _, err := tc.Srv.Authority.Issue(context.Background(), ca.Request{CSR: csr, Subject: g.Subject, Names: g.Names,
				Method: "token", TokenID: g.ID, TokenKeepUntil: g.KeepUntil()}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEnrollHTTPS adds the HTTPS API (keep-alive connections, JSON,
// problem handling) to BenchmarkEnroll: the figure comparable to step-ca's
// /1.0/sign.
func BenchmarkEnrollHTTPS(b *testing.B) {
	tc := startCA(b)
	inputs := enrollInputs(b, tc, b.N+16)
	c := tc.Client(b, nil)
	var next atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			in := inputs[next.Add(1)-1]
			if _, err := c.Enroll(context.Background(), in.token, in.csr); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func mustPub(b *testing.B, tc *testCA) any {
	k, err := signer.Open(context.Background(), tc.Cfg.Path("provisioner.key"))
	if err != nil {
		b.Fatal(err)
	}
	return k.Public()
}
