package netpol

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// portCases are upstream cases 14 to 19: numeric and named ports.
func (k kit) portCases() []Case {
	// Only namespace y may reach x/a, and only on TCP port p.
	fromYOnPort := func(p int32) inRule {
		return inRule{From: []peer{namespaces(nsIs("y"))}, Ports: []npPort{portOn(tcp, p)}}
	}
	yOnlyToXA := func() *Table {
		return k.open().ExpectPeer(Peer{Namespace: k.x}, Peer{Namespace: k.x, Pod: "a"}, false).
			ExpectPeer(Peer{Namespace: k.y}, Peer{Namespace: k.x, Pod: "a"}, true).
			ExpectPeer(Peer{Namespace: k.z}, Peer{Namespace: k.x, Pod: "a"}, false)
	}
	return []Case{
		// Upstream: "should enforce policy based on Ports". Namespace y may
		// reach x/a on TCP 81.
		{
			Name: "ingress-on-port", Context: ContextTCP,
			Upstream: "should enforce policy based on Ports",
			Steps: applyThen(list(ingressPolicy(k.x, "xa-from-ns-y-on-81", podIs("a"), fromYOnPort(81))),
				tcp81(yOnlyToXA())),
		},
		// Upstream: "should enforce multiple, stacked policies with
		// overlapping podSelectors". The port 81 policy leaves port 80 shut;
		// a second policy on the same pods opens it.
		{
			Name: "ingress-stacked-policies", Context: ContextTCP,
			Upstream: "should enforce multiple, stacked policies with overlapping podSelectors",
			Steps: []Step{
				{
					Name:  "allow namespace y to x/a on port 81",
					Apply: list(ingressPolicy(k.x, "xa-from-ns-y-on-81", podIs("a"), fromYOnPort(81))),
					Probes: []Probe{
						tcp81(yOnlyToXA()),
						tcp80(k.open().ExpectTo(k.xa, false)),
					},
				},
				{
					Name:   "also allow namespace y to x/a on port 80",
					Apply:  list(ingressPolicy(k.x, "xa-from-ns-y-on-80", podIs("a"), fromYOnPort(80))),
					Probes: []Probe{tcp80(yOnlyToXA())},
				},
			},
		},
		// Upstream: "should support allow-all policy". One empty ingress rule
		// allows everything into x.
		{
			Name: "ingress-allow-all", Context: ContextTCP,
			Upstream: "should support allow-all policy",
			Steps: applyThen(list(ingressPolicy(k.x, "allow-all", metav1.LabelSelector{MatchLabels: map[string]string{}}, inRule{})),
				tcp80(k.open()), tcp81(k.open())),
		},
		// Upstream: "should allow ingress access on one named port". Only
		// serve-81-tcp (protocol left to its TCP default) is open into x.
		{
			Name: "ingress-named-port", Context: ContextTCP,
			Upstream: "should allow ingress access on one named port",
			Steps: applyThen(list(ingressPolicy(k.x, "x-on-serve-81-tcp", anyPod(), inRule{Ports: []npPort{namedPort(nil, "serve-81-tcp")}})),
				tcp81(k.open()),
				tcp80(k.open().ExpectToNamespace(k.x, false))),
		},
		// Upstream: "should allow ingress access from namespace on one named
		// port". Namespace y may reach x/a on serve-80-tcp only.
		{
			Name: "ingress-named-port-from-namespace", Context: ContextTCP,
			Upstream: "should allow ingress access from namespace on one named port",
			Steps: applyThen(list(ingressPolicy(k.x, "xa-from-ns-y-on-serve-80-tcp", podIs("a"),
				inRule{From: []peer{namespaces(nsIs("y"))}, Ports: []npPort{namedPort(tcp, "serve-80-tcp")}})),
				tcp80(k.open().ExpectPeer(Peer{Namespace: k.x}, Peer{Namespace: k.x, Pod: "a"}, false).
					ExpectPeer(Peer{Namespace: k.z}, Peer{Namespace: k.x, Pod: "a"}, false)),
				tcp81(k.open().ExpectTo(k.xa, false))),
		},
		// Upstream: "should allow egress access on one named port". Pods of x
		// may only connect to the destination's serve-80-tcp.
		{
			Name: "egress-named-port", Context: ContextTCP,
			Upstream: "should allow egress access on one named port",
			Steps: applyThen(list(egressPolicy(k.x, "x-to-serve-80-tcp", anyPod(), outRule{Ports: []npPort{namedPort(nil, "serve-80-tcp")}})),
				tcp80(k.open()),
				tcp81(k.open().ExpectFromNamespace(k.x, false))),
		},
	}
}
