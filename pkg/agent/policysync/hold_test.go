package policysync

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ovs-cni/antrea/pkg/agent/networkpolicy"
	"github.com/ovs-cni/antrea/pkg/agent/podconfig"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

type fakeFlows map[string][]of.Flow

func (f fakeFlows) Sync(_ context.Context, owner string, _ int, flows []of.Flow) error {
	if len(flows) == 0 {
		delete(f, owner)
	} else {
		f[owner] = flows
	}
	return nil
}

func TestHoldsHoldSelectedPodsUntilRealized(t *testing.T) {
	flows := fakeFlows{}
	podLabels := map[string]map[string]string{"web": {"app": "web"}, "db": {"app": "db"}}
	policies := []*networkingv1.NetworkPolicy{{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "x", UID: "np-web"},
		Spec:       networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}}
	h := NewHolds(flows,
		func(_ context.Context, _, name string) (map[string]string, error) { return podLabels[name], nil },
		func(ns string) ([]*networkingv1.NetworkPolicy, error) {
			if ns == "x" {
				return policies, nil
			}
			return nil, nil
		})
	web := podconfig.Pod{ContainerID: "c-web", PodNamespace: "x", PodName: "web", IP: netip.MustParseAddr("10.0.0.5"), OFPort: 7, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 5}}
	db := podconfig.Pod{ContainerID: "c-db", PodNamespace: "x", PodName: "db", IP: netip.MustParseAddr("10.0.0.6"), OFPort: 8, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 6}}
	ctx := context.Background()

	require.NoError(t, h.Admit(ctx, db))
	assert.Empty(t, flows, "no policy selects db: no hold")
	require.NoError(t, h.Admit(ctx, web))
	require.Len(t, flows[holdOwner("c-web")], 2, "web is held in both directions")
	assert.Equal(t, 1, h.Pending())

	member := controlplane.GroupMember{Pod: controlplane.PodReference{Namespace: "x", Name: "web"}, Node: "n1", IPs: []string{"10.0.0.5"}}
	policy := &controlplane.NetworkPolicy{UID: "np-web", Name: "web", Namespace: "x", AppliedToGroups: []string{"g"},
		Rules: []controlplane.NetworkPolicyRule{{Direction: controlplane.DirectionIn, From: controlplane.NetworkPolicyPeer{AddressGroups: []string{"peers"}}}}}
	peers := map[string]*controlplane.AddressGroup{"peers": {Name: "peers"}}
	states := []struct {
		name    string
		state   *networkpolicy.State
		release bool
	}{
		{"the controller has not sent the policy", &networkpolicy.State{LocalPods: map[netip.Addr]uint32{web.IP: 7}}, false},
		{"the policy, but web is not a member yet", &networkpolicy.State{
			Policies: []*controlplane.NetworkPolicy{policy}, AppliedToGroups: map[string]*controlplane.AppliedToGroup{"g": {Name: "g"}},
			LocalPods: map[netip.Addr]uint32{web.IP: 7}}, false},
		{"a member, but the state was compiled without web's port", &networkpolicy.State{
			Policies: []*controlplane.NetworkPolicy{policy}, AppliedToGroups: map[string]*controlplane.AppliedToGroup{"g": {Name: "g", Members: []controlplane.GroupMember{member}}},
			LocalPods: map[netip.Addr]uint32{}}, false},
		{"a member, but the rule's address group has not arrived: web would be denied what the policy allows", &networkpolicy.State{
			Policies: []*controlplane.NetworkPolicy{policy}, AppliedToGroups: map[string]*controlplane.AppliedToGroup{"g": {Name: "g", Members: []controlplane.GroupMember{member}}},
			LocalPods: map[netip.Addr]uint32{web.IP: 7}}, false},
		{"realized", &networkpolicy.State{
			Policies: []*controlplane.NetworkPolicy{policy}, AppliedToGroups: map[string]*controlplane.AppliedToGroup{"g": {Name: "g", Members: []controlplane.GroupMember{member}}},
			AddressGroups: peers, LocalPods: map[netip.Addr]uint32{web.IP: 7}}, true},
	}
	for _, s := range states {
		h.Release(ctx, s.state)
		_, held := flows[holdOwner("c-web")]
		assert.Equal(t, !s.release, held, s.name)
	}
	assert.Equal(t, 0, h.Pending())
}

func TestHoldsReleaseDeselectedPodsAndForget(t *testing.T) {
	flows := fakeFlows{}
	labels := map[string]string{"app": "web"}
	policies := []*networkingv1.NetworkPolicy{{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "x", UID: "np-web"},
		Spec:       networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}}
	h := NewHolds(flows,
		func(context.Context, string, string) (map[string]string, error) { return labels, nil },
		func(string) ([]*networkingv1.NetworkPolicy, error) { return policies, nil })
	a := podconfig.Pod{ContainerID: "a", PodNamespace: "x", PodName: "a", IP: netip.MustParseAddr("10.0.0.7"), OFPort: 9}
	b := podconfig.Pod{ContainerID: "b", PodNamespace: "x", PodName: "b", IP: netip.MustParseAddr("10.0.0.8"), OFPort: 10}
	ctx := context.Background()
	require.NoError(t, h.Admit(ctx, a))
	require.NoError(t, h.Admit(ctx, b))
	require.Len(t, flows, 2)

	require.NoError(t, h.Forget(ctx, b))
	assert.NotContains(t, flows, holdOwner("b"), "a deleted pod's hold goes with it")

	labels = map[string]string{"app": "other"} // relabelled: no policy selects it any more
	h.Release(ctx, &networkpolicy.State{})
	assert.Empty(t, flows)
	assert.Equal(t, 0, h.Pending())
}
