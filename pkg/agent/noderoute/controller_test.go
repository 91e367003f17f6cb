package noderoute

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/ovs-cni/antrea/pkg/agent/openflow"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

type fakeRoutes struct{ last map[netip.Prefix]netip.Addr }

func (f *fakeRoutes) EnsureRoutes(r map[netip.Prefix]netip.Addr) error {
	f.last = r
	return nil
}

type bundler struct{}

func (bundler) Bundle(context.Context, []of.Flow, []of.Flow) error { return nil }

func node(name, cidr, ip string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: cidr}}
	if ip != "" {
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}
	}
	return n
}

func TestSyncFollowsNodes(t *testing.T) {
	client := fake.NewClientset(
		node("node-1", "10.10.0.0/24", "172.18.0.11"),
		node("node-2", "10.10.1.0/24", "172.18.0.12"),
		node("node-3", "", "172.18.0.13"), // no podCIDR yet
	)
	factory := informers.NewSharedInformerFactory(client, 0)
	syncer := openflow.NewFlowSyncer(bundler{}, 1)
	routes := &fakeRoutes{}
	self := openflow.NodeConfig{GatewayOFPort: 2, TunnelOFPort: 1, GatewayIP: netip.MustParseAddr("10.10.0.1")}
	c := New("node-1", self, factory.Core().V1().Nodes(), syncer, routes)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())

	require.NoError(t, c.Sync(ctx))
	assert.Equal(t, []string{"node/node-2"}, syncer.Owners())
	assert.Equal(t, map[netip.Prefix]netip.Addr{netip.MustParsePrefix("10.10.1.0/24"): netip.MustParseAddr("10.10.1.1")}, routes.last)
	assert.Contains(t, syncer.Dump(), "set_field:172.18.0.12->tun_dst")

	// node-3 gets its podCIDR, node-2 changes its IP.
	_, err := client.CoreV1().Nodes().Update(ctx, node("node-3", "10.10.2.0/24", "172.18.0.13"), metav1.UpdateOptions{})
	require.NoError(t, err)
	_, err = client.CoreV1().Nodes().Update(ctx, node("node-2", "10.10.1.0/24", "172.18.0.22"), metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		require.NoError(t, c.Sync(ctx))
		// Both updates must have reached the informer, not just one.
		return len(syncer.Owners()) == 2 && len(routes.last) == 2 && strings.Contains(syncer.Dump(), "172.18.0.22")
	}, 5*time.Second, 50*time.Millisecond)
	assert.Contains(t, syncer.Dump(), "set_field:172.18.0.22->tun_dst")
	assert.NotContains(t, syncer.Dump(), "172.18.0.12")

	// node-2 leaves.
	require.NoError(t, client.CoreV1().Nodes().Delete(ctx, "node-2", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		require.NoError(t, c.Sync(ctx))
		return len(syncer.Owners()) == 1
	}, 5*time.Second, 50*time.Millisecond)
	assert.Equal(t, []string{"node/node-3"}, syncer.Owners())
	assert.NotContains(t, routes.last, netip.MustParsePrefix("10.10.1.0/24"))
}

func TestRemoteNodeNeedsCIDRAndIP(t *testing.T) {
	_, ok := RemoteNode(node("a", "10.10.0.0/24", ""))
	assert.False(t, ok)
	_, ok = RemoteNode(node("a", "garbage", "172.18.0.1"))
	assert.False(t, ok)
	r, ok := RemoteNode(node("a", "10.10.3.0/24", "172.18.0.1"))
	require.True(t, ok)
	assert.Equal(t, "10.10.3.1", r.GatewayIP.String())
}
