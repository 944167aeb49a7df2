// Package metrics holds anchorage's Prometheus instruments: a registry per
// server (never the global default, so several servers in one process —
// tests, replicas — each report their own), with the Go runtime and
// process collectors, and the CA's operation counters and latency
// histograms. Gauges read from state at scrape time are collectors of
// their own, registered by the package that owns the state (api for the
// CA, agent for a workload).
//
// It imports none of anchorage's packages, so the workload binary links it
// without linking CA code.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry is a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves reg in the Prometheus exposition formats.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// Operation buckets: a signature and an fsync (milliseconds) up to a
// stalled disk or database (seconds).
var opBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Push buckets: one control-plane call paced under 1 request/s, up to a
// slow read-back, import and enable.
var pushBuckets = []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// CA is one CA server's instruments. It implements ca.Meter and
// anchorsync.Meter.
type CA struct {
	Registry *prometheus.Registry
	total    map[string]*prometheus.CounterVec
	duration map[string]*prometheus.HistogramVec
	push     *prometheus.HistogramVec
}

// Operation family names, by operation (ca.OpIssue, ca.OpRenew, ca.OpRevoke).
var opNames = map[string]string{"issue": "issuance", "renew": "renewal", "revoke": "revocation"}

// NewCA registers the CA's instruments on a new registry.
func NewCA() *CA {
	m := &CA{Registry: NewRegistry(), total: map[string]*prometheus.CounterVec{}, duration: map[string]*prometheus.HistogramVec{}}
	for op, name := range opNames {
		m.total[op] = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "anchorage_" + name + "_requests_total",
			Help: "Requests for " + name + " since start, by method and result (ok, retried, or the refusal).",
		}, []string{"method", "result"})
		m.duration[op] = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "anchorage_" + name + "_duration_seconds",
			Help:    "Time to decide a request for " + name + " (for ok: until the record is durable), by method and result.",
			Buckets: opBuckets,
		}, []string{"method", "result"})
		m.Registry.MustRegister(m.total[op], m.duration[op])
	}
	m.push = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "anchorage_trust_anchor_push_duration_seconds",
		Help:    "Time to push one CRL to a trust anchor (UpdateCrl, or find/ImportCrl/EnableCrl), by anchor and result (ok, error).",
		Buckets: pushBuckets,
	}, []string{"anchor", "result"})
	m.Registry.MustRegister(m.push)
	return m
}

// Observe records one issue, renew or revoke.
func (m *CA) Observe(op, method, result string, d time.Duration) {
	if m == nil || m.total[op] == nil {
		return
	}
	m.total[op].WithLabelValues(method, result).Inc()
	m.duration[op].WithLabelValues(method, result).Observe(d.Seconds())
}

// ObservePush records one push to a trust anchor.
func (m *CA) ObservePush(anchor string, d time.Duration, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.push.WithLabelValues(anchor, result).Observe(d.Seconds())
}

// Register adds a collector (the scrape-time state of its owner). A
// second collector of the same families is an error: one registry, one
// server.
func (m *CA) Register(c prometheus.Collector) error { return m.Registry.Register(c) }
