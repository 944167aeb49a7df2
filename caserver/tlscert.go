package caserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/anchorage-pki/anchorage/atomicfile"
	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/signer"
	"github.com/anchorage-pki/anchorage/storage"
)

// TLSRenewBefore is how long before expiry the API's own TLS certificate
// is replaced. A CA whose API certificate lapses cuts every workload off
// from renewal, so this must never depend on a human remembering.
const TLSRenewBefore = 30 * 24 * time.Hour

// serverCert holds the API's TLS certificate and swaps it without a
// restart.
type serverCert struct {
	cur atomic.Pointer[tls.Certificate]
}

func (h *serverCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return h.cur.Load(), nil }

func (h *serverCert) leaf() *x509.Certificate { return h.cur.Load().Leaf }

// renewTLSIfDue re-issues the API's certificate for the same names when it
// has less than TLSRenewBefore left: new key and certificate written
// atomically (key first), recorded in storage, then served.
func (s *Server) renewTLSIfDue(ctx context.Context, now time.Time) error {
	old := s.tlsCert.leaf()
	if old.NotAfter.Sub(now) > TLSRenewBefore {
		return nil
	}
	var names ca.Names
	names.DNS, names.IPs = old.DNSNames, old.IPAddresses
	cert, key, err := ca.ServiceCert(s.Issuer, s.caKey, old.Subject.CommonName, names, x509.ExtKeyUsageServerAuth, ca.TLSLifetime, now)
	if err != nil {
		return fmt.Errorf("renew the API's TLS certificate: %w", err)
	}
	rec := &storage.Cert{Serial: ca.SerialHex(cert.SerialNumber), Subject: cert.Subject.CommonName, SANs: names.Strings(),
		NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, IssuedAt: now, Method: "tls", Status: storage.StatusValid, DER: cert.Raw}
	if err := s.Store.PutCert(ctx, rec); err != nil {
		return err
	}
	if err := signer.WriteFile(s.Config.Path(s.Config.Paths.TLSKey), key); err != nil {
		return err
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Issuer.Raw})...)
	if err := atomicfile.Write(s.Config.Path(s.Config.Paths.TLSCert), chain, 0o644); err != nil {
		return err
	}
	s.tlsCert.cur.Store(&tls.Certificate{Certificate: [][]byte{cert.Raw, s.Issuer.Raw}, PrivateKey: key, Leaf: cert})
	s.log.Info("renewed the API's TLS certificate", "serial", rec.Serial, "not_after", cert.NotAfter.UTC().Format(time.RFC3339),
		"previous_not_after", old.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// keepTLSFresh checks the API certificate daily.
func (s *Server) keepTLSFresh(ctx context.Context) {
	t := time.NewTicker(24 * time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.renewTLSIfDue(ctx, time.Now()); err != nil {
				s.log.Error("API TLS certificate renewal failed; retrying tomorrow", "err", err)
			}
		}
	}
}
