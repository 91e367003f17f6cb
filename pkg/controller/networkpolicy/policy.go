package networkpolicy

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
)

// policySpec is what a Kubernetes NetworkPolicy translates to, computed
// from the policy alone: the internal rules, the selection of the pods it
// applies to, and the selections of its peers (one AddressGroup each).
type policySpec struct {
	rules       []controlplane.NetworkPolicyRule
	policyTypes []controlplane.Direction
	appliedTo   groupSelector
	// peers are the distinct peer selections, with their group names.
	peers []peerGroup
}

// peerGroup is the AddressGroup of a peer selection.
type peerGroup struct {
	name string
	sel  groupSelector
}

// The policy types of internal policies are shared: objects are never
// modified.
var (
	typesIn    = []controlplane.Direction{controlplane.DirectionIn}
	typesOut   = []controlplane.Direction{controlplane.DirectionOut}
	typesInOut = []controlplane.Direction{controlplane.DirectionIn, controlplane.DirectionOut}
)

// translatePolicy computes the internal form of a NetworkPolicy. It is a
// pure function of the policy.
func translatePolicy(np *networkingv1.NetworkPolicy) policySpec {
	spec := policySpec{
		// "podSelector selects the pods to which this NetworkPolicy object
		// applies. [...] An empty podSelector matches all pods in this
		// namespace."
		appliedTo: namespacedSelector(np.Namespace, &np.Spec.PodSelector),
	}
	ingress, egress := policyTypes(&np.Spec)
	switch {
	case ingress && egress:
		spec.policyTypes = typesInOut
	case ingress:
		spec.policyTypes = typesIn
	case egress:
		spec.policyTypes = typesOut
	}
	n := 0
	if ingress {
		n += len(np.Spec.Ingress)
	}
	if egress {
		n += len(np.Spec.Egress)
	}
	if n > 0 {
		spec.rules = make([]controlplane.NetworkPolicyRule, 0, n)
	}
	if ingress {
		// "If this field is empty then this NetworkPolicy does not allow
		// any traffic (and serves solely to ensure that the pods it
		// selects are isolated by default)": no rule is added.
		for _, r := range np.Spec.Ingress {
			spec.rules = append(spec.rules, controlplane.NetworkPolicyRule{
				Direction: controlplane.DirectionIn,
				From:      spec.peer(np.Namespace, r.From),
				Services:  services(r.Ports),
			})
		}
	}
	if egress {
		// "If this field is empty then this NetworkPolicy limits all
		// outgoing traffic".
		for _, r := range np.Spec.Egress {
			to := r.To
			if len(to) == 0 && hasNamedPort(r.Ports) {
				// A named port is resolved on the destination pods, and
				// "any destination" says nothing about which pods there
				// are: the rule goes to every pod of the cluster (for
				// its named ports) and to every address (for its
				// numbered ports, which an ipBlock keeps).
				to = []networkingv1.NetworkPolicyPeer{
					{NamespaceSelector: &metav1.LabelSelector{}},
					{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}},
				}
			}
			spec.rules = append(spec.rules, controlplane.NetworkPolicyRule{
				Direction: controlplane.DirectionOut,
				To:        spec.peer(np.Namespace, to),
				Services:  services(r.Ports),
			})
		}
	}
	return spec
}

// hasNamedPort reports whether a rule names a port instead of a number.
func hasNamedPort(ports []networkingv1.NetworkPolicyPort) bool {
	for _, p := range ports {
		if p.Port != nil && p.Port.Type == intstr.String {
			return true
		}
	}
	return false
}

// policyTypes says which directions a policy isolates. Rules of a
// direction it does not isolate are ignored.
func policyTypes(spec *networkingv1.NetworkPolicySpec) (ingress, egress bool) {
	// "If this field is not specified, it will default based on the
	// existence of ingress or egress rules; policies that contain an
	// egress section are assumed to affect egress, and all policies
	// (whether or not they contain an ingress section) are assumed to
	// affect ingress."
	if len(spec.PolicyTypes) == 0 {
		return true, len(spec.Egress) > 0
	}
	return slices.Contains(spec.PolicyTypes, networkingv1.PolicyTypeIngress),
		slices.Contains(spec.PolicyTypes, networkingv1.PolicyTypeEgress)
}

