package netpol

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// updateCases are upstream cases 20 to 24: policy updates, label updates
// on namespaces and pods, and same-namespace-only ingress.
func (k kit) updateCases() []Case {
	allowAll := ingressPolicy(k.x, "allow-all-then-deny-all", metav1.LabelSelector{MatchLabels: map[string]string{}}, inRule{})
	denyAllNow := ingressPolicy(k.x, "allow-all-then-deny-all", metav1.LabelSelector{MatchLabels: map[string]string{}})
	updatedPodB := map[string]string{LabelPod: "b", "pod2": "updated"}
	return []Case{
		// Upstream: "should enforce updated policy". An allow-all policy is
		// updated in place to allow nothing.
		{
			Name: "ingress-updated-policy", Context: ContextTCP,
			Upstream: "should enforce updated policy",
			Steps: []Step{
				{Name: "allow all ingress into x", Apply: list(allowAll), Probes: []Probe{tcp81(k.open())}},
				{
					Name:   "update the policy to allow nothing",
					Apply:  list(denyAllNow),
					Probes: []Probe{tcp81(k.open().ExpectPeer(Peer{}, Peer{Namespace: k.x}, false))},
				},
			},
		},
		// Upstream: "should allow ingress access from updated namespace".
		// x/a admits namespaces labelled ns2=updated; y gets the label.
		{
			Name: "ingress-from-updated-namespace", Context: ContextTCP,
			Upstream: "should allow ingress access from updated namespace",
			Steps: []Step{
				{
					Name:   "allow namespaces labelled ns2=updated to x/a",
					Apply:  list(ingressPolicy(k.x, "xa-from-ns2-updated", podIs("a"), inRule{From: []peer{namespaces(labelsAre(map[string]string{"ns2": "updated"}))}})),
					Probes: []Probe{tcp80(k.open().ExpectTo(k.xa, false))},
				},
				{
					Name:            "label namespace y ns2=updated",
					NamespaceLabels: map[string]map[string]string{k.y: k.m.NamespaceLabelsWith(k.y, map[string]string{"ns2": "updated"})},
					Probes:          []Probe{tcp80(k.open().ExpectTo(k.xa, false).ExpectPeer(Peer{Namespace: k.y}, Peer{}, true))},
				},
			},
		},
		// Upstream: "should allow ingress access from updated pod". x/a admits
		// pods labelled pod=b,pod2=updated; x/b gets the second label.
		{
			Name: "ingress-from-updated-pod", Context: ContextTCP,
			Upstream: "should allow ingress access from updated pod",
			Steps: []Step{
				{
					Name:   "allow pods labelled pod=b,pod2=updated to x/a",
					Apply:  list(ingressPolicy(k.x, "xa-from-pod2-updated", podIs("a"), inRule{From: []peer{pods(*labelsAre(updatedPodB))}})),
					Probes: []Probe{tcp80(k.open().ExpectTo(k.xa, false))},
				},
				{
					Name:      "label x/b pod2=updated",
					PodLabels: map[PodID]map[string]string{k.xb: k.m.PodLabelsWith(k.xb, map[string]string{"pod2": "updated"})},
					Probes:    []Probe{tcp80(k.open().ExpectTo(k.xa, false).Set(k.xb, k.xa, true))},
				},
			},
		},
		// Upstream: "should deny ingress from pods on other namespaces". An
		// empty podSelector peer without namespaceSelector means the policy's
		// own namespace only.
		{
			Name: "ingress-same-namespace-only", Context: ContextTCP,
			Upstream: "should deny ingress from pods on other namespaces",
			Steps: applyThen(list(ingressPolicy(k.x, "x-from-x-only", anyPod(), inRule{From: []peer{pods(metav1.LabelSelector{MatchLabels: map[string]string{}})}})),
				tcp80(k.open().ExpectPeer(Peer{Namespace: k.y}, Peer{Namespace: k.x}, false).
					ExpectPeer(Peer{Namespace: k.z}, Peer{Namespace: k.x}, false))),
		},
		// Upstream: "should deny ingress access to updated pod". A deny policy
		// on target=isolated starts applying when x/a gets that label.
		{
			Name: "ingress-deny-updated-pod", Context: ContextTCP,
			Upstream: "should deny ingress access to updated pod",
			Steps: []Step{
				{
					Name:   "deny ingress to pods labelled target=isolated",
					Apply:  list(ingressPolicy(k.x, "deny-target-isolated", *labelsAre(map[string]string{"target": "isolated"}))),
					Probes: []Probe{tcp80(k.open())},
				},
				{
					Name:      "label x/a target=isolated",
					PodLabels: map[PodID]map[string]string{k.xa: k.m.PodLabelsWith(k.xa, map[string]string{"target": "isolated"})},
					Probes:    []Probe{tcp80(k.open().ExpectTo(k.xa, false))},
				},
			},
		},
	}
}
