package networkpolicy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
)

func TestTranslatePolicy(t *testing.T) {
	ag := func(s groupSelector) string { return groupName(addressKind, s) }
	web := map[string]string{"app": "web"}
	db := map[string]string{"app": "db"}
	prod := map[string]string{"env": "prod"}
	udp := corev1.ProtocolUDP
	sctp := corev1.ProtocolSCTP
	tests := []struct {
		name      string
		np        *networkingv1.NetworkPolicy
		types     []controlplane.Direction
		rules     []controlplane.NetworkPolicyRule
		appliedTo groupSelector
	}{{
		name:      "no rules, no policyTypes: default deny ingress",
		np:        makePolicy("ns1", "deny"),
		types:     []controlplane.Direction{controlplane.DirectionIn},
		appliedTo: namespacedSelector("ns1", &metav1.LabelSelector{}),
	}, {
		name:      "no rules, Ingress and Egress: default deny both",
		np:        makePolicy("ns1", "deny", withTypes(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress)),
		types:     []controlplane.Direction{controlplane.DirectionIn, controlplane.DirectionOut},
		appliedTo: namespacedSelector("ns1", &metav1.LabelSelector{}),
	}, {
		name:      "egress section without policyTypes affects both",
		np:        makePolicy("ns1", "p", withPodSelector(web), withEgress(nil)),
		types:     []controlplane.Direction{controlplane.DirectionIn, controlplane.DirectionOut},
		rules:     []controlplane.NetworkPolicyRule{{Direction: controlplane.DirectionOut}},
		appliedTo: namespacedSelector("ns1", sel(web)),
	}, {
		name: "Egress only: ingress rules ignored",
		np: makePolicy("ns1", "p", withTypes(networkingv1.PolicyTypeEgress),
			withIngress(nil), withEgress([]networkingv1.NetworkPolicyPeer{podPeer(db)})),
		types: []controlplane.Direction{controlplane.DirectionOut},
		rules: []controlplane.NetworkPolicyRule{{
			Direction: controlplane.DirectionOut,
			To:        controlplane.NetworkPolicyPeer{AddressGroups: []string{ag(namespacedSelector("ns1", sel(db)))}},
		}},
		appliedTo: namespacedSelector("ns1", &metav1.LabelSelector{}),
	}, {
		name: "Ingress only: egress rules ignored",
		np: makePolicy("ns1", "p", withTypes(networkingv1.PolicyTypeIngress),
			withIngress(nil), withEgress(nil)),
		types:     []controlplane.Direction{controlplane.DirectionIn},
		rules:     []controlplane.NetworkPolicyRule{{Direction: controlplane.DirectionIn}},
		appliedTo: namespacedSelector("ns1", &metav1.LabelSelector{}),
	}, {
		name: "every peer form",
		np: makePolicy("ns1", "p", withPodSelector(web), withIngress([]networkingv1.NetworkPolicyPeer{
			podPeer(db),
			nsPeer(prod),
			{NamespaceSelector: sel(prod), PodSelector: sel(db)},
			{NamespaceSelector: &metav1.LabelSelector{}},
			{NamespaceSelector: sel(prod), PodSelector: &metav1.LabelSelector{}},
			podPeer(db),
		})),
		types: []controlplane.Direction{controlplane.DirectionIn},
		rules: []controlplane.NetworkPolicyRule{{
			Direction: controlplane.DirectionIn,
			From: controlplane.NetworkPolicyPeer{AddressGroups: []string{
				ag(namespacedSelector("ns1", sel(db))),
				ag(clusterSelector(sel(prod), nil)),
				ag(clusterSelector(sel(prod), sel(db))),
				ag(clusterSelector(&metav1.LabelSelector{}, nil)),
			}},
		}},
		appliedTo: namespacedSelector("ns1", sel(web)),
	}, {
		name: "ipBlock with except, beside a pod peer",
		np: makePolicy("ns1", "p", withEgress([]networkingv1.NetworkPolicyPeer{
			{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16", "10.2.0.0/16"}}},
			podPeer(db),
		})),
		types: []controlplane.Direction{controlplane.DirectionIn, controlplane.DirectionOut},
		rules: []controlplane.NetworkPolicyRule{{
			Direction: controlplane.DirectionOut,
			To: controlplane.NetworkPolicyPeer{
				AddressGroups: []string{ag(namespacedSelector("ns1", sel(db)))},
				IPBlocks:      []controlplane.IPBlock{{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16", "10.2.0.0/16"}}},
			},
		}},
		appliedTo: namespacedSelector("ns1", &metav1.LabelSelector{}),
	}, {
		name: "ports: default TCP, numeric, named, endPort, protocol only",
		np: makePolicy("ns1", "p", withIngress(nil,
			networkingv1.NetworkPolicyPort{Port: ptr.To(intstr.FromInt32(80))},
			networkingv1.NetworkPolicyPort{Protocol: &udp, Port: ptr.To(intstr.FromString("dns"))},
			networkingv1.NetworkPolicyPort{Port: ptr.To(intstr.FromInt32(8000)), EndPort: ptr.To[int32](8080)},
			networkingv1.NetworkPolicyPort{Port: ptr.To(intstr.FromString("http")), EndPort: ptr.To[int32](9000)},
			networkingv1.NetworkPolicyPort{Protocol: &sctp},
		)),
		types: []controlplane.Direction{controlplane.DirectionIn},
		rules: []controlplane.NetworkPolicyRule{{
			Direction: controlplane.DirectionIn,
			Services: []controlplane.Service{
				{Protocol: controlplane.ProtocolTCP, Port: ptr.To(intstr.FromInt32(80))},
				{Protocol: controlplane.ProtocolUDP, Port: ptr.To(intstr.FromString("dns"))},
				{Protocol: controlplane.ProtocolTCP, Port: ptr.To(intstr.FromInt32(8000)), EndPort: ptr.To[int32](8080)},
				{Protocol: controlplane.ProtocolTCP, Port: ptr.To(intstr.FromString("http"))},
				{Protocol: controlplane.ProtocolSCTP},
			},
		}},
		appliedTo: namespacedSelector("ns1", &metav1.LabelSelector{}),
	}, {
		name:  "empty peer selects nothing",
		np:    makePolicy("ns1", "p", withIngress([]networkingv1.NetworkPolicyPeer{{}})),
		types: []controlplane.Direction{controlplane.DirectionIn},
		rules: []controlplane.NetworkPolicyRule{{
			Direction: controlplane.DirectionIn,
			From:      controlplane.NetworkPolicyPeer{AddressGroups: []string{ag(nothingSelector())}},
		}},
		appliedTo: namespacedSelector("ns1", &metav1.LabelSelector{}),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := translatePolicy(tt.np)
			assert.Equal(t, tt.types, spec.policyTypes)
			assert.Equal(t, tt.rules, spec.rules)
			assert.Equal(t, tt.appliedTo.key, spec.appliedTo.key)
			var peers []string
			for _, r := range tt.rules {
				peers = append(peers, r.From.AddressGroups...)
				peers = append(peers, r.To.AddressGroups...)
			}
			assert.Len(t, spec.peers, len(peers))
			for _, p := range peers {
				assert.Contains(t, spec.peers, p)
			}
		})
	}
}

func TestSelectorNames(t *testing.T) {
	exprs := func(e ...metav1.LabelSelectorRequirement) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchExpressions: e}
	}
	in := func(k string, v ...string) metav1.LabelSelectorRequirement {
		return metav1.LabelSelectorRequirement{Key: k, Operator: metav1.LabelSelectorOpIn, Values: v}
	}
	exists := metav1.LabelSelectorRequirement{Key: "tier", Operator: metav1.LabelSelectorOpExists}
	tests := []struct {
		name string
		a, b groupSelector
		same bool
	}{
		{"matchLabels equals single-valued In", namespacedSelector("ns", sel(map[string]string{"app": "web"})),
			namespacedSelector("ns", exprs(in("app", "web"))), true},
		{"expression order does not matter", namespacedSelector("ns", exprs(exists, in("app", "a", "b"))),
			namespacedSelector("ns", exprs(in("app", "b", "a"), exists)), true},
		{"namespaces differ", namespacedSelector("ns1", sel(nil)), namespacedSelector("ns2", sel(nil)), false},
		{"own namespace differs from all namespaces", namespacedSelector("ns", sel(nil)),
			clusterSelector(sel(nil), nil), false},
		{"nil and empty pod selector under a namespace selector", clusterSelector(sel(nil), nil),
			clusterSelector(sel(nil), &metav1.LabelSelector{}), true},
		{"values differ", namespacedSelector("ns", sel(map[string]string{"app": "a"})),
			namespacedSelector("ns", sel(map[string]string{"app": "b"})), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.same, groupName(addressKind, tt.a) == groupName(addressKind, tt.b), "%q vs %q", tt.a.key, tt.b.key)
		})
	}
	s := namespacedSelector("ns", sel(nil))
	assert.NotEqual(t, groupName(addressKind, s), groupName(appliedToKind, s), "kinds never share a name")
}
