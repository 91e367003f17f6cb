package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	libovsdb "github.com/ovn-kubernetes/libovsdb/ovsdb"
	"k8s.io/klog/v2"

	ovsmodel "github.com/ovs-cni/antrea/pkg/ovs/ovsdb/model"
)

const (
	// DefaultTimeout bounds an operation whose context has no deadline.
	DefaultTimeout = 10 * time.Second
	// reconnectTimeout bounds each reconnection attempt to ovsdb-server.
	reconnectTimeout = 5 * time.Second
	databaseName     = "Open_vSwitch"
)

// Client manages one bridge through an OVSDB connection. It implements Bridge.
type Client struct {
	ovs    client.Client
	bridge string
	locks  keyedMutex

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every cache change
}

var _ Bridge = (*Client)(nil)

// Connect connects to ovsdb-server on a unix socket, monitors the tables the
// client needs into its cache, and returns a client for bridge. The client
// reconnects (and monitors again) by itself when ovsdb-server restarts;
// operations issued meanwhile wait for the connection until their context
// ends. Close it when done.
func Connect(ctx context.Context, socket string, bridge string) (*Client, error) {
	if bridge == "" {
		return nil, errors.New("connect to OVSDB: empty bridge name")
	}
	dbModel, err := model.NewClientDBModel(databaseName, map[string]model.Model{
		ovsmodel.OpenvSwitchTable: &ovsmodel.OpenvSwitch{},
		ovsmodel.BridgeTable:      &ovsmodel.Bridge{},
		ovsmodel.PortTable:        &ovsmodel.Port{},
		ovsmodel.InterfaceTable:   &ovsmodel.Interface{},
	})
	if err != nil {
		return nil, fmt.Errorf("build OVSDB client model: %w", err)
	}
	logger := klog.Background().WithName("libovsdb")
	bo := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(50*time.Millisecond),
		backoff.WithMaxInterval(2*time.Second),
		backoff.WithMaxElapsedTime(0), // retry forever
	)
	ovs, err := client.NewOVSDBClient(dbModel,
		client.WithEndpoint("unix:"+socket),
		client.WithReconnect(reconnectTimeout, bo),
		client.WithLogger(&logger),
	)
	if err != nil {
		return nil, fmt.Errorf("create OVSDB client for %s: %w", socket, err)
	}
	if err := ovs.Connect(ctx); err != nil {
		return nil, fmt.Errorf("connect to OVSDB at %s: %w", socket, err)
	}
	c := &Client{ovs: ovs, bridge: bridge, changed: make(chan struct{})}
	ovs.Cache().AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc:    func(string, model.Model) { c.notify() },
		UpdateFunc: func(string, model.Model, model.Model) { c.notify() },
		DeleteFunc: func(string, model.Model) { c.notify() },
	})
	if _, err := ovs.Monitor(ctx, c.monitor()); err != nil {
		ovs.Close()
		return nil, fmt.Errorf("monitor OVSDB at %s: %w", socket, err)
	}
	klog.FromContext(ctx).V(2).Info("Connected to OVSDB", "socket", socket, "bridge", bridge)
	return c, nil
}

// monitor selects the columns the client reads. Statistics and status
// columns, which ovs-vswitchd rewrites every few seconds, are left out.
func (c *Client) monitor() *client.Monitor {
	root := &ovsmodel.OpenvSwitch{}
	br := &ovsmodel.Bridge{}
	port := &ovsmodel.Port{}
	iface := &ovsmodel.Interface{}
	return c.ovs.NewMonitor(
		client.WithTable(root, &root.Bridges, &root.NextCfg, &root.CurCfg, &root.OVSVersion, &root.IfaceTypes),
		client.WithTable(br, &br.Name, &br.Ports, &br.DatapathType, &br.FailMode, &br.Protocols,
			&br.OtherConfig, &br.ExternalIDs),
		client.WithTable(port, &port.Name, &port.Interfaces, &port.ExternalIDs),
		client.WithTable(iface, &iface.Name, &iface.Type, &iface.Options, &iface.ExternalIDs,
			&iface.Ofport, &iface.OfportRequest, &iface.MTURequest, &iface.Error, &iface.MACInUse, &iface.MAC),
	)
}

// Name is the name of the managed bridge.
func (c *Client) Name() string { return c.bridge }

// Connected tells whether the client is connected to ovsdb-server now.
func (c *Client) Connected() bool { return c.ovs.Connected() }

// Close disconnects from ovsdb-server.
func (c *Client) Close() { c.ovs.Close() }

// notify wakes up everything waiting for a cache change.
func (c *Client) notify() {
	c.mu.Lock()
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// changes returns a channel closed at the next cache change. Take it before
// reading the cache, so that no change is missed between read and wait.
func (c *Client) changes() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// withDefaultTimeout gives ctx a deadline if it has none.
func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}

