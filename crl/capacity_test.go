package crl_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/crl"
	"github.com/anchorage-pki/anchorage/storage"
)

// importCapacity is the largest number of entries (20-octet serials, as
// ca.NewSerial makes, with the given reason code) whose CRL stays within
// the Roles Anywhere crlData cap, found by building CRLs.
func importCapacity(t testing.TB, signer crypto.Signer, reason int) (n, pemAt int) {
	iss := issuerWith(t, signer)
	now := time.Now().Truncate(time.Second)
	all := revocations(6000)
	for i := range all {
		all[i].Reason = reason
	}
	size := func(n int) int {
		der, err := crl.Build(iss, signer, 1<<20, all[:n], now, 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return crl.PEMSize(len(der))
	}
	n = sort.Search(len(all)+1, func(n int) bool { return size(n) > crl.MaxPEMSize }) - 1
	return n, size(n)
}

// The figures in the README's "CRL size and the Roles Anywhere cap": how
// many live revocations one CRL at a trust anchor can carry.
func TestImportCapacity(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	r3072, _ := rsa.GenerateKey(rand.Reader, 3072)
	for _, k := range []struct {
		name string
		s    crypto.Signer
	}{{"P-256", p256}, {"P-384", p384}, {"RSA-3072", r3072}} {
		for _, reason := range []int{1, 0} {
			n, pem := importCapacity(t, k.s, reason)
			iss := issuerWith(t, k.s)
			revs := []storage.Revocation{{Serial: "40" + fmt.Sprintf("%038x", 1), RevokedAt: time.Now(), Reason: reason},
				{Serial: "40" + fmt.Sprintf("%038x", 2), RevokedAt: time.Now(), Reason: reason}}
			one, _ := crl.Build(iss, k.s, 1, revs[:1], time.Now(), time.Hour)
			two, _ := crl.Build(iss, k.s, 1, revs, time.Now(), time.Hour)
			zero, _ := crl.Build(iss, k.s, 1, nil, time.Now(), time.Hour)
			t.Logf("%s issuer, reason %d: %d entries fit (%d PEM characters; %d at the 80%% warning); an entry is %d DER octets, the empty CRL about %d",
				k.name, reason, n, pem, n*8/10, len(unsigned(t, two))-len(unsigned(t, one)), len(zero))
			if n < 4000 && reason != 0 {
				t.Errorf("%s: only %d entries fit", k.name, n)
			}
		}
	}
}
