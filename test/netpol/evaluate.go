package netpol

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// World is what the networking.k8s.io/v1 semantics depend on: namespace
// labels, pods (labels, IP, named container ports) and the policies.
//
// Its reading of the spec:
//   - A policy selects the pods of its own namespace matched by
//     spec.podSelector (empty: all of them).
//   - A policy affects ingress if spec.policyTypes contains Ingress, or if
//     spec.policyTypes is empty; it affects egress if spec.policyTypes
//     contains Egress, or if spec.policyTypes is empty and spec.egress has
//     at least one rule.
//   - A pod selected by at least one policy affecting a direction is
//     isolated in that direction; traffic in that direction is then allowed
//     only if a rule of one of those policies matches both the peer and the
//     port. Rules of a direction the policy does not affect are ignored.
//   - A connection is allowed when the source's egress and the
//     destination's ingress both allow it.
//   - A rule with no peers matches every peer; a rule with no ports matches
//     every port and protocol.
//   - A peer is an ipBlock (the peer's IP is inside cidr and outside every
//     except), or selectors: namespaceSelector nil means the policy's own
//     namespace, otherwise the namespaces it matches (empty: all);
//     podSelector nil means every pod of those namespaces, otherwise the pods
//     it matches (empty: all).
//   - A port's protocol defaults to TCP. No port number means every port of
//     that protocol; a number matches that port, or the range port..endPort;
//     a name matches a container port of the destination pod that has that
//     name and the rule's protocol, at that port number.
//
// Traffic from a pod to itself is treated like any other.
type World struct {
	// Namespaces maps a namespace name to its labels.
	Namespaces map[string]map[string]string
	Pods       map[PodID]Pod
	Policies   []*networkingv1.NetworkPolicy
}

// Allowed tells whether from can connect to to on proto/port according to
// the policies. It does not check that to serves that port. Pods missing
// from the world are never allowed.
func (w *World) Allowed(from, to PodID, proto corev1.Protocol, port int) bool {
	return w.Decide(from, to, proto, port).Allowed
}

// Decision is the verdict of the evaluator on one connection, with the
// policies it depends on, for logs.
type Decision struct {
	Allowed bool
	// EgressIsolated tells whether some policy isolates the source for
	// egress; EgressAllowedBy lists the policies (namespace/name) with an
	// egress rule matching the connection.
	EgressIsolated  bool
	EgressAllowedBy []string
	// IngressIsolated and IngressAllowedBy are the same for the
	// destination's ingress.
	IngressIsolated  bool
	IngressAllowedBy []string
}

// String summarises the decision.
func (d Decision) String() string {
	side := func(isolated bool, by []string) string {
		switch {
		case !isolated:
			return "not isolated"
		case len(by) == 0:
			return "isolated, no rule matches"
		default:
			return "allowed by " + strings.Join(by, ", ")
		}
	}
	verdict := "blocked"
	if d.Allowed {
		verdict = "allowed"
	}
	return fmt.Sprintf("%s (egress: %s; ingress: %s)", verdict,
		side(d.EgressIsolated, d.EgressAllowedBy), side(d.IngressIsolated, d.IngressAllowedBy))
}

// Decide evaluates from -> to on proto/port.
func (w *World) Decide(from, to PodID, proto corev1.Protocol, port int) Decision {
	src, ok := w.Pods[from]
	dst, ok2 := w.Pods[to]
	if !ok || !ok2 {
		return Decision{}
	}
	var d Decision
	for _, p := range w.Policies {
		if affectsEgress(p) && w.selects(p, src) {
			d.EgressIsolated = true
			for _, rule := range p.Spec.Egress {
				if w.peersMatch(p.Namespace, rule.To, dst) && portsMatch(rule.Ports, dst, proto, port) {
					d.EgressAllowedBy = append(d.EgressAllowedBy, p.Namespace+"/"+p.Name)
					break
				}
			}
		}
		if affectsIngress(p) && w.selects(p, dst) {
			d.IngressIsolated = true
			for _, rule := range p.Spec.Ingress {
				if w.peersMatch(p.Namespace, rule.From, src) && portsMatch(rule.Ports, dst, proto, port) {
					d.IngressAllowedBy = append(d.IngressAllowedBy, p.Namespace+"/"+p.Name)
					break
				}
			}
		}
	}
	egressOK := !d.EgressIsolated || len(d.EgressAllowedBy) > 0
	ingressOK := !d.IngressIsolated || len(d.IngressAllowedBy) > 0
	d.Allowed = egressOK && ingressOK
	return d
}

