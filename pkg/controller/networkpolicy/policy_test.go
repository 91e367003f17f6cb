package networkpolicy

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

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
			var names []string
			for _, p := range spec.peers {
				names = append(names, p.name)
				assert.Equal(t, groupName(addressKind, p.sel), p.name)
			}
			assert.ElementsMatch(t, uniq2(peers), names)
		})
	}
}

// An egress rule with a named port and no peers reaches every pod (where
// the name resolves) and every address (for numbered ports).
func TestTranslateEgressNamedPortWithoutPeers(t *testing.T) {
	named := intstr.FromString("serve-80-tcp")
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "p"},
		Spec: networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress:      []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: &named}}}},
		},
	}
	spec := translatePolicy(np)
	require.Len(t, spec.rules, 1)
	to := spec.rules[0].To
	assert.Equal(t, []controlplane.IPBlock{{CIDR: "0.0.0.0/0"}}, to.IPBlocks)
	require.Len(t, to.AddressGroups, 1)
	require.Len(t, spec.peers, 1)
	assert.Equal(t, clusterSelector(&metav1.LabelSelector{}, nil).key, spec.peers[0].sel.key, "every pod of every namespace")

	// Numbered ports only: any destination stays an empty peer.
	port := intstr.FromInt32(80)
	np.Spec.Egress[0].Ports[0].Port = &port
	spec = translatePolicy(np)
	assert.Empty(t, spec.rules[0].To.AddressGroups)
	assert.Empty(t, spec.rules[0].To.IPBlocks)
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

// uniq2 returns the distinct strings of s, in order.
func uniq2(s []string) []string {
	var out []string
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// TestSelectorKeyFastPath checks that the key of a matchLabels selector,
// built without a labels.Selector, is the one normalizeSelector gives.
func TestSelectorKeyFastPath(t *testing.T) {
	tests := []map[string]string{
		nil,
		{"app": "web"},
		{"a": "x", "a-b": "y", "a.b": "z", "ab": "w", "a/b": "v"},
		{"example.com/tier": "front", "app": ""},
		{"app": "web", "z": "1", "m": "2", "b": "3", "q": "4", "c": "5", "d": "6", "e": "7", "f": "8"},
		{"app": "-bad"},
		{"bad key": "x"},
		{"app": "a,b=c"},
		{strings.Repeat("k", 64): "x"},
		{"k": strings.Repeat("v", 64)},
		{"Upper_Case.ok-1": "V.a_l-1"},
	}
	for _, lbls := range tests {
		ls := &metav1.LabelSelector{MatchLabels: lbls}
		_, want := normalizeSelector(ls)
		assert.Equal(t, want, string(appendSelectorKey(nil, ls)), "%v", lbls)
	}
}
