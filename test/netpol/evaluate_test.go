package netpol

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// conn is one connection the evaluator tests ask about.
type conn struct {
	from, to PodID
	proto    corev1.Protocol
	port     int
	want     bool
}

func TestEvaluator(t *testing.T) {
	m := NewModel(Env{Prefix: "np-"})
	x, y := m.NS("x"), m.NS("y")
	xa, xb, xc, ya, yb, za := m.Pod("x", "a"), m.Pod("x", "b"), m.Pod("x", "c"), m.Pod("y", "a"), m.Pod("y", "b"), m.Pod("z", "a")
	ips := memClusterIPs(t, m)
	tcpC := func(from, to PodID, port int, want bool) conn { return conn{from, to, corev1.ProtocolTCP, port, want} }

	tests := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		// podLabels overrides the labels of some pods.
		podLabels map[PodID]map[string]string
		// podPorts overrides the container ports of some pods.
		podPorts map[PodID][]corev1.ContainerPort
		conns    []conn
	}{
		{
			name:     "no policy allows everything",
			policies: nil,
			conns:    []conn{tcpC(xa, xb, 80, true), {ya, za, corev1.ProtocolSCTP, 81, true}, tcpC(xa, xa, 80, true)},
		},
		{
			name:     "named port resolves on the destination for the rule's protocol",
			policies: list(ingressPolicy(x, "p", anyPod(), inRule{Ports: []npPort{namedPort(nil, "serve-81-tcp")}})),
			conns: []conn{
				tcpC(ya, xa, 81, true), tcpC(ya, xa, 80, false),
				{ya, xa, corev1.ProtocolUDP, 81, false},
			},
		},
		{
			name:     "named port of another protocol than the rule's matches nothing",
			policies: list(ingressPolicy(x, "p", anyPod(), inRule{Ports: []npPort{namedPort(nil, "serve-80-udp")}})),
			conns:    []conn{tcpC(ya, xa, 80, false), {ya, xa, corev1.ProtocolUDP, 80, false}},
		},
		{
			name:     "named port with its protocol",
			policies: list(ingressPolicy(x, "p", anyPod(), inRule{Ports: []npPort{namedPort(udp, "serve-80-udp")}})),
			conns:    []conn{{ya, xa, corev1.ProtocolUDP, 80, true}, {ya, xa, corev1.ProtocolUDP, 81, false}, tcpC(ya, xa, 80, false)},
		},
		{
			name:     "named port missing on one destination",
			policies: list(ingressPolicy(x, "p", anyPod(), inRule{Ports: []npPort{namedPort(nil, "web")}})),
			podPorts: map[PodID][]corev1.ContainerPort{xa: {{Name: "web", ContainerPort: 80}}},
			conns:    []conn{tcpC(ya, xa, 80, true), tcpC(ya, xb, 80, false)},
		},
		{
			name:     "named egress port resolves on the destination, not the source",
			policies: list(egressPolicy(x, "p", anyPod(), outRule{Ports: []npPort{namedPort(nil, "web")}})),
			podPorts: map[PodID][]corev1.ContainerPort{xa: {{Name: "web", ContainerPort: 81}}},
			conns:    []conn{tcpC(xa, ya, 81, false), tcpC(xb, xa, 81, true), tcpC(xb, xa, 80, false)},
		},
		{
			name:     "endPort range is inclusive",
			policies: list(ingressPolicy(x, "p", anyPod(), inRule{Ports: []npPort{portRange(nil, 79, 80)}})),
			conns:    []conn{tcpC(ya, xa, 80, true), tcpC(ya, xa, 81, false), tcpC(ya, xa, 79, true), tcpC(ya, xa, 78, false)},
		},
		{
			name:     "port without endPort is exact",
			policies: list(ingressPolicy(x, "p", anyPod(), inRule{Ports: []npPort{portOn(udp, 81)}})),
			conns:    []conn{{ya, xa, corev1.ProtocolUDP, 81, true}, {ya, xa, corev1.ProtocolUDP, 80, false}, tcpC(ya, xa, 81, false)},
		},
		{
			name:     "protocol defaults to TCP",
			policies: list(ingressPolicy(x, "p", anyPod(), inRule{Ports: []npPort{{Port: ptrTo(intstr.FromInt32(80))}}})),
			conns:    []conn{tcpC(ya, xa, 80, true), {ya, xa, corev1.ProtocolUDP, 80, false}, {ya, xa, corev1.ProtocolSCTP, 80, false}},
		},
		{
			name:     "protocol alone opens every port of it",
			policies: list(ingressPolicy(x, "p", anyPod(), inRule{Ports: []npPort{anyPortOn(corev1.ProtocolSCTP)}})),
			conns:    []conn{{ya, xa, corev1.ProtocolSCTP, 80, true}, {ya, xa, corev1.ProtocolSCTP, 81, true}, tcpC(ya, xa, 80, false)},
		},
		{
			name:     "ipBlock except excludes a host of the CIDR",
			policies: list(egressPolicy(x, "p", podIs("a"), outRule{To: []peer{cidr("10.244.0.0/16", ips[yb]+"/32")}})),
			conns:    []conn{tcpC(xa, ya, 80, true), tcpC(xa, yb, 80, false), tcpC(xa, xa, 80, true)},
		},
		{
			name:     "ipBlock outside the CIDR",
			policies: list(ingressPolicy(x, "p", anyPod(), inRule{From: []peer{cidr("10.244.2.0/24")}})),
			conns:    []conn{tcpC(ya, xa, 80, true), tcpC(za, xa, 80, false), tcpC(xb, xa, 80, false)},
		},
		{
			name:     "ipBlock of another family never matches",
			policies: list(ingressPolicy(x, "p", anyPod(), inRule{From: []peer{cidr("::/0")}})),
			conns:    []conn{tcpC(ya, xa, 80, false)},
		},
		{
			name:     "empty podSelector without namespaceSelector is the policy's namespace",
			policies: list(ingressPolicy(x, "p", anyPod(), inRule{From: []peer{pods(anyPod())}})),
			conns:    []conn{tcpC(xb, xa, 80, true), tcpC(ya, xa, 80, false)},
		},
		{
			name:     "empty namespaceSelector is every namespace",
			policies: list(ingressPolicy(x, "p", anyPod(), inRule{From: []peer{namespaces(&metav1.LabelSelector{})}})),
			conns:    []conn{tcpC(xb, xa, 80, true), tcpC(ya, xa, 80, true), tcpC(za, xa, 80, true)},
		},
		{
			name:     "namespaceSelector and podSelector in one peer are ANDed",
			policies: list(ingressPolicy(x, "p", anyPod(), inRule{From: []peer{podsIn(nsIs("y"), podIs("b"))}})),
			conns:    []conn{tcpC(yb, xa, 80, true), tcpC(ya, xa, 80, false), tcpC(xb, xa, 80, false)},
		},
		{
			name:     "two peers are ORed",
			policies: list(ingressPolicy(x, "p", anyPod(), inRule{From: []peer{namespaces(nsIs("y")), pods(podIs("b"))}})),
			conns:    []conn{tcpC(yb, xa, 80, true), tcpC(ya, xa, 80, true), tcpC(xb, xa, 80, true), tcpC(xc, xa, 80, false), tcpC(za, xa, 80, false)},
		},
		{
			name:      "selectors see updated labels",
			policies:  list(ingressPolicy(x, "p", *labelsAre(map[string]string{"role": "db"}))),
			podLabels: map[PodID]map[string]string{xb: {"role": "db"}},
			conns:     []conn{tcpC(ya, xb, 80, false), tcpC(ya, xa, 80, true)},
		},
		{
			name:     "matchExpressions NotIn matches pods without the key",
			policies: list(ingressPolicy(x, "p", *expr("role", metav1.LabelSelectorOpNotIn, "db"))),
			conns:    []conn{tcpC(ya, xa, 80, false)},
		},
		{
			name: "policyTypes left empty with egress rules affect both directions",
			policies: list(&networkingv1.NetworkPolicy{
				ObjectMeta: metav1.ObjectMeta{Namespace: x, Name: "p"},
				Spec: networkingv1.NetworkPolicySpec{
					PodSelector: podIs("a"),
					Egress:      []outRule{{To: []peer{namespaces(nsIs("y"))}}},
				},
			}),
			conns: []conn{tcpC(xa, ya, 80, true), tcpC(xa, za, 80, false), tcpC(ya, xa, 80, false)},
		},
		{
			name: "policyTypes left empty without egress rules affect ingress only",
			policies: list(&networkingv1.NetworkPolicy{
				ObjectMeta: metav1.ObjectMeta{Namespace: x, Name: "p"},
				Spec:       networkingv1.NetworkPolicySpec{PodSelector: podIs("a")},
			}),
			conns: []conn{tcpC(xa, za, 80, true), tcpC(ya, xa, 80, false)},
		},
		{
			name: "egress-only policyTypes leave ingress open and ignore ingress rules",
			policies: list(&networkingv1.NetworkPolicy{
				ObjectMeta: metav1.ObjectMeta{Namespace: x, Name: "p"},
				Spec: networkingv1.NetworkPolicySpec{
					PodSelector: podIs("a"),
					PolicyTypes: typesEgress,
					Ingress:     []inRule{{From: []peer{pods(podIs("b"))}}},
					Egress:      []outRule{{To: []peer{namespaces(nsIs("y"))}}},
				},
			}),
			conns: []conn{tcpC(xa, ya, 80, true), tcpC(xa, xb, 80, false), tcpC(ya, xa, 80, true), tcpC(xc, xa, 80, true)},
		},
		{
			name:     "a policy only selects pods of its namespace",
			policies: list(ingressPolicy(y, "p", podIs("a"))),
			conns:    []conn{tcpC(xb, xa, 80, true), tcpC(xb, ya, 80, false)},
		},
		{
			name: "egress and ingress must both allow",
			policies: list(
				egressPolicy(x, "out", podIs("a"), outRule{To: []peer{podsIn(nsIs("y"), anyPod())}}),
				ingressPolicy(y, "in", podIs("a"), inRule{From: []peer{podsIn(nsIs("z"), anyPod())}}),
			),
			conns: []conn{tcpC(xa, ya, 80, false), tcpC(xa, yb, 80, true), tcpC(za, ya, 80, true)},
		},
		{
			name: "policies are ORed",
			policies: list(
				ingressPolicy(x, "from-y", podIs("a"), inRule{From: []peer{namespaces(nsIs("y"))}}),
				ingressPolicy(x, "from-z", anyPod(), inRule{From: []peer{namespaces(nsIs("z"))}}),
			),
			conns: []conn{tcpC(ya, xa, 80, true), tcpC(za, xa, 80, true), tcpC(xb, xa, 80, false), tcpC(ya, xb, 80, false)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := m.World(ips, tt.policies)
			for id, labels := range tt.podLabels {
				p := w.Pods[id]
				p.Labels = labels
				w.Pods[id] = p
			}
			for id, ports := range tt.podPorts {
				p := w.Pods[id]
				p.Ports = ports
				w.Pods[id] = p
			}
			assert.NoError(t, w.Validate())
			for _, c := range tt.conns {
				d := w.Decide(c.from, c.to, c.proto, c.port)
				assert.Equal(t, c.want, d.Allowed, "%s -> %s %s/%d: %s", c.from, c.to, c.proto, c.port, d)
			}
		})
	}
}