// Table returns the evaluator's verdicts over pods for proto/port, the
// cells from a pod to itself included.
func (w *World) Table(pods []PodID, proto corev1.Protocol, port int) *Table {
	t := newUnknownTable(pods)
	for _, from := range pods {
		for _, to := range pods {
			t.Set(from, to, w.Allowed(from, to, proto, port))
		}
	}
	return t
}

func affectsIngress(p *networkingv1.NetworkPolicy) bool {
	return len(p.Spec.PolicyTypes) == 0 || slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
}

func affectsEgress(p *networkingv1.NetworkPolicy) bool {
	if len(p.Spec.PolicyTypes) == 0 {
		return len(p.Spec.Egress) > 0
	}
	return slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
}

// selects tells whether policy p applies to pod.
func (w *World) selects(p *networkingv1.NetworkPolicy, pod Pod) bool {
	if p.Namespace != pod.ID.Namespace {
		return false
	}
	ok, err := selectorMatches(&p.Spec.PodSelector, pod.Labels)
	return err == nil && ok
}

// peersMatch tells whether pod is one of peers, for a policy living in
// policyNS. No peers means any peer.
func (w *World) peersMatch(policyNS string, peers []networkingv1.NetworkPolicyPeer, pod Pod) bool {
	if len(peers) == 0 {
		return true
	}
	for _, peer := range peers {
		if w.peerMatches(policyNS, peer, pod) {
			return true
		}
	}
	return false
}

func (w *World) peerMatches(policyNS string, peer networkingv1.NetworkPolicyPeer, pod Pod) bool {
	if peer.IPBlock != nil {
		return ipBlockContains(peer.IPBlock, pod.IP)
	}
	if peer.PodSelector == nil && peer.NamespaceSelector == nil {
		return false // rejected by the apiserver
	}
	if peer.NamespaceSelector == nil {
		if pod.ID.Namespace != policyNS {
			return false
		}
	} else if !matchesOrFalse(peer.NamespaceSelector, w.Namespaces[pod.ID.Namespace]) {
		return false
	}
	return peer.PodSelector == nil || matchesOrFalse(peer.PodSelector, pod.Labels)
}

func matchesOrFalse(sel *metav1.LabelSelector, labels map[string]string) bool {
	ok, err := selectorMatches(sel, labels)
	return err == nil && ok
}

// ipBlockContains tells whether ip is inside b.CIDR and outside every
// b.Except. Unparsable addresses match nothing.
func ipBlockContains(b *networkingv1.IPBlock, ip string) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil || !cidr.Contains(addr) {
		return false
	}
	for _, e := range b.Except {
		except, err := netip.ParsePrefix(e)
		if err != nil || except.Contains(addr) {
			return false
		}
	}
	return true
}

// portsMatch tells whether proto/port on pod dst matches one of ports. No
// ports means any port on any protocol.
func portsMatch(ports []networkingv1.NetworkPolicyPort, dst Pod, proto corev1.Protocol, port int) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if portMatches(p, dst, proto, port) {
			return true
		}
	}
	return false
}

func portMatches(p networkingv1.NetworkPolicyPort, dst Pod, proto corev1.Protocol, port int) bool {
	ruleProto := corev1.ProtocolTCP
	if p.Protocol != nil {
		ruleProto = *p.Protocol
	}
	if ruleProto != proto {
		return false
	}
	switch {
	case p.Port == nil:
		return true
	case p.Port.Type == intstr.String:
		return namedPortIs(dst, p.Port.StrVal, ruleProto, port)
	case p.EndPort != nil:
		return port >= int(p.Port.IntVal) && port <= int(*p.EndPort)
	default:
		return port == int(p.Port.IntVal)
	}
}

// namedPortIs tells whether pod has a container port called name, on
// protocol proto, with number port.
func namedPortIs(pod Pod, name string, proto corev1.Protocol, port int) bool {
	for _, cp := range pod.Ports {
		cpProto := cp.Protocol
		if cpProto == "" {
			cpProto = corev1.ProtocolTCP
		}
		if cp.Name == name && cpProto == proto && int(cp.ContainerPort) == port {
			return true
		}
	}
	return false
}
