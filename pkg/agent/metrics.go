package agent

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ovs-cni/antrea/pkg/agent/config"
	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
	"github.com/ovs-cni/antrea/pkg/ovs/unixctl"
)

// observedBundler times the atomic bundles the flow syncer sends.
type observedBundler struct {
	next     agentof.Bundler
	duration *prometheus.HistogramVec
	flows    prometheus.Counter
}

func newObservedBundler(next agentof.Bundler, reg prometheus.Registerer) *observedBundler {
	b := &observedBundler{
		next: next,
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "antrea_agent_openflow_bundle_duration_seconds",
			Help:    "Duration of an OpenFlow bundle (flow adds and deletes committed atomically), by result.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 3, 10),
		}, []string{"result"}),
		flows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "antrea_agent_openflow_bundle_flows_total",
			Help: "Flows added or deleted in committed OpenFlow bundles.",
		}),
	}
	reg.MustRegister(b.duration, b.flows)
	return b
}

func (b *observedBundler) Bundle(ctx context.Context, add, del []of.Flow) error {
	start := time.Now()
	err := b.next.Bundle(ctx, add, del)
	result := "ok"
	if err != nil {
		result = "error"
	} else {
		b.flows.Add(float64(len(add) + len(del)))
	}
	b.duration.WithLabelValues(result).Observe(time.Since(start).Seconds())
	return err
}

var (
	descFlows = prometheus.NewDesc("antrea_agent_ovs_flows",
		"Flows the agent installed in its bridge, by table.", []string{"table"}, nil)
	descConntrack = prometheus.NewDesc("antrea_agent_conntrack_entries",
		"Connections in the datapath's conntrack table (the userspace datapath's, or the kernel's).", nil, nil)
)

// stateCollector reads flow counts and conntrack entries at scrape time.
type stateCollector struct {
	flowsByTable func() map[uint8]int
	conntrack    func(context.Context) (int, error)
}

func (s stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descFlows
	ch <- descConntrack
}

func (s stateCollector) Collect(ch chan<- prometheus.Metric) {
	counts := s.flowsByTable()
	for _, t := range agentof.Tables {
		ch <- prometheus.MustNewConstMetric(descFlows, prometheus.GaugeValue, float64(counts[t.ID]), t.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if n, err := s.conntrack(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(descConntrack, prometheus.GaugeValue, float64(n))
	} else {
		ch <- prometheus.NewInvalidMetric(descConntrack, err)
	}
}

// conntrackEntries counts the datapath's connections: the userspace
// datapath through ovs-vswitchd (dpctl/ct-get-nconns), the kernel's from
// /proc.
func conntrackEntries(cfg config.AgentConfig) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		var text string
		if cfg.OVSDatapathType == config.DatapathNetdev {
			sock, err := unixctl.VswitchdSocket(cfg.OVSRunDir)
			if err != nil {
				return 0, err
			}
			if text, err = unixctl.Call(ctx, sock, "dpctl/ct-get-nconns"); err != nil {
				return 0, err
			}
		} else {
			data, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_count")
			if err != nil {
				return 0, err
			}
			text = string(data)
		}
		n, err := strconv.Atoi(strings.TrimSpace(text))
		if err != nil {
			return 0, fmt.Errorf("conntrack entries %q: %w", strings.TrimSpace(text), err)
		}
		return n, nil
	}
}
