package networkpolicy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of the controller's computation, read at scrape time from its
// state, plus the duration of each computation round.
type metrics struct {
	flushDuration prometheus.Histogram
}

func newMetrics() *metrics {
	return &metrics{flushDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "antrea_controller_computation_duration_seconds",
		Help:    "Duration of one computation round: the marked AppliedToGroups, policies and AddressGroups stored.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
	})}
}

var (
	descPending = prometheus.NewDesc("antrea_controller_queue_depth",
		"Objects (groups, policies) marked for computation and not computed yet.", nil, nil)
	descProcessed = prometheus.NewDesc("antrea_controller_computed_objects_total",
		"Objects (groups, policies) computed since start.", nil, nil)
	descObjects = prometheus.NewDesc("antrea_controller_objects",
		"Objects the controller serves, by kind.", []string{"kind"}, nil)
	descWatchers = prometheus.NewDesc("antrea_controller_watchers",
		"Watches of the controller's API, by kind and by the node they are for (empty: all nodes).", []string{"kind", "node"}, nil)
)

// Collector exports the controller's metrics.
func (c *Controller) Collector() prometheus.Collector { return collector{c} }

type collector struct{ c *Controller }

func (k collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPending
	ch <- descProcessed
	ch <- descObjects
	ch <- descWatchers
	k.c.metrics.flushDuration.Describe(ch)
}

func (k collector) Collect(ch chan<- prometheus.Metric) {
	c := k.c
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(c.pending.Load()))
	ch <- prometheus.MustNewConstMetric(descProcessed, prometheus.CounterValue, float64(c.processed.Load()))
	for kind, stats := range map[string]func() (int, map[string]int){
		"AppliedToGroup": c.appliedToGroups.Stats,
		"AddressGroup":   c.addressGroups.Stats,
		"NetworkPolicy":  c.networkPolicies.Stats,
	} {
		n, watchers := stats()
		ch <- prometheus.MustNewConstMetric(descObjects, prometheus.GaugeValue, float64(n), kind)
		for node, w := range watchers {
			ch <- prometheus.MustNewConstMetric(descWatchers, prometheus.GaugeValue, float64(w), kind, node)
		}
	}
	c.metrics.flushDuration.Collect(ch)
}

func (m *metrics) observeFlush(start time.Time) {
	m.flushDuration.Observe(time.Since(start).Seconds())
}
