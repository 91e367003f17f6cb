package netpol

import (
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Shorthands for the networking/v1 types the cases are written with.
type (
	inRule  = networkingv1.NetworkPolicyIngressRule
	outRule = networkingv1.NetworkPolicyEgressRule
	peer    = networkingv1.NetworkPolicyPeer
	npPort  = networkingv1.NetworkPolicyPort
)

var (
	typesIngress = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	typesEgress  = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	typesBoth    = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
)

// ingressPolicy returns a policy of namespace ns selecting target that
// affects ingress only and allows what rules allow (nothing without rules).
func ingressPolicy(ns, name string, target metav1.LabelSelector, rules ...inRule) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: target,
			PolicyTypes: slices.Clone(typesIngress),
			Ingress:     append([]inRule{}, rules...),
		},
	}
}

// egressPolicy is ingressPolicy for egress.
func egressPolicy(ns, name string, target metav1.LabelSelector, rules ...outRule) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: target,
			PolicyTypes: slices.Clone(typesEgress),
			Egress:      append([]outRule{}, rules...),
		},
	}
}

// denyAll returns a policy isolating the target pods in both directions
// without allowing anything.
func denyAll(ns, name string, target metav1.LabelSelector) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: target,
			PolicyTypes: slices.Clone(typesBoth),
			Ingress:     []inRule{},
			Egress:      []outRule{},
		},
	}
}

// anyPod is the empty selector: every pod (or namespace).
func anyPod() metav1.LabelSelector { return metav1.LabelSelector{} }

// podIs selects the pods labelled pod=name.
func podIs(name string) metav1.LabelSelector {
	return metav1.LabelSelector{MatchLabels: map[string]string{LabelPod: name}}
}

// labelsAre selects by exact labels.
func labelsAre(kv map[string]string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: kv}
}

// nsIs selects the namespaces labelled ns=base.
func nsIs(base string) *metav1.LabelSelector {
	return labelsAre(map[string]string{LabelNamespace: base})
}

// nsNamed selects a namespace by the apiserver-managed name label.
func nsNamed(name string) *metav1.LabelSelector {
	return labelsAre(map[string]string{corev1.LabelMetadataName: name})
}

// expr returns a selector made of a single requirement.
func expr(key string, op metav1.LabelSelectorOperator, values ...string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}

func ptrTo[T any](v T) *T { return &v }

// pods is a peer selecting pods of the policy's namespace.
func pods(sel metav1.LabelSelector) peer { return peer{PodSelector: &sel} }

// namespaces is a peer selecting every pod of some namespaces.
func namespaces(sel *metav1.LabelSelector) peer { return peer{NamespaceSelector: sel} }

// podsIn is a peer selecting some pods of some namespaces.
func podsIn(ns *metav1.LabelSelector, sel metav1.LabelSelector) peer {
	return peer{NamespaceSelector: ns, PodSelector: &sel}
}

// cidr is an ipBlock peer.
func cidr(block string, except ...string) peer {
	return peer{IPBlock: &networkingv1.IPBlock{CIDR: block, Except: except}}
}

// portOn is port n on proto; a nil proto leaves the protocol to its TCP
// default.
func portOn(proto *corev1.Protocol, n int32) npPort {
	return npPort{Protocol: proto, Port: ptrTo(intstr.FromInt32(n))}
}

// portRange is ports from..to on proto.
func portRange(proto *corev1.Protocol, from, to int32) npPort {
	return npPort{Protocol: proto, Port: ptrTo(intstr.FromInt32(from)), EndPort: ptrTo(to)}
}

// namedPort is the container port called name, on proto (nil: TCP).
func namedPort(proto *corev1.Protocol, name string) npPort {
	return npPort{Protocol: proto, Port: ptrTo(intstr.FromString(name))}
}

// anyPortOn is every port of proto.
func anyPortOn(proto corev1.Protocol) npPort { return npPort{Protocol: &proto} }

var (
	tcp  = ptrTo(corev1.ProtocolTCP)
	udp  = ptrTo(corev1.ProtocolUDP)
	sctp = ptrTo(corev1.ProtocolSCTP)
)

// hostCIDR returns the single-address prefix of ip (/32 or /128).
func hostCIDR(ip string) (string, error) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return "", fmt.Errorf("pod IP %q: %w", ip, err)
	}
	addr = addr.Unmap()
	return netip.PrefixFrom(addr, addr.BitLen()).String(), nil
}

// wideCIDR returns the /4 around ip: a block that contains the pod and,
// assuming every pod IP shares its first four bits, all the other pods.
func wideCIDR(ip string) (string, error) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return "", fmt.Errorf("pod IP %q: %w", ip, err)
	}
	p, err := addr.Unmap().Prefix(4)
	if err != nil {
		return "", fmt.Errorf("prefix of %s: %w", ip, err)
	}
	return p.String(), nil
}