func TestEvaluatorUnknownPodAndDecisionText(t *testing.T) {
	m := NewModel(Env{})
	w := m.World(nil, list(ingressPolicy(m.NS("x"), "deny", anyPod())))
	assert.False(t, w.Allowed(PodID{Namespace: "other", Name: "a"}, m.Pod("y", "a"), corev1.ProtocolTCP, 80))
	d := w.Decide(m.Pod("y", "a"), m.Pod("x", "a"), corev1.ProtocolTCP, 80)
	assert.Equal(t, "blocked (egress: not isolated; ingress: isolated, no rule matches)", d.String())
	w.Policies = append(w.Policies, ingressPolicy(m.NS("x"), "open", anyPod(), inRule{}))
	d = w.Decide(m.Pod("y", "a"), m.Pod("x", "a"), corev1.ProtocolTCP, 80)
	assert.Equal(t, "allowed (egress: not isolated; ingress: allowed by x/open)", d.String())
}

func TestValidatePolicy(t *testing.T) {
	ns := "x"
	bad := []struct {
		name   string
		policy *networkingv1.NetworkPolicy
	}{
		{"no name", ingressPolicy(ns, "", anyPod())},
		{"bad operator", ingressPolicy(ns, "p", metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "Like"}}})},
		{"In without values", ingressPolicy(ns, "p", *expr("k", metav1.LabelSelectorOpIn))},
		{"empty peer", ingressPolicy(ns, "p", anyPod(), inRule{From: []peer{{}}})},
		{"ipBlock with selector", ingressPolicy(ns, "p", anyPod(), inRule{From: []peer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8"}, PodSelector: &metav1.LabelSelector{}}}})},
		{"bad cidr", egressPolicy(ns, "p", anyPod(), outRule{To: []peer{cidr("10.0.0.0/33")}})},
		{"except outside cidr", egressPolicy(ns, "p", anyPod(), outRule{To: []peer{cidr("10.0.0.0/16", "10.1.0.0/24")}})},
		{"except equal to cidr", egressPolicy(ns, "p", anyPod(), outRule{To: []peer{cidr("10.0.0.0/16", "10.0.0.0/16")}})},
		{"endPort below port", egressPolicy(ns, "p", anyPod(), outRule{Ports: []npPort{portRange(nil, 81, 80)}})},
		{"endPort with named port", egressPolicy(ns, "p", anyPod(), outRule{Ports: []npPort{{Port: ptrTo(intstr.FromString("web")), EndPort: ptrTo[int32](90)}}})},
		{"endPort without port", egressPolicy(ns, "p", anyPod(), outRule{Ports: []npPort{{EndPort: ptrTo[int32](90)}}})},
		{"port name too long", egressPolicy(ns, "p", anyPod(), outRule{Ports: []npPort{namedPort(nil, "a-very-long-port-name")}})},
		{"port name without letter", egressPolicy(ns, "p", anyPod(), outRule{Ports: []npPort{namedPort(nil, "80")}})},
		{"unknown protocol", egressPolicy(ns, "p", anyPod(), outRule{Ports: []npPort{portOn(ptrTo(corev1.Protocol("ICMP")), 80)}})},
		{"port zero", egressPolicy(ns, "p", anyPod(), outRule{Ports: []npPort{portOn(nil, 0)}})},
		{"repeated policy type", &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"},
			Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Ingress", "Ingress"}},
		}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			assert.Error(t, ValidatePolicy(tt.policy))
		})
	}
	good := egressPolicy(ns, "p", anyPod(), outRule{
		To:    []peer{cidr("10.0.0.0/16", "10.0.1.0/24"), cidr("fd00::/64", "fd00::1/128")},
		Ports: []npPort{portRange(sctp, 80, 81), namedPort(udp, "serve-80-udp")},
	})
	assert.NoError(t, ValidatePolicy(good))
}

// memClusterIPs returns the IPs NewMemCluster gives the pods of m.
func memClusterIPs(t *testing.T, m *Model) PodIPs {
	t.Helper()
	ips, err := NewMemCluster(m).PodIPs(t.Context(), m.PodIDs())
	if err != nil {
		t.Fatal(err)
	}
	return ips
}
