package ovsdb_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-cni/antrea/pkg/ovs/ovsdb"
)

func TestEnsureBridgeCreates(t *testing.T) {
	o, c := withBridge(t)
	ctx := testCtx(t)

	assert.Equal(t, "netdev", vsctlGet(t, o, "Bridge", testBridge, "datapath_type"))
	assert.Equal(t, "secure", vsctlGet(t, o, "Bridge", testBridge, "fail_mode"))
	assert.Equal(t, `[OpenFlow13, OpenFlow14, OpenFlow15]`, vsctlGet(t, o, "Bridge", testBridge, "protocols"))
	assert.Equal(t, "true", vsctlGet(t, o, "Bridge", testBridge, "other_config:disable-in-band"))
	assert.Equal(t, "true", vsctlGet(t, o, "Bridge", testBridge, "external_ids:antrea-managed"))
	// ovs-vswitchd has set the bridge up: its local port has ofport 65534
	// and the OpenFlow management socket answers.
	assert.Equal(t, "65534", vsctlGet(t, o, "Interface", testBridge, "ofport"))
	o.Ofctl(t, "show", testBridge)

	// ovs-ctl records the version at start-up; ovstest does not use it.
	o.Vsctl(t, "set", "Open_vSwitch", ".", "ovs_version=3.1.0")
	assert.Eventually(t, func() bool {
		version, err := c.OVSVersion(ctx)
		return err == nil && version == "3.1.0"
	}, 5*time.Second, 5*time.Millisecond)

	ports, err := c.ListPorts(ctx)
	require.NoError(t, err)
	assert.Empty(t, ports, "the bridge's local port is not listed")

	// The same config again changes nothing.
	before := nextCfg(t, o)
	require.NoError(t, c.EnsureBridge(ctx, ovsdb.BridgeConfig{
		DatapathType: ovsdb.DatapathNetdev,
		ExternalIDs:  map[string]string{"antrea-managed": "true"},
	}))
	assert.Equal(t, before, nextCfg(t, o), "no transaction for an unchanged bridge")
}

func TestEnsureBridgeAdoptsExisting(t *testing.T) {
	o, c := connect(t)
	ctx := testCtx(t)
	o.Vsctl(t, "add-br", testBridge, "--", "set", "Bridge", testBridge,
		"datapath_type=netdev", "fail_mode=standalone", "protocols=OpenFlow10,OpenFlow13",
		"external_ids:owner=someone", "external_ids:antrea-managed=false", "other_config:mac-table-size=2048",
		"--", "add-port", testBridge, "old0", "--", "set", "Interface", "old0", "type=internal", "ofport_request=7",
		"--", "add-port", testBridge, "old1", "--", "set", "Interface", "old1", "type=internal")

	require.NoError(t, c.EnsureBridge(ctx, ovsdb.BridgeConfig{
		DatapathType: ovsdb.DatapathNetdev,
		ExternalIDs:  map[string]string{"antrea-managed": "true"},
	}))
	assert.Equal(t, "secure", vsctlGet(t, o, "Bridge", testBridge, "fail_mode"))
	assert.Equal(t, `[OpenFlow13, OpenFlow14, OpenFlow15]`, vsctlGet(t, o, "Bridge", testBridge, "protocols"))
	assert.Equal(t, `{antrea-managed="true", owner=someone}`, vsctlGet(t, o, "Bridge", testBridge, "external_ids"))
	assert.Equal(t, `{disable-in-band="true", mac-table-size="2048"}`, vsctlGet(t, o, "Bridge", testBridge, "other_config"))

	ports, err := c.ListPorts(ctx)
	require.NoError(t, err)
	require.Len(t, ports, 2, "existing ports are kept")
	assert.Equal(t, "old0", ports[0].Name)
	assert.Equal(t, int32(7), ports[0].OFPort)
	assert.Equal(t, int32(7), ports[0].OFPortRequest)
	assert.Equal(t, "internal", ports[0].Type)
	assert.Equal(t, "old1", ports[1].Name)
	assert.Positive(t, ports[1].OFPort)
}

func TestBridgeExternalIDs(t *testing.T) {
	o, c := withBridge(t)
	ctx := testCtx(t)

	require.NoError(t, c.SetBridgeExternalIDs(ctx, map[string]string{"round": "3", "extra": "x"}))
	ids, err := c.BridgeExternalIDs(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"antrea-managed": "true", "round": "3", "extra": "x"}, ids)

	require.NoError(t, c.SetBridgeExternalIDs(ctx, map[string]string{"round": "4", "extra": ""}))
	ids, err = c.BridgeExternalIDs(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"antrea-managed": "true", "round": "4"}, ids)
	assert.Equal(t, `{antrea-managed="true", round="4"}`, vsctlGet(t, o, "Bridge", testBridge, "external_ids"))

	before := nextCfg(t, o)
	require.NoError(t, c.SetBridgeExternalIDs(ctx, map[string]string{"round": "4", "gone": ""}))
	assert.Equal(t, before, nextCfg(t, o), "no transaction when nothing changes")
}

func TestDeleteBridge(t *testing.T) {
	o, c := withBridge(t)
	ctx := testCtx(t)
	_, err := c.EnsurePort(ctx, ovsdb.PortConfig{Name: "gw0", Type: ovsdb.PortTypeInternal})
	require.NoError(t, err)

	require.NoError(t, c.DeleteBridge(ctx))
	assert.Empty(t, strings.TrimSpace(o.Vsctl(t, "list-br")))
	assert.Empty(t, strings.TrimSpace(o.Vsctl(t, "--columns=name", "list", "Interface")), "ports and interfaces are garbage-collected")
	require.NoError(t, c.DeleteBridge(ctx), "deleting a missing bridge is not an error")

	_, err = c.ListPorts(ctx)
	assert.ErrorContains(t, err, "bridge br-int does not exist")
	_, err = c.EnsurePort(ctx, ovsdb.PortConfig{Name: "gw0", Type: ovsdb.PortTypeInternal})
	assert.ErrorContains(t, err, "bridge br-int does not exist")
}

func TestEnsureBridgeRejectsUnknownDatapath(t *testing.T) {
	_, c := connect(t)
	err := c.EnsureBridge(testCtx(t), ovsdb.BridgeConfig{DatapathType: "dpdk"})
	assert.ErrorContains(t, err, `unknown datapath type "dpdk"`)
}