// peer translates the from/to list of a rule, recording the AddressGroups
// it needs.
func (s *policySpec) peer(ns string, peers []networkingv1.NetworkPolicyPeer) controlplane.NetworkPolicyPeer {
	// "If this field is empty or missing, this rule matches all sources
	// (traffic not restricted by source)": an empty internal peer means
	// any.
	var out controlplane.NetworkPolicyPeer
	for i := range peers {
		p := &peers[i]
		if p.IPBlock != nil {
			// "ipBlock defines policy on a particular IPBlock. If this
			// field is set then neither of the other fields can be."
			out.IPBlocks = append(out.IPBlocks, controlplane.IPBlock{
				CIDR:   p.IPBlock.CIDR,
				Except: slices.Clone(p.IPBlock.Except),
			})
			continue
		}
		sel := peerSelector(ns, p)
		i := slices.IndexFunc(s.peers, func(pg peerGroup) bool { return pg.sel.key == sel.key })
		if i < 0 {
			i = len(s.peers)
			s.peers = append(s.peers, peerGroup{groupName(addressKind, sel), sel})
		}
		if name := s.peers[i].name; !slices.Contains(out.AddressGroups, name) {
			out.AddressGroups = append(out.AddressGroups, name)
		}
	}
	return out
}

// peerSelector is the selection of pods of a peer without an ipBlock.
func peerSelector(ns string, p *networkingv1.NetworkPolicyPeer) groupSelector {
	switch {
	case p.NamespaceSelector != nil:
		// "namespaceSelector selects namespaces using cluster-scoped
		// labels. [...] if present but empty, it selects all namespaces.
		// If podSelector is also set, then the NetworkPolicyPeer as a
		// whole selects the pods matching podSelector in the namespaces
		// selected by namespaceSelector. Otherwise it selects all pods in
		// the namespaces selected by namespaceSelector."
		return clusterSelector(p.NamespaceSelector, p.PodSelector)
	case p.PodSelector != nil:
		// "Otherwise it selects the pods matching podSelector in the
		// policy's own namespace."
		return namespacedSelector(ns, p.PodSelector)
	default:
		// A peer with no field is invalid; it selects nothing rather than
		// everything.
		return nothingSelector()
	}
}

// services translates the ports of a rule.
func services(ports []networkingv1.NetworkPolicyPort) []controlplane.Service {
	// "If this field is empty or missing, this rule matches all ports
	// (traffic not restricted by port)": no service means any.
	if len(ports) == 0 {
		return nil
	}
	out := make([]controlplane.Service, 0, len(ports))
	for _, p := range ports {
		// "protocol [...] If not specified, this field defaults to TCP."
		svc := controlplane.Service{Protocol: controlplane.ProtocolTCP}
		if p.Protocol != nil {
			svc.Protocol = protocol(*p.Protocol)
		}
		// "port represents the port on the given protocol. This can
		// either be a numerical or named port on a pod. If this field is
		// not provided, this matches all port names and numbers."
		if p.Port != nil {
			port := *p.Port
			svc.Port = &port
			// "endPort indicates that the range of ports from port to
			// endPort if set, inclusive, should be allowed by the policy.
			// This field cannot be defined if the port field is not
			// defined or if the port field is defined as a named (string)
			// port."
			if p.EndPort != nil && port.Type == intstr.Int {
				end := *p.EndPort
				svc.EndPort = &end
			}
		}
		out = append(out, svc)
	}
	return out
}

func protocol(p corev1.Protocol) controlplane.Protocol {
	switch p {
	case corev1.ProtocolUDP:
		return controlplane.ProtocolUDP
	case corev1.ProtocolSCTP:
		return controlplane.ProtocolSCTP
	default:
		return controlplane.ProtocolTCP
	}
}
