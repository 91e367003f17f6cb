package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func write(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "antrea-agent.conf")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func TestLoad(t *testing.T) {
	t.Setenv("NODE_NAME", "")
	tests := []struct {
		name    string
		content string
		wantErr string
		check   func(*testing.T, AgentConfig)
	}{
		{"defaults", "nodeName: n1\n", "", func(t *testing.T, c AgentConfig) {
			assert.Equal(t, "br-int", c.OVSBridge)
			assert.Equal(t, DatapathSystem, c.OVSDatapathType)
			assert.Equal(t, TunnelVXLAN, c.TunnelType)
			assert.Equal(t, 0, c.DefaultMTU)
			assert.Equal(t, "/var/run/antrea/agent.sock", c.APISocket)
			assert.Equal(t, OVSManagedByContainer, c.OVSManagedBy)
			assert.Equal(t, 10350, c.APIPort)
		}},
		{"api port off", "nodeName: n1\napiPort: 0\n", "", func(t *testing.T, c AgentConfig) {
			assert.Equal(t, 0, c.APIPort)
		}},
		{"bad api port", "nodeName: n1\napiPort: 70000\n", "apiPort 70000: must be 0 (off) or a TCP port", nil},
		{"netdev geneve", "nodeName: n1\novsDatapathType: netdev\ntunnelType: geneve\ndefaultMTU: 1450\n", "", func(t *testing.T, c AgentConfig) {
			assert.Equal(t, DatapathNetdev, c.OVSDatapathType)
			assert.Equal(t, TunnelGeneve, c.TunnelType)
			assert.Equal(t, 1450, c.DefaultMTU)
		}},
		{"unknown key", "nodeName: n1\novsBrigde: br0\n", `unknown field "ovsBrigde"`, nil},
		{"bad datapath", "nodeName: n1\novsDatapathType: dpdk\n", `ovsDatapathType "dpdk"`, nil},
		{"ovs run by the host", "nodeName: n1\novsManagedBy: host\n", "", func(t *testing.T, c AgentConfig) {
			assert.Equal(t, OVSManagedByHost, c.OVSManagedBy)
		}},
		{"bad ovs manager", "nodeName: n1\novsManagedBy: systemd\n", `ovsManagedBy "systemd"`, nil},
		{"bad tunnel", "nodeName: n1\ntunnelType: gre\n", `tunnelType "gre"`, nil},
		{"bad mtu", "nodeName: n1\ndefaultMTU: 100\n", "defaultMTU 100", nil},
		{"stats interval", "nodeName: n1\nnetworkPolicyStatsInterval: 30s\n", "", func(t *testing.T, c AgentConfig) {
			assert.Equal(t, 30*time.Second, c.StatsInterval())
		}},
		{"stats off", "nodeName: n1\nnetworkPolicyStatsInterval: \"0\"\n", "", func(t *testing.T, c AgentConfig) {
			assert.Equal(t, time.Duration(0), c.StatsInterval())
		}},
		{"stats interval not a duration", "nodeName: n1\nnetworkPolicyStatsInterval: often\n", `networkPolicyStatsInterval "often": must be a duration`, nil},
		{"stats interval too short", "nodeName: n1\nnetworkPolicyStatsInterval: 100ms\n", `networkPolicyStatsInterval "100ms": must be at least 1s`, nil},
		{"bad service cidr", "nodeName: n1\nserviceCIDR: 10.96.0.0\n", `serviceCIDR "10.96.0.0"`, nil},
		{"no node name", "ovsBridge: br-int\n", "nodeName: must be set", nil},
		{"api socket is the cni socket", "nodeName: n1\napiSocket: /var/run/antrea/cni.sock\n", `apiSocket "/var/run/antrea/cni.sock": must differ from cniSocket`, nil},
		{"empty api socket", "nodeName: n1\napiSocket: \"\"\n", "apiSocket: must not be empty", nil},
		{"not yaml", "nodeName: [\n", "agent config", nil},
		{"api server override", "nodeName: n1\nkubeAPIServerOverride: https://10.0.0.1:6443\n", "", func(t *testing.T, c AgentConfig) {
			assert.Equal(t, "https://10.0.0.1:6443", c.KubeAPIServerOverride)
		}},
		{"api server override without https", "nodeName: n1\nkubeAPIServerOverride: 10.0.0.1:6443\n", `kubeAPIServerOverride "10.0.0.1:6443"`, nil},
		{"api server override with a path", "nodeName: n1\nkubeAPIServerOverride: https://a:6443/x\n", "must be https://HOST[:PORT]", nil},
		{"api server override with kubeconfig", "nodeName: n1\nkubeconfig: /k\nkubeAPIServerOverride: https://a:6443\n", "not with kubeconfig", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(write(t, tc.content))
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, c)
		})
	}
}

func TestNodeNameFromEnvironment(t *testing.T) {
	t.Setenv("NODE_NAME", "from-env")
	c, err := Load(write(t, "nodeName: from-file\n"))
	require.NoError(t, err)
	assert.Equal(t, "from-env", c.NodeName)
}

func TestMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.conf"))
	assert.ErrorContains(t, err, "read agent config")
}
