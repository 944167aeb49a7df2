package api

import (
	"context"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/crl"
	"github.com/anchorage-pki/anchorage/storage"
)

type fixedCRL struct{ c *crl.CRL }

func (f fixedCRL) Current() *crl.CRL { return f.c }
func (f fixedCRL) WaitFor(context.Context, uint64) (*crl.CRL, error) {
	return f.c, nil
}

type fixedAnchors []storage.AnchorStatus

func (f fixedAnchors) Status(context.Context) ([]storage.AnchorStatus, error) { return f, nil }
func (f fixedAnchors) Kick()                                                  {}

type countingLister struct {
	certs []*storage.Cert
	calls atomic.Int32
}

func (l *countingLister) ListCerts(context.Context, storage.Filter, time.Time) ([]*storage.Cert, error) {
	l.calls.Add(1)
	return l.certs, nil
}

func (l *countingLister) ListCertsPage(context.Context, storage.Filter, time.Time) (storage.CertPage, error) {
	l.calls.Add(1)
	return storage.CertPage{Certs: l.certs}, nil
}

type fixedLeases []storage.LeaseInfo

func (f fixedLeases) Leases(context.Context) ([]storage.LeaseInfo, error) { return f, nil }

func scrapeFamilies(t *testing.T, s *Server) map[string]*dto.MetricFamily {
	t.Helper()
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, apiv1.PathMetrics, nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(w.Body)
	if err != nil {
		t.Fatalf("%v\n%s", err, w.Body)
	}
	return fams
}

// value is the gauge of family name whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	for _, m := range fams[name].GetMetric() {
		match := true
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				found = found || l.GetName() == k && l.GetValue() == v
			}
			match = match && found
		}
		if match {
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// The scrape-time families: lag and errors per anchor, leases held or not,
// CA expiry, and the expiring counts, which are read from storage at most
// once per ExpiryCache.
func TestMetricsState(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := now
	cert := func(method storage.Method, left time.Duration, renewedTo string) *storage.Cert {
		return &storage.Cert{Method: method, Status: storage.StatusValid, NotAfter: now.Add(left), RenewedTo: renewedTo}
	}
	lister := &countingLister{certs: []*storage.Cert{
		cert(storage.MethodToken, 30*time.Minute, ""),   // 1h, 6h, 24h
		cert(storage.MethodRenew, 5*time.Hour, ""),      // 6h, 24h
		cert(storage.MethodACME, 20*time.Hour, ""),      // 24h
		cert(storage.MethodToken, 10*time.Minute, "ab"), // renewed: its successor carries on
		cert(storage.MethodAdmin, 10*time.Minute, ""),   // not a workload
		cert(storage.MethodRenew, 48*time.Hour, ""),     // none
	}}
	root := &x509.Certificate{NotAfter: now.Add(10 * 365 * 24 * time.Hour)}
	issuing := &x509.Certificate{NotAfter: now.Add(90 * 24 * time.Hour)}
	s := New(Options{
		Enroll: http.NotFoundHandler(), Lister: lister, Root: root, Issuers: []*x509.Certificate{issuing},
		CRL: fixedCRL{&crl.CRL{Number: 9, Entries: 3, PEM: make([]byte, 1234), NextUpdate: now.Add(time.Hour)}},
		Anchors: fixedAnchors{
			{ARN: "arn:current", CRLNumber: 9, PushedAt: now},
			{ARN: "arn:behind", CRLNumber: 6, LastError: "UpdateCrl: throttled", Attempts: 3},
		},
		Leases: fixedLeases{{Name: storage.LeaseCRL, Holder: "host-a", Since: now}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return clock },
	})
	fams := scrapeFamilies(t, s)
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
		absent bool
	}{
		{"anchorage_crl_number", nil, 9, false},
		{"anchorage_crl_pem_bytes", nil, 1234, false},
		{"anchorage_crl_pem_max_bytes", nil, 300000, false},
		{"anchorage_trust_anchor_crl_lag", map[string]string{"anchor": "arn:current"}, 0, false},
		{"anchorage_trust_anchor_crl_lag", map[string]string{"anchor": "arn:behind"}, 3, false},
		{"anchorage_trust_anchor_behind", map[string]string{"anchor": "arn:behind"}, 1, false},
		{"anchorage_trust_anchor_failed_attempts", map[string]string{"anchor": "arn:behind"}, 3, false},
		{"anchorage_trust_anchor_last_error_info", map[string]string{"anchor": "arn:behind", "error": "UpdateCrl: throttled"}, 1, false},
		{"anchorage_trust_anchor_last_error_info", map[string]string{"anchor": "arn:current"}, 0, true},
		{"anchorage_trust_anchor_last_push_timestamp_seconds", map[string]string{"anchor": "arn:current"}, float64(now.Unix()), false},
		{"anchorage_lease_held", map[string]string{"lease": "crl"}, 1, false},
		{"anchorage_lease_held", map[string]string{"lease": "push"}, 0, false},
		{"anchorage_certificates_expiring", map[string]string{"within": "1h"}, 1, false},
		{"anchorage_certificates_expiring", map[string]string{"within": "6h"}, 2, false},
		{"anchorage_certificates_expiring", map[string]string{"within": "24h"}, 3, false},
		{"anchorage_ca_expires_in_seconds", map[string]string{"ca": "root"}, 10 * 365 * 24 * 3600, false},
		{"anchorage_ca_expires_in_seconds", map[string]string{"ca": "issuing"}, 90 * 24 * 3600, false},
	}
	for _, tt := range tests {
		got, ok := value(fams, tt.name, tt.labels)
		switch {
		case tt.absent && ok:
			t.Errorf("%s%v present (%v), want none", tt.name, tt.labels, got)
		case !tt.absent && (!ok || got != tt.want):
			t.Errorf("%s%v = %v (present %v), want %v", tt.name, tt.labels, got, ok, tt.want)
		}
	}

	// Within the cache the scan is not repeated; past it, it is.
	clock = now.Add(10 * time.Second)
	scrapeFamilies(t, s)
	if n := lister.calls.Load(); n != 1 {
		t.Errorf("%d scans within 30s, want 1", n)
	}
	clock = now.Add(31 * time.Second)
	scrapeFamilies(t, s)
	if n := lister.calls.Load(); n != 2 {
		t.Errorf("%d scans after 31s, want 2", n)
	}
}
