package route

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
)

// TestNodeRoutesInANamespace runs the host side of the agent in a real
// network namespace with a stand-in gateway: remote node routes, the
// node-port and Service routes with their permanent neighbours, the
// masquerade rules and node ports in nftables, and Cleanup.
func TestNodeRoutesInANamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (network namespaces, nftables); run it through 'make test'")
	}
	nodeNS, err := testutils.NewNS()
	require.NoError(t, err)
	defer testutils.UnmountNS(nodeNS)
	defer nodeNS.Close()

	var (
		mac         = net.HardwareAddr{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
		nodePortVIP = netip.MustParseAddr("169.254.169.110")
		snatIP      = netip.MustParseAddr("169.254.169.252")
		serviceCIDR = netip.MustParsePrefix("10.96.0.0/16")
		remote      = netip.MustParsePrefix("10.10.1.0/24")
	)
	routes := func() string {
		out, err := exec.Command("ip", "route", "show", "dev", "gw0").CombinedOutput()
		require.NoError(t, err, string(out))
		return string(out)
	}
	nft := func() string {
		out, _ := exec.Command("nft", "list", "table", "ip", NFTTable).CombinedOutput()
		return string(out)
	}
	require.NoError(t, nodeNS.Do(func(ns.NetNS) error {
		// A veth stands in for the OVS internal port (this kernel has no
		// dummy links).
		require.NoError(t, netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "gw0"}, PeerName: "gw0-peer"}))
		n, err := New("gw0")
		require.NoError(t, err)
		_, err = n.ConfigureGateway("gw0", netip.MustParsePrefix("10.10.0.1/24"), 1450)
		require.NoError(t, err)
		require.NoError(t, n.EnsureNodePortRoute(nodePortVIP, mac))
		require.NoError(t, n.EnsureServiceRoutes(serviceCIDR, nodePortVIP, snatIP, mac))
		// The node controller's routes leave the Services' route alone.
		require.NoError(t, n.EnsureRoutes(map[netip.Prefix]netip.Addr{remote: netip.MustParseAddr("10.10.1.1")}))
		r := routes()
		assert.Contains(t, r, "10.96.0.0/16 via 169.254.169.110 onlink")
		assert.Contains(t, r, "10.10.1.0/24 via 10.10.1.1 onlink")
		assert.Contains(t, r, "169.254.169.110 scope link")
		assert.Contains(t, r, "169.254.169.252 scope link")
		neigh, err := exec.Command("ip", "neigh", "show", "dev", "gw0").CombinedOutput()
		require.NoError(t, err)
		assert.Contains(t, string(neigh), "169.254.169.252 lladdr aa:bb:cc:dd:ee:ff PERMANENT")
		assert.Contains(t, string(neigh), "169.254.169.110 lladdr aa:bb:cc:dd:ee:ff PERMANENT")
		// A node that left: its route goes, the Services' stays.
		require.NoError(t, n.EnsureRoutes(nil))
		r = routes()
		assert.NotContains(t, r, "10.10.1.0/24")
		assert.Contains(t, r, "10.96.0.0/16 via 169.254.169.110 onlink")

		ctx := context.Background()
		require.NoError(t, n.EnsureMasquerade(ctx, []netip.Prefix{netip.MustParsePrefix("10.10.0.0/24"), netip.PrefixFrom(snatIP, 32)}))
		require.NoError(t, n.SyncNodePorts(ctx, nodePortVIP, []NodePort{{Protocol: "tcp", Port: 30080}, {Protocol: "udp", Port: 30081, Local: true}}))
		tables := nft()
		assert.Contains(t, tables, `ip saddr 10.10.0.0/24 oifname != "gw0" masquerade`)
		assert.Contains(t, tables, `ip saddr 169.254.169.252 oifname != "gw0" masquerade`)
		assert.Contains(t, tables, "tcp . 30080")
		assert.Contains(t, tables, "udp . 30081")
		// Masquerade again with one source: exactly one rule is left.
		require.NoError(t, n.EnsureMasquerade(ctx, []netip.Prefix{netip.MustParsePrefix("10.10.0.0/24")}))
		assert.Equal(t, 1, strings.Count(nft(), "masquerade comment"))

		require.NoError(t, n.Cleanup(ctx))
		r = routes()
		assert.NotContains(t, r, "10.96.0.0/16")
		assert.NotContains(t, r, "169.254.169.110")
		assert.NotContains(t, r, "169.254.169.252")
		neigh, err = exec.Command("ip", "neigh", "show", "dev", "gw0").CombinedOutput()
		require.NoError(t, err)
		assert.NotContains(t, string(neigh), "169.254.169")
		assert.NotContains(t, nft(), "masquerade", "the table is gone")
		return nil
	}))
}
