package netpol

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// selectorCases are upstream cases 1 to 13: default deny, and ingress
// allowed by podSelector and namespaceSelector and their combinations.
func (k kit) selectorCases() []Case {
	notX := expr(LabelNamespace, metav1.LabelSelectorOpNotIn, "x")
	return []Case{
		// Upstream: "should support a 'default-deny-ingress' policy".
		// An empty podSelector isolates every pod of x for ingress.
		{
			Name: "default-deny-ingress", Context: ContextTCP,
			Upstream: "should support a 'default-deny-ingress' policy",
			Steps: applyThen(list(ingressPolicy(k.x, "deny-ingress", anyPod())),
				tcp80(k.open().ExpectToNamespace(k.x, false))),
		},
		// Upstream: "should support a 'default-deny-all' policy".
		// Nothing gets into or out of x.
		{
			Name: "default-deny-all", Context: ContextTCP,
			Upstream: "should support a 'default-deny-all' policy",
			Steps: applyThen(list(denyAll(k.x, "deny-all", anyPod())),
				tcp80(k.open().ExpectToNamespace(k.x, false).ExpectFromNamespace(k.x, false))),
		},
		// Upstream: "should enforce policy to allow traffic from pods within
		// server namespace based on PodSelector". x/a admits x/b only.
		{
			Name: "ingress-from-pod-in-same-namespace", Context: ContextTCP,
			Upstream: "should enforce policy to allow traffic from pods within server namespace based on PodSelector",
			Steps: applyThen(list(ingressPolicy(k.x, "xa-from-xb", podIs("a"), inRule{From: []peer{pods(podIs("b"))}})),
				tcp80(k.open().ExpectTo(k.xa, false).Set(k.xb, k.xa, true))),
		},
		// Upstream: "should enforce policy to allow ingress traffic for a
		// target". Default deny in x, then x/a reopened to every pod of every
		// namespace.
		{
			Name: "ingress-allowed-for-target", Context: ContextTCP,
			Upstream: "should enforce policy to allow ingress traffic for a target",
			Steps: applyThen(list(
				ingressPolicy(k.x, "deny-ingress", anyPod()),
				ingressPolicy(k.x, "xa-from-everyone", podIs("a"), inRule{From: []peer{podsIn(&metav1.LabelSelector{}, anyPod())}}),
			), tcp80(k.open().ExpectTo(k.xa, true).ExpectTo(k.xb, false).ExpectTo(k.xc, false))),
		},
		// Upstream: "should enforce policy to allow ingress traffic from pods
		// in all namespaces". An empty namespaceSelector admits everyone.
		{
			Name: "ingress-from-all-namespaces", Context: ContextTCP,
			Upstream: "should enforce policy to allow ingress traffic from pods in all namespaces",
			Steps: applyThen(list(ingressPolicy(k.x, "xa-from-all-ns", podIs("a"),
				inRule{From: []peer{namespaces(&metav1.LabelSelector{MatchLabels: map[string]string{}})}})),
				tcp80(k.open())),
		},
		// Upstream: "should enforce policy to allow traffic only from a
		// different namespace, based on NamespaceSelector". x/a admits y only.
		{
			Name: "ingress-from-other-namespace", Context: ContextTCP,
			Upstream: "should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector",
			Steps: applyThen(list(ingressPolicy(k.x, "xa-from-ns-y", podIs("a"), inRule{From: []peer{namespaces(nsIs("y"))}})),
				tcp80(k.open().ExpectPeer(Peer{Namespace: k.x}, Peer{Namespace: k.x, Pod: "a"}, false).
					ExpectPeer(Peer{Namespace: k.z}, Peer{Namespace: k.x, Pod: "a"}, false))),
		},
		// Upstream: "should enforce policy based on PodSelector with
		// MatchExpressions". Same as ingress-from-pod-in-same-namespace with
		// pod In (b).
		{
			Name: "ingress-podselector-match-expressions", Context: ContextTCP,
			Upstream: "should enforce policy based on PodSelector with MatchExpressions",
			Steps: applyThen(list(ingressPolicy(k.x, "xa-from-xb-expr", podIs("a"),
				inRule{From: []peer{pods(*expr(LabelPod, metav1.LabelSelectorOpIn, "b"))}})),
				tcp80(k.open().ExpectTo(k.xa, false).Set(k.xb, k.xa, true))),
		},
		// Upstream: "should enforce policy based on NamespaceSelector with
		// MatchExpressions". x/a admits namespaces with ns In (y).
		{
			Name: "ingress-nsselector-match-expressions", Context: ContextTCP,
			Upstream: "should enforce policy based on NamespaceSelector with MatchExpressions",
			Steps: applyThen(list(ingressPolicy(k.x, "xa-from-ns-y-expr", podIs("a"),
				inRule{From: []peer{namespaces(expr(LabelNamespace, metav1.LabelSelectorOpIn, "y"))}})),
				tcp80(k.open().ExpectPeer(Peer{Namespace: k.x}, Peer{Namespace: k.x, Pod: "a"}, false).
					ExpectPeer(Peer{Namespace: k.z}, Peer{Namespace: k.x, Pod: "a"}, false))),
		},
		// Upstream: "should enforce policy based on PodSelector or
		// NamespaceSelector". Two peers are ORed: other namespaces, or x/b.
		{
			Name: "ingress-podselector-or-nsselector", Context: ContextTCP,
			Upstream: "should enforce policy based on PodSelector or NamespaceSelector",
			Steps: applyThen(list(ingressPolicy(k.x, "xa-from-not-x-or-b", podIs("a"),
				inRule{From: []peer{namespaces(notX), pods(podIs("b"))}})),
				tcp80(k.open().Set(k.xa, k.xa, false).Set(k.xc, k.xa, false))),
		},
		// Upstream: "should enforce policy based on PodSelector and
		// NamespaceSelector". One peer with both selectors ANDs them: pods b
		// outside x.
		{
			Name: "ingress-podselector-and-nsselector", Context: ContextTCP,
			Upstream: "should enforce policy based on PodSelector and NamespaceSelector",
			Steps: applyThen(list(ingressPolicy(k.x, "xa-from-b-not-x", podIs("a"),
				inRule{From: []peer{podsIn(notX, podIs("b"))}})),
				tcp80(k.open().ExpectTo(k.xa, false).Set(k.yb, k.xa, true).Set(k.zb, k.xa, true))),
		},
		// Upstream: "should enforce policy based on Multiple PodSelectors and
		// NamespaceSelectors". Pods b and c outside x.
		{
			Name: "ingress-multiple-podselectors-and-nsselectors", Context: ContextTCP,
			Upstream: "should enforce policy based on Multiple PodSelectors and NamespaceSelectors",
			Steps: applyThen(list(ingressPolicy(k.x, "xa-from-bc-not-x", podIs("a"),
				inRule{From: []peer{podsIn(notX, *expr(LabelPod, metav1.LabelSelectorOpIn, "b", "c"))}})),
				tcp80(k.open().ExpectPeer(Peer{Namespace: k.x}, Peer{Namespace: k.x, Pod: "a"}, false).
					Set(k.ya, k.xa, false).Set(k.za, k.xa, false))),
		},
		// Upstream: "should enforce policy based on any PodSelectors". Two
		// podSelector peers: x/b or x/c.
		{
			Name: "ingress-any-podselector", Context: ContextTCP,
			Upstream: "should enforce policy based on any PodSelectors",
			Steps: applyThen(list(ingressPolicy(k.x, "xa-from-xb-xc", podIs("a"),
				inRule{From: []peer{pods(podIs("b")), pods(podIs("c"))}})),
				tcp80(k.open().ExpectTo(k.xa, false).Set(k.xb, k.xa, true).Set(k.xc, k.xa, true))),
		},
		// Upstream: "should enforce policy to allow traffic only from a pod in
		// a different namespace based on PodSelector and NamespaceSelector".
		// x/a admits y/a only.
		{
			Name: "ingress-from-pod-in-other-namespace", Context: ContextTCP,
			Upstream: "should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector",
			Steps: applyThen(list(ingressPolicy(k.x, "xa-from-ya", podIs("a"), inRule{From: []peer{podsIn(nsIs("y"), podIs("a"))}})),
				tcp80(k.open().ExpectTo(k.xa, false).Set(k.ya, k.xa, true))),
		},
	}
}

// onlyFromPodInNamespaceY is upstream's "pod in a different namespace" case
// on another protocol: x/a admits y/a only, on proto port 80.
func (k kit) onlyFromPodInNamespaceY(context string, proto corev1.Protocol) Case {
	return Case{
		Name: "ingress-from-pod-in-other-namespace-" + lower(proto), Context: context,
		Upstream: "should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector",
		Steps: applyThen(list(ingressPolicy(k.x, "xa-from-ya", podIs("a"), inRule{From: []peer{podsIn(nsIs("y"), podIs("a"))}})),
			Probe{Protocol: proto, Port: 80, Want: k.open().ExpectTo(k.xa, false).Set(k.ya, k.xa, true)}),
	}
}
