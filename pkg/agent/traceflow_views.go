package agent

import (
	"fmt"
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/ovs-cni/antrea/pkg/agent/networkpolicy"
	"github.com/ovs-cni/antrea/pkg/agent/noderoute"
	"github.com/ovs-cni/antrea/pkg/agent/podconfig"
	"github.com/ovs-cni/antrea/pkg/agent/traceflow"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
)

// traceflowCluster answers the Traceflow observer's questions about other
// nodes and Services from the informers' caches.
type traceflowCluster struct {
	nodes    corelisters.NodeLister
	services corelisters.ServiceLister
}

func (c traceflowCluster) NodeOfIP(ip netip.Addr) (string, bool) {
	nodes, _ := c.nodes.List(labels.Everything())
	for _, n := range nodes {
		if r, ok := noderoute.RemoteNode(n); ok && r.NodeIP == ip {
			return n.Name, true
		}
	}
	return "", false
}

func (c traceflowCluster) NodeOfPodIP(ip netip.Addr) (string, netip.Addr, bool) {
	nodes, _ := c.nodes.List(labels.Everything())
	for _, n := range nodes {
		if r, ok := noderoute.RemoteNode(n); ok && r.PodCIDR.Contains(ip) {
			return n.Name, r.NodeIP, true
		}
	}
	return "", netip.Addr{}, false
}

func (c traceflowCluster) ServiceOfClusterIP(ip netip.Addr) (string, bool) {
	services, _ := c.services.List(labels.Everything())
	for _, s := range services {
		for _, a := range s.Spec.ClusterIPs {
			if a == ip.String() {
				return s.Namespace + "/" + s.Name, true
			}
		}
	}
	return "", false
}

// traceflowPolicies names NetworkPolicy rules and isolations for the
// Traceflow observer, from what this agent realized.
type traceflowPolicies struct {
	rules    *networkpolicy.Reconciler
	realized func() ([]*controlplane.NetworkPolicy, map[string]*controlplane.AppliedToGroup)
}

func (p traceflowPolicies) Rule(ingress bool, id uint32) (string, string, bool) {
	rule, ok := p.rules.Rule(id)
	if !ok || (rule.Direction == controlplane.DirectionIn) != ingress {
		return "", "", false
	}
	name := "ingress"
	if !ingress {
		name = "egress"
	}
	return rule.PolicyNamespace + "/" + rule.PolicyName, fmt.Sprintf("%s rule %d", name, rule.Index), true
}

// Isolating names the realized policies that isolate pod (namespace/name)
// in that direction: those whose applied-to groups hold it and whose
// policy types include the direction.
func (p traceflowPolicies) Isolating(pod string, ingress bool) []string {
	policies, appliedTo := p.realized()
	return isolatingPolicies(policies, appliedTo, pod, ingress)
}

// isolatingPolicies names (namespace/name, sorted) the policies that
// isolate pod (namespace/name) in the direction.
func isolatingPolicies(policies []*controlplane.NetworkPolicy, appliedTo map[string]*controlplane.AppliedToGroup, pod string, ingress bool) []string {
	dir := controlplane.DirectionOut
	if ingress {
		dir = controlplane.DirectionIn
	}
	var names []string
	networkpolicy.EachIsolated(policies, appliedTo, dir, func(p *controlplane.NetworkPolicy, m *controlplane.GroupMember) {
		if m.Pod.Namespace+"/"+m.Pod.Name == pod {
			names = append(names, p.Namespace+"/"+p.Name)
		}
	})
	slices.Sort(names)
	return slices.Compact(names)
}

// traceflowPods lists the connected pods for the Traceflow controller.
func traceflowPods(pods *podconfig.Configurator) func() []traceflow.LocalPod {
	return func() []traceflow.LocalPod {
		ps := pods.Pods()
		out := make([]traceflow.LocalPod, len(ps))
		for i, p := range ps {
			out[i] = traceflow.LocalPod{Namespace: p.PodNamespace, Name: p.PodName, OFPort: p.OFPort, MAC: p.MAC, IP: p.IP}
		}
		return out
	}
}
