package netpol

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// Upstream ginkgo contexts the cases come from.
const (
	ContextTCP  = "NetworkPolicy between server and client"
	ContextUDP  = "NetworkPolicy between server and client using UDP"
	ContextSCTP = "NetworkPolicy between server and client using SCTP"
	// ContextExtra marks the cases that have no upstream counterpart.
	ContextExtra = "extra"
)

// Case is one conformance test: its steps run in order, each changing the
// cluster and then checking full reachability matrices.
type Case struct {
	// Name is a short unique identifier (kebab case).
	Name string
	// Context and Upstream are the ginkgo Context and It() title of the
	// upstream test the case mirrors.
	Context  string
	Upstream string
	Steps    []Step
}

// PolicyRef names a policy.
type PolicyRef struct {
	Namespace string
	Name      string
}

// Step changes the cluster, waits for the changes to be realized and checks
// its probes. The changes are made in the order of the fields: deletions,
// label updates, then policy creations or updates.
type Step struct {
	// Name says what the step does, like upstream's ginkgo.By.
	Name string
	// DeleteAllPolicies deletes every policy of the model's namespaces.
	DeleteAllPolicies bool
	// Delete lists policies to delete.
	Delete []PolicyRef
	// NamespaceLabels replaces the whole label set of some namespaces.
	NamespaceLabels map[string]map[string]string
	// PodLabels replaces the whole label set of some pods.
	PodLabels map[PodID]map[string]string
	// Apply lists policies to create, or to update when a policy of the
	// same namespace and name exists.
	Apply []*networkingv1.NetworkPolicy
	// ApplyForIPs builds more policies to create or update from the pods'
	// IPs; the ipBlock cases need it.
	ApplyForIPs func(ips PodIPs) ([]*networkingv1.NetworkPolicy, error)
	// Probes are checked in order once the changes are realized.
	Probes []Probe
}

// Probe is a full reachability check: every pod connects to every pod's IP
// on Protocol/Port, and the outcome must match Want.
type Probe struct {
	Protocol corev1.Protocol
	Port     int
	// Want is the expected matrix, written by hand from the upstream test.
	Want *Table
}

// Protocols returns the protocols the case probes, in the order TCP, UDP,
// SCTP.
func (c Case) Protocols() []corev1.Protocol {
	var out []corev1.Protocol
	for _, proto := range servedProtocols {
		for _, s := range c.Steps {
			if slices.ContainsFunc(s.Probes, func(p Probe) bool { return p.Protocol == proto }) && !slices.Contains(out, proto) {
				out = append(out, proto)
			}
		}
	}
	return out
}

// Cases returns the 48 traffic cases of the upstream suite, named after m,
// in upstream order.
func Cases(m *Model) []Case {
	k := newKit(m)
	var out []Case
	out = append(out, k.selectorCases()...)
	out = append(out, k.portCases()...)
	out = append(out, k.updateCases()...)
	out = append(out, k.egressCases()...)
	out = append(out, k.precedenceCases()...)
	out = append(out, k.ipBlockCases()...)
	out = append(out, k.protocolCases()...)
	out = append(out, k.defaultLabelCases()...)
	out = append(out, k.udpCases()...)
	out = append(out, k.sctpCases()...)
	return out
}

// ExtraCases returns cases without an upstream counterpart, for features
// the upstream traffic cases leave out (endPort ranges, named ports on UDP
// and SCTP).
func ExtraCases(m *Model) []Case {
	return newKit(m).extraCases()
}

// kit holds the shorthands the cases are written with.
type kit struct {
	m                                  *Model
	x, y, z                            string
	xa, xb, xc, ya, yb, yc, za, zb, zc PodID
}

func newKit(m *Model) kit {
	return kit{
		m: m, x: m.NS("x"), y: m.NS("y"), z: m.NS("z"),
		xa: m.Pod("x", "a"), xb: m.Pod("x", "b"), xc: m.Pod("x", "c"),
		ya: m.Pod("y", "a"), yb: m.Pod("y", "b"), yc: m.Pod("y", "c"),
		za: m.Pod("z", "a"), zb: m.Pod("z", "b"), zc: m.Pod("z", "c"),
	}
}

// open is a table where everything is allowed, to be narrowed down.
func (k kit) open() *Table { return k.m.NewTable(true) }

// tcp80 and friends build probes.
func tcp80(want *Table) Probe  { return Probe{Protocol: corev1.ProtocolTCP, Port: 80, Want: want} }
func tcp81(want *Table) Probe  { return Probe{Protocol: corev1.ProtocolTCP, Port: 81, Want: want} }
func udp80(want *Table) Probe  { return Probe{Protocol: corev1.ProtocolUDP, Port: 80, Want: want} }
func udp81(want *Table) Probe  { return Probe{Protocol: corev1.ProtocolUDP, Port: 81, Want: want} }
func sctp80(want *Table) Probe { return Probe{Protocol: corev1.ProtocolSCTP, Port: 80, Want: want} }
func sctp81(want *Table) Probe { return Probe{Protocol: corev1.ProtocolSCTP, Port: 81, Want: want} }

// applyThen is the common one-step shape: apply policies, then probe.
func applyThen(policies []*networkingv1.NetworkPolicy, probes ...Probe) []Step {
	return []Step{{Name: "apply the policies", Apply: policies, Probes: probes}}
}

func lower(proto corev1.Protocol) string { return strings.ToLower(string(proto)) }

func list(p ...*networkingv1.NetworkPolicy) []*networkingv1.NetworkPolicy { return p }
