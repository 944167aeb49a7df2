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
	// fromIssuer: the served certificate is signed by the issuing CA (a
	// CA made before the service intermediate), so its key is an AWS
	// identity wherever the issuing CA is a trust anchor.
	fromIssuer atomic.Bool
}

// set serves c from now on; issuer is the issuing CA.
func (h *serverCert) set(c *tls.Certificate, issuer *x509.Certificate) {
	h.fromIssuer.Store(c.Leaf != nil && c.Leaf.CheckSignatureFrom(issuer) == nil)
	h.cur.Store(c)
}

func (h *serverCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return h.cur.Load(), nil }

func (h *serverCert) leaf() *x509.Certificate { return h.cur.Load().Leaf }

// renewTLSIfDue re-issues the API's certificate for the same names when it
// has less than TLSRenewBefore left, through the issuing core (linted,
// recorded, counted, logged), writes key and chain as one file with one
// rename, then serves it. A CA directory still in the older two-file
// layout moves to the combined file here; the stale pair is removed after
// the rename, and ignored if a crash leaves it (tlsfile.Load).
//
// The service intermediate signs it. A CA made before that existed gets
// one from the root key at renewal if the key is in the directory, and
// otherwise renews from the issuing CA, warning (log and /health), as
// before. A certificate still from the issuing CA is replaced at once,
// due or not, as soon as a service intermediate is there (`anchorage-ca
// service-ca` while serve runs, then SIGHUP).
func (s *Server) renewTLSIfDue(ctx context.Context, now time.Time) error {
	old := s.tlsCert.leaf()
	svc, err := s.serviceCA.get(ctx)
	if err != nil {
		// A broken service intermediate must not stop a CA whose current
		// certificate still works: renew as before, loudly.
		s.log.Error("service intermediate unusable; the API's TLS certificate stays on the issuing CA", "err", err)
		svc = nil
	}
	due := old.NotAfter.Sub(now) <= TLSRenewBefore
	migrate := svc != nil && s.tlsCert.fromIssuer.Load()
	if !due && !migrate {
		return nil
	}
	if svc == nil && err == nil {
		switch svc, err = s.serviceCA.ensure(ctx); {
		case errors.Is(err, ErrRootKeyOffline):
			s.log.Warn("the API's TLS certificate is renewed from the issuing CA: its key is an AWS identity wherever that CA is a trust anchor; "+
				"fix with the root key in the directory: "+s.serviceCACommand(), "err", err)
			svc = nil
		case err != nil:
			s.log.Error("could not make the service intermediate; the API's TLS certificate stays on the issuing CA", "err", err)
			svc = nil
		}
	}
	var names ca.Names
	names.DNS, names.IPs = old.DNSNames, old.IPAddresses
	iss, err := s.Authority.IssueTLS(ctx, ca.TLSRequest{CommonName: old.Subject.CommonName, Names: names, Service: svc})
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
	s.tlsCert.set(&tls.Certificate{Certificate: chain, PrivateKey: iss.Key, Leaf: iss.Cert}, s.Issuer)
	s.log.Info("renewed the API's TLS certificate", "serial", iss.Record.Serial, "file", combined,
		"issuer", iss.Chain[1].Subject.CommonName, "previous_serial", ca.SerialHex(old.SerialNumber),
		"not_after", iss.Cert.NotAfter.UTC().Format(time.RFC3339), "previous_not_after", old.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// serviceCACommand is the one line that moves a legacy CA's TLS
// certificate off the issuing CA.
func (s *Server) serviceCACommand() string {
	return "anchorage-ca service-ca --dir " + s.Config.Dir() + " && kill -HUP <serve's pid>"
}

// tlsNotices are the /health warnings about the API's TLS certificate.
func (s *Server) tlsNotices() []string {
	if !s.tlsCert.fromIssuer.Load() {
		return nil
	}
	return []string{"the API's TLS certificate is signed by the issuing CA (a trust anchor), so its key is an AWS identity: " +
		"with root.key in the CA directory, run `" + s.serviceCACommand() + "`"}
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
