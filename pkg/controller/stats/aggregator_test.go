package stats

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"

	cpv1beta1 "github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
	statsv1alpha1 "github.com/ovs-cni/antrea/pkg/apis/stats/v1alpha1"
)

func summary(node string, ps ...cpv1beta1.NetworkPolicyStats) *cpv1beta1.NodeStatsSummary {
	s := &cpv1beta1.NodeStatsSummary{NetworkPolicies: ps}
	s.Name = node
	return s
}

func ref(ns, name string, uid types.UID) cpv1beta1.NetworkPolicyReference {
	return cpv1beta1.NetworkPolicyReference{Namespace: ns, Name: name, UID: uid}
}

func TestAggregatorSumsNodesPerRule(t *testing.T) {
	live := []Policy{{Namespace: "x", Name: "web", UID: "u-web"}, {Namespace: "y", Name: "deny", UID: "u-deny"}}
	a := NewAggregator(func() []Policy { return live })

	a.Add(summary("node-1", cpv1beta1.NetworkPolicyStats{NetworkPolicy: ref("x", "web", "u-web"),
		Rules: []cpv1beta1.RuleTrafficStats{
			{Direction: cpv1beta1.DirectionIn, Index: 0, Allowed: cpv1beta1.TrafficStats{Sessions: 3}},
			{Direction: cpv1beta1.DirectionOut, Index: 0, Allowed: cpv1beta1.TrafficStats{Sessions: 1}},
		},
		Dropped: cpv1beta1.TrafficStats{Packets: 2, Bytes: 148, Sessions: 2}}))
	a.Add(summary("node-2", cpv1beta1.NetworkPolicyStats{NetworkPolicy: ref("x", "web", "u-web"),
		Rules: []cpv1beta1.RuleTrafficStats{{Direction: cpv1beta1.DirectionIn, Index: 0, Allowed: cpv1beta1.TrafficStats{Sessions: 4}}}}))
	// Negative counts are not counters: ignored.
	a.Add(summary("node-2", cpv1beta1.NetworkPolicyStats{NetworkPolicy: ref("x", "web", "u-web"),
		Rules: []cpv1beta1.RuleTrafficStats{{Direction: cpv1beta1.DirectionIn, Index: 0, Allowed: cpv1beta1.TrafficStats{Sessions: -100}}}}))

	got, ok := a.Get("x", "web")
	require.True(t, ok)
	assert.Equal(t, statsv1alpha1.TrafficStats{Sessions: 8}, got.Allowed)
	assert.Equal(t, statsv1alpha1.TrafficStats{Packets: 2, Bytes: 148, Sessions: 2}, got.Dropped)
	assert.Equal(t, []statsv1alpha1.RuleTrafficStats{
		{Direction: "Ingress", Index: 0, Allowed: statsv1alpha1.TrafficStats{Sessions: 7}},
		{Direction: "Egress", Index: 0, Allowed: statsv1alpha1.TrafficStats{Sessions: 1}},
	}, got.Rules)
	assert.Equal(t, types.UID("u-web"), got.UID)

	// Every existing policy is listed, zero when nothing was counted.
	all := a.List("")
	require.Len(t, all, 2)
	assert.Equal(t, "web", all[0].Name)
	assert.Equal(t, "deny", all[1].Name)
	assert.Zero(t, all[1].Allowed)
	assert.Len(t, a.List("y"), 1)
	_, ok = a.Get("x", "nope")
	assert.False(t, ok)
}

func TestAggregatorForgetsDeletedPolicies(t *testing.T) {
	live := []Policy{{Namespace: "x", Name: "web", UID: "u-1"}}
	a := NewAggregator(func() []Policy { return live })
	a.Add(summary("node-1", cpv1beta1.NetworkPolicyStats{NetworkPolicy: ref("x", "web", "u-1"),
		Dropped: cpv1beta1.TrafficStats{Packets: 5, Sessions: 5}}))
	// Deleted, then created again under the same name: a new UID, a new
	// count.
	live = []Policy{{Namespace: "x", Name: "web", UID: "u-2"}}
	got := a.List("x")
	require.Len(t, got, 1)
	assert.Zero(t, got[0].Dropped)
	assert.Empty(t, a.byUID, "the deleted policy's totals are gone")
	// A summary without a UID counts for nothing.
	a.Add(summary("node-1", cpv1beta1.NetworkPolicyStats{NetworkPolicy: ref("x", "web", ""), Dropped: cpv1beta1.TrafficStats{Packets: 1}}))
	assert.Empty(t, a.byUID)
}
