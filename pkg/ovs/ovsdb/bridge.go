package ovsdb

import (
	"context"
	"fmt"
	"maps"

	"github.com/ovn-kubernetes/libovsdb/model"
	libovsdb "github.com/ovn-kubernetes/libovsdb/ovsdb"
	"k8s.io/klog/v2"

	ovsmodel "github.com/ovs-cni/antrea/pkg/ovs/ovsdb/model"
)

// bridgeLockKey serializes bridge-level operations; port names cannot be
// empty, so it never collides with a port's key.
const bridgeLockKey = ""

// EnsureBridge creates the bridge, or adopts an existing one changing only
// what differs from cfg, and waits until ovs-vswitchd has applied it.
func (c *Client) EnsureBridge(ctx context.Context, cfg BridgeConfig) error {
	switch cfg.DatapathType {
	case "", DatapathSystem, DatapathNetdev:
	default:
		return fmt.Errorf("ensure bridge %s: unknown datapath type %q (want %q or %q)",
			c.bridge, cfg.DatapathType, DatapathSystem, DatapathNetdev)
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	unlock := c.locks.lock(bridgeLockKey)
	defer unlock()
	logger := klog.FromContext(ctx)

	root, err := c.root()
	if err != nil {
		return fmt.Errorf("ensure bridge %s: %w", c.bridge, err)
	}
	br, found, err := c.getBridge()
	if err != nil {
		return fmt.Errorf("ensure bridge %s: %w", c.bridge, err)
	}
	var ops []libovsdb.Operation
	if !found {
		ops, err = c.createBridgeOps(root.UUID, cfg)
		logger.Info("Creating OVS bridge", "bridge", c.bridge, "datapathType", desiredBridge(c.bridge, cfg).DatapathType)
	} else {
		changes := diffBridge(br, cfg)
		if changes.empty() {
			logger.V(2).Info("OVS bridge is up to date", "bridge", c.bridge)
			return nil
		}
		ops, err = c.updateBridgeOps(br, cfg, changes)
		logger.Info("Updating existing OVS bridge", "bridge", c.bridge, "columns", changes.Columns,
			"otherConfig", changes.OtherConfig, "externalIDs", changes.ExternalIDs)
	}
	if err != nil {
		return fmt.Errorf("ensure bridge %s: %w", c.bridge, err)
	}
	return c.applyAndWait(ctx, "ensure bridge "+c.bridge, root.UUID, ops, func() (bool, error) {
		_, ok, err := c.getBridge()
		return ok, err
	})
}

// createBridgeOps inserts the bridge with its local internal port, as
// ovs-vsctl add-br does, and attaches it to the Open_vSwitch row.
func (c *Client) createBridgeOps(rootUUID string, cfg BridgeConfig) ([]libovsdb.Operation, error) {
	iface := &ovsmodel.Interface{UUID: "newiface", Name: c.bridge, Type: PortTypeInternal}
	port := &ovsmodel.Port{UUID: "newport", Name: c.bridge, Interfaces: []string{iface.UUID}}
	br := desiredBridge(c.bridge, cfg)
	br.UUID = "newbridge"
	br.Ports = []string{port.UUID}
	var ops []libovsdb.Operation
	for _, m := range []model.Model{iface, port, br} {
		op, err := c.ovs.Create(m)
		if err != nil {
			return nil, fmt.Errorf("build insert: %w", err)
		}
		ops = append(ops, op...)
	}
	root := &ovsmodel.OpenvSwitch{UUID: rootUUID}
	op, err := c.ovs.Where(root).Mutate(root, model.Mutation{
		Field: &root.Bridges, Mutator: libovsdb.MutateOperationInsert, Value: []string{br.UUID},
	})
	if err != nil {
		return nil, fmt.Errorf("build Open_vSwitch bridges insert: %w", err)
	}
	return append(ops, op...), nil
}

// updateBridgeOps changes the columns of an existing bridge that differ.
func (c *Client) updateBridgeOps(have *ovsmodel.Bridge, cfg BridgeConfig, changes bridgeChanges) ([]libovsdb.Operation, error) {
	var ops []libovsdb.Operation
	if len(changes.Columns) > 0 {
		want := desiredBridge(c.bridge, cfg)
		want.UUID = have.UUID
		op, err := c.ovs.Where(want).Update(want, bridgeFields(want, changes.Columns)...)
		if err != nil {
			return nil, fmt.Errorf("build bridge update of %v: %w", changes.Columns, err)
		}
		ops = append(ops, op...)
	}
	m := &ovsmodel.Bridge{UUID: have.UUID}
	muts := append(mapMutations(&m.OtherConfig, changes.OtherConfig), mapMutations(&m.ExternalIDs, changes.ExternalIDs)...)
	if len(muts) > 0 {
		op, err := c.ovs.Where(m).Mutate(m, muts...)
		if err != nil {
			return nil, fmt.Errorf("build bridge other_config/external_ids mutation: %w", err)
		}
		ops = append(ops, op...)
	}
	return ops, nil
}

// DeleteBridge deletes the bridge; OVSDB garbage-collects its ports and
// interfaces. A missing bridge is not an error.
func (c *Client) DeleteBridge(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	unlock := c.locks.lock(bridgeLockKey)
	defer unlock()
	br, found, err := c.getBridge()
	if err != nil || !found {
		return err
	}
	root, err := c.root()
	if err != nil {
		return fmt.Errorf("delete bridge %s: %w", c.bridge, err)
	}
	m := &ovsmodel.OpenvSwitch{UUID: root.UUID}
	ops, err := c.ovs.Where(m).Mutate(m, model.Mutation{
		Field: &m.Bridges, Mutator: libovsdb.MutateOperationDelete, Value: []string{br.UUID},
	})
	if err != nil {
		return fmt.Errorf("delete bridge %s: build mutation: %w", c.bridge, err)
	}
	klog.FromContext(ctx).Info("Deleting OVS bridge", "bridge", c.bridge, "ports", len(br.Ports))
	return c.applyAndWait(ctx, "delete bridge "+c.bridge, root.UUID, ops, func() (bool, error) {
		_, ok, err := c.getBridge()
		return !ok, err
	})
}

// BridgeExternalIDs returns the external_ids of the bridge.
func (c *Client) BridgeExternalIDs(_ context.Context) (map[string]string, error) {
	br, found, err := c.getBridge()
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("read external_ids of bridge %s: bridge does not exist", c.bridge)
	}
	return maps.Clone(br.ExternalIDs), nil
}

