// Command seedcerts fills an anchorage database with n realistic
// certificate records, for measuring storage at scale (make bench):
//
//	seedcerts -db CADIR/anchorage.db -n 1000000 [-subjects 1000] [-batch 5000]
//
// Each record has a real-size DER (an ECDSA P-256 leaf with a DNS and a
// URI name, as the CA issues): one certificate is signed per subject, and
// each record is a copy with its own serial and validity written into the
// DER (the signature is then not valid, which nothing in storage checks).
// Subjects each get n/subjects certificates renewed every 8 hours with a
// 24-hour lifetime, so nearly all are expired and the newest few per
// subject are live; 2% of those long expired are revoked (their CRL
// entries pruned, as PruneRevoked leaves them), and one live certificate
// in 100 subjects is revoked through RevokeSerial. Records go in through
// storage.PutCerts, batch per commit, with progress on stderr. It prints
// one line:
//
//	seed n=... subjects=... revoked=... secs=... rate=.../s der_bytes=... file_bytes=... file_per_der=...
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"flag"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"time"

	"github.com/anchorage-pki/anchorage/storage"
)

func main() {
	db := flag.String("db", "", "anchorage database (made by anchorage-ca init)")
	n := flag.Int("n", 100000, "certificate records to add")
	subjects := flag.Int("subjects", 1000, "distinct subject CNs")
	batch := flag.Int("batch", 5000, "records per commit")
	flag.Parse()
	if err := run(*db, *n, *subjects, *batch); err != nil {
		fmt.Fprintln(os.Stderr, "seedcerts:", err)
		os.Exit(1)
	}
}

// template is one subject's signed certificate and where in its DER the
// serial and the validity times are.
type template struct {
	subject     string
	sans        []string
	der         []byte
	serialAt    int
	notBeforeAt int
	notAfterAt  int
	keyID       string
}

const serialLen = 20

func makeTemplate(issuer *x509.Certificate, key *ecdsa.PrivateKey, subject string) (*template, error) {
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial := bytes.Repeat([]byte{0x5a}, serialLen)
	nb := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	u, _ := url.Parse("spiffe://anchorage.example/" + subject)
	dns := subject + ".hosts.example.com"
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes(serial), Subject: pkix.Name{CommonName: subject},
		NotBefore: nb, NotAfter: nb.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames: []string{dns}, URIs: []*url.URL{u},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &leafKey.PublicKey, key)
	if err != nil {
		return nil, err
	}
	t := &template{subject: subject, sans: []string{dns, u.String()}, der: der,
		serialAt:    bytes.Index(der, serial),
		notBeforeAt: bytes.Index(der, []byte("010203040506Z")),
		notAfterAt:  bytes.Index(der, []byte("010204040506Z"))}
	if t.serialAt < 0 || t.notBeforeAt < 0 || t.notAfterAt < 0 {
		return nil, fmt.Errorf("template DER layout not found")
	}
	x, _ := x509.ParseCertificate(der)
	sum := sha256.Sum256(x.RawSubjectPublicKeyInfo)
	t.keyID = hex.EncodeToString(sum[:])
	return t, nil
}

// record is a copy of t's DER with serial and validity written in.
func (t *template) record(r *mrand.Rand, nb time.Time) *storage.Cert {
	der := bytes.Clone(t.der)
	s := der[t.serialAt : t.serialAt+serialLen]
	for i := range s {
		s[i] = byte(r.Uint32())
	}
	s[0] = 1 + s[0]%0x7f // positive, no leading zero: same length
	na := nb.Add(24 * time.Hour)
	copy(der[t.notBeforeAt:], nb.Format("060102150405Z"))
	copy(der[t.notAfterAt:], na.Format("060102150405Z"))
	serial := hex.EncodeToString(s)
	return &storage.Cert{Serial: serial, Subject: t.subject, SANs: t.sans, NotBefore: nb, NotAfter: na,
		IssuedAt: nb, Method: storage.MethodRenew, KeyID: t.keyID, Lineage: serial, Status: storage.StatusValid, DER: der}
}

func run(path string, n, subjects, batch int) error {
	if path == "" {
		return fmt.Errorf("-db is required")
	}
	db, err := storage.Open(path)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "seed issuing CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	issuer, _ := x509.ParseCertificate(caDER)
	tmpls := make([]*template, subjects)
	for i := range tmpls {
		if tmpls[i], err = makeTemplate(issuer, caKey, fmt.Sprintf("host-%d.example.com", i)); err != nil {
			return err
		}
	}

	r := mrand.New(mrand.NewPCG(1, 2))
	perSubject := (n + subjects - 1) / subjects
	now := time.Now().UTC().Truncate(time.Second)
	start := time.Now()
	var derBytes int64
	revoked, done := 0, 0
	var live []string // one live serial per subject, for RevokeSerial
	buf := make([]*storage.Cert, 0, batch)
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if err := db.PutCerts(ctx, buf); err != nil {
			return err
		}
		done += len(buf)
		buf = buf[:0]
		el := time.Since(start).Seconds()
		fmt.Fprintf(os.Stderr, "seedcerts: %d/%d records (%.0f/s)\n", done, n, float64(done)/el)
		return nil
	}
	// Round by round over the subjects, oldest first, as a CA issues.
	for j := 0; j < perSubject && done+len(buf) < n; j++ {
		nb := now.Add(-time.Duration(perSubject-1-j)*8*time.Hour - time.Hour)
		for _, t := range tmpls {
			if done+len(buf) >= n {
				break
			}
			c := t.record(r, nb)
			if c.NotAfter.Before(now.Add(-storage.RevocationRetention-time.Hour)) && r.IntN(50) == 0 {
				c.Status, c.RevokedAt, c.Reason = storage.StatusRevoked, nb.Add(time.Hour), 1
				revoked++
			}
			if j == perSubject-1 && len(live) < 100 {
				live = append(live, c.Serial)
			}
			derBytes += int64(len(c.DER))
			buf = append(buf, c)
			if len(buf) == batch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	for _, s := range live {
		if _, err := db.RevokeSerial(ctx, s, 1, now); err != nil {
			return err
		}
		revoked++
	}
	secs := time.Since(start).Seconds()
	if err := db.Close(); err != nil {
		return err
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	fmt.Printf("seed n=%d subjects=%d revoked=%d secs=%.1f rate=%.0f/s der_bytes=%d file_bytes=%d file_per_der=%.3f\n",
		done, subjects, revoked, secs, float64(done)/secs, derBytes, st.Size(), float64(st.Size())/float64(derBytes))
	return nil
}
