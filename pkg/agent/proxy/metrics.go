package proxy

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the proxy's Prometheus metrics.
type Metrics struct {
	// SyncDuration is how long each sync took, from taking the changed
	// Services to the switch having them.
	SyncDuration prometheus.Histogram
	// NetworkProgramming is, for each changed EndpointSlice that carries
	// the endpoints.kubernetes.io/last-change-trigger-time annotation, the
	// time from that trigger to the switch having the change (kube-proxy's
	// network_programming_duration_seconds).
	NetworkProgramming prometheus.Histogram
	// LastSync is the time of the last successful sync.
	LastSync prometheus.Gauge
	// ServicePorts counts the realized service ports, Endpoints their
	// endpoints (buckets of their groups).
	ServicePorts prometheus.Gauge
	Endpoints    prometheus.Gauge
	// SyncErrors counts failed syncs (each is retried).
	SyncErrors prometheus.Counter
}

// NewMetrics creates the proxy's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		SyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "antrea_agent_proxy_sync_duration_seconds",
			Help:    "Duration of the service proxy's syncs, from the changed Services to the switch having them.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 17),
		}),
		NetworkProgramming: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "antrea_agent_proxy_network_programming_duration_seconds",
			Help:    "Time from an EndpointSlice's last-change-trigger-time to the switch having the change.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18),
		}),
		LastSync: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "antrea_agent_proxy_last_sync_timestamp_seconds",
			Help: "Unix time of the service proxy's last successful sync.",
		}),
		ServicePorts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "antrea_agent_proxy_service_ports",
			Help: "Service ports realized in the switch.",
		}),
		Endpoints: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "antrea_agent_proxy_endpoints",
			Help: "Endpoints of the realized service ports (buckets of their groups).",
		}),
		SyncErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "antrea_agent_proxy_sync_errors_total",
			Help: "Failed service proxy syncs (each is retried).",
		}),
	}
	reg.MustRegister(m.SyncDuration, m.NetworkProgramming, m.LastSync, m.ServicePorts, m.Endpoints, m.SyncErrors)
	return m
}
