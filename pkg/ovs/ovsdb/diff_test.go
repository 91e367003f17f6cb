package ovsdb

import (
	"testing"

	"github.com/stretchr/testify/assert"

	ovsmodel "github.com/ovs-cni/antrea/pkg/ovs/ovsdb/model"
)

func ptr[T any](v T) *T { return &v }

func TestMergeMap(t *testing.T) {
	tests := []struct {
		name       string
		have, want map[string]string
		expect     mapChange
	}{
		{name: "nothing wanted", have: map[string]string{"a": "1"}},
		{name: "already there", have: map[string]string{"a": "1", "b": "2"}, want: map[string]string{"a": "1"}},
		{name: "new key", have: nil, want: map[string]string{"a": "1"},
			expect: mapChange{Insert: map[string]string{"a": "1"}}},
		{name: "changed value is deleted then inserted", have: map[string]string{"a": "1"}, want: map[string]string{"a": "2"},
			expect: mapChange{Delete: []string{"a"}, Insert: map[string]string{"a": "2"}}},
		{name: "empty value deletes", have: map[string]string{"a": "1", "b": "2"}, want: map[string]string{"a": ""},
			expect: mapChange{Delete: []string{"a"}}},
		{name: "empty value of a missing key is a no-op", have: map[string]string{"b": "2"}, want: map[string]string{"a": ""}},
		{name: "sorted deletes", have: map[string]string{"z": "1", "a": "1"}, want: map[string]string{"z": "2", "a": "2"},
			expect: mapChange{Delete: []string{"a", "z"}, Insert: map[string]string{"a": "2", "z": "2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mergeMap(tt.have, tt.want)
			assert.Equal(t, tt.expect, got)
			assert.Equal(t, len(tt.expect.Delete) == 0 && len(tt.expect.Insert) == 0, got.empty())
		})
	}
}

func TestDiffBridge(t *testing.T) {
	// upToDate is what EnsureBridge creates for netdev with antrea-managed.
	upToDate := func() *ovsmodel.Bridge {
		return &ovsmodel.Bridge{
			Name:         "br-int",
			DatapathType: "netdev",
			FailMode:     ptr(ovsmodel.BridgeFailModeSecure),
			Protocols:    []string{"OpenFlow15", "OpenFlow13", "OpenFlow14"},
			OtherConfig:  map[string]string{"disable-in-band": "true", "mac-table-size": "2048"},
			ExternalIDs:  map[string]string{"antrea-managed": "true", "owner": "x"},
		}
	}
	cfg := BridgeConfig{DatapathType: DatapathNetdev, ExternalIDs: map[string]string{"antrea-managed": "true"}}
	tests := []struct {
		name   string
		change func(*ovsmodel.Bridge)
		cfg    BridgeConfig
		expect bridgeChanges
	}{
		{name: "up to date (protocol order and extra keys do not matter)", change: func(*ovsmodel.Bridge) {}, cfg: cfg},
		{name: "datapath type", change: func(b *ovsmodel.Bridge) { b.DatapathType = "" }, cfg: cfg,
			expect: bridgeChanges{Columns: []string{colDatapathType}}},
		{name: "empty datapath type means system", change: func(b *ovsmodel.Bridge) { b.DatapathType = "" },
			cfg: BridgeConfig{ExternalIDs: cfg.ExternalIDs}},
		{name: "fail mode unset", change: func(b *ovsmodel.Bridge) { b.FailMode = nil }, cfg: cfg,
			expect: bridgeChanges{Columns: []string{colFailMode}}},
		{name: "fail mode standalone and extra protocol",
			change: func(b *ovsmodel.Bridge) {
				b.FailMode = ptr(ovsmodel.BridgeFailModeStandalone)
				b.Protocols = append(b.Protocols, "OpenFlow10")
			},
			cfg: cfg, expect: bridgeChanges{Columns: []string{colFailMode, colProtocols}}},
		{name: "in-band control enabled", change: func(b *ovsmodel.Bridge) { b.OtherConfig = nil }, cfg: cfg,
			expect: bridgeChanges{OtherConfig: mapChange{Insert: map[string]string{"disable-in-band": "true"}}}},
		{name: "external ID value differs", change: func(b *ovsmodel.Bridge) { b.ExternalIDs["antrea-managed"] = "false" }, cfg: cfg,
			expect: bridgeChanges{ExternalIDs: mapChange{Delete: []string{"antrea-managed"}, Insert: map[string]string{"antrea-managed": "true"}}}},
		{name: "extra other_config wanted", change: func(*ovsmodel.Bridge) {},
			cfg:    BridgeConfig{DatapathType: DatapathNetdev, ExternalIDs: cfg.ExternalIDs, OtherConfig: map[string]string{"mcast-snooping-disable-flood-unregistered": "true"}},
			expect: bridgeChanges{OtherConfig: mapChange{Insert: map[string]string{"mcast-snooping-disable-flood-unregistered": "true"}}}},
		{name: "in-band control explicitly allowed", change: func(*ovsmodel.Bridge) {},
			cfg:    BridgeConfig{DatapathType: DatapathNetdev, ExternalIDs: cfg.ExternalIDs, OtherConfig: map[string]string{"disable-in-band": ""}},
			expect: bridgeChanges{OtherConfig: mapChange{Delete: []string{"disable-in-band"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := upToDate()
			tt.change(b)
			got := diffBridge(b, tt.cfg)
			assert.Equal(t, tt.expect, got)
			assert.Equal(t, tt.expect.empty(), got.empty())
		})
	}
}

func TestDesiredBridge(t *testing.T) {
	b := desiredBridge("br-int", BridgeConfig{
		ExternalIDs: map[string]string{"antrea-managed": "true", "dropped": ""},
		OtherConfig: map[string]string{"disable-in-band": "", "x": "y"},
	})
	assert.Equal(t, "system", b.DatapathType)
	assert.Equal(t, ovsmodel.BridgeFailModeSecure, *b.FailMode)
	assert.Equal(t, []string{"OpenFlow13", "OpenFlow14", "OpenFlow15"}, b.Protocols)
	assert.Equal(t, map[string]string{"antrea-managed": "true"}, b.ExternalIDs)
	assert.Equal(t, map[string]string{"x": "y"}, b.OtherConfig, "an empty value removes even the default key")
}

func TestDiffPort(t *testing.T) {
	ids := map[string]string{"k8s-pod-name": "web", "ip": "10.0.0.5"}
	base := PortConfig{Name: "tun0", Type: PortTypeVXLAN, Options: map[string]string{"key": "flow", "remote_ip": "flow"},
		ExternalIDs: ids, OFPortRequest: 1, MTURequest: 1450}
	existing := func() (*ovsmodel.Port, *ovsmodel.Interface) {
		return &ovsmodel.Port{Name: "tun0", ExternalIDs: map[string]string{"k8s-pod-name": "web", "ip": "10.0.0.5"}},
			&ovsmodel.Interface{Name: "tun0", Type: "vxlan", Options: map[string]string{"remote_ip": "flow", "key": "flow"},
				ExternalIDs:   map[string]string{"ip": "10.0.0.5", "k8s-pod-name": "web"},
				OfportRequest: ptr(1), MTURequest: ptr(1450), Ofport: ptr(1)}
	}
	tests := []struct {
		name      string
		change    func(*PortConfig)
		wantIface []string
		wantPort  []string
	}{
		{name: "same config", change: func(*PortConfig) {}},
		{name: "type", change: func(c *PortConfig) { c.Type = PortTypeGeneve }, wantIface: []string{colType}},
		{name: "option value", change: func(c *PortConfig) { c.Options = map[string]string{"key": "5", "remote_ip": "flow"} },
			wantIface: []string{colOptions}},
		{name: "option removed", change: func(c *PortConfig) { c.Options = map[string]string{"remote_ip": "flow"} },
			wantIface: []string{colOptions}},
		{name: "external ID on both rows", change: func(c *PortConfig) { c.ExternalIDs = map[string]string{"k8s-pod-name": "web"} },
			wantIface: []string{colExternalIDs}, wantPort: []string{colExternalIDs}},
		{name: "ofport request cleared", change: func(c *PortConfig) { c.OFPortRequest = 0 }, wantIface: []string{colOFPortRequest}},
		{name: "ofport request changed", change: func(c *PortConfig) { c.OFPortRequest = 2 }, wantIface: []string{colOFPortRequest}},
		{name: "mtu request", change: func(c *PortConfig) { c.MTURequest = 1500 }, wantIface: []string{colMTURequest}},
		{name: "everything", change: func(c *PortConfig) { *c = PortConfig{Name: "tun0", Type: PortTypeInternal} },
			wantIface: []string{colType, colOptions, colExternalIDs, colOFPortRequest, colMTURequest}, wantPort: []string{colExternalIDs}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.change(&cfg)
			port, iface := existing()
			gotIface, gotPort := diffPort(port, iface, cfg)
			assert.Equal(t, tt.wantIface, gotIface)
			assert.Equal(t, tt.wantPort, gotPort)
		})
	}
}

func TestDiffPortNormalizesDefaults(t *testing.T) {
	// OVS reports "system" and empty maps for a plain device; the config
	// says "" and nil.
	port := &ovsmodel.Port{Name: "veth0", ExternalIDs: map[string]string{}}
	iface := &ovsmodel.Interface{Name: "veth0", Type: "system", Options: map[string]string{}}
	gotIface, gotPort := diffPort(port, iface, PortConfig{Name: "veth0"})
	assert.Empty(t, gotIface)
	assert.Empty(t, gotPort)
}

func TestInterfaceOFPort(t *testing.T) {
	tests := []struct {
		name     string
		iface    ovsmodel.Interface
		want     int32
		wantDone bool
		wantErr  string
	}{
		{name: "not assigned yet", iface: ovsmodel.Interface{Name: "p"}},
		{name: "assigned", iface: ovsmodel.Interface{Name: "p", Ofport: ptr(5)}, want: 5, wantDone: true},
		{name: "assigned despite a stale error", iface: ovsmodel.Interface{Name: "p", Ofport: ptr(5), Error: ptr("old")}, want: 5, wantDone: true},
		{name: "error", iface: ovsmodel.Interface{Name: "p", Ofport: ptr(-1), Error: ptr("could not open network device p (No such device)")},
			wantDone: true, wantErr: "OVS failed to set up interface p: could not open network device p (No such device)"},
		{name: "ofport -1 without message", iface: ovsmodel.Interface{Name: "p", Ofport: ptr(-1)},
			wantDone: true, wantErr: "OVS failed to set up interface p: ofport is -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, done, err := interfaceOFPort(&tt.iface)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantDone, done)
			if tt.wantErr == "" {
				assert.NoError(t, err)
			} else {
				assert.EqualError(t, err, tt.wantErr)
			}
		})
	}
}

func TestCheckIfaceType(t *testing.T) {
	root := &ovsmodel.OpenvSwitch{IfaceTypes: []string{"vxlan", "internal", "geneve", "system"}}
	tests := []struct {
		typ     string
		root    *ovsmodel.OpenvSwitch
		wantErr string
	}{
		{typ: "", root: root},
		{typ: "system", root: root},
		{typ: "geneve", root: root},
		{typ: "bogus", root: root, wantErr: `interface type "bogus" is not supported by this Open vSwitch (supported: geneve, internal, system, vxlan)`},
		{typ: "bogus", root: &ovsmodel.OpenvSwitch{}}, // ovs-vswitchd has not listed its types yet
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			err := checkIfaceType(tt.root, tt.typ)
			if tt.wantErr == "" {
				assert.NoError(t, err)
			} else {
				assert.EqualError(t, err, tt.wantErr)
			}
		})
	}
}
