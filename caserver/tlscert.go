package caserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync/atomic"
	"time"

	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/tlsfile"
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
// has less than TLSRenewBefore left, through the issuing core (linted,
// recorded, counted, logged), writes key and chain as one file with one
// rename, then serves it. A CA directory still in the older two-file
// layout moves to the combined file here; the stale pair is removed after
// the rename, and ignored if a crash leaves it (tlsfile.Load).
func (s *Server) renewTLSIfDue(ctx context.Context, now time.Time) error {
	old := s.tlsCert.leaf()
	if old.NotAfter.Sub(now) > TLSRenewBefore {
		return nil
	}
	var names ca.Names
	names.DNS, names.IPs = old.DNSNames, old.IPAddresses
	iss, err := s.Authority.IssueTLS(ctx, ca.TLSRequest{CommonName: old.Subject.CommonName, Names: names})
	if err != nil {
		return fmt.Errorf("renew the API's TLS certificate: %w", err)
	}
	combined, certFile, keyFile := s.Config.TLSPaths()
	if err := tlsfile.Write(combined, iss.Key, iss.Chain...); err != nil {
		return fmt.Errorf("renew the API's TLS certificate: %w", err)
	}
	for _, p := range []string{certFile, keyFile} {
		if p != "" && p != combined {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.log.Warn("could not remove the replaced TLS file; it is ignored", "file", p, "err", err)
			}
		}
	}
	chain := make([][]byte, len(iss.Chain))
	for i, c := range iss.Chain {
		chain[i] = c.Raw
	}
	s.tlsCert.cur.Store(&tls.Certificate{Certificate: chain, PrivateKey: iss.Key, Leaf: iss.Cert})
	s.log.Info("renewed the API's TLS certificate", "serial", iss.Record.Serial, "file", combined,
		"not_after", iss.Cert.NotAfter.UTC().Format(time.RFC3339), "previous_not_after", old.NotAfter.UTC().Format(time.RFC3339))
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
