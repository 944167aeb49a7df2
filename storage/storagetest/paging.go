package storagetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/url"
	"reflect"
	"slices"
	"testing"
	"time"

	. "github.com/anchorage-pki/anchorage/storage"
)

// realCert is a record with a real certificate behind it, as the issuing
// core stores one: subject, names, validity and key id as in its DER.
func realCert(t *testing.T, serial, subject string, notAfter time.Time) *Cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := new(big.Int).SetString(serial, 16)
	u, _ := url.Parse("spiffe://example/" + subject)
	tmpl := &x509.Certificate{SerialNumber: n, Subject: pkix.Name{CommonName: subject},
		NotBefore: notAfter.Add(-24 * time.Hour).Truncate(time.Second), NotAfter: notAfter.Truncate(time.Second),
		DNSNames: []string{subject + ".internal"}, URIs: []*url.URL{u}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := x509.ParseCertificate(der)
	sum := sha256.Sum256(x.RawSubjectPublicKeyInfo)
	return &Cert{Serial: serial, Subject: subject, SANs: []string{subject + ".internal", u.String()},
		NotBefore: x.NotBefore, NotAfter: x.NotAfter, IssuedAt: x.NotBefore, Method: MethodToken, TokenID: "jti-" + serial,
		KeyID: hex.EncodeToString(sum[:]), Status: StatusValid, DER: der}
}

// testRecordRoundTrip: a record made from a real certificate, and one
// whose fields differ from its DER, read back exactly as stored.
func testRecordRoundTrip(t *testing.T, open Opener) {
	d := open(t)
	ctx := context.Background()
	a := realCert(t, "7a01", "round-trip", t0.Add(48*time.Hour))
	b := realCert(t, "7a02", "other", t0.Add(48*time.Hour))
	b.Subject, b.SANs, b.KeyID, b.Lineage, b.Order = "not-the-cn", []string{"x"}, "KEY-not-hex", "7a09", ""
	b.NotAfter = b.NotAfter.Add(time.Second)
	must(t, d.PutCerts(ctx, []*Cert{a, b}))
	_, err := d.RevokeSerial(ctx, "7a02", 1, t0)
	must(t, err)
	b.Status, b.RevokedAt, b.Reason = StatusRevoked, t0, 1
	for _, want := range []*Cert{a, b} {
		got := get(t, d, want.Serial)
		got.RevokedWith = ""
		if !got.NotAfter.Equal(want.NotAfter) || !got.NotBefore.Equal(want.NotBefore) || !got.IssuedAt.Equal(want.IssuedAt) || !got.RevokedAt.Equal(want.RevokedAt) {
			t.Errorf("%s times: got %v %v %v %v", want.Serial, got.NotBefore, got.NotAfter, got.IssuedAt, got.RevokedAt)
		}
		got.NotAfter, got.NotBefore, got.IssuedAt, got.RevokedAt = want.NotAfter, want.NotBefore, want.IssuedAt, want.RevokedAt
		if want.Lineage == "" {
			want.Lineage = want.Serial
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("read back\n%+v\nwant\n%+v", got, want)
		}
	}
}

// testPaging: every listing, paged at any size, yields each matching
// certificate exactly once, in the order Filter describes, and the same
// as one unpaged listing; certificates inserted between pages do not make
// any other appear twice or go missing.
func testPaging(t *testing.T, open Opener) {
	d := open(t)
	ctx := context.Background()
	now := t0
	var cs []*Cert
	for i := range 60 {
		// notAfter repeats, so ties are broken by serial.
		c := cert(fmt.Sprintf("%02x%02x", (i*37)%256, i), fmt.Sprintf("host-%d", i%4), now.Add(time.Duration(i%9-4)*time.Hour))
		cs = append(cs, c)
	}
	must(t, d.PutCerts(ctx, cs))
	for _, s := range []string{cs[3].Serial, cs[10].Serial, cs[11].Serial, cs[40].Serial} {
		_, err := d.RevokeSerial(ctx, s, 1, now)
		must(t, err)
	}
	filters := []Filter{{}, {Subject: "host-1"}, {Subject: "host-2", Status: StatusRevoked}, {Status: StatusRevoked},
		{Status: StatusValid, Live: true}, {Status: StatusValid, Expired: true}, {Live: true},
		{Status: StatusValid, Live: true, Before: now.Add(2 * time.Hour)}}
	n := 0 // certificates inserted between pages, over all filters
	for _, f := range filters {
		all, err := d.ListCerts(ctx, f, now)
		must(t, err)
		for i, c := range all {
			if !f.Match(c, now) || (f.Subject != "" && c.Subject != f.Subject) {
				t.Errorf("%+v: %s does not match", f, c.Serial)
			}
			if i > 0 && !inOrder(f, all[i-1], c) {
				t.Errorf("%+v: %s before %s", f, all[i-1].Serial, c.Serial)
			}
		}
		want := serials(all)
		for _, size := range []int{1, 3, 7, 100} {
			got, pages := pageAll(t, d, f, now, size, nil)
			if !slices.Equal(got, want) {
				t.Errorf("%+v by %d: %v, want %v", f, size, got, want)
			}
			if size < len(want) && pages < (len(want)+size-1)/size {
				t.Errorf("%+v by %d: %d pages for %d certificates", f, size, pages, len(want))
			}
		}
		// Inserts between pages, before and after the cursor.
		got, _ := pageAll(t, d, f, now, 4, func() {
			n++
			c := cert(fmt.Sprintf("%02xff%02x", (n*53)%256, n), fmt.Sprintf("host-%d", n%4), now.Add(time.Duration(n%9-4)*time.Hour+time.Minute))
			must(t, d.PutCert(ctx, c))
		})
		seen := map[string]bool{}
		for _, s := range got {
			if seen[s] {
				t.Errorf("%+v with inserts: %s twice", f, s)
			}
			seen[s] = true
		}
		for _, s := range want {
			if !seen[s] {
				t.Errorf("%+v with inserts: %s missing", f, s)
			}
		}
	}
	if _, err := d.ListCertsPage(ctx, Filter{Cursor: "not a cursor!", Limit: 1}, now); err == nil {
		t.Error("a malformed cursor was accepted")
	}
}

func inOrder(f Filter, a, b *Cert) bool {
	if f.ByExpiry() {
		ta, tb := a.NotAfter.UnixMicro(), b.NotAfter.UnixMicro()
		return ta < tb || ta == tb && a.Serial < b.Serial
	}
	return a.Serial < b.Serial
}

func serials(cs []*Cert) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Serial)
	}
	return out
}

func pageAll(t *testing.T, d Backend, f Filter, now time.Time, size int, between func()) (got []string, pages int) {
	t.Helper()
	f.Limit = size
	for {
		p, err := d.ListCertsPage(context.Background(), f, now)
		must(t, err)
		pages++
		if len(p.Certs) > size {
			t.Fatalf("%+v: page of %d, limit %d", f, len(p.Certs), size)
		}
		got = append(got, serials(p.Certs)...)
		if p.Next == "" {
			return got, pages
		}
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
		if between != nil {
			between()
		}
		f.Cursor = p.Next
	}
}
