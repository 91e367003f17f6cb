package netpol

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Generator draws random policies and probes over a model. For a given
// seed, the same sequence of calls with the same pod IPs returns the same
// values on every platform and Go version (math/rand/v2's PCG is stable).
type Generator struct {
	m   *Model
	rng *rand.Rand
}

// generatorStream is the PCG stream of every generator; only the seed
// varies.
const generatorStream = 0x6e6574706f6c

// NewGenerator returns a generator seeded with seed.
func NewGenerator(m *Model, seed uint64) *Generator {
	return &Generator{m: m, rng: rand.New(rand.NewPCG(seed, generatorStream))}
}

// Sample is one connection to check.
type Sample struct {
	From, To PodID
	Protocol corev1.Protocol
	Port     int
}

// String describes the sample.
func (s Sample) String() string {
	return fmt.Sprintf("%s -> %s %s/%d", s.From, s.To, s.Protocol, s.Port)
}

// Samples draws n connections between two different pods, on a served
// port and protocol.
func (g *Generator) Samples(n int) []Sample {
	pods := g.m.PodIDs()
	out := make([]Sample, 0, n)
	for range n {
		from := pick(g, pods)
		to := pick(g, pods)
		for to == from {
			to = pick(g, pods)
		}
		out = append(out, Sample{From: from, To: to, Protocol: pick(g, servedProtocols), Port: int(pick(g, servedPorts))})
	}
	return out
}

// Policies draws n policies named random-0, random-1... ips may be nil, in
// which case no ipBlock is drawn.
func (g *Generator) Policies(n int, ips PodIPs) []*networkingv1.NetworkPolicy {
	out := make([]*networkingv1.NetworkPolicy, 0, n)
	for i := range n {
		out = append(out, g.Policy(fmt.Sprintf("random-%d", i), ips))
	}
	return out
}

// Policy draws one policy: a random namespace and target, random
// policyTypes (sometimes left to their default, sometimes leaving out a
// direction that has rules) and zero to two rules per direction.
func (g *Generator) Policy(name string, ips PodIPs) *networkingv1.NetworkPolicy {
	p := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: pick(g, g.m.Namespaces()), Name: name},
		Spec:       networkingv1.NetworkPolicySpec{PodSelector: g.podSelector()},
	}
	switch g.rng.IntN(4) {
	case 0: // left to the defaulting
	case 1:
		p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	case 2:
		p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	default:
		p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	}
	for range g.rng.IntN(3) {
		p.Spec.Ingress = append(p.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: g.peers(ips), Ports: g.ports()})
	}
	for range g.rng.IntN(3) {
		p.Spec.Egress = append(p.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: g.peers(ips), Ports: g.ports()})
	}
	return p
}

func pick[T any](g *Generator, from []T) T { return from[g.rng.IntN(len(from))] }

// subset draws a non-empty subset of from, in its order.
func subset[T any](g *Generator, from []T) []T {
	var out []T
	for len(out) == 0 {
		for _, v := range from {
			if g.rng.IntN(2) == 0 {
				out = append(out, v)
			}
		}
	}
	return out
}

// podSelector draws a selector over the pod labels.
func (g *Generator) podSelector() metav1.LabelSelector {
	switch g.rng.IntN(7) {
	case 0:
		return metav1.LabelSelector{}
	case 1:
		return podIs(pick(g, podNames))
	case 2:
		return *expr(LabelPod, metav1.LabelSelectorOpIn, subset(g, podNames)...)
	case 3:
		return *expr(LabelPod, metav1.LabelSelectorOpNotIn, subset(g, podNames)...)
	case 4:
		return *expr(LabelPod, metav1.LabelSelectorOpExists)
	case 5:
		return *expr(LabelPod, metav1.LabelSelectorOpDoesNotExist)
	default:
		sel := podIs(pick(g, podNames))
		sel.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: LabelPod, Operator: metav1.LabelSelectorOpNotIn, Values: []string{pick(g, podNames)}}}
		return sel
	}
}

