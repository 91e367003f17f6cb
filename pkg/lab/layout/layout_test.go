package layout

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewValidatesName(t *testing.T) {
	for _, bad := range []string{"", "Lab", "1lab", "lab_x", "a-name-that-is-far-too-long"} {
		_, err := New(bad, "/tmp/x")
		assert.ErrorContains(t, err, "lab name", bad)
	}
	l, err := New("e2e", "rel/dir")
	require.NoError(t, err)
	assert.True(t, len(l.StateDir) > 0 && l.StateDir[0] == '/', "state dir is made absolute")
}

func TestNames(t *testing.T) {
	l, err := New("lab", "/s")
	require.NoError(t, err)
	assert.Equal(t, "lab.node-1", l.NodeNetns(NodeName(1)))
	assert.Equal(t, "lab.pod-0123456789abc", l.PodNetns("0123456789abcdef-0000"))
	assert.Equal(t, "172.18.0.11", NodeIP(1).String())
	assert.True(t, UnderlayPrefix.Contains(NodeIP(MaxNodes)))
	assert.Equal(t, "/s/nodes/node-2/root/etc/cni/net.d", l.CNIConfDir("node-2"))
	assert.Equal(t, "/s/nodes/node-2/root/var/run/openvswitch", l.OVSDir("node-2"))
	assert.Equal(t, "/s/nodes/node-2/root/var/run/antrea/agent.sock", l.NodePath("node-2", "/var/run/antrea/agent.sock"))
}
