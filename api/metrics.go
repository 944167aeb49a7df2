package api

import (
	"context"
	"crypto/x509"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/crl"
	"github.com/anchorage-pki/anchorage/storage"
)

// Counter is what /metrics reads from the issuing core.
type Counter interface {
	Counts() ca.Counts
}

// Expiry windows of anchorage_certificates_expiring.
var expiryWindows = []struct {
	label string
	d     time.Duration
}{{"1h", time.Hour}, {"6h", 6 * time.Hour}, {"24h", 24 * time.Hour}}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// Scrape-time families: read from the issuing core, the CRL source,
// storage and anchorsync when Prometheus asks. No subjects or serials: the
// endpoint needs no authentication.
var (
	descIssued     = desc("anchorage_certificates_issued_total", "Certificates issued since start, by method.", "method")
	descRevoked    = desc("anchorage_certificates_revoked_total", "Certificates revoked since start.")
	descSuperseded = desc("anchorage_renewals_superseded_total",
		"Renewals refused because another key already renewed the certificate (possible stolen certificate).")
	descCRLNumber     = desc("anchorage_crl_number", "Number of the current CRL.")
	descCRLEntries    = desc("anchorage_crl_entries", "Revoked, unexpired certificates on the current CRL.")
	descCRLBytes      = desc("anchorage_crl_pem_bytes", "Size of the current CRL as PEM (Roles Anywhere accepts at most anchorage_crl_pem_max_bytes).")
	descCRLMax        = desc("anchorage_crl_pem_max_bytes", "Largest CRL (PEM characters) Roles Anywhere imports.")
	descCRLNext       = desc("anchorage_crl_next_update_timestamp_seconds", "nextUpdate of the current CRL.")
	descCRLFile       = desc("anchorage_crl_file_ok", "0 if the last write of the CRL file (paths.crl) failed, else 1.")
	descAnchorNumber  = desc("anchorage_trust_anchor_crl_number", "Newest CRL number the trust anchor holds.", "anchor")
	descAnchorLag     = desc("anchorage_trust_anchor_crl_lag", "How many CRL numbers the trust anchor is behind the CA's newest CRL (0 if current).", "anchor")
	descAnchorBehind  = desc("anchorage_trust_anchor_behind", "1 if the trust anchor does not hold the current CRL.", "anchor")
	descAnchorFailed  = desc("anchorage_trust_anchor_failed_attempts", "Consecutive failed pushes to the trust anchor.", "anchor")
	descAnchorRegress = desc("anchorage_trust_anchor_regressed", "1 if the trust anchor holds a newer CRL than the CA (pushes stopped).", "anchor")
	descAnchorPushed  = desc("anchorage_trust_anchor_last_push_timestamp_seconds", "When a CRL was last pushed to the trust anchor successfully.", "anchor")
	descAnchorError   = desc("anchorage_trust_anchor_last_error_info", "1 while the last push to the trust anchor failed, with its error (cut to 200 characters).", "anchor", "error")
	descLeaseSince    = desc("anchorage_lease_held_since_timestamp_seconds",
		"When the holder (a CA process; with PostgreSQL any replica's) took the lease (crl: CRL updater, push: trust-anchor pusher).", "lease", "holder")
	descLeaseHeld = desc("anchorage_lease_held", "1 if some CA process holds the lease (crl: CRL updater, push: trust-anchor pusher), else 0.", "lease")
	descExpiring  = desc("anchorage_certificates_expiring",
		"Workload certificates (newest of their lineage, unrevoked) whose notAfter is within the window; read from storage at most every 30s.", "within")
	descCAExpiry = desc("anchorage_ca_expires_in_seconds", "Seconds until the CA certificate expires (root, issuing, admin and service intermediates).", "ca")
)

// state is the Server's scrape-time collector.
type state struct {
	s *Server

	mu       sync.Mutex
	expAt    time.Time
	expiring []int
}

