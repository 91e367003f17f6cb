package policystats

import (
	"github.com/prometheus/client_golang/prometheus"

	cpv1beta1 "github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
)

// Metrics count, per NetworkPolicy, the connections the node's flows
// allowed and denied, as the collections find them.
type Metrics struct {
	allowed, denied *prometheus.CounterVec
	// seen holds the policies with series, to delete those of policies
	// that are gone.
	seen map[[2]string]bool
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		allowed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "antrea_agent_networkpolicy_allowed_connections_total",
			Help: "Connections the NetworkPolicy's rules allowed on this node (counted from the flows every networkPolicyStatsInterval).",
		}, []string{"namespace", "policy"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "antrea_agent_networkpolicy_denied_connections_total",
			Help: "Connection attempts to or from the NetworkPolicy's pods that its isolation dropped on this node (each try counts).",
		}, []string{"namespace", "policy"}),
		seen: map[[2]string]bool{},
	}
	reg.MustRegister(m.allowed, m.denied)
	return m
}

// observe adds a collection's counts, and drops the series of policies
// not in live (namespace/name of the policies realized now).
func (m *Metrics) observe(s *cpv1beta1.NodeStatsSummary, live map[[2]string]bool) {
	if m == nil {
		return
	}
	if s != nil {
		for _, p := range s.NetworkPolicies {
			k := [2]string{p.NetworkPolicy.Namespace, p.NetworkPolicy.Name}
			m.seen[k] = true
			var allowed int64
			for _, r := range p.Rules {
				allowed += r.Allowed.Sessions
			}
			m.allowed.WithLabelValues(k[0], k[1]).Add(float64(allowed))
			m.denied.WithLabelValues(k[0], k[1]).Add(float64(p.Dropped.Sessions))
		}
	}
	for k := range m.seen {
		if !live[k] {
			m.allowed.DeleteLabelValues(k[0], k[1])
			m.denied.DeleteLabelValues(k[0], k[1])
			delete(m.seen, k)
		}
	}
}
