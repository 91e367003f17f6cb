package ovsdb_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-cni/antrea/pkg/ovs/ovsdb"
)

func TestEnsurePortTypes(t *testing.T) {
	o, c := withBridge(t)
	tests := []struct {
		name       string
		cfg        ovsdb.PortConfig
		wantOFPort int32
		wantOpts   string // ovs-vsctl's rendering of the options column
	}{
		{
			name:       "internal gateway with ofport request",
			cfg:        ovsdb.PortConfig{Name: "gw0", Type: ovsdb.PortTypeInternal, OFPortRequest: 2, MTURequest: 1450},
			wantOFPort: 2,
			wantOpts:   "{}",
		},
		{
			name: "vxlan tunnel with flow-based key and remote",
			cfg: ovsdb.PortConfig{Name: "tun0", Type: ovsdb.PortTypeVXLAN, OFPortRequest: 1,
				Options: map[string]string{"key": "flow", "remote_ip": "flow"}},
			wantOFPort: 1,
			wantOpts:   `{key=flow, remote_ip=flow}`,
		},
		{
			name: "geneve tunnel with destination port",
			cfg: ovsdb.PortConfig{Name: "gnv0", Type: ovsdb.PortTypeGeneve, OFPortRequest: 3,
				Options: map[string]string{"key": "flow", "remote_ip": "flow", "dst_port": "6082"}},
			wantOFPort: 3,
			wantOpts:   `{dst_port="6082", key=flow, remote_ip=flow}`,
		},
		{
			name:     "internal port, OVS chooses the ofport",
			cfg:      ovsdb.PortConfig{Name: "int9", Type: ovsdb.PortTypeInternal},
			wantOpts: "{}",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			ofport, err := c.EnsurePort(ctx, tt.cfg)
			require.NoError(t, err)
			if tt.wantOFPort != 0 {
				assert.Equal(t, tt.wantOFPort, ofport)
			} else {
				assert.Positive(t, ofport)
			}
			assert.Equal(t, fmt.Sprint(ofport), vsctlGet(t, o, "Interface", tt.cfg.Name, "ofport"))
			assert.Equal(t, tt.wantOpts, vsctlGet(t, o, "Interface", tt.cfg.Name, "options"))
			assert.Equal(t, tt.cfg.Type, vsctlGet(t, o, "Interface", tt.cfg.Name, "type"))
			assert.Contains(t, o.Vsctl(t, "list-ports", testBridge), tt.cfg.Name)

			info, ok, err := c.GetPort(ctx, tt.cfg.Name)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, ofport, info.OFPort)
			assert.Equal(t, tt.cfg.Type, info.Type)
			assert.Equal(t, tt.cfg.OFPortRequest, info.OFPortRequest)
			assert.Equal(t, tt.cfg.MTURequest, info.MTURequest)
			assert.Empty(t, info.Error)

			// Idempotent: the same config again makes no transaction.
			before := nextCfg(t, o)
			again, err := c.EnsurePort(ctx, tt.cfg)
			require.NoError(t, err)
			assert.Equal(t, ofport, again)
			assert.Equal(t, before, nextCfg(t, o), "no transaction for an unchanged port")
		})
	}
	if mtu := vsctlGet(t, o, "Interface", "gw0", "mtu"); mtu != "1450" {
		t.Errorf("gw0 mtu = %s, want 1450 (mtu_request)", mtu)
	}
}

