package netpol

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// protocolCases are upstream cases 38 to 40: a rule for one protocol must
// neither open another protocol nor leave the selected pods unisolated.
func (k kit) protocolCases() []Case {
	return []Case{
		// Upstream: "should not mistakenly treat 'protocol: SCTP' as
		// 'protocol: TCP', even if the plugin doesn't support SCTP".
		{
			Name: "sctp-rule-does-not-open-tcp", Context: ContextTCP,
			Upstream: "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP",
			Steps: applyThen(list(
				ingressPolicy(k.x, "deny-ingress", anyPod()),
				ingressPolicy(k.x, "xa-sctp-81", podIs("a"), inRule{Ports: []npPort{portOn(sctp, 81)}}),
			), tcp81(k.open().ExpectPeer(Peer{}, Peer{Namespace: k.x}, false))),
		},
		// Upstream: "should properly isolate pods that are selected by a
		// policy allowing SCTP, even if the plugin doesn't support SCTP".
		{
			Name: "sctp-rule-isolates", Context: ContextTCP,
			Upstream: "should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP",
			Steps: applyThen(list(ingressPolicy(k.x, "xa-sctp-80", podIs("a"), inRule{Ports: []npPort{portOn(sctp, 80)}})),
				tcp81(k.open().ExpectTo(k.xa, false))),
		},
		// Upstream: "should not allow access by TCP when a policy specifies
		// only UDP".
		{
			Name: "udp-rule-does-not-open-tcp", Context: ContextTCP,
			Upstream: "should not allow access by TCP when a policy specifies only UDP",
			Steps: applyThen(list(ingressPolicy(k.x, "xa-udp-81", podIs("a"), inRule{Ports: []npPort{portOn(udp, 81)}})),
				tcp81(k.open().ExpectTo(k.xa, false))),
		},
	}
}

// defaultLabelCases are upstream cases 41 and 42, the only ones selecting
// namespaces by the apiserver-managed kubernetes.io/metadata.name label, so
// the only ones that depend on the real namespace names.
func (k kit) defaultLabelCases() []Case {
	return []Case{
		// Upstream: "should enforce policy to allow traffic based on
		// NamespaceSelector with MatchLabels using default ns label".
		{
			Name: "ingress-default-namespace-label", Context: ContextTCP,
			Upstream: "should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label",
			Steps: applyThen(list(ingressPolicy(k.x, "xa-from-ns-named-y", podIs("a"), inRule{From: []peer{namespaces(nsNamed(k.y))}})),
				tcp80(k.open().ExpectPeer(Peer{Namespace: k.x}, Peer{Namespace: k.x, Pod: "a"}, false).
					ExpectPeer(Peer{Namespace: k.z}, Peer{Namespace: k.x, Pod: "a"}, false))),
		},
		// Upstream: "should enforce policy based on NamespaceSelector with
		// MatchExpressions using default ns label". x/a may connect anywhere
		// but to namespace y.
		{
			Name: "egress-default-namespace-label-expression", Context: ContextTCP,
			Upstream: "should enforce policy based on NamespaceSelector with MatchExpressions using default ns label",
			Steps: applyThen(list(egressPolicy(k.x, "xa-to-ns-not-named-y", podIs("a"),
				outRule{To: []peer{namespaces(expr(corev1.LabelMetadataName, metav1.LabelSelectorOpNotIn, k.y))}})),
				tcp80(k.open().ExpectPeer(Peer{Namespace: k.x, Pod: "a"}, Peer{Namespace: k.y}, false))),
		},
	}
}

// udpCases are the three upstream cases of the UDP context.
func (k kit) udpCases() []Case {
	return k.otherProtocolCases(ContextUDP, corev1.ProtocolUDP)
}

// sctpCases are the three upstream cases of the SCTP context.
func (k kit) sctpCases() []Case {
	return k.otherProtocolCases(ContextSCTP, corev1.ProtocolSCTP)
}

// otherProtocolCases are the three cases upstream repeats for UDP and SCTP.
func (k kit) otherProtocolCases(context string, proto corev1.Protocol) []Case {
	suffix := "-" + lower(proto)
	return []Case{
		// Upstream: "should support a 'default-deny-ingress' policy".
		{
			Name: "default-deny-ingress" + suffix, Context: context,
			Upstream: "should support a 'default-deny-ingress' policy",
			Steps: applyThen(list(ingressPolicy(k.x, "deny-ingress", anyPod())),
				Probe{Protocol: proto, Port: 80, Want: k.open().ExpectPeer(Peer{}, Peer{Namespace: k.x}, false)}),
		},
		// Upstream: "should enforce policy based on Ports".
		{
			Name: "ingress-on-port" + suffix, Context: context,
			Upstream: "should enforce policy based on Ports",
			Steps: applyThen(list(ingressPolicy(k.x, "xa-from-ns-y-on-81", podIs("a"),
				inRule{From: []peer{namespaces(nsIs("y"))}, Ports: []npPort{portOn(&proto, 81)}})),
				Probe{Protocol: proto, Port: 81, Want: k.open().ExpectPeer(Peer{Namespace: k.x}, Peer{Namespace: k.x, Pod: "a"}, false).
					ExpectPeer(Peer{Namespace: k.z}, Peer{Namespace: k.x, Pod: "a"}, false)}),
		},
		// Upstream: "should enforce policy to allow traffic only from a pod in
		// a different namespace based on PodSelector and NamespaceSelector".
		k.onlyFromPodInNamespaceY(context, proto),
	}
}
