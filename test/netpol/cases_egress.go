package netpol

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// egressCases are upstream cases 25 to 30: egress isolation, policies with
// both directions, and a rule on a protocol without port.
func (k kit) egressCases() []Case {
	both := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: k.x, Name: "xa-from-xb-to-port-80"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: podIs("a"),
			// Deliberately in the reverse of the usual order, as upstream.
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress, networkingv1.PolicyTypeIngress},
			Ingress:     []inRule{{From: []peer{pods(podIs("b"))}}},
			Egress:      []outRule{{Ports: []npPort{portOn(nil, 80)}}},
		},
	}
	fromXAToYA := outRule{To: []peer{podsIn(nsIs("y"), podIs("a"))}}
	fromXA := inRule{From: []peer{podsIn(nsIs("x"), podIs("a"))}}
	return []Case{
		// Upstream: "should deny egress from pods based on PodSelector".
		{
			Name: "egress-deny-pod", Context: ContextTCP,
			Upstream: "should deny egress from pods based on PodSelector",
			Steps: applyThen(list(egressPolicy(k.x, "deny-egress-xa", podIs("a"))),
				tcp80(k.open().ExpectFrom(k.xa, false))),
		},
		// Upstream: "should deny egress from all pods in a namespace".
		{
			Name: "egress-deny-namespace", Context: ContextTCP,
			Upstream: "should deny egress from all pods in a namespace",
			Steps: applyThen(list(egressPolicy(k.x, "deny-egress-x", anyPod())),
				tcp80(k.open().ExpectFromNamespace(k.x, false))),
		},
		// Upstream: "should work with Ingress, Egress specified together".
		// x/a admits x/b only and may only connect to port 80.
		{
			Name: "ingress-and-egress-together", Context: ContextTCP,
			Upstream: "should work with Ingress, Egress specified together",
			Steps: applyThen(list(both),
				tcp80(k.open().ExpectTo(k.xa, false).Set(k.xb, k.xa, true)),
				tcp81(k.open().ExpectTo(k.xa, false).ExpectFrom(k.xa, false).Set(k.xb, k.xa, true))),
		},
		// Upstream: "should support denying of egress traffic on the client
		// side (even if the server explicitly allows this traffic)". y/a and
		// y/b both admit x/a, but x/a may only connect to y/a. The matrix is
		// spelled out cell by cell.
		{
			Name: "egress-denied-on-client-side", Context: ContextTCP,
			Upstream: "should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)",
			Steps: applyThen(list(
				egressPolicy(k.x, "xa-to-ya", podIs("a"), fromXAToYA),
				ingressPolicy(k.y, "ya-from-xa", podIs("a"), fromXA),
				ingressPolicy(k.y, "yb-from-xa", podIs("b"), fromXA),
			), tcp80(MustParseTable(k.m.PodIDs(),
				//  x    y    z    (to)
				"XXX .XX XXX", // from x/a
				"... XX. ...", // from x/b
				"... XX. ...", // from x/c
				"... XX. ...", // from y/a
				"... XX. ...", // from y/b
				"... XX. ...", // from y/c
				"... XX. ...", // from z/a
				"... XX. ...", // from z/b
				"... XX. ...", // from z/c
			))),
		},
		// Upstream: "should enforce egress policy allowing traffic to a server
		// in a different namespace based on PodSelector and
		// NamespaceSelector". x/a may only connect to y/a.
		{
			Name: "egress-to-pod-in-other-namespace", Context: ContextTCP,
			Upstream: "should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector",
			Steps: applyThen(list(egressPolicy(k.x, "xa-to-ya", podIs("a"), fromXAToYA)),
				tcp80(k.open().ExpectFrom(k.xa, false).Set(k.xa, k.ya, true))),
		},
		// Upstream: "should enforce ingress policy allowing any port traffic
		// to a server on a specific protocol". x/a admits any TCP port, no
		// UDP.
		{
			Name: "ingress-any-port-on-protocol", Context: ContextTCP,
			Upstream: "should enforce ingress policy allowing any port traffic to a server on a specific protocol",
			Steps: applyThen(list(ingressPolicy(k.x, "xa-any-tcp-port", podIs("a"), inRule{Ports: []npPort{anyPortOn(corev1.ProtocolTCP)}})),
				tcp80(k.open()),
				udp80(k.open().ExpectPeer(Peer{}, Peer{Namespace: k.x, Pod: "a"}, false))),
		},
	}
}

// precedenceCases are upstream cases 31 and 32: an allow-all policy added
// next to a narrower one wins, since policies are ORed.
func (k kit) precedenceCases() []Case {
	everything := metav1.LabelSelector{MatchLabels: map[string]string{}}
	return []Case{
		// Upstream: "should enforce multiple ingress policies with ingress
		// allow-all policy taking precedence".
		{
			Name: "ingress-allow-all-takes-precedence", Context: ContextTCP,
			Upstream: "should enforce multiple ingress policies with ingress allow-all policy taking precedence",
			Steps: []Step{
				{
					Name:   "allow ingress into x on port 80 only",
					Apply:  list(ingressPolicy(k.x, "x-ingress-on-80", everything, inRule{Ports: []npPort{portOn(nil, 80)}})),
					Probes: []Probe{tcp81(k.open().ExpectPeer(Peer{}, Peer{Namespace: k.x}, false))},
				},
				{
					Name:   "allow all ingress into x",
					Apply:  list(ingressPolicy(k.x, "x-ingress-all", everything, inRule{})),
					Probes: []Probe{tcp81(k.open())},
				},
			},
		},
		// Upstream: "should enforce multiple egress policies with egress
		// allow-all policy taking precedence".
		{
			Name: "egress-allow-all-takes-precedence", Context: ContextTCP,
			Upstream: "should enforce multiple egress policies with egress allow-all policy taking precedence",
			Steps: []Step{
				{
					Name:   "allow egress from x on port 80 only",
					Apply:  list(egressPolicy(k.x, "x-egress-on-80", everything, outRule{Ports: []npPort{portOn(nil, 80)}})),
					Probes: []Probe{tcp81(k.open().ExpectPeer(Peer{Namespace: k.x}, Peer{}, false))},
				},
				{
					Name:   "allow all egress from x",
					Apply:  list(egressPolicy(k.x, "x-egress-all", everything, outRule{})),
					Probes: []Probe{tcp81(k.open())},
				},
			},
		},
	}
}
