// Package ovsdbtest provides Fake, an in-memory implementation of
// ovsdb.Bridge for unit tests of packages that manage OVS ports. It mimics
// the real client's contract: idempotent ensures that count no transaction,
// ofport requests honoured, OVS-style errors for unsupported types and for
// interfaces that OVS cannot set up, and missing ports ignored on delete.
package ovsdbtest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/ovs-cni/antrea/pkg/ovs/ovsdb"
)

// DefaultIfaceTypes are the interface types OVS 3.1 lists with the
// userspace datapath.
var DefaultIfaceTypes = []string{"afxdp", "afxdp-nonpmd", "bareudp", "erspan", "geneve", "gre", "gtpu",
	"internal", "ip6erspan", "ip6gre", "lisp", "patch", "srv6", "stt", "system", "tap", "vxlan"}

// BridgeState is the bridge as the fake holds it.
type BridgeState struct {
	DatapathType ovsdb.DatapathType
	FailMode     string
	Protocols    []string
	OtherConfig  map[string]string
	ExternalIDs  map[string]string
}

// Fake is an in-memory ovsdb.Bridge. It is safe for concurrent use.
type Fake struct {
	mu           sync.Mutex
	name         string
	bridge       *BridgeState
	ports        map[string]*fakePort
	transactions int
	injected     map[string][]error
	portErrors   map[string]string

	// IfaceTypes are the supported interface types ("" is always
	// supported); set before use.
	IfaceTypes []string
	// Version is what OVSVersion returns.
	Version string
}

type fakePort struct {
	cfg  ovsdb.PortConfig
	info ovsdb.PortInfo
}

var _ ovsdb.Bridge = (*Fake)(nil)

// New returns a fake for bridge, which does not exist until EnsureBridge.
func New(bridge string) *Fake {
	return &Fake{
		name:       bridge,
		ports:      map[string]*fakePort{},
		injected:   map[string][]error{},
		portErrors: map[string]string{},
		IfaceTypes: slices.Clone(DefaultIfaceTypes),
		Version:    "3.1.0",
	}
}

// InjectError makes the next call of method (e.g. "EnsurePort") fail with
// err; several injections for one method fail successive calls.
func (f *Fake) InjectError(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.injected[method] = append(f.injected[method], err)
}

// SetInterfaceError makes OVS fail to set up interface name with msg (as in
// Interface.error, e.g. "could not open network device x (No such device)")
// at the next EnsurePort of it; an empty msg clears it.
func (f *Fake) SetInterfaceError(name, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if msg == "" {
		delete(f.portErrors, name)
		return
	}
	f.portErrors[name] = msg
}

// Transactions counts the writes made so far; an unchanged ensure and the
// deletion of a missing port make none.
func (f *Fake) Transactions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.transactions
}

// Bridge returns a copy of the bridge, and false if it does not exist.
func (f *Fake) Bridge() (BridgeState, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bridge == nil {
		return BridgeState{}, false
	}
	b := *f.bridge
	b.Protocols = slices.Clone(b.Protocols)
	b.OtherConfig = maps.Clone(b.OtherConfig)
	b.ExternalIDs = maps.Clone(b.ExternalIDs)
	return b, true
}

// Name is the name of the bridge.
func (f *Fake) Name() string { return f.name }

// injectedError pops the next injected error of method; f.mu is held.
func (f *Fake) injectedError(method string) error {
	errs := f.injected[method]
	if len(errs) == 0 {
		return nil
	}
	f.injected[method] = errs[1:]
	return errs[0]
}

// EnsureBridge creates or updates the bridge, merging the map columns.
func (f *Fake) EnsureBridge(_ context.Context, cfg ovsdb.BridgeConfig) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injectedError("EnsureBridge"); err != nil {
		return err
	}
	dp := cfg.DatapathType
	switch dp {
	case "":
		dp = ovsdb.DatapathSystem
	case ovsdb.DatapathSystem, ovsdb.DatapathNetdev:
	default:
		return fmt.Errorf("ensure bridge %s: unknown datapath type %q", f.name, dp)
	}
	want := BridgeState{DatapathType: dp, FailMode: "secure", Protocols: slices.Clone(ovsdb.Protocols)}
	if f.bridge != nil {
		want.OtherConfig = maps.Clone(f.bridge.OtherConfig)
		want.ExternalIDs = maps.Clone(f.bridge.ExternalIDs)
	}
	want.OtherConfig = merge(want.OtherConfig, map[string]string{"disable-in-band": "true"})
	want.OtherConfig = merge(want.OtherConfig, cfg.OtherConfig)
	want.ExternalIDs = merge(want.ExternalIDs, cfg.ExternalIDs)
	if f.bridge != nil && sameBridge(*f.bridge, want) {
		return nil
	}
	f.bridge = &want
	f.transactions++
	return nil
}

func sameBridge(a, b BridgeState) bool {
	return a.DatapathType == b.DatapathType && a.FailMode == b.FailMode && slices.Equal(a.Protocols, b.Protocols) &&
		maps.Equal(a.OtherConfig, b.OtherConfig) && maps.Equal(a.ExternalIDs, b.ExternalIDs)
}

// merge sets the keys of add in m (an empty value deletes the key).
func merge(m, add map[string]string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	for k, v := range add {
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// DeleteBridge deletes the bridge and its ports.
func (f *Fake) DeleteBridge(_ context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injectedError("DeleteBridge"); err != nil {
		return err
	}
	if f.bridge == nil {
		return nil
	}
	f.bridge = nil
	f.ports = map[string]*fakePort{}
	f.transactions++
	return nil
}

// BridgeExternalIDs returns the bridge's external_ids.
func (f *Fake) BridgeExternalIDs(_ context.Context) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injectedError("BridgeExternalIDs"); err != nil {
		return nil, err
	}
	if f.bridge == nil {
		return nil, fmt.Errorf("read external_ids of bridge %s: bridge does not exist", f.name)
	}
	return maps.Clone(f.bridge.ExternalIDs), nil
}

// SetBridgeExternalIDs merges ids into the bridge's external_ids.
func (f *Fake) SetBridgeExternalIDs(_ context.Context, ids map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injectedError("SetBridgeExternalIDs"); err != nil {
		return err
	}
	if f.bridge == nil {
		return fmt.Errorf("set external_ids of bridge %s: bridge does not exist", f.name)
	}
	merged := merge(maps.Clone(f.bridge.ExternalIDs), ids)
	if maps.Equal(merged, f.bridge.ExternalIDs) {
		return nil
	}
	f.bridge.ExternalIDs = merged
	f.transactions++
	return nil
}

// OVSVersion returns f.Version.
func (f *Fake) OVSVersion(_ context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injectedError("OVSVersion"); err != nil {
		return "", err
	}
	return f.Version, nil
}

// checkType mirrors the real client's check against iface_types.
func (f *Fake) checkType(typ string) error {
	if typ == "" || slices.Contains(f.IfaceTypes, typ) {
		return nil
	}
	supported := slices.Clone(f.IfaceTypes)
	sort.Strings(supported)
	return fmt.Errorf("interface type %q is not supported by this Open vSwitch (supported: %s)",
		typ, strings.Join(supported, ", "))
}