func (c *state) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descIssued, descRevoked, descSuperseded, descCRLNumber, descCRLEntries, descCRLBytes,
		descCRLMax, descCRLNext, descCRLFile, descAnchorNumber, descAnchorLag, descAnchorBehind, descAnchorFailed, descAnchorRegress,
		descAnchorPushed, descAnchorError, descLeaseSince, descLeaseHeld, descExpiring, descCAExpiry} {
		ch <- d
	}
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *state) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := s.o.Now()
	if s.o.Counter != nil {
		counts := s.o.Counter.Counts()
		methods := make([]storage.Method, 0, len(counts.Issued))
		for m := range counts.Issued {
			methods = append(methods, m)
		}
		slices.Sort(methods)
		for _, m := range methods {
			ch <- prometheus.MustNewConstMetric(descIssued, prometheus.CounterValue, float64(counts.Issued[m]), string(m))
		}
		ch <- prometheus.MustNewConstMetric(descRevoked, prometheus.CounterValue, float64(counts.Revoked))
		ch <- prometheus.MustNewConstMetric(descSuperseded, prometheus.CounterValue, float64(counts.Superseded))
	}
	gauge(ch, descCRLMax, crl.MaxPEMSize)
	cur := s.o.CRL.Current()
	if cur != nil {
		gauge(ch, descCRLNumber, float64(cur.Number))
		gauge(ch, descCRLEntries, float64(cur.Entries))
		gauge(ch, descCRLBytes, float64(len(cur.PEM)))
		gauge(ch, descCRLNext, float64(cur.NextUpdate.Unix()))
	}
	if _, ok := s.o.CRL.(CRLFileSource); ok {
		gauge(ch, descCRLFile, bool01(s.crlFileError() == nil))
	}
	if st, err := s.anchorStatus(ctx); err == nil && s.o.Anchors != nil {
		for _, a := range st {
			gauge(ch, descAnchorNumber, float64(a.CRLNumber), a.ARN)
			lag := uint64(0)
			if cur != nil && a.CRLNumber < cur.Number {
				lag = cur.Number - a.CRLNumber
			}
			gauge(ch, descAnchorLag, float64(lag), a.ARN)
			gauge(ch, descAnchorBehind, bool01(lag > 0), a.ARN)
			gauge(ch, descAnchorFailed, float64(a.Attempts), a.ARN)
			gauge(ch, descAnchorRegress, bool01(a.Regressed), a.ARN)
			if !a.PushedAt.IsZero() {
				gauge(ch, descAnchorPushed, float64(a.PushedAt.Unix()), a.ARN)
			}
			if a.LastError != "" {
				e := a.LastError
				if len(e) > 200 {
					e = e[:200]
				}
				gauge(ch, descAnchorError, 1, a.ARN, e)
			}
		}
	}
	if s.o.Leases != nil {
		if ls, err := s.o.Leases.Leases(ctx); err == nil {
			held := map[string]bool{storage.LeaseCRL: false, storage.LeasePush: false}
			for _, l := range ls {
				gauge(ch, descLeaseSince, float64(l.Since.Unix()), l.Name, l.Holder)
				held[l.Name] = true
			}
			for name, h := range held {
				gauge(ch, descLeaseHeld, bool01(h), name)
			}
		}
	}
	if counts := c.expiringCounts(ctx, now); counts != nil {
		for i, w := range expiryWindows {
			gauge(ch, descExpiring, float64(counts[i]), w.label)
		}
	}
	cas := []struct {
		name string
		cert *x509.Certificate
	}{{"root", s.o.Root}}
	for _, iss := range s.o.Issuers {
		cas = append(cas, struct {
			name string
			cert *x509.Certificate
		}{"issuing", iss})
	}
	if s.o.AdminCA != nil {
		cas = append(cas, struct {
			name string
			cert *x509.Certificate
		}{"admin", s.o.AdminCA.Issuer()})
	}
	if s.o.ServiceCA != nil {
		cas = append(cas, struct {
			name string
			cert *x509.Certificate
		}{"service", s.o.ServiceCA()})
	}
	seen := map[string]bool{}
	for _, c := range cas {
		if c.cert == nil || seen[c.name] {
			continue // with several issuing CAs, the first is the one that signs
		}
		seen[c.name] = true
		gauge(ch, descCAExpiry, c.cert.NotAfter.Sub(now).Seconds(), c.name)
	}
}

// expiringCounts counts live workload certificates by window. They are
// read from the expiry index (only what expires within the widest window),
// and kept for ExpiryCache (30s by default) rather than read on every
// scrape.
func (c *state) expiringCounts(ctx context.Context, now time.Time) []int {
	if c.s.o.Lister == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expiring != nil && now.Sub(c.expAt) < c.s.o.ExpiryCache {
		return c.expiring
	}
	// Only certificates expiring within the widest window, a page at a
	// time from the expiry index: neither time nor memory grows with
	// the certificates the CA has stored.
	counts := make([]int, len(expiryWindows))
	f := storage.Filter{Status: storage.StatusValid, Live: true, Before: now.Add(expiryWindows[len(expiryWindows)-1].d).Add(time.Nanosecond), Limit: 1000}
	for {
		page, err := c.s.o.Lister.ListCertsPage(ctx, f, now)
		if err != nil {
			c.s.o.Logger.Warn("metrics: listing certificates for expiry", "err", err)
			return c.expiring
		}
		countExpiring(counts, page.Certs, now)
		if page.Next == "" {
			break
		}
		f.Cursor = page.Next
	}
	c.expiring, c.expAt = counts, now
	return counts
}

func countExpiring(counts []int, list []*storage.Cert, now time.Time) {
	for _, cert := range list {
		switch {
		case cert.RenewedTo != "", cert.Status != storage.StatusValid:
			continue // a successor carries on; a lapse of this one is moot
		case cert.Method != storage.MethodToken && cert.Method != storage.MethodRenew && cert.Method != storage.MethodACME:
			continue
		}
		for i, w := range expiryWindows {
			if cert.NotAfter.Sub(now) <= w.d {
				counts[i]++
			}
		}
	}
}
