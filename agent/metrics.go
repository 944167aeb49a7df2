package agent

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/anchorage-pki/anchorage/metrics"
)

func agentDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("anchorage_agent_"+name, help, labels, nil)
}

var (
	descNotAfter    = agentDesc("certificate_not_after_timestamp_seconds", "notAfter of the workload certificate the agent holds.")
	descExpiresIn   = agentDesc("certificate_expires_in_seconds", "Seconds until the workload certificate expires (negative once expired).")
	descState       = agentDesc("state", "1 for the agent's current state (starting, ok, renewal-failing, unhealthy, expired, revoked), 0 for the others.", "state")
	descHealthy     = agentDesc("healthy", "1 if the agent is healthy (ok or renewal-failing), else 0.")
	descRenewals    = agentDesc("renewals_total", "Renewals since start.")
	descFailures    = agentDesc("renewal_failures", "Consecutive failed renewal (or enrollment) attempts; 0 after a success.")
	descLastRenewal = agentDesc("last_renewal_timestamp_seconds", "When the agent last renewed its certificate.")
	descNextRenewal = agentDesc("next_renewal_timestamp_seconds", "When the agent will next try to renew.")
	descCredServing = agentDesc("credentials_serving", "1 while the agent serves (or keeps writing) AWS credentials.")
	descCredRefresh = agentDesc("credential_refreshes_total", "CreateSession calls to IAM Roles Anywhere, by result (ok, error).", "result")
	descCredExpiry  = agentDesc("credentials_expiry_timestamp_seconds", "When the AWS credentials last fetched expire.")
)

var agentStates = []string{StateStarting, StateOK, StateRenewalFailing, StateUnhealthy, StateExpired, StateRevoked}

// collector reads Status at scrape time.
type collector struct{ a *Agent }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNotAfter, descExpiresIn, descState, descHealthy, descRenewals, descFailures,
		descLastRenewal, descNextRenewal, descCredServing, descCredRefresh, descCredExpiry} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.a.Status()
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	if !st.NotAfter.IsZero() {
		g(descNotAfter, float64(st.NotAfter.Unix()))
		g(descExpiresIn, st.NotAfter.Sub(c.a.Now()).Seconds())
	}
	for _, s := range agentStates {
		g(descState, b(st.State == s), s)
	}
	g(descHealthy, b(st.Healthy))
	ch <- prometheus.MustNewConstMetric(descRenewals, prometheus.CounterValue, float64(st.Renewals))
	g(descFailures, float64(st.Failures))
	if !st.LastRenewal.IsZero() {
		g(descLastRenewal, float64(st.LastRenewal.Unix()))
	}
	if !st.NextAttempt.IsZero() {
		g(descNextRenewal, float64(st.NextAttempt.Unix()))
	}
	if c.a.cfg.Credentials != nil {
		g(descCredServing, b(st.Credentials == "serving"))
		ch <- prometheus.MustNewConstMetric(descCredRefresh, prometheus.CounterValue, float64(st.CredentialRefreshes), "ok")
		ch <- prometheus.MustNewConstMetric(descCredRefresh, prometheus.CounterValue, float64(st.CredentialFailures), "error")
		if !st.CredentialsExpire.IsZero() {
			g(descCredExpiry, float64(st.CredentialsExpire.Unix()))
		}
	}
}

// MetricsHandler serves the agent's metrics, with the Go runtime and
// process collectors, from a registry of its own.
func (a *Agent) MetricsHandler() http.Handler {
	reg := metrics.NewRegistry()
	reg.MustRegister(collector{a})
	return metrics.Handler(reg)
}