// SetBridgeExternalIDs merges ids into the bridge's external_ids; an empty
// value deletes the key.
func (c *Client) SetBridgeExternalIDs(ctx context.Context, ids map[string]string) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	unlock := c.locks.lock(bridgeLockKey)
	defer unlock()
	br, found, err := c.getBridge()
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("set external_ids of bridge %s: bridge does not exist", c.bridge)
	}
	change := mergeMap(br.ExternalIDs, ids)
	if change.empty() {
		return nil
	}
	root, err := c.root()
	if err != nil {
		return fmt.Errorf("set external_ids of bridge %s: %w", c.bridge, err)
	}
	m := &ovsmodel.Bridge{UUID: br.UUID}
	ops, err := c.ovs.Where(m).Mutate(m, mapMutations(&m.ExternalIDs, change)...)
	if err != nil {
		return fmt.Errorf("set external_ids of bridge %s: build mutation: %w", c.bridge, err)
	}
	return c.applyAndWait(ctx, "set external_ids of bridge "+c.bridge, root.UUID, ops, nil)
}

// OVSVersion returns Open_vSwitch.ovs_version. ovs-vswitchd does not write
// it; ovs-ctl does at start-up, so OVS started otherwise may report none.
func (c *Client) OVSVersion(_ context.Context) (string, error) {
	root, err := c.root()
	if err != nil {
		return "", err
	}
	if root.OVSVersion == nil {
		return "", nil
	}
	return *root.OVSVersion, nil
}

// applyAndWait runs ops plus the next_cfg increment in one transaction and
// waits until ovs-vswitchd has applied it and done, if given, is true.
func (c *Client) applyAndWait(ctx context.Context, what, rootUUID string, ops []libovsdb.Operation, done func() (bool, error)) error {
	cfgOps, err := c.nextCfgOps(rootUUID)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	ops = append(ops, cfgOps...)
	res, err := c.transact(ctx, what, ops)
	if err != nil {
		return err
	}
	target, err := nextCfgResult(res, ops)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := c.waitApplied(ctx, target, done); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