// transact runs ops in one transaction; what names the action for errors.
func (c *Client) transact(ctx context.Context, what string, ops []libovsdb.Operation) ([]libovsdb.OperationResult, error) {
	start := time.Now()
	res, err := c.ovs.Transact(ctx, ops...)
	if err != nil {
		return nil, fmt.Errorf("%s: OVSDB transaction: %w", what, err)
	}
	if opErrs, err := libovsdb.CheckOperationResults(res, ops); err != nil {
		msgs := make([]string, 0, len(opErrs))
		for _, e := range opErrs {
			msgs = append(msgs, e.Error())
		}
		if len(msgs) == 0 {
			msgs = append(msgs, err.Error())
		}
		return nil, fmt.Errorf("%s: OVSDB transaction failed: %s", what, strings.Join(msgs, "; "))
	}
	klog.FromContext(ctx).V(4).Info("OVSDB transaction", "what", what, "operations", len(ops), "duration", time.Since(start))
	return res, nil
}

// nextCfgOps increments Open_vSwitch.next_cfg and reads it back, as
// ovs-vsctl does: once cur_cfg reaches that value, ovs-vswitchd has applied
// the transaction (and written ofport and error of new interfaces).
func (c *Client) nextCfgOps(rootUUID string) ([]libovsdb.Operation, error) {
	root := &ovsmodel.OpenvSwitch{UUID: rootUUID}
	ops, err := c.ovs.Where(root).Mutate(root, model.Mutation{
		Field: &root.NextCfg, Mutator: libovsdb.MutateOperationAdd, Value: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("build next_cfg increment: %w", err)
	}
	return append(ops, libovsdb.Operation{
		Op:      libovsdb.OperationSelect,
		Table:   ovsmodel.OpenvSwitchTable,
		Where:   []libovsdb.Condition{libovsdb.NewCondition("_uuid", libovsdb.ConditionEqual, libovsdb.UUID{GoUUID: rootUUID})},
		Columns: []string{"next_cfg"},
	}), nil
}

// nextCfgResult reads next_cfg from the select that nextCfgOps appended last.
func nextCfgResult(res []libovsdb.OperationResult, ops []libovsdb.Operation) (int, error) {
	if len(res) < len(ops) || len(res[len(ops)-1].Rows) != 1 {
		return 0, errors.New("read back next_cfg: no row in the select result")
	}
	switch v := res[len(ops)-1].Rows[0]["next_cfg"].(type) {
	case float64:
		return int(v), nil
	case int:
		return v, nil
	default:
		return 0, fmt.Errorf("read back next_cfg: unexpected value %v (%T)", v, v)
	}
}

// waitApplied waits until ovs-vswitchd has applied configuration target
// (cur_cfg >= target) and done, if given, reports true or an error. It is
// woken by cache updates, not by polling.
func (c *Client) waitApplied(ctx context.Context, target int, done func() (bool, error)) error {
	for {
		ch := c.changes()
		root, err := c.root()
		if err != nil {
			return err
		}
		if root.CurCfg >= target {
			if done == nil {
				return nil
			}
			ok, err := done()
			if err != nil {
				return err
			}
			if ok {
				return nil
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if root.CurCfg < target {
				return fmt.Errorf("ovs-vswitchd has not applied the change (cur_cfg %d < next_cfg %d; is ovs-vswitchd running?): %w",
					root.CurCfg, target, ctx.Err())
			}
			return fmt.Errorf("waiting for ovs-vswitchd: %w", ctx.Err())
		}
	}
}

// root returns the Open_vSwitch row from the cache.
func (c *Client) root() (*ovsmodel.OpenvSwitch, error) {
	var rows []ovsmodel.OpenvSwitch
	if err := c.ovs.List(context.Background(), &rows); err != nil {
		return nil, fmt.Errorf("read Open_vSwitch table from cache: %w", err)
	}
	if len(rows) == 0 {
		return nil, errors.New("the Open_vSwitch table has no row (was 'ovs-vsctl init' run?)")
	}
	return &rows[0], nil
}

// getBridge returns the managed bridge from the cache.
func (c *Client) getBridge() (*ovsmodel.Bridge, bool, error) {
	br := &ovsmodel.Bridge{Name: c.bridge}
	ok, err := getRow(c.ovs, br, "bridge "+c.bridge)
	return br, ok, err
}

// getPort returns a port by name from the cache.
func (c *Client) getPort(name string) (*ovsmodel.Port, bool, error) {
	p := &ovsmodel.Port{Name: name}
	ok, err := getRow(c.ovs, p, "port "+name)
	return p, ok, err
}

// getInterface returns an interface by UUID from the cache.
func (c *Client) getInterface(uuid string) (*ovsmodel.Interface, bool, error) {
	i := &ovsmodel.Interface{UUID: uuid}
	ok, err := getRow(c.ovs, i, "interface "+uuid)
	return i, ok, err
}

// getRow fills m from the cache by its UUID or an index column.
func getRow(ovs client.Client, m model.Model, what string) (bool, error) {
	switch err := ovs.Get(context.Background(), m); {
	case err == nil:
		return true, nil
	case errors.Is(err, client.ErrNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("read %s from cache: %w", what, err)
	}
}
