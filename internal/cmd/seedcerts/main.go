// Command seedcerts fills an anchorage database with n realistic
// certificate records, for measuring storage at scale (make bench):
//
//	seedcerts -db CADIR/anchorage.db -n 1000000 [-subjects 1000] [-c 16]
//
// Each record has a real-size DER (an ECDSA P-256 leaf with a DNS and a
// URI name, as the CA issues): one certificate is signed per subject, and
// each record is a copy with its own serial and validity written into the
// DER (the signature is then not valid, which nothing in storage checks).
// Subjects each get n/subjects certificates renewed every 8 hours with a
// 24-hour lifetime, so nearly all are expired and the newest few per
// subject are live. Records are written as the CA writes them: serials
// from ca.NewSerial, issued in time order, each certificate stored on
// its own through the group commit (storage.PutCert for a subject's first
// certificate, storage.PutRenewal for each renewal, which also marks the
// predecessor renewed), by -c concurrent writers. One long-expired
// certificate in 50 is revoked through RevokeSerial an hour after issue,
// with its lineage, and the subject starts a new lineage; their CRL
// entries are then pruned, as PruneRevoked leaves them. One live
// certificate in each of 100 subjects is revoked through RevokeSerial.
// Progress goes to stderr. It prints one line:
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
	"sync/atomic"
	"time"

	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/storage"
)

func main() {
	db := flag.String("db", "", "anchorage database (made by anchorage-ca init)")
	n := flag.Int("n", 100000, "certificate records to add")
	subjects := flag.Int("subjects", 1000, "distinct subject CNs")
	writers := flag.Int("c", 16, "concurrent writers (each commit carries what queued behind the one before)")
	flag.Parse()
	if err := run(*db, *n, *subjects, max(*writers, 1)); err != nil {
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
	// Names as the CA records them (ca.Names.Strings).
	t := &template{subject: subject, sans: []string{"DNS:" + dns, "URI:" + u.String()}, der: der,
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
func (t *template) record(nb time.Time) (*storage.Cert, error) {
	sn, err := ca.NewSerial()
	if err != nil {
		return nil, err
	}
	if len(sn.Bytes()) != serialLen {
		return nil, fmt.Errorf("serial %x is not %d octets", sn, serialLen)
	}
	der := bytes.Clone(t.der)
	copy(der[t.serialAt:], sn.Bytes())
	na := nb.Add(24 * time.Hour)
	copy(der[t.notBeforeAt:], nb.Format("060102150405Z"))
	copy(der[t.notAfterAt:], na.Format("060102150405Z"))
	return &storage.Cert{Serial: ca.SerialHex(sn), Subject: t.subject, SANs: t.sans, NotBefore: nb, NotAfter: na,
		IssuedAt: nb, Method: storage.MethodToken, KeyID: t.keyID, Status: storage.StatusValid, DER: der}, nil
}

func run(path string, n, subjects, writers int) error {
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
	var revoked, done atomic.Int64
	var live []string                  // one live serial per subject, for RevokeSerial
	pred := make([]string, len(tmpls)) // each subject's newest certificate, "" to start a lineage
	revoke := make([]bool, len(tmpls)) // revoke the certificate this round issues
	certs := make([]*storage.Cert, len(tmpls))
	// Round by round over the subjects, oldest first, as a CA issues: each
	// round's certificates are made (serials in issue order), then stored
	// by the writers, each certificate in a commit of its own.
	for j := 0; j < perSubject && int(done.Load()) < n; j++ {
		nb := now.Add(-time.Duration(perSubject-1-j)*8*time.Hour - time.Hour)
		round := min(len(tmpls), n-int(done.Load()))
		for i, t := range tmpls[:round] {
			if certs[i], err = t.record(nb); err != nil {
				return err
			}
			revoke[i] = certs[i].NotAfter.Before(now.Add(-storage.RevocationRetention-time.Hour)) && r.IntN(50) == 0
			derBytes += int64(len(certs[i].DER))
		}
		var next atomic.Int64
		errs := make(chan error, writers)
		for range writers {
			go func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= round {
						errs <- nil
						return
					}
					if err := store(ctx, db, certs[i], pred[i], nb, revoke[i], &revoked); err != nil {
						errs <- err
						return
					}
					pred[i] = certs[i].Serial
					if revoke[i] {
						pred[i] = ""
					}
					if d := done.Add(1); d%5000 == 0 || int(d) == n {
						fmt.Fprintf(os.Stderr, "seedcerts: %d/%d records (%.0f/s)\n", d, n, float64(d)/time.Since(start).Seconds())
					}
				}
			}()
		}
		for range writers {
			if e := <-errs; e != nil && err == nil {
				err = e
			}
		}
		if err != nil {
			return err
		}
		if j == perSubject-1 {
			for _, c := range certs[:min(round, 100)] {
				live = append(live, c.Serial)
			}
		}
	}
	// CRL entries of certificates long expired go, as the CA's pruning
	// removes them; their records and lineage marks stay.
	if _, err := db.PruneRevoked(ctx, now); err != nil {
		return err
	}
	for _, s := range live {
		res, err := db.RevokeSerial(ctx, s, 1, now)
		if err != nil {
			return err
		}
		revoked.Add(int64(len(res.Changed)))
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
		done.Load(), subjects, revoked.Load(), secs, float64(done.Load())/secs, derBytes, st.Size(), float64(st.Size())/float64(derBytes))
	return nil
}

// store writes c as the CA would: a subject's first certificate on its
// own, a renewal of pred with the check-and-mark commit, and, for one to
// revoke, a revocation an hour after issue (with its lineage).
func store(ctx context.Context, db *storage.DB, c *storage.Cert, pred string, nb time.Time, revoke bool, revoked *atomic.Int64) error {
	if pred == "" {
		if err := db.PutCert(ctx, c); err != nil {
			return err
		}
	} else {
		c.Method = storage.MethodRenew
		if err := db.PutRenewal(ctx, pred, c, nb); err != nil {
			return err
		}
	}
	if !revoke {
		return nil
	}
	res, err := db.RevokeSerial(ctx, c.Serial, 1, nb.Add(time.Hour))
	if err != nil {
		return err
	}
	revoked.Add(int64(len(res.Changed)))
	return nil
}
