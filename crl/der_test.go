package crl_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/anchorage-pki/anchorage/crl"
	"github.com/anchorage-pki/anchorage/internal/pkitest"
	"github.com/anchorage-pki/anchorage/storage"
)

func issuerWith(t testing.TB, k crypto.Signer) *x509.Certificate {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Diff Issuing CA", Organization: []string{"anchorage"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * 365 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// stdlib is what crl.Build replaced: x509.CreateRevocationList over the
// same input.
func stdlib(t *testing.T, iss *x509.Certificate, k crypto.Signer, number uint64, revs []storage.Revocation, now time.Time, validity time.Duration) []byte {
	thisUpdate := now.Add(-crl.Backdate).UTC()
	var entries []x509.RevocationListEntry
	for _, r := range revs {
		serial, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			t.Fatalf("bad serial %q", r.Serial)
		}
		at := r.RevokedAt.UTC()
		if at.After(thisUpdate) {
			at = thisUpdate
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: serial, RevocationTime: at, ReasonCode: r.Reason})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: new(big.Int).SetUint64(number),
		ThisUpdate: thisUpdate, NextUpdate: now.Add(validity).UTC(), RevokedCertificateEntries: entries}, iss, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// unsigned is a CertificateList without its signature value, for keys
// whose signatures are randomised (ECDSA).
func unsigned(t *testing.T, der []byte) []byte {
	s := cryptobyte.String(der)
	var outer, tbs, alg cryptobyte.String
	if !s.ReadASN1(&outer, cbasn1.SEQUENCE) || !outer.ReadASN1Element(&tbs, cbasn1.SEQUENCE) || !outer.ReadASN1Element(&alg, cbasn1.SEQUENCE) {
		t.Fatal("malformed CRL")
	}
	return append(append([]byte(nil), tbs...), alg...)
}

func diffCases() map[string][]storage.Revocation {
	now := time.Now()
	early := now.Add(-48 * time.Hour)
	cases := map[string][]storage.Revocation{
		"empty": nil,
		"edge serials and reasons": {
			{Serial: "01", RevokedAt: early, Reason: 1},
			{Serial: "7f", RevokedAt: early, Reason: 0},
			{Serial: "80", RevokedAt: early, Reason: 4},
			{Serial: "ff", RevokedAt: early, Reason: 5},
			{Serial: "0", RevokedAt: early},
			{Serial: "000000ab", RevokedAt: early, Reason: 3},
			{Serial: "abc", RevokedAt: early, Reason: 9},
			{Serial: "ABCDEF0123456789", RevokedAt: early, Reason: 10},
			{Serial: "8000000000000000000000000000000000000001", RevokedAt: early, Reason: 2},
			{Serial: strings.Repeat("f", 40), RevokedAt: early, Reason: 6},
			{Serial: "1234", RevokedAt: now.Add(time.Hour), Reason: 8},               // after thisUpdate: clamped
			{Serial: "1235", RevokedAt: time.Date(2051, 1, 2, 3, 4, 5, 0, time.UTC)}, // GeneralizedTime before clamping
			{Serial: "1236", RevokedAt: time.Date(1949, 12, 31, 23, 59, 59, 999, time.FixedZone("x", 3600))},
			{Serial: "1237", RevokedAt: time.Date(1999, 6, 1, 0, 0, 0, 0, time.UTC), Reason: 1},
		},
	}
	for _, n := range []int{1, 127, 128, 300, 1500} {
		cases[strings.Repeat("r", 1)+itoa(n)] = revocations(n)
	}
	return cases
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

// TestBuildMatchesStandardLibrary: Build's bytes are
// x509.CreateRevocationList's for the same input — whole for the
// deterministic signatures (Ed25519, RSA PKCS #1 v1.5), all but the
// signature value for ECDSA — and they pass Check, x509's parser and
// zlint.
func TestBuildMatchesStandardLibrary(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	keys := map[string]struct {
		k     crypto.Signer
		exact bool
	}{"ed25519": {edKey, true}, "rsa2048": {rsaKey, true}, "p256": {p256, false}, "p384": {p384, false}}
	now := time.Now().Truncate(time.Second)
	for kname, key := range keys {
		iss := issuerWith(t, key.k)
		for cname, revs := range diffCases() {
			for _, number := range []uint64{1, 127, 128, 255, 256, 1 << 40, 1<<64 - 1} {
				ours, err := crl.Build(iss, key.k, number, revs, now, 24*time.Hour)
				if err != nil {
					t.Fatalf("%s/%s: %v", kname, cname, err)
				}
				theirs := stdlib(t, iss, key.k, number, revs, now, 24*time.Hour)
				if key.exact && !bytes.Equal(ours, theirs) {
					t.Fatalf("%s/%s/number %d: Build differs from x509.CreateRevocationList\n ours   %x\n theirs %x", kname, cname, number, ours, theirs)
				}
				if !key.exact && !bytes.Equal(unsigned(t, ours), unsigned(t, theirs)) {
					t.Fatalf("%s/%s/number %d: TBSCertList differs from x509.CreateRevocationList", kname, cname, number)
				}
				rl, err := x509.ParseRevocationList(ours)
				if err != nil {
					t.Fatal(err)
				}
				if err := rl.CheckSignatureFrom(iss); err != nil {
					t.Fatal(err)
				}
				if cname == "edge serials and reasons" {
					if number == 1 {
						t.Logf("%s: %d bytes", kname, len(ours))
					}
					continue // reason 0 with 7 and dates before 1950: Check and zlint refuse some on purpose (below)
				}
				if _, err := crl.Check(ours, iss, number-1, now, revs); err != nil && !errors.Is(err, crl.ErrTooLarge) {
					t.Fatalf("%s/%s/number %d: %v", kname, cname, number, err)
				}
			}
			if cname != "edge serials and reasons" {
				der, _ := crl.Build(iss, key.k, 3, revs, now, 24*time.Hour)
				pkitest.LintCRL(t, der)
			}
		}
	}
}

func TestPEMSize(t *testing.T) {
	for n := 1; n < 2000; n++ {
		if got, want := crl.PEMSize(n), len(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: make([]byte, n)})); got != want {
			t.Fatalf("PEMSize(%d) = %d, want %d", n, got, want)
		}
	}
}

