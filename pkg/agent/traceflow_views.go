package agent

import (
	"net/netip"

	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/ovs-cni/antrea/pkg/agent/networkpolicy"
	"github.com/ovs-cni/antrea/pkg/agent/noderoute"
	"github.com/ovs-cni/antrea/pkg/agent/podconfig"
	"github.com/ovs-cni/antrea/pkg/agent/policysync"
	"github.com/ovs-cni/antrea/pkg/agent/traceflow"
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
	realized func() *policysync.RealizedState
}

func (p traceflowPolicies) Rule(ingress bool, id uint32) (string, string, bool) {
	owner, ok := p.rules.RuleOwner(id)
	if !ok {
		return "", "", false
	}
	uid, dir, index, ok := networkpolicy.ParseRuleOwner(owner)
	if !ok || (dir == "in") != ingress {
		return "", "", false
	}
	policy := uid
	if st := p.realized(); st != nil {
		for _, pol := range st.Policies {
			if string(pol.UID) == uid {
				policy = pol.Namespace + "/" + pol.Name
			}
		}
	}
	name := "ingress"
	if !ingress {
		name = "egress"
	}
	return policy, name + " rule " + index, true
}

// Isolating names the realized policies whose applied-to groups hold pod.
// (The agent's summary of a policy does not keep its policy types: a
// policy that applies to the pod but isolates only the other direction is
// named too.)
func (p traceflowPolicies) Isolating(pod string, _ bool) []string {
	return isolatingPolicies(p.realized(), pod)
}

// isolatingPolicies names the policies (namespace/name) whose applied-to
// groups hold pod (namespace/name).
func isolatingPolicies(st *policysync.RealizedState, pod string) []string {
	if st == nil {
		return nil
	}
	members := map[string]bool{}
	for _, g := range st.AppliedToGroups {
		for _, p := range g.Pods {
			if p == pod {
				members[g.Name] = true
			}
		}
	}
	var names []string
	for _, pol := range st.Policies {
		for _, g := range pol.AppliedToGroups {
			if members[g] {
				names = append(names, pol.Namespace+"/"+pol.Name)
				break
			}
		}
	}
	return names
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
