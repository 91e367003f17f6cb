package ovsdb

import (
	"maps"
	"slices"
	"sort"

	"github.com/ovn-kubernetes/libovsdb/model"
	libovsdb "github.com/ovn-kubernetes/libovsdb/ovsdb"

	ovsmodel "github.com/ovs-cni/antrea/pkg/ovs/ovsdb/model"
)

// OVSDB column names that EnsureBridge and EnsurePort may update.
const (
	colDatapathType  = "datapath_type"
	colFailMode      = "fail_mode"
	colProtocols     = "protocols"
	colType          = "type"
	colOptions       = "options"
	colExternalIDs   = "external_ids"
	colOFPortRequest = "ofport_request"
	colMTURequest    = "mtu_request"
	colMAC           = "mac"
)

// mapChange is a merge into an OVSDB map column: keys to delete, then pairs
// to insert (OVSDB insert does not overwrite, so changed keys are in both).
type mapChange struct {
	Delete []string
	Insert map[string]string
}

func (m mapChange) empty() bool { return len(m.Delete) == 0 && len(m.Insert) == 0 }

// mergeMap computes the change that makes have contain want; an empty value
// in want removes the key, keys absent from want are kept.
func mergeMap(have, want map[string]string) mapChange {
	var c mapChange
	for _, k := range slices.Sorted(maps.Keys(want)) {
		v := want[k]
		old, ok := have[k]
		switch {
		case v == "" && ok:
			c.Delete = append(c.Delete, k)
		case v != "" && !ok:
			c.Insert = setKey(c.Insert, k, v)
		case v != "" && old != v:
			c.Delete = append(c.Delete, k)
			c.Insert = setKey(c.Insert, k, v)
		}
	}
	return c
}

func setKey(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}

// bridgeChanges is what EnsureBridge changes on an existing bridge.
type bridgeChanges struct {
	Columns     []string // replaced as a whole, from the desired model
	OtherConfig mapChange
	ExternalIDs mapChange
}

func (c bridgeChanges) empty() bool {
	return len(c.Columns) == 0 && c.OtherConfig.empty() && c.ExternalIDs.empty()
}

// desiredBridge is the bridge row that cfg asks for (without ports).
func desiredBridge(name string, cfg BridgeConfig) *ovsmodel.Bridge {
	dp := cfg.DatapathType
	if dp == "" {
		dp = DatapathSystem
	}
	other := map[string]string{"disable-in-band": "true"}
	maps.Copy(other, cfg.OtherConfig)
	ids := map[string]string{}
	for k, v := range cfg.ExternalIDs {
		if v != "" {
			ids[k] = v
		}
	}
	for k, v := range other {
		if v == "" {
			delete(other, k)
		}
	}
	secure := ovsmodel.BridgeFailModeSecure
	return &ovsmodel.Bridge{
		Name:         name,
		DatapathType: string(dp),
		FailMode:     &secure,
		Protocols:    slices.Clone(Protocols),
		OtherConfig:  other,
		ExternalIDs:  ids,
	}
}

// diffBridge compares an existing bridge with the desired one. Map columns
// are merged (keys others set are kept); protocols must match as a set.
func diffBridge(have *ovsmodel.Bridge, cfg BridgeConfig) bridgeChanges {
	want := desiredBridge(have.Name, cfg)
	var c bridgeChanges
	if normalizeDatapath(have.DatapathType) != want.DatapathType {
		c.Columns = append(c.Columns, colDatapathType)
	}
	if have.FailMode == nil || *have.FailMode != *want.FailMode {
		c.Columns = append(c.Columns, colFailMode)
	}
	if !sameSet(have.Protocols, want.Protocols) {
		c.Columns = append(c.Columns, colProtocols)
	}
	wantOther := map[string]string{"disable-in-band": "true"}
	maps.Copy(wantOther, cfg.OtherConfig)
	c.OtherConfig = mergeMap(have.OtherConfig, wantOther)
	c.ExternalIDs = mergeMap(have.ExternalIDs, cfg.ExternalIDs)
	return c
}

// normalizeDatapath maps OVS's default (empty) datapath type to "system".
func normalizeDatapath(dp string) string {
	if dp == "" {
		return string(DatapathSystem)
	}
	return dp
}

