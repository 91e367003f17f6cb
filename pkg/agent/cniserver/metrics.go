package cniserver

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the CNI server's Prometheus metrics.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics creates the CNI server's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "antrea_agent_cni_requests_total",
			Help: "CNI requests served, by command and CNI error code (0: success).",
		}, []string{"command", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "antrea_agent_cni_request_duration_seconds",
			Help:    "Time to serve a CNI request, from its arrival to its answer, by command.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"command"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// Observe records one request; it fits Config.Observe.
func (m *Metrics) Observe(o Observation) {
	m.requests.WithLabelValues(o.Command, strconv.FormatUint(uint64(o.Code), 10)).Inc()
	m.duration.WithLabelValues(o.Command).Observe(o.Duration.Seconds())
}
