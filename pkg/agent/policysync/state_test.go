package policysync

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
)

func lists(members ...v1beta1.GroupMember) (*v1beta1.AppliedToGroupList, *v1beta1.AddressGroupList, *v1beta1.NetworkPolicyList) {
	atgs := &v1beta1.AppliedToGroupList{Items: []v1beta1.AppliedToGroup{
		{ObjectMeta: metav1.ObjectMeta{Name: "atg"}, Members: []v1beta1.GroupMember{m("x", "a", "10.0.0.1")}},
	}}
	ags := &v1beta1.AddressGroupList{Items: []v1beta1.AddressGroup{
		{ObjectMeta: metav1.ObjectMeta{Name: "ag"}, Members: members},
	}}
	policies := &v1beta1.NetworkPolicyList{Items: []v1beta1.NetworkPolicy{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "p1", UID: "u1"}, AppliedToGroups: []string{"atg"},
			Rules: []v1beta1.NetworkPolicyRule{{Direction: v1beta1.DirectionIn, From: v1beta1.NetworkPolicyPeer{AddressGroups: []string{"ag"}}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "p2", UID: "u2"}, AppliedToGroups: []string{"atg"}},
	}}
	return atgs, ags, policies
}

func TestDigestIgnoresOrderAndSeesContent(t *testing.T) {
	base := DigestOfLists(lists(m("y", "b", "10.0.0.2"), m("y", "c", "10.0.0.3")))
	atgs, ags, policies := lists(m("y", "c", "10.0.0.3"), m("y", "b", "10.0.0.2"))
	policies.Items[0], policies.Items[1] = policies.Items[1], policies.Items[0]
	assert.Equal(t, base, DigestOfLists(atgs, ags, policies), "members and policies in another order")

	assert.NotEqual(t, base, DigestOfLists(lists(m("y", "b", "10.0.0.2"))), "a member less")
	assert.NotEqual(t, base, DigestOfLists(lists(m("y", "b", "10.0.0.2"), m("y", "c", "10.0.0.4"))), "a member's IP")
	atgs, ags, policies = lists(m("y", "b", "10.0.0.2"), m("y", "c", "10.0.0.3"))
	policies.Items[1].PolicyTypes = []v1beta1.Direction{v1beta1.DirectionOut}
	assert.NotEqual(t, base, DigestOfLists(atgs, ags, policies), "a policy's types")
}

// An agent that reached a state through patches has the digest of the
// controller's list of that state.
func TestDigestOfPatchedCacheEqualsDigestOfList(t *testing.T) {
	c := NewCache()
	atgs, ags, policies := lists(m("y", "b", "10.0.0.2"))
	c.Replace(ResourceAppliedToGroups, atgs)
	c.Replace(ResourceAddressGroups, ags)
	c.Replace(ResourceNetworkPolicies, policies)
	require.True(t, c.Apply(watch.Modified, &v1beta1.AddressGroupPatch{ObjectMeta: metav1.ObjectMeta{Name: "ag"},
		AddedMembers: []v1beta1.GroupMember{m("y", "c", "10.0.0.3")}, RemovedMembers: []v1beta1.GroupMember{m("y", "b", "10.0.0.2")}}))

	want := DigestOfLists(lists(m("y", "c", "10.0.0.3")))
	p, atg, ag := c.Snapshot()
	assert.Equal(t, want, Digest(p, atg, ag))

	state := NewRealizedState(time.Unix(100, 0), p, atg, ag)
	assert.Equal(t, want, state.Digest)
	require.Len(t, state.Policies, 2)
	assert.Equal(t, RealizedPolicy{Namespace: "x", Name: "p1", UID: "u1", AppliedToGroups: []string{"atg"}, Rules: 1}, state.Policies[0])
	assert.Equal(t, []RealizedGroup{{Name: "ag", Pods: []string{"y/c"}, IPs: []string{"10.0.0.3"}}}, state.AddressGroups)
	assert.Equal(t, []RealizedGroup{{Name: "atg", Pods: []string{"x/a"}, IPs: []string{"10.0.0.1"}}}, state.AppliedToGroups)
}
