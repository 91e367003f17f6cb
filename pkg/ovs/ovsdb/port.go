package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/model"
	libovsdb "github.com/ovn-kubernetes/libovsdb/ovsdb"
	"k8s.io/klog/v2"

	ovsmodel "github.com/ovs-cni/antrea/pkg/ovs/ovsdb/model"
)

// EnsurePort creates or updates the port cfg.Name with one interface of the
// same name on the bridge, in one transaction, and waits for ovs-vswitchd to
// assign its OpenFlow port number. A port whose config already matches costs
// no transaction.
func (c *Client) EnsurePort(ctx context.Context, cfg PortConfig) (int32, error) {
	if cfg.Name == "" {
		return 0, errors.New("ensure port: empty port name")
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	unlock := c.locks.lock(cfg.Name)
	defer unlock()
	start := time.Now()
	logger := klog.FromContext(ctx)
	what := "ensure port " + cfg.Name

	root, err := c.root()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if err := checkIfaceType(root, cfg.Type); err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	br, found, err := c.getBridge()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if !found {
		return 0, fmt.Errorf("%s: bridge %s does not exist", what, c.bridge)
	}
	port, found, err := c.getPort(cfg.Name)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}

	var ops []libovsdb.Operation
	if !found {
		ops, err = c.createPortOps(br.UUID, cfg)
	} else {
		var iface *ovsmodel.Interface
		if iface, err = c.portInterface(br, port); err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		ifaceCols, portCols := diffPort(port, iface, cfg)
		if len(ifaceCols) == 0 && len(portCols) == 0 {
			ofport, err := c.waitOFPort(ctx, cfg.Name, 0)
			logger.V(4).Info("OVS port is up to date", "port", cfg.Name, "ofport", ofport)
			return ofport, err
		}
		logger.V(2).Info("Updating OVS port", "port", cfg.Name, "interfaceColumns", ifaceCols, "portColumns", portCols)
		ops, err = c.updatePortOps(port.UUID, iface.UUID, cfg, ifaceCols, portCols)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	cfgOps, err := c.nextCfgOps(root.UUID)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	ops = append(ops, cfgOps...)
	res, err := c.transact(ctx, what, ops)
	if err != nil {
		return 0, err
	}
	target, err := nextCfgResult(res, ops)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	ofport, err := c.waitOFPort(ctx, cfg.Name, target)
	if err != nil {
		return 0, err
	}
	logger.V(2).Info("Ensured OVS port", "port", cfg.Name, "type", cfg.Type, "ofport", ofport, "created", !found,
		"duration", time.Since(start))
	return ofport, nil
}

// checkIfaceType rejects interface types that ovs-vswitchd does not list
// as supported (when it has listed them).
func checkIfaceType(root *ovsmodel.OpenvSwitch, typ string) error {
	typ = normalizeIfaceType(typ)
	if typ == "" || len(root.IfaceTypes) == 0 || slices.Contains(root.IfaceTypes, typ) {
		return nil
	}
	supported := slices.Clone(root.IfaceTypes)
	sort.Strings(supported)
	return fmt.Errorf("interface type %q is not supported by this Open vSwitch (supported: %s)",
		typ, strings.Join(supported, ", "))
}

// portInterface returns the single interface of a port of the bridge.
func (c *Client) portInterface(br *ovsmodel.Bridge, port *ovsmodel.Port) (*ovsmodel.Interface, error) {
	if !slices.Contains(br.Ports, port.UUID) {
		return nil, fmt.Errorf("port %s exists but is not on bridge %s", port.Name, c.bridge)
	}
	if len(port.Interfaces) != 1 {
		return nil, fmt.Errorf("port %s has %d interfaces, want 1", port.Name, len(port.Interfaces))
	}
	iface, found, err := c.getInterface(port.Interfaces[0])
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("interface %s of port %s is not in the cache", port.Interfaces[0], port.Name)
	}
	return iface, nil
}

// createPortOps inserts the interface and the port and adds the port to the
// bridge.
func (c *Client) createPortOps(bridgeUUID string, cfg PortConfig) ([]libovsdb.Operation, error) {
	iface := desiredInterface(cfg)
	iface.UUID = "newiface"
	port := desiredPort(cfg)
	port.UUID = "newport"
	port.Interfaces = []string{iface.UUID}
	var ops []libovsdb.Operation
	for _, m := range []model.Model{iface, port} {
		op, err := c.ovs.Create(m)
		if err != nil {
			return nil, fmt.Errorf("build insert: %w", err)
		}
		ops = append(ops, op...)
	}
	br := &ovsmodel.Bridge{UUID: bridgeUUID}
	op, err := c.ovs.Where(br).Mutate(br, model.Mutation{
		Field: &br.Ports, Mutator: libovsdb.MutateOperationInsert, Value: []string{port.UUID},
	})
	if err != nil {
		return nil, fmt.Errorf("build bridge ports insert: %w", err)
	}
	return append(ops, op...), nil
}

// updatePortOps updates the columns of the interface and the port that
// differ from cfg.
func (c *Client) updatePortOps(portUUID, ifaceUUID string, cfg PortConfig, ifaceCols, portCols []string) ([]libovsdb.Operation, error) {
	var ops []libovsdb.Operation
	if len(ifaceCols) > 0 {
		iface := desiredInterface(cfg)
		iface.UUID = ifaceUUID
		op, err := c.ovs.Where(iface).Update(iface, interfaceFields(iface, ifaceCols)...)
		if err != nil {
			return nil, fmt.Errorf("build interface update of %v: %w", ifaceCols, err)
		}
		ops = append(ops, op...)
	}
	if len(portCols) > 0 {
		port := desiredPort(cfg)
		port.UUID = portUUID
		op, err := c.ovs.Where(port).Update(port, &port.ExternalIDs)
		if err != nil {
			return nil, fmt.Errorf("build port update of %v: %w", portCols, err)
		}
		ops = append(ops, op...)
	}
	return ops, nil
}

