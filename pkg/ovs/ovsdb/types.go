package ovsdb

import "context"

// DatapathType is the datapath an OVS bridge uses.
type DatapathType string

const (
	// DatapathSystem is the kernel datapath (openvswitch module), used on
	// production nodes.
	DatapathSystem DatapathType = "system"
	// DatapathNetdev is the userspace datapath, used where the kernel has no
	// openvswitch module (the lab and the tests).
	DatapathNetdev DatapathType = "netdev"
)

// Interface types EnsurePort is typically given. Any type that the running
// ovs-vswitchd lists in Open_vSwitch.iface_types is accepted.
const (
	PortTypeSystem   = ""         // an existing network device, e.g. a veth
	PortTypeInternal = "internal" // an OVS internal port, e.g. the gateway
	PortTypeVXLAN    = "vxlan"
	PortTypeGeneve   = "geneve"
)

// Protocols are the OpenFlow versions the bridge is configured to accept.
var Protocols = []string{"OpenFlow13", "OpenFlow14", "OpenFlow15"}

// BridgeConfig is the desired state of the bridge that the client manages.
type BridgeConfig struct {
	// DatapathType is system or netdev; empty means system.
	DatapathType DatapathType
	// ExternalIDs are set on the bridge, e.g. "antrea-managed": "true".
	// Other keys that the bridge already has are kept.
	ExternalIDs map[string]string
	// OtherConfig keys are set in addition to disable-in-band=true; other
	// keys the bridge already has are kept.
	OtherConfig map[string]string
}

// PortConfig is the desired state of one port and its single interface,
// both named Name. Options and ExternalIDs are desired as a whole: keys not
// listed are removed from an existing port.
type PortConfig struct {
	Name string
	// Type is the interface type: PortTypeSystem ("") for an existing
	// device such as a veth, "internal", "vxlan", "geneve", ...
	Type string
	// Options of the interface, e.g. key=flow, remote_ip=flow, dst_port.
	Options map[string]string
	// ExternalIDs are set on both the port and the interface, e.g. the pod
	// namespace, name, container ID, IP and MAC.
	ExternalIDs map[string]string
	// OFPortRequest asks for this OpenFlow port number; 0 lets OVS choose.
	OFPortRequest int32
	// MTURequest asks OVS to set the interface MTU; 0 leaves it alone.
	MTURequest int
	// MAC sets the MAC of an internal interface (the Interface.mac
	// column); "" lets OVS choose. With the userspace datapath internal
	// ports are re-created when ovs-vswitchd restarts, and a fixed MAC
	// keeps the flows that name it valid.
	MAC string
}

// PortInfo describes a port of the bridge as OVSDB reports it.
type PortInfo struct {
	Name          string
	Type          string
	OFPort        int32 // 0 while ovs-vswitchd has not assigned one, -1 on error
	OFPortRequest int32
	MTURequest    int
	Options       map[string]string
	ExternalIDs   map[string]string // of the interface
	MAC           string            // mac_in_use, when ovs-vswitchd reports it
	Error         string            // Interface.error, when OVS failed to set it up
}

// Bridge manages one OVS bridge and its ports. *Client implements it against
// a real OVSDB server; ovsdbtest.Fake implements it in memory.
type Bridge interface {
	// Name is the name of the managed bridge.
	Name() string
	// EnsureBridge creates the bridge or adopts an existing one, with
	// fail_mode=secure, protocols OpenFlow13-15, other_config
	// disable-in-band=true, and the given datapath type and IDs. It changes
	// only what differs and returns once ovs-vswitchd has applied it.
	EnsureBridge(ctx context.Context, cfg BridgeConfig) error
	// DeleteBridge deletes the bridge and all its ports; a missing bridge
	// is not an error.
	DeleteBridge(ctx context.Context) error
	// BridgeExternalIDs returns the external_ids of the bridge.
	BridgeExternalIDs(ctx context.Context) (map[string]string, error)
	// SetBridgeExternalIDs sets the given keys in the bridge's
	// external_ids (other keys are kept); an empty value deletes the key.
	SetBridgeExternalIDs(ctx context.Context, ids map[string]string) error
	// EnsurePort creates or updates a port with one interface on the bridge
	// and returns its OpenFlow port number once ovs-vswitchd has assigned
	// it. It fails, naming the port and quoting OVS, when OVS cannot set
	// the interface up. The same config again costs no transaction.
	EnsurePort(ctx context.Context, cfg PortConfig) (ofport int32, err error)
	// DeletePort deletes a port of the bridge; a missing port is not an error.
	DeletePort(ctx context.Context, name string) error
	// GetPort returns one port of the bridge, and false if it does not exist.
	GetPort(ctx context.Context, name string) (PortInfo, bool, error)
	// ListPorts returns the ports of the bridge, except the bridge's own
	// local port, sorted by name.
	ListPorts(ctx context.Context) ([]PortInfo, error)
	// OVSVersion is Open_vSwitch.ovs_version: the version that the
	// start-up script (ovs-ctl) records; empty if it recorded none.
	OVSVersion(ctx context.Context) (string, error)
}