func TestEnsurePortVethWithExternalIDs(t *testing.T) {
	o, c := withBridge(t)
	ctx := testCtx(t)
	name := addVeth(t, o, "web-7f9c1a")
	ids := map[string]string{
		"k8s-pod-namespace": "default", "k8s-pod-name": "web",
		"container-id": "7f9c1a2b3c", "ip": "10.10.0.5", "mac": "aa:bb:cc:dd:ee:01",
	}
	cfg := ovsdb.PortConfig{Name: name, ExternalIDs: ids}
	ofport, err := c.EnsurePort(ctx, cfg)
	require.NoError(t, err)
	assert.Positive(t, ofport)
	assert.Equal(t, "web", vsctlGet(t, o, "Interface", name, "external_ids:k8s-pod-name"))
	assert.Equal(t, "web", vsctlGet(t, o, "Port", name, "external_ids:k8s-pod-name"))

	// A changed external ID and a dropped one are written, the ofport stays.
	cfg.ExternalIDs = map[string]string{"k8s-pod-namespace": "default", "k8s-pod-name": "web", "ip": "10.10.0.6"}
	before := nextCfg(t, o)
	again, err := c.EnsurePort(ctx, cfg)
	require.NoError(t, err)
	assert.Equal(t, ofport, again)
	assert.Equal(t, before+1, nextCfg(t, o), "one transaction for the update")
	assert.Equal(t, `{ip="10.10.0.6", k8s-pod-name=web, k8s-pod-namespace=default}`,
		vsctlGet(t, o, "Interface", name, "external_ids"))
	assert.Equal(t, `{ip="10.10.0.6", k8s-pod-name=web, k8s-pod-namespace=default}`,
		vsctlGet(t, o, "Port", name, "external_ids"))

	_, err = c.EnsurePort(ctx, ovsdb.PortConfig{Name: "gw0", Type: ovsdb.PortTypeInternal, OFPortRequest: 2})
	require.NoError(t, err)
	ports, err := c.ListPorts(ctx)
	require.NoError(t, err)
	require.Len(t, ports, 2)
	assert.Equal(t, "gw0", ports[0].Name)
	assert.Equal(t, int32(2), ports[0].OFPort)
	assert.Equal(t, ovsdb.PortInfo{
		Name: name, Type: "", OFPort: ofport, ExternalIDs: cfg.ExternalIDs, MAC: ports[1].MAC,
	}, ports[1])
	assert.NotEmpty(t, ports[1].MAC, "mac_in_use is reported")
}

func TestEnsurePortUpdatesOptionsAndType(t *testing.T) {
	o, c := withBridge(t)
	ctx := testCtx(t)
	ofport, err := c.EnsurePort(ctx, ovsdb.PortConfig{Name: "tun0", Type: ovsdb.PortTypeVXLAN, OFPortRequest: 1,
		Options: map[string]string{"key": "flow", "remote_ip": "flow"}})
	require.NoError(t, err)
	require.Equal(t, int32(1), ofport)

	ofport, err = c.EnsurePort(ctx, ovsdb.PortConfig{Name: "tun0", Type: ovsdb.PortTypeGeneve, OFPortRequest: 1,
		Options: map[string]string{"remote_ip": "flow"}})
	require.NoError(t, err)
	assert.Equal(t, int32(1), ofport)
	assert.Equal(t, "geneve", vsctlGet(t, o, "Interface", "tun0", "type"))
	assert.Equal(t, `{remote_ip=flow}`, vsctlGet(t, o, "Interface", "tun0", "options"))
}

func TestEnsurePortErrors(t *testing.T) {
	o, c := withBridge(t)
	tests := []struct {
		name    string
		cfg     ovsdb.PortConfig
		wantErr []string
	}{
		{
			name:    "type unknown to OVS",
			cfg:     ovsdb.PortConfig{Name: "bad0", Type: "bogus"},
			wantErr: []string{"ensure port bad0", `interface type "bogus" is not supported`, "vxlan"},
		},
		{
			name:    "device that does not exist",
			cfg:     ovsdb.PortConfig{Name: "nosuchdev0"},
			wantErr: []string{"ensure port nosuchdev0", "OVS failed to set up interface nosuchdev0", "No such device"},
		},
		{
			name:    "empty name",
			cfg:     ovsdb.PortConfig{Type: ovsdb.PortTypeInternal},
			wantErr: []string{"empty port name"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.EnsurePort(testCtx(t), tt.cfg)
			require.Error(t, err)
			for _, want := range tt.wantErr {
				assert.ErrorContains(t, err, want)
			}
		})
	}
	// The failed device port is in OVSDB with OVS's error, for the caller
	// to delete.
	info, ok, err := c.GetPort(testCtx(t), "nosuchdev0")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, int32(-1), info.OFPort)
	assert.Contains(t, info.Error, "No such device")
	assert.NotContains(t, o.Vsctl(t, "list-ports", testBridge), "bad0", "no transaction for an unsupported type")
}