// Check compares every entry with storage: a CRL that drops, adds,
// reorders or alters one entry fails, whatever its size.
func TestCheckDiffsEntries(t *testing.T) {
	iss, key := issuer(t)
	now := time.Now().Truncate(time.Second)
	for _, n := range []int{10, crl.LintFullMax + 10} {
		revs := revocations(n)
		der, err := crl.Build(iss, key, 2, revs, now, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		chk, err := crl.Check(der, iss, 1, now, revs)
		if !errors.Is(err, crl.ErrTooLarge) && err != nil {
			t.Fatal(err)
		}
		if chk.Entries != n || (n <= crl.LintFullMax) != (chk.Linted == n) || chk.Linted == 0 {
			t.Errorf("n=%d: %+v", n, chk)
		}
		mutate := map[string]func([]storage.Revocation) []storage.Revocation{
			"serial": func(r []storage.Revocation) []storage.Revocation {
				s := r[n/2].Serial
				r[n/2].Serial = s[:len(s)-1] + map[bool]string{true: "1", false: "0"}[s[len(s)-1] == '0']
				return r
			},
			"reason": func(r []storage.Revocation) []storage.Revocation { r[n-1].Reason = 4; return r },
			"time": func(r []storage.Revocation) []storage.Revocation {
				r[3].RevokedAt = r[3].RevokedAt.Add(-time.Second)
				return r
			},
			"missing": func(r []storage.Revocation) []storage.Revocation {
				return append(r, storage.Revocation{Serial: "42", RevokedAt: now, Reason: 1})
			},
			"extra": func(r []storage.Revocation) []storage.Revocation { return r[:n-1] },
		}
		for name, m := range mutate {
			want := m(append([]storage.Revocation(nil), revs...))
			if _, err := crl.Check(der, iss, 1, now, want); err == nil || errors.Is(err, crl.ErrTooLarge) {
				t.Errorf("n=%d: Check against storage with a changed %s: %v", n, name, err)
			}
		}
		// The same serial twice is refused even when storage says so.
		dup := append([]storage.Revocation(nil), revs...)
		dup[n-1].Serial = dup[0].Serial
		der, err = crl.Build(iss, key, 2, dup, now, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := crl.Check(der, iss, 1, now, dup); err == nil || !strings.Contains(err.Error(), "twice") {
			t.Errorf("n=%d: duplicate serial: %v", n, err)
		}
	}
	// Sorted input (what storage hands out) with one serial twice.
	sorted := revocations(100)
	slices.SortFunc(sorted, func(a, b storage.Revocation) int { return strings.Compare(a.Serial, b.Serial) })
	sorted[51].Serial = strings.ToUpper("000" + sorted[50].Serial)
	der, err := crl.Build(iss, key, 2, sorted, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := crl.Check(der, iss, 1, now, sorted); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("sorted input, one serial twice (in another spelling): %v", err)
	}
	// A reason code no relying party should see.
	bad := revocations(2)
	bad[1].Reason = 7
	der, _ = crl.Build(iss, key, 2, bad, now, time.Hour)
	if _, err := crl.Check(der, iss, 1, now, bad); err == nil {
		t.Error("reason 7 accepted")
	}
	// Checks zlint makes, made of every entry above LintFullMax too.
	for name, change := range map[string]func(*storage.Revocation){
		"reason 7":             func(r *storage.Revocation) { r.Reason = 7 },
		"revoked before 1999":  func(r *storage.Revocation) { r.RevokedAt = time.Date(1998, 12, 31, 0, 0, 0, 0, time.UTC) },
		"zero revocation time": func(r *storage.Revocation) { r.RevokedAt = time.Time{} },
	} {
		revs := revocations(crl.LintFullMax + 100)
		change(&revs[1]) // not in the sample (every second entry or sparser), but for its reason
		der, err := crl.Build(iss, key, 2, revs, now, time.Hour)
		if err != nil {
			continue // refused at build: fine too
		}
		if _, err := crl.Check(der, iss, 1, now, revs); err == nil || errors.Is(err, crl.ErrTooLarge) {
			t.Errorf("%s in a large CRL: %v", name, err)
		}
	}
	if _, err := crl.Build(iss, key, 2, []storage.Revocation{{Serial: "12g4", RevokedAt: now}}, now, time.Hour); err == nil {
		t.Error("non-hex serial accepted")
	}
}

// NumberOf (and the updater's reload) read a CRL without parsing each
// entry; they agree with x509's parser.
func TestNumberOfAgreesWithX509(t *testing.T) {
	iss, key := issuer(t)
	for _, n := range []int{0, 1, 3000} {
		der, err := crl.Build(iss, key, 1<<33+uint64(n), revocations(n), time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		for _, form := range [][]byte{der, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})} {
			if got, err := crl.NumberOf(form); err != nil || got != rl.Number.Uint64() {
				t.Errorf("NumberOf = %d, %v; x509 says %v", got, err, rl.Number)
			}
		}
	}
	if _, err := crl.NumberOf([]byte("not a CRL")); err == nil {
		t.Error("NumberOf accepted garbage")
	}
}
