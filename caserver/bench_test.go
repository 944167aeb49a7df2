package caserver_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"sync/atomic"
	"syscall"
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
// concurrent callers so commits are shared. cpu_us/op is the process's
// CPU per certificate (see BenchmarkFloor).
func BenchmarkEnroll(b *testing.B) {
	tc := startCA(b)
	inputs := enrollInputs(b, tc, b.N+16)
	v := &enroll.Verifier{Key: mustPub(b, tc), Audience: tc.URL, Used: tc.Srv.Store, Now: time.Now}
	var next atomic.Int64
	b.SetParallelism(8) // 8 × GOMAXPROCS(2) = 16 callers
	cpu0 := cpuTime()
	b.ResetTimer()
	defer reportCPU(b, cpu0)
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
	cpu0 := cpuTime()
	b.ResetTimer()
	defer reportCPU(b, cpu0)
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

// BenchmarkFloor is the cryptographic floor of one token enrollment: one
// ECDSA P-256 signature (the certificate) and two verifications (the token,
// the CSR's self-signature), nothing else. make bench prints the server's
// CPU per certificate beside it as a ratio. cpu_us/op is this process's
// user+system CPU per operation (getrusage), which, unlike ns/op, does not
// grow when other work shares the machine.
func BenchmarkFloor(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tokKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csrKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	msg := sha256.Sum256([]byte("to-be-signed certificate"))
	tokSig, _ := ecdsa.SignASN1(rand.Reader, tokKey, msg[:])
	csrSig, _ := ecdsa.SignASN1(rand.Reader, csrKey, msg[:])
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		if !ecdsa.VerifyASN1(&tokKey.PublicKey, msg[:], tokSig) || !ecdsa.VerifyASN1(&csrKey.PublicKey, msg[:], csrSig) {
			b.Fatal("verify")
		}
		if _, err := ecdsa.SignASN1(rand.Reader, key, msg[:]); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu0)
}

// reportCPU reports the process's CPU per operation since cpu0 as
// cpu_us/op: steadier than ns/op on a shared machine. In the HTTPS
// benchmark it includes the client's side.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu_us/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
