package caserver

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/events"
	"github.com/anchorage-pki/anchorage/events/stream"
	"github.com/anchorage-pki/anchorage/metrics"
)

// OpenEvents opens the audit stream "events" configures; nil, nil if none.
// Each replica writes its own stream: the chain is per process (per host
// with a shared file), not across replicas.
func OpenEvents(cfg *config.CA, log *slog.Logger) (*stream.Log, error) {
	e := cfg.Events
	if e == nil {
		return nil, nil
	}
	o := stream.Options{Logger: log}
	if e.Stdout {
		o.Writer = os.Stdout
	} else {
		o.File, o.MaxBytes, o.Keep = cfg.Path(e.File), e.MaxBytes(), e.Keep
	}
	l, err := stream.Open(o)
	if err != nil {
		return nil, fmt.Errorf("events.file: %w", err)
	}
	return l, nil
}

// sink is l as an events.Sink, nil (not a typed nil) if there is none.
func sink(l *stream.Log) events.Sink {
	if l == nil {
		return nil
	}
	return l
}

// registerEvents exposes how many audit lines could not be written.
func registerEvents(m *metrics.CA, l *stream.Log) error {
	if l == nil {
		return nil
	}
	return m.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "anchorage_events_write_failures_total",
		Help: "Audit event lines that could not be written (the outcome they record stands).",
	}, func() float64 { return float64(l.Failed()) }))
}

// withRemote marks every request with the client's address for events,
// ACME's included.
func withRemote(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(events.WithWho(r.Context(), events.Who{Remote: r.RemoteAddr})))
	})
}