// normalizeIfaceType maps "system" to OVS's default interface type "".
func normalizeIfaceType(t string) string {
	if t == "system" {
		return ""
	}
	return t
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// sameMap treats nil and empty maps as equal.
func sameMap(a, b map[string]string) bool {
	return len(a) == len(b) && maps.Equal(a, b)
}

// desiredInterface is the interface row that cfg asks for.
func desiredInterface(cfg PortConfig) *ovsmodel.Interface {
	iface := &ovsmodel.Interface{
		Name:        cfg.Name,
		Type:        normalizeIfaceType(cfg.Type),
		Options:     maps.Clone(cfg.Options),
		ExternalIDs: maps.Clone(cfg.ExternalIDs),
	}
	if cfg.OFPortRequest != 0 {
		req := int(cfg.OFPortRequest)
		iface.OfportRequest = &req
	}
	if cfg.MTURequest != 0 {
		mtu := cfg.MTURequest
		iface.MTURequest = &mtu
	}
	if cfg.MAC != "" {
		mac := cfg.MAC
		iface.MAC = &mac
	}
	return iface
}

// desiredPort is the port row that cfg asks for (without interfaces).
func desiredPort(cfg PortConfig) *ovsmodel.Port {
	return &ovsmodel.Port{Name: cfg.Name, ExternalIDs: maps.Clone(cfg.ExternalIDs)}
}

// diffPort returns the columns of the interface and of the port that differ
// from cfg. Options and external_ids are compared as whole maps.
func diffPort(port *ovsmodel.Port, iface *ovsmodel.Interface, cfg PortConfig) (ifaceCols, portCols []string) {
	want := desiredInterface(cfg)
	if normalizeIfaceType(iface.Type) != want.Type {
		ifaceCols = append(ifaceCols, colType)
	}
	if !sameMap(iface.Options, want.Options) {
		ifaceCols = append(ifaceCols, colOptions)
	}
	if !sameMap(iface.ExternalIDs, want.ExternalIDs) {
		ifaceCols = append(ifaceCols, colExternalIDs)
	}
	if !sameIntPtr(iface.OfportRequest, want.OfportRequest) {
		ifaceCols = append(ifaceCols, colOFPortRequest)
	}
	if !sameIntPtr(iface.MTURequest, want.MTURequest) {
		ifaceCols = append(ifaceCols, colMTURequest)
	}
	if !sameStringPtr(iface.MAC, want.MAC) {
		ifaceCols = append(ifaceCols, colMAC)
	}
	if !sameMap(port.ExternalIDs, cfg.ExternalIDs) {
		portCols = append(portCols, colExternalIDs)
	}
	return ifaceCols, portCols
}

func sameStringPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func sameIntPtr(a, b *int) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// bridgeFields maps column names to the fields of b, for libovsdb Update.
func bridgeFields(b *ovsmodel.Bridge, cols []string) []any {
	ptrs := map[string]any{
		colDatapathType: &b.DatapathType,
		colFailMode:     &b.FailMode,
		colProtocols:    &b.Protocols,
	}
	return fieldPtrs(ptrs, cols)
}

// interfaceFields maps column names to the fields of i, for libovsdb Update.
func interfaceFields(i *ovsmodel.Interface, cols []string) []any {
	ptrs := map[string]any{
		colType:          &i.Type,
		colOptions:       &i.Options,
		colExternalIDs:   &i.ExternalIDs,
		colOFPortRequest: &i.OfportRequest,
		colMTURequest:    &i.MTURequest,
		colMAC:           &i.MAC,
	}
	return fieldPtrs(ptrs, cols)
}

func fieldPtrs(ptrs map[string]any, cols []string) []any {
	out := make([]any, 0, len(cols))
	for _, c := range cols {
		if p, ok := ptrs[c]; ok {
			out = append(out, p)
		}
	}
	return out
}

// mapMutations turns a mapChange into OVSDB mutations of the column field.
func mapMutations(field *map[string]string, c mapChange) []model.Mutation {
	var muts []model.Mutation
	del := slices.Clone(c.Delete)
	if len(del) > 0 {
		muts = append(muts, model.Mutation{Field: field, Mutator: libovsdb.MutateOperationDelete, Value: del})
	}
	if len(c.Insert) > 0 {
		muts = append(muts, model.Mutation{Field: field, Mutator: libovsdb.MutateOperationInsert, Value: c.Insert})
	}
	return muts
}
