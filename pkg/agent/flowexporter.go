package agent

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"k8s.io/client-go/informers"
	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/agent/config"
	"github.com/ovs-cni/antrea/pkg/agent/flowexporter"
	"github.com/ovs-cni/antrea/pkg/agent/flowexporter/conntrack"
	"github.com/ovs-cni/antrea/pkg/agent/flowexporter/enrich"
	"github.com/ovs-cni/antrea/pkg/agent/flowexporter/ipfix"
	"github.com/ovs-cni/antrea/pkg/agent/networkpolicy"
	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/agent/podconfig"
	"github.com/ovs-cni/antrea/pkg/agent/policysync"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
	"github.com/ovs-cni/antrea/pkg/ovs/unixctl"
)

// flowExporterDeps are the parts of the agent the flow exporter reads.
type flowExporterDeps struct {
	conn     *of.Conn
	factory  informers.SharedInformerFactory
	pods     *podconfig.Configurator
	policies *policysync.Controller
	rules    *networkpolicy.Reconciler
	registry prometheus.Registerer
}

// newFlowExporter builds the flow exporter of cfg (enabled): its
// conntrack source for the datapath type, its enricher over the agent's
// informers and stores, and its IPFIX sink. It registers the informers
// it reads, so it must run before the factory starts.
func newFlowExporter(cfg config.AgentConfig, d flowExporterDeps) (*flowexporter.Exporter, error) {
	s, err := cfg.FlowExporter.Settings()
	if err != nil {
		return nil, err
	}
	var source flowexporter.Source
	if cfg.OVSDatapathType == config.DatapathNetdev {
		appctl := func(ctx context.Context, method string, args ...string) (string, error) {
			sock, err := unixctl.VswitchdSocket(cfg.OVSRunDir)
			if err != nil {
				return "", err
			}
			return unixctl.Call(ctx, sock, method, args...)
		}
		source = conntrack.NewNetdev(appctl, d.conn, agentof.CTZone, agentof.ConnectionStatsTable.ID, agentof.LearnedCookie(agentof.CategoryFlowExporter))
	} else {
		if changed, err := conntrack.EnableAccounting(conntrack.AcctSysctl); err != nil {
			return nil, fmt.Errorf("flow exporter: %w", err)
		} else if changed {
			klog.InfoS("Turned on the kernel's conntrack accounting for the flow exporter; connections that started before have no counters", "sysctl", conntrack.AcctSysctl)
		}
		h, err := netlink.NewHandle(unix.NETLINK_NETFILTER)
		if err != nil {
			return nil, fmt.Errorf("flow exporter: netlink: %w", err)
		}
		source = conntrack.NewKernel(h, agentof.CTZone)
	}
	src := enrich.Sources{
		NodeName: cfg.NodeName,
		LocalPods: func() []enrich.LocalPod {
			ps := d.pods.Pods()
			out := make([]enrich.LocalPod, len(ps))
			for i, p := range ps {
				out[i] = enrich.LocalPod{Namespace: p.PodNamespace, Name: p.PodName, IP: p.IP}
			}
			return out
		},
		Nodes: d.factory.Core().V1().Nodes().Lister(),
		GroupMembers: func() []controlplane.GroupMember {
			_, appliedTo, addresses := d.policies.Cache().Snapshot()
			var out []controlplane.GroupMember
			for _, g := range appliedTo {
				out = append(out, g.Members...)
			}
			for _, g := range addresses {
				out = append(out, g.Members...)
			}
			return out
		},
		Rule:       d.rules.Rule,
		NodePortIP: agentof.NodePortVirtualIP,
	}
	if cfg.ProxyEnabled() {
		src.Services = d.factory.Core().V1().Services().Lister()
		src.EndpointSlices = d.factory.Discovery().V1().EndpointSlices().Lister()
	}
	sink, err := ipfix.New(ipfix.Config{Address: s.CollectorAddress, Protocol: s.CollectorProtocol, NodeName: cfg.NodeName})
	if err != nil {
		return nil, err
	}
	klog.InfoS("Flow exporter enabled", "collector", s.CollectorAddress, "protocol", s.CollectorProtocol, "datapath", cfg.OVSDatapathType)
	return flowexporter.New(flowexporter.Config{PollInterval: s.PollInterval, ActiveTimeout: s.ActiveTimeout, IdleTimeout: s.IdleTimeout},
		source, enrich.New(src), sink, flowexporter.NewMetrics(d.registry)), nil
}
