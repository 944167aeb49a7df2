package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/storage"
)

// Counter is what /metrics reads from the issuing core.
type Counter interface {
	Counts() ca.Counts
}

// metrics serves the Prometheus text format: issuance and revocation
// totals, the current CRL, and how far each trust anchor is behind. No
// subjects or serials: the endpoint needs no authentication.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	metric := func(name, typ, help string) { fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ) }
	if s.o.Counter != nil {
		c := s.o.Counter.Counts()
		metric("anchorage_certificates_issued_total", "counter", "Certificates issued since start, by method.")
		methods := make([]storage.Method, 0, len(c.Issued))
		for m := range c.Issued {
			methods = append(methods, m)
		}
		slices.Sort(methods)
		for _, m := range methods {
			fmt.Fprintf(&b, "anchorage_certificates_issued_total{method=%q} %d\n", m, c.Issued[m])
		}
		metric("anchorage_certificates_revoked_total", "counter", "Certificates revoked since start.")
		fmt.Fprintf(&b, "anchorage_certificates_revoked_total %d\n", c.Revoked)
		metric("anchorage_renewals_superseded_total", "counter",
			"Renewals refused because another key already renewed the certificate (possible stolen certificate).")
		fmt.Fprintf(&b, "anchorage_renewals_superseded_total %d\n", c.Superseded)
	}
	cur := s.o.CRL.Current()
	if cur != nil {
		metric("anchorage_crl_number", "gauge", "Number of the current CRL.")
		fmt.Fprintf(&b, "anchorage_crl_number %d\n", cur.Number)
		metric("anchorage_crl_entries", "gauge", "Revoked, unexpired certificates on the current CRL.")
		fmt.Fprintf(&b, "anchorage_crl_entries %d\n", cur.Entries)
		metric("anchorage_crl_pem_bytes", "gauge", "Size of the current CRL as PEM (Roles Anywhere accepts at most 300000).")
		fmt.Fprintf(&b, "anchorage_crl_pem_bytes %d\n", len(cur.PEM))
		metric("anchorage_crl_next_update_timestamp_seconds", "gauge", "nextUpdate of the current CRL.")
		fmt.Fprintf(&b, "anchorage_crl_next_update_timestamp_seconds %d\n", cur.NextUpdate.Unix())
	}
	if _, ok := s.o.CRL.(CRLFileSource); ok {
		metric("anchorage_crl_file_ok", "gauge", "0 if the last write of the CRL file (paths.crl) failed, else 1.")
		v := 1
		if s.crlFileError() != nil {
			v = 0
		}
		fmt.Fprintf(&b, "anchorage_crl_file_ok %d\n", v)
	}
	if st, err := s.anchorStatus(r.Context()); err == nil && s.o.Anchors != nil {
		metric("anchorage_trust_anchor_crl_number", "gauge", "Newest CRL number the trust anchor holds.")
		for _, a := range st {
			fmt.Fprintf(&b, "anchorage_trust_anchor_crl_number{anchor=%q} %d\n", a.ARN, a.CRLNumber)
		}
		metric("anchorage_trust_anchor_behind", "gauge", "1 if the trust anchor does not hold the current CRL.")
		for _, a := range st {
			behind := 0
			if cur != nil && a.CRLNumber < cur.Number {
				behind = 1
			}
			fmt.Fprintf(&b, "anchorage_trust_anchor_behind{anchor=%q} %d\n", a.ARN, behind)
		}
		metric("anchorage_trust_anchor_failed_attempts", "gauge", "Consecutive failed pushes to the trust anchor.")
		for _, a := range st {
			fmt.Fprintf(&b, "anchorage_trust_anchor_failed_attempts{anchor=%q} %d\n", a.ARN, a.Attempts)
		}
		metric("anchorage_trust_anchor_regressed", "gauge", "1 if the trust anchor holds a newer CRL than the CA (pushes stopped).")
		for _, a := range st {
			v := 0
			if a.Regressed {
				v = 1
			}
			fmt.Fprintf(&b, "anchorage_trust_anchor_regressed{anchor=%q} %d\n", a.ARN, v)
		}
	}
	if s.o.Leases != nil {
		if ls, err := s.o.Leases.Leases(r.Context()); err == nil {
			metric("anchorage_lease_held_since_timestamp_seconds", "gauge", "When the holder (a CA process; with PostgreSQL any replica's) took the lease (crl: CRL updater, push: trust-anchor pusher).")
			for _, l := range ls {
				fmt.Fprintf(&b, "anchorage_lease_held_since_timestamp_seconds{lease=%q,holder=%q} %d\n", l.Name, l.Holder, l.Since.Unix())
			}
		}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	w.Write([]byte(b.String()))
}
