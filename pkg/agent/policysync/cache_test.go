package policysync

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
)

func m(ns, name, ip string) v1beta1.GroupMember {
	return v1beta1.GroupMember{Pod: v1beta1.PodReference{Namespace: ns, Name: name}, Node: "n1", IPs: []string{ip}}
}

func names(g *controlplane.AddressGroup) []string {
	var out []string
	for _, mem := range g.Members {
		out = append(out, mem.Pod.Name+"="+mem.IPs[0])
	}
	return out
}

func TestCacheSyncedOnlyAfterEveryList(t *testing.T) {
	c := NewCache()
	assert.False(t, c.Synced())
	c.Replace(ResourceAppliedToGroups, &v1beta1.AppliedToGroupList{})
	c.Replace(ResourceAddressGroups, &v1beta1.AddressGroupList{})
	assert.False(t, c.Synced())
	c.Replace(ResourceNetworkPolicies, &v1beta1.NetworkPolicyList{})
	assert.True(t, c.Synced())
}

func TestCacheAppliesPatchesAndRelists(t *testing.T) {
	c := NewCache()
	c.Replace(ResourceAddressGroups, &v1beta1.AddressGroupList{Items: []v1beta1.AddressGroup{
		{ObjectMeta: metav1.ObjectMeta{Name: "g"}, Members: []v1beta1.GroupMember{m("x", "a", "10.0.0.1"), m("x", "b", "10.0.0.2")}},
	}})
	steps := []struct {
		name string
		typ  watch.EventType
		obj  any
		want []string
	}{
		{"remove a, add c", watch.Modified, &v1beta1.AddressGroupPatch{ObjectMeta: metav1.ObjectMeta{Name: "g"},
			AddedMembers: []v1beta1.GroupMember{m("x", "c", "10.0.0.3")}, RemovedMembers: []v1beta1.GroupMember{m("x", "a", "10.0.0.1")}},
			[]string{"b=10.0.0.2", "c=10.0.0.3"}},
		{"b changes IP: an added member replaces the old one", watch.Modified, &v1beta1.AddressGroupPatch{ObjectMeta: metav1.ObjectMeta{Name: "g"},
			AddedMembers: []v1beta1.GroupMember{m("x", "b", "10.0.0.9")}},
			[]string{"b=10.0.0.9", "c=10.0.0.3"}},
		{"full object replaces", watch.Added, &v1beta1.AddressGroup{ObjectMeta: metav1.ObjectMeta{Name: "g"},
			Members: []v1beta1.GroupMember{m("y", "d", "10.0.1.1")}},
			[]string{"d=10.0.1.1"}},
	}
	for _, s := range steps {
		require.True(t, c.Apply(s.typ, s.obj), s.name)
		_, _, addrs := c.Snapshot()
		require.Contains(t, addrs, "g", s.name)
		assert.Equal(t, s.want, names(addrs["g"]), s.name)
	}
	require.True(t, c.Apply(watch.Deleted, &v1beta1.AddressGroup{ObjectMeta: metav1.ObjectMeta{Name: "g"}}))
	_, _, addrs := c.Snapshot()
	assert.Empty(t, addrs)
	assert.False(t, c.Apply(watch.Added, &metav1.Status{}), "an unknown kind is refused")
}