// waitOFPort waits until ovs-vswitchd has applied configuration target and
// the interface has an OpenFlow port number, or fails with OVS's error.
func (c *Client) waitOFPort(ctx context.Context, name string, target int) (int32, error) {
	var ofport int32
	err := c.waitApplied(ctx, target, func() (bool, error) {
		iface := &ovsmodel.Interface{Name: name}
		found, err := getRow(c.ovs, iface, "interface "+name)
		if err != nil || !found {
			return false, err
		}
		n, done, err := interfaceOFPort(iface)
		ofport = n
		return done, err
	})
	if err != nil {
		return 0, fmt.Errorf("ensure port %s: %w", name, err)
	}
	return ofport, nil
}

// interfaceOFPort interprets an interface row: its ofport once assigned
// (done), OVS's error, or not done yet.
func interfaceOFPort(iface *ovsmodel.Interface) (ofport int32, done bool, err error) {
	msg := ""
	if iface.Error != nil {
		msg = *iface.Error
	}
	switch {
	case iface.Ofport != nil && *iface.Ofport > 0:
		return int32(*iface.Ofport), true, nil
	case msg != "":
		return 0, true, fmt.Errorf("OVS failed to set up interface %s: %s", iface.Name, msg)
	case iface.Ofport != nil && *iface.Ofport == -1:
		return 0, true, fmt.Errorf("OVS failed to set up interface %s: ofport is -1", iface.Name)
	default:
		return 0, false, nil
	}
}

// DeletePort removes the port from the bridge (OVSDB garbage-collects the
// port and interface rows) and waits until ovs-vswitchd has released it.
// A missing port is not an error.
func (c *Client) DeletePort(ctx context.Context, name string) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	unlock := c.locks.lock(name)
	defer unlock()
	what := "delete port " + name
	port, found, err := c.getPort(name)
	if err != nil || !found {
		return err
	}
	br, found, err := c.getBridge()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !found || !slices.Contains(br.Ports, port.UUID) {
		return fmt.Errorf("%s: the port is not on bridge %s", what, c.bridge)
	}
	root, err := c.root()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	m := &ovsmodel.Bridge{UUID: br.UUID}
	ops, err := c.ovs.Where(m).Mutate(m, model.Mutation{
		Field: &m.Ports, Mutator: libovsdb.MutateOperationDelete, Value: []string{port.UUID},
	})
	if err != nil {
		return fmt.Errorf("%s: build bridge ports delete: %w", what, err)
	}
	err = c.applyAndWait(ctx, what, root.UUID, ops, func() (bool, error) {
		_, found, err := c.getPort(name)
		return !found, err
	})
	if err == nil {
		klog.FromContext(ctx).V(2).Info("Deleted OVS port", "port", name)
	}
	return err
}

// GetPort returns the port name of the bridge from the cache.
func (c *Client) GetPort(_ context.Context, name string) (PortInfo, bool, error) {
	br, found, err := c.getBridge()
	if err != nil || !found {
		return PortInfo{}, false, err
	}
	port, found, err := c.getPort(name)
	if err != nil || !found || !slices.Contains(br.Ports, port.UUID) {
		return PortInfo{}, false, err
	}
	info, err := c.portInfo(port)
	if err != nil {
		return PortInfo{}, false, fmt.Errorf("get port %s: %w", name, err)
	}
	return info, true, nil
}

// ListPorts returns the ports of the bridge from the cache, sorted by name,
// without the bridge's local port.
func (c *Client) ListPorts(_ context.Context) ([]PortInfo, error) {
	br, found, err := c.getBridge()
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("list ports: bridge %s does not exist", c.bridge)
	}
	infos := make([]PortInfo, 0, len(br.Ports))
	for _, uuid := range br.Ports {
		port := &ovsmodel.Port{UUID: uuid}
		found, err := getRow(c.ovs, port, "port "+uuid)
		if err != nil {
			return nil, fmt.Errorf("list ports of bridge %s: %w", c.bridge, err)
		}
		if !found || port.Name == c.bridge {
			continue
		}
		info, err := c.portInfo(port)
		if err != nil {
			return nil, fmt.Errorf("list ports of bridge %s: %w", c.bridge, err)
		}
		infos = append(infos, info)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	return infos, nil
}

// portInfo describes a port by its first interface.
func (c *Client) portInfo(port *ovsmodel.Port) (PortInfo, error) {
	info := PortInfo{Name: port.Name}
	if len(port.Interfaces) == 0 {
		return info, nil
	}
	iface, found, err := c.getInterface(port.Interfaces[0])
	if err != nil || !found {
		return info, err
	}
	return interfaceInfo(port.Name, iface), nil
}

// interfaceInfo converts an interface row into a PortInfo.
func interfaceInfo(portName string, iface *ovsmodel.Interface) PortInfo {
	info := PortInfo{
		Name:        portName,
		Type:        iface.Type,
		Options:     maps.Clone(iface.Options),
		ExternalIDs: maps.Clone(iface.ExternalIDs),
	}
	if iface.Ofport != nil {
		info.OFPort = int32(*iface.Ofport)
	}
	if iface.OfportRequest != nil {
		info.OFPortRequest = int32(*iface.OfportRequest)
	}
	if iface.MTURequest != nil {
		info.MTURequest = *iface.MTURequest
	}
	if iface.MACInUse != nil {
		info.MAC = *iface.MACInUse
	}
	if iface.Error != nil {
		info.Error = *iface.Error
	}
	return info
}
