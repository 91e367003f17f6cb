package policysync

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the policy sync's Prometheus metrics.
type Metrics struct {
	latency      prometheus.Histogram
	realizations *prometheus.CounterVec
	policies     prometheus.Gauge
}

// NewMetrics creates the policy sync's metrics and registers them with
// reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "antrea_agent_networkpolicy_realization_duration_seconds",
			Help: "Time from a change reaching the agent (an object or patch from the controller, " +
				"a local pod coming or going) to the node's policy flows installed with it.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		realizations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "antrea_agent_networkpolicy_realizations_total",
			Help: "Realizations of the node's NetworkPolicies (compile, diff, one bundle), by result.",
		}, []string{"result"}),
		policies: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "antrea_agent_networkpolicies",
			Help: "Internal NetworkPolicies realized on the node by the latest successful realization.",
		}),
	}
	reg.MustRegister(m.latency, m.realizations, m.policies)
	return m
}

// observe records a realization; since is when the oldest change it
// covers arrived (zero when it covers none, as a periodic recheck).
func (m *Metrics) observe(err error, since time.Time, policies int) {
	if m == nil {
		return
	}
	if err != nil {
		m.realizations.WithLabelValues("error").Inc()
		return
	}
	m.realizations.WithLabelValues("ok").Inc()
	m.policies.Set(float64(policies))
	if !since.IsZero() {
		m.latency.Observe(time.Since(since).Seconds())
	}
}