func TestEnsurePortOnOtherBridge(t *testing.T) {
	o, c := withBridge(t)
	o.Vsctl(t, "add-br", "br-other", "--", "set", "Bridge", "br-other", "datapath_type=netdev",
		"--", "add-port", "br-other", "foreign0", "--", "set", "Interface", "foreign0", "type=internal")
	ctx := testCtx(t)
	_, err := c.EnsurePort(ctx, ovsdb.PortConfig{Name: "foreign0", Type: ovsdb.PortTypeInternal})
	assert.ErrorContains(t, err, "port foreign0 exists but is not on bridge br-int")
	assert.ErrorContains(t, c.DeletePort(ctx, "foreign0"), "not on bridge br-int")
	_, ok, err := c.GetPort(ctx, "foreign0")
	require.NoError(t, err)
	assert.False(t, ok, "ports of other bridges are not reported")
}

func TestDeletePort(t *testing.T) {
	o, c := withBridge(t)
	ctx := testCtx(t)
	name := addVeth(t, o, "veth-del")
	_, err := c.EnsurePort(ctx, ovsdb.PortConfig{Name: name})
	require.NoError(t, err)

	require.NoError(t, c.DeletePort(ctx, name))
	require.NoError(t, c.DeletePort(ctx, name), "deleting a missing port is not an error")
	assert.NotContains(t, o.Vsctl(t, "list-ports", testBridge), name)
	assert.NotContains(t, o.Vsctl(t, "--columns=name", "list", "Interface"), name, "interface garbage-collected")
	_, ok, err := c.GetPort(ctx, name)
	require.NoError(t, err)
	assert.False(t, ok)

	// The same name can be added again right away.
	ofport, err := c.EnsurePort(ctx, ovsdb.PortConfig{Name: name})
	require.NoError(t, err)
	assert.Positive(t, ofport)
}

func TestEnsurePortConcurrent(t *testing.T) {
	o, c := withBridge(t)
	ctx := testCtx(t)
	const n = 16
	var wg sync.WaitGroup
	ofports := make([]int32, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Two callers per name: the second must see the first's port.
			name := fmt.Sprintf("p%d", i/2)
			ofports[i], errs[i] = c.EnsurePort(ctx, ovsdb.PortConfig{Name: name, Type: ovsdb.PortTypeInternal})
		}()
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		assert.Equal(t, ofports[i/2*2], ofports[i], "both callers of p%d get the same ofport", i/2)
	}
	ports, err := c.ListPorts(ctx)
	require.NoError(t, err)
	assert.Len(t, ports, n/2)
	assert.Len(t, strings.Fields(o.Vsctl(t, "list-ports", testBridge)), n/2)
}

func TestReconnectAfterOVSDBRestart(t *testing.T) {
	o, c := withBridge(t)
	ctx := testCtx(t)
	_, err := c.EnsurePort(ctx, ovsdb.PortConfig{Name: "gw0", Type: ovsdb.PortTypeInternal, OFPortRequest: 2})
	require.NoError(t, err)

	start := time.Now()
	o.RestartDB(t)
	restarted := time.Now()
	// Operations wait for the reconnection, then work on a fresh cache.
	ofport, err := c.EnsurePort(ctx, ovsdb.PortConfig{Name: "tun0", Type: ovsdb.PortTypeVXLAN, OFPortRequest: 1,
		Options: map[string]string{"key": "flow", "remote_ip": "flow"}})
	require.NoError(t, err)
	assert.Equal(t, int32(1), ofport)
	t.Logf("ovsdb-server restart %v, then reconnect and EnsurePort %v", restarted.Sub(start), time.Since(restarted))
	assert.True(t, c.Connected())
	ports, err := c.ListPorts(ctx)
	require.NoError(t, err)
	require.Len(t, ports, 2)
	assert.Equal(t, "gw0", ports[0].Name)
	assert.Equal(t, int32(2), ports[0].OFPort)

	// A change made while the client was away shows up in its cache.
	o.RestartDB(t)
	o.Vsctl(t, "set", "Interface", "gw0", "external_ids:marker=x")
	assert.Eventually(t, func() bool {
		info, ok, err := c.GetPort(ctx, "gw0")
		return err == nil && ok && info.ExternalIDs["marker"] == "x"
	}, 10*time.Second, 10*time.Millisecond)
}
