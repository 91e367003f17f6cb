package podnet

import (
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

func TestHostVethName(t *testing.T) {
	tests := []struct{ ns, name, id string }{
		{"default", "nginx-6db489d4b7-8bfw2", "abc"},
		{"kube-system", "a", "abc"},
		{"default", "UPPER_and.dots-xyz", "abc"},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		n := HostVethName(tc.ns, tc.name, tc.id)
		assert.LessOrEqual(t, len(n), 15, n)
		assert.Regexp(t, `^[a-z0-9]{0,8}-[0-9a-f]{6}$`, n)
		assert.False(t, seen[n])
		seen[n] = true
		assert.Equal(t, n, HostVethName(tc.ns, tc.name, tc.id), "stable")
	}
	assert.True(t, strings.HasPrefix(HostVethName("default", "nginx-6db489d4b7-8bfw2", "c"), "nginx6db-"))
	assert.NotEqual(t, HostVethName("default", "web", "c1"), HostVethName("default", "web", "c2"))
}

// TestSetupVethInNamespaces runs in two real network namespaces: one as the
// node, one as the pod.
func TestSetupVethInNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (network namespaces); run it through 'make test'")
	}
	nodeNS, err := testutils.NewNS()
	require.NoError(t, err)
	defer testutils.UnmountNS(nodeNS)
	defer nodeNS.Close()
	podNS, err := testutils.NewNS()
	require.NoError(t, err)
	defer testutils.UnmountNS(podNS)
	defer podNS.Close()

	require.NoError(t, nodeNS.Do(func(ns.NetNS) error {
		v, err := SetupVeth(podNS.Path(), "eth0", "web-abc123", 1450, true)
		require.NoError(t, err)
		assert.Equal(t, "web-abc123", v.HostName)
		host, err := netlink.LinkByName("web-abc123")
		require.NoError(t, err)
		assert.Equal(t, 1450, host.Attrs().MTU)
		assert.NotZero(t, host.Attrs().RawFlags&0x80, "host side has ARP off (IFF_NOARP)")
		out, err := exec.Command("nsenter", "--net="+podNS.Path(), "ethtool", "-k", "eth0").CombinedOutput()
		require.NoError(t, err, string(out))
		assert.Contains(t, string(out), "tx-checksumming: off", "TX checksum offload is off on the pod side")
		require.NoError(t, DeleteVeth("web-abc123"))
		require.NoError(t, DeleteVeth("web-abc123"), "deleting twice is fine")
		return nil
	}))
	out, err := exec.Command("nsenter", "--net="+podNS.Path(), "ip", "link", "show", "eth0").CombinedOutput()
	assert.Error(t, err, "the pod side goes with the host side: %s", out)
}