func TestCacheConvertsPolicies(t *testing.T) {
	c := NewCache()
	end := int32(90)
	p := &v1beta1.NetworkPolicy{
		ObjectMeta:      metav1.ObjectMeta{Name: "p", Namespace: "x", UID: "u1"},
		AppliedToGroups: []string{"at"},
		PolicyTypes:     []v1beta1.Direction{"In"},
		Rules: []v1beta1.NetworkPolicyRule{{
			Direction: "In",
			From:      v1beta1.NetworkPolicyPeer{AddressGroups: []string{"ag"}, IPBlocks: []v1beta1.IPBlock{{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}}},
			Services:  []v1beta1.Service{{Protocol: "UDP", EndPort: &end}},
		}},
	}
	require.True(t, c.Apply(watch.Added, p))
	policies, _, _ := c.Snapshot()
	require.Len(t, policies, 1)
	got := policies[0]
	assert.Equal(t, "x", got.Namespace)
	assert.Equal(t, []controlplane.Direction{controlplane.DirectionIn}, got.PolicyTypes)
	require.Len(t, got.Rules, 1)
	assert.Equal(t, []controlplane.IPBlock{{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}}, got.Rules[0].From.IPBlocks)
	assert.Equal(t, controlplane.ProtocolUDP, got.Rules[0].Services[0].Protocol)
	assert.Equal(t, &end, got.Rules[0].Services[0].EndPort)
	require.True(t, c.Apply(watch.Deleted, p))
	policies, _, _ = c.Snapshot()
	assert.Empty(t, policies)
}

// Snapshots hand out the same objects until they change, so that the
// compiler recompiles only what changed; a relist that brings an object
// unchanged keeps it.
func TestCacheSnapshotsKeepUnchangedObjects(t *testing.T) {
	c := NewCache()
	groups := func(ms ...v1beta1.GroupMember) []v1beta1.AddressGroup {
		return []v1beta1.AddressGroup{
			{ObjectMeta: metav1.ObjectMeta{Name: "g"}, Members: ms},
			{ObjectMeta: metav1.ObjectMeta{Name: "h"}, Members: []v1beta1.GroupMember{m("x", "h", "10.0.0.8")}},
		}
	}
	c.Replace(ResourceAddressGroups, &v1beta1.AddressGroupList{Items: groups(m("x", "a", "10.0.0.1"))})
	c.Replace(ResourceAppliedToGroups, &v1beta1.AppliedToGroupList{Items: []v1beta1.AppliedToGroup{
		{ObjectMeta: metav1.ObjectMeta{Name: "t"}, Members: []v1beta1.GroupMember{m("x", "a", "10.0.0.1")}}}})
	policies := &v1beta1.NetworkPolicyList{Items: []v1beta1.NetworkPolicy{{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "p", UID: "uid-p"}, AppliedToGroups: []string{"t"}}}}
	c.Replace(ResourceNetworkPolicies, policies)
	p1, t1, a1 := c.Snapshot()

	require.True(t, c.Apply(watch.Modified, &v1beta1.AddressGroupPatch{ObjectMeta: metav1.ObjectMeta{Name: "g"},
		AddedMembers: []v1beta1.GroupMember{m("x", "b", "10.0.0.2")}}))
	p2, t2, a2 := c.Snapshot()
	assert.NotSame(t, a1["g"], a2["g"], "g changed")
	assert.Equal(t, []string{"a=10.0.0.1", "b=10.0.0.2"}, names(a2["g"]))
	assert.Equal(t, []string{"a=10.0.0.1"}, names(a1["g"]), "an object handed out is never modified")
	assert.Same(t, a1["h"], a2["h"])
	assert.Same(t, t1["t"], t2["t"])
	assert.Same(t, p1[0], p2[0])

	// A relist: g as it is now, h changed, the policy the same.
	c.Replace(ResourceAddressGroups, &v1beta1.AddressGroupList{Items: []v1beta1.AddressGroup{
		{ObjectMeta: metav1.ObjectMeta{Name: "g"}, Members: []v1beta1.GroupMember{m("x", "b", "10.0.0.2"), m("x", "a", "10.0.0.1")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "h"}, Members: []v1beta1.GroupMember{m("x", "h", "10.0.0.9")}},
	}})
	c.Replace(ResourceNetworkPolicies, policies.DeepCopy())
	p3, _, a3 := c.Snapshot()
	assert.Same(t, a2["g"], a3["g"])
	assert.NotSame(t, a2["h"], a3["h"])
	assert.Same(t, p2[0], p3[0])
}
