package podnet

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIPAMWithHostLocal runs the real host-local plugin (built for the
// test) over a /29: addresses are handed out, the same container gets the
// an address again when its ADD is repeated, the range runs out with a clear error, DEL and GC
// release addresses.
func TestIPAMWithHostLocal(t *testing.T) {
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "host-local"), "github.com/containernetworking/plugins/plugins/ipam/host-local")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build host-local: %s", out)

	m := &IPAM{BinDir: bin, DataDir: t.TempDir(),
		PodCIDR: netip.MustParsePrefix("10.20.0.0/29"), Gateway: netip.MustParseAddr("10.20.0.1")}
	ctx := context.Background()
	req := func(id string) IPAMRequest {
		return IPAMRequest{ContainerID: id, Netns: "/var/run/netns/none", IfName: "eth0"}
	}

	// A /29 has 6 usable addresses; the gateway takes one.
	seen := map[string]bool{}
	for _, id := range []string{"c1", "c2", "c3", "c4", "c5"} {
		res, err := m.Add(ctx, req(id))
		require.NoError(t, err, id)
		addr := res.IPs[0].Address.IP.String()
		assert.False(t, seen[addr], "address %s given twice", addr)
		assert.NotEqual(t, "10.20.0.1", addr, "the gateway is never given out")
		seen[addr] = true
		require.Len(t, res.Routes, 1, "default route for the pod")
	}
	// An ADD repeated after an interrupted one still gets an address.
	_, err = m.Add(ctx, req("c1"))
	require.NoError(t, err)

	_, err = m.Add(ctx, req("c6"))
	require.Error(t, err, "the range is exhausted")
	assert.Contains(t, err.Error(), "no IP addresses available")

	require.NoError(t, m.Del(ctx, req("c2")))
	require.NoError(t, m.Del(ctx, req("c2")), "DEL is idempotent")
	_, err = m.Add(ctx, req("c6"))
	require.NoError(t, err, "a released address is reused")

	// GC keeps only c1: the others are released.
	require.NoError(t, m.GC(ctx, []types.GCAttachment{{ContainerID: "c1", IfName: "eth0"}}))
	entries, err := os.ReadDir(filepath.Join(m.DataDir, "antrea"))
	require.NoError(t, err)
	held := 0
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			held++
		}
	}
	assert.Equal(t, 1, held, "after GC only c1's address is held")
}
