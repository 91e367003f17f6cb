package ovsdbtest

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-cni/antrea/pkg/ovs/ovsdb"
)

func newBridge(t *testing.T) *Fake {
	t.Helper()
	f := New("br-int")
	require.NoError(t, f.EnsureBridge(context.Background(), ovsdb.BridgeConfig{
		DatapathType: ovsdb.DatapathNetdev, ExternalIDs: map[string]string{"antrea-managed": "true"},
	}))
	return f
}

func TestFakeBridge(t *testing.T) {
	ctx := context.Background()
	f := New("br-int")
	_, ok := f.Bridge()
	assert.False(t, ok)
	_, err := f.EnsurePort(ctx, ovsdb.PortConfig{Name: "gw0", Type: ovsdb.PortTypeInternal})
	assert.ErrorContains(t, err, "bridge br-int does not exist")

	cfg := ovsdb.BridgeConfig{DatapathType: ovsdb.DatapathNetdev, ExternalIDs: map[string]string{"antrea-managed": "true"}}
	require.NoError(t, f.EnsureBridge(ctx, cfg))
	require.NoError(t, f.EnsureBridge(ctx, cfg))
	assert.Equal(t, 1, f.Transactions(), "the second EnsureBridge changes nothing")
	b, ok := f.Bridge()
	require.True(t, ok)
	assert.Equal(t, BridgeState{
		DatapathType: ovsdb.DatapathNetdev, FailMode: "secure",
		Protocols:   []string{"OpenFlow13", "OpenFlow14", "OpenFlow15"},
		OtherConfig: map[string]string{"disable-in-band": "true"},
		ExternalIDs: map[string]string{"antrea-managed": "true"},
	}, b)

	require.NoError(t, f.SetBridgeExternalIDs(ctx, map[string]string{"round": "2", "antrea-managed": ""}))
	ids, err := f.BridgeExternalIDs(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"round": "2"}, ids)

	assert.ErrorContains(t, f.EnsureBridge(ctx, ovsdb.BridgeConfig{DatapathType: "dpdk"}), "unknown datapath type")
	require.NoError(t, f.DeleteBridge(ctx))
	require.NoError(t, f.DeleteBridge(ctx))
	_, err = f.ListPorts(ctx)
	assert.ErrorContains(t, err, "does not exist")
}

func TestFakeEnsurePort(t *testing.T) {
	ctx := context.Background()
	f := newBridge(t)
	tests := []struct {
		name    string
		cfg     ovsdb.PortConfig
		want    int32
		wantErr string
	}{
		{name: "tunnel with request", cfg: ovsdb.PortConfig{Name: "tun0", Type: ovsdb.PortTypeVXLAN, OFPortRequest: 1,
			Options: map[string]string{"key": "flow", "remote_ip": "flow"}}, want: 1},
		{name: "gateway with request", cfg: ovsdb.PortConfig{Name: "gw0", Type: ovsdb.PortTypeInternal, OFPortRequest: 2}, want: 2},
		{name: "pod port gets the lowest free number", cfg: ovsdb.PortConfig{Name: "pod-a", ExternalIDs: map[string]string{"ip": "10.0.0.2"}}, want: 3},
		{name: "taken request falls back to a free number", cfg: ovsdb.PortConfig{Name: "pod-b", OFPortRequest: 1}, want: 4},
		{name: "same config again", cfg: ovsdb.PortConfig{Name: "pod-a", ExternalIDs: map[string]string{"ip": "10.0.0.2"}}, want: 3},
		{name: "unsupported type", cfg: ovsdb.PortConfig{Name: "bad0", Type: "bogus"}, wantErr: `ensure port bad0: interface type "bogus" is not supported`},
		{name: "empty name", cfg: ovsdb.PortConfig{}, wantErr: "empty port name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.EnsurePort(ctx, tt.cfg)
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	// Bridge + 4 ports; the repeated pod-a and the errors made none.
	assert.Equal(t, 5, f.Transactions())

	ports, err := f.ListPorts(ctx)
	require.NoError(t, err)
	names := []string{}
	for _, p := range ports {
		names = append(names, p.Name)
	}
	assert.Equal(t, []string{"gw0", "pod-a", "pod-b", "tun0"}, names)

	// Updating a port keeps its number; the caller's maps are copied.
	ids := map[string]string{"ip": "10.0.0.9"}
	got, err := f.EnsurePort(ctx, ovsdb.PortConfig{Name: "pod-a", ExternalIDs: ids})
	require.NoError(t, err)
	assert.Equal(t, int32(3), got)
	ids["ip"] = "mutated"
	info, ok, err := f.GetPort(ctx, "pod-a")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "10.0.0.9", info.ExternalIDs["ip"])
	assert.Equal(t, 6, f.Transactions())
}

func TestFakeInterfaceErrorAndDelete(t *testing.T) {
	ctx := context.Background()
	f := newBridge(t)
	f.SetInterfaceError("veth0", "could not open network device veth0 (No such device)")
	_, err := f.EnsurePort(ctx, ovsdb.PortConfig{Name: "veth0"})
	assert.EqualError(t, err, "ensure port veth0: OVS failed to set up interface veth0: could not open network device veth0 (No such device)")
	info, ok, err := f.GetPort(ctx, "veth0")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, int32(-1), info.OFPort)

	f.SetInterfaceError("veth0", "")
	ofport, err := f.EnsurePort(ctx, ovsdb.PortConfig{Name: "veth0"})
	require.NoError(t, err)
	assert.Equal(t, int32(1), ofport)

	require.NoError(t, f.DeletePort(ctx, "veth0"))
	require.NoError(t, f.DeletePort(ctx, "veth0"), "a missing port is not an error")
	_, ok, err = f.GetPort(ctx, "veth0")
	require.NoError(t, err)
	assert.False(t, ok)
}

func TestFakeInjectError(t *testing.T) {
	ctx := context.Background()
	f := newBridge(t)
	boom := errors.New("boom")
	f.InjectError("EnsurePort", boom)
	_, err := f.EnsurePort(ctx, ovsdb.PortConfig{Name: "gw0", Type: ovsdb.PortTypeInternal})
	assert.ErrorIs(t, err, boom)
	_, err = f.EnsurePort(ctx, ovsdb.PortConfig{Name: "gw0", Type: ovsdb.PortTypeInternal})
	assert.NoError(t, err, "an injected error fails one call")
	f.InjectError("ListPorts", boom)
	_, err = f.ListPorts(ctx)
	assert.ErrorIs(t, err, boom)
}