// namespaceSelector draws a selector over the namespace labels.
func (g *Generator) namespaceSelector() *metav1.LabelSelector {
	switch g.rng.IntN(6) {
	case 0:
		return &metav1.LabelSelector{}
	case 1:
		return nsIs(pick(g, baseNamespaces))
	case 2:
		return expr(LabelNamespace, metav1.LabelSelectorOpIn, subset(g, baseNamespaces)...)
	case 3:
		return expr(LabelNamespace, metav1.LabelSelectorOpNotIn, subset(g, baseNamespaces)...)
	case 4:
		return expr(corev1.LabelMetadataName, metav1.LabelSelectorOpIn, subset(g, g.m.Namespaces())...)
	default:
		return expr("ns2", metav1.LabelSelectorOpDoesNotExist)
	}
}

// peers draws no peer (anyone) or one to three peers.
func (g *Generator) peers(ips PodIPs) []networkingv1.NetworkPolicyPeer {
	n := g.rng.IntN(4)
	out := make([]networkingv1.NetworkPolicyPeer, 0, n)
	for range n {
		kinds := 3
		if len(ips) > 0 {
			kinds = 4
		}
		switch g.rng.IntN(kinds) {
		case 0:
			out = append(out, pods(g.podSelector()))
		case 1:
			out = append(out, namespaces(g.namespaceSelector()))
		case 2:
			out = append(out, podsIn(g.namespaceSelector(), g.podSelector()))
		default:
			out = append(out, g.ipBlock(ips))
		}
	}
	return out
}

// ipBlock draws a block around a pod's IP: its host CIDR, or a wider
// prefix possibly excepting the host CIDRs of some pods inside it.
func (g *Generator) ipBlock(ips PodIPs) networkingv1.NetworkPolicyPeer {
	all := g.m.PodIDs()
	addr, err := netip.ParseAddr(ips[pick(g, all)])
	if err != nil {
		return pods(g.podSelector())
	}
	addr = addr.Unmap()
	bits := addr.BitLen()
	if g.rng.IntN(3) == 0 {
		return cidr(netip.PrefixFrom(addr, bits).String())
	}
	prefix, _ := addr.Prefix(bits - 4 - g.rng.IntN(21)) // /8 to /28 in IPv4
	var except []string
	for range g.rng.IntN(3) {
		other, err := netip.ParseAddr(ips[pick(g, all)])
		if err != nil {
			continue
		}
		host := netip.PrefixFrom(other.Unmap(), bits).String()
		if prefix.Contains(other.Unmap()) && !slices.Contains(except, host) {
			except = append(except, host)
		}
	}
	return cidr(prefix.String(), except...)
}

// ports draws no port (any) or one or two ports: a protocol alone, a
// number, a range, or a name (possibly of a port on another protocol).
func (g *Generator) ports() []networkingv1.NetworkPolicyPort {
	n := g.rng.IntN(3)
	out := make([]networkingv1.NetworkPolicyPort, 0, n)
	for range n {
		var proto *corev1.Protocol
		if k := g.rng.IntN(4); k < len(servedProtocols) {
			proto = ptrTo(servedProtocols[k])
		}
		switch g.rng.IntN(4) {
		case 0:
			out = append(out, networkingv1.NetworkPolicyPort{Protocol: proto})
		case 1:
			out = append(out, portOn(proto, int32(79+g.rng.IntN(4))))
		case 2:
			from := int32(79 + g.rng.IntN(3))
			out = append(out, portRange(proto, from, from+int32(g.rng.IntN(3))))
		default:
			// Usually the protocol of the named port (TCP possibly left to
			// the default), sometimes another one, which matches nothing.
			s := pick(g, g.m.Servers())
			if g.rng.IntN(4) != 0 {
				proto = nil
				if s.Protocol != corev1.ProtocolTCP || g.rng.IntN(2) == 0 {
					proto = ptrTo(s.Protocol)
				}
			}
			out = append(out, networkingv1.NetworkPolicyPort{Protocol: proto, Port: ptrTo(intstr.FromString(s.PortName()))})
		}
	}
	return out
}
