package flowexporter

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the exporter's Prometheus metrics.
type Metrics struct {
	exported     prometheus.Counter
	exportErrors prometheus.Counter
	pollErrors   prometheus.Counter
	connections  prometheus.Gauge
	pollDuration prometheus.Gauge
	pollDelay    prometheus.Gauge
}

// NewMetrics registers the metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		exported: prometheus.NewCounter(prometheus.CounterOpts{Name: "antrea_agent_flow_exporter_records_exported_total",
			Help: "Connection records the collector took."}),
		exportErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "antrea_agent_flow_exporter_export_errors_total",
			Help: "Exports to the collector that failed (their records are sent again, or lost for connections that are gone)."}),
		pollErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "antrea_agent_flow_exporter_poll_errors_total",
			Help: "Polls of the datapath's conntrack that failed."}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "antrea_agent_flow_exporter_connections",
			Help: "Connections the flow exporter follows."}),
		pollDuration: prometheus.NewGauge(prometheus.GaugeOpts{Name: "antrea_agent_flow_exporter_poll_duration_seconds",
			Help: "Duration of the last poll: conntrack dump, enrichment, export."}),
		pollDelay: prometheus.NewGauge(prometheus.GaugeOpts{Name: "antrea_agent_flow_exporter_poll_delay_seconds",
			Help: "How late the last poll started after its tick (the export interval's drift)."}),
	}
	if reg != nil {
		reg.MustRegister(m.exported, m.exportErrors, m.pollErrors, m.connections, m.pollDuration, m.pollDelay)
	}
	return m
}
