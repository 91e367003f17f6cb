package openflow

import (
	"net"
	"net/netip"

	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// GlobalVirtualMAC is the destination MAC of packets sent into a tunnel,
// and the MAC the ARP responder gives for remote gateways.
var GlobalVirtualMAC = net.HardwareAddr{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}

// NodeConfig is what every flow of this node depends on.
type NodeConfig struct {
	GatewayOFPort uint32
	TunnelOFPort  uint32
	GatewayMAC    net.HardwareAddr
	GatewayIP     netip.Addr
	PodCIDR       netip.Prefix
}

// PodPort is a local pod's OVS port.
type PodPort struct {
	OFPort uint32
	MAC    net.HardwareAddr
	IP     netip.Addr
}

// RemoteNode is another node, reached through the tunnel.
type RemoteNode struct {
	PodCIDR   netip.Prefix
	GatewayIP netip.Addr // first address of its podCIDR
	NodeIP    netip.Addr // tunnel destination
}

func ipMatch() of.MatchField  { return of.MatchEthType(of.EthTypeIPv4) }
func arpMatch() of.MatchField { return of.MatchEthType(of.EthTypeARP) }
func host(a netip.Addr) netip.Prefix {
	return netip.PrefixFrom(a, a.BitLen())
}

// BaseFlows are the flows of the gateway, the tunnel, conntrack and output,
// plus every table's miss flow.
func BaseFlows(n NodeConfig) []of.Flow {
	ctState := ConntrackStateTable.ID
	flows := defaultFlows()
	flows = append(flows,
		// Classification: where did the packet come from?
		of.Flow{Table: ClassifierTable.ID, Priority: 200,
			Match:   []of.MatchField{of.MatchInPort(n.GatewayOFPort)},
			Actions: []of.Action{PortTypeField.Load(PortTypeGateway), gotoTable(SpoofGuardTable)}},
		// Tunnel packets were routed by the sending node: from here on they
		// look like packets routed by our gateway.
		of.Flow{Table: ClassifierTable.ID, Priority: 200,
			Match: []of.MatchField{of.MatchInPort(n.TunnelOFPort)},
			Actions: []of.Action{PortTypeField.Load(PortTypeTunnel),
				of.SetField{Field: of.FieldEthDst, Value: n.GatewayMAC}, gotoTable(ConntrackTable)}},
		// SpoofGuard: the gateway may send any IP; its ARP must be its own.
		of.Flow{Table: SpoofGuardTable.ID, Priority: 200,
			Match:   []of.MatchField{of.MatchInPort(n.GatewayOFPort), ipMatch()},
			Actions: []of.Action{gotoTable(ConntrackTable)}},
		of.Flow{Table: SpoofGuardTable.ID, Priority: 200,
			Match:   []of.MatchField{of.MatchInPort(n.GatewayOFPort), arpMatch(), of.MatchARPSpa(n.GatewayIP), of.MatchARPSha(n.GatewayMAC)},
			Actions: []of.Action{gotoTable(ARPResponderTable)}},
		arpResponder(n.GatewayIP, n.GatewayMAC),
		// Conntrack: every IP packet goes through the zone, and replies of
		// DNATed (service) connections are un-NATed there; a connection
		// without a NAT binding is left alone. Invalid packets stop.
		of.Flow{Table: ConntrackTable.ID, Priority: 200,
			Match:   []of.MatchField{ipMatch()},
			Actions: []of.Action{of.CT{Zone: CTZone, Table: &ctState, NAT: &of.NAT{}}}},
		of.Flow{Table: ConntrackStateTable.ID, Priority: 200,
			Match: []of.MatchField{of.MatchCTState(of.CTInv|of.CTTrk, 0), ipMatch()}},
		// L2 forwarding to the gateway.
		l2Forward(n.GatewayMAC, n.GatewayOFPort),
		// Established and related connections skip ingress policy.
		of.Flow{Table: IngressRuleTable.ID, Priority: 210,
			Match:   []of.MatchField{of.MatchCTState(of.CTEst, of.CTNew), ipMatch()},
			Actions: []of.Action{gotoTable(OutputTable)}},
		// Commit new connections; mark those from the gateway so that
		// their replies can be sent back to it.
		of.Flow{Table: ConntrackCommitTable.ID, Priority: 200,
			Match: []of.MatchField{of.MatchCTState(of.CTNew|of.CTTrk, 0), ipMatch(), PortTypeField.Match(PortTypeGateway)},
			Actions: []of.Action{of.CT{Commit: true, Zone: CTZone, Table: ptr(OutputTable.ID),
				Exec: []of.Action{of.LoadReg{Field: of.FieldCTMark, Start: 0, End: 31, Value: uint64(GatewayCTMark)}}}}},
		of.Flow{Table: ConntrackCommitTable.ID, Priority: 190,
			Match:   []of.MatchField{of.MatchCTState(of.CTNew|of.CTTrk, 0), ipMatch()},
			Actions: []of.Action{of.CT{Commit: true, Zone: CTZone, Table: ptr(OutputTable.ID)}}},
		// Output to the port L2 forwarding found.
		of.Flow{Table: OutputTable.ID, Priority: 200,
			Match:   []of.MatchField{ipMatch(), OutputKnownBit.Match(1)},
			Actions: []of.Action{of.OutputReg{Reg: OutputPortReg.Reg, Start: OutputPortReg.Start, End: OutputPortReg.End}}},
	)
	return flows
}

// PodFlows are the flows of one local pod: classification, spoofguard, ARP
// responder, L3 and L2 forwarding.
func PodFlows(n NodeConfig, p PodPort) []of.Flow {
	return []of.Flow{
		{Table: ClassifierTable.ID, Priority: 190,
			Match:   []of.MatchField{of.MatchInPort(p.OFPort)},
			Actions: []of.Action{PortTypeField.Load(PortTypePod), gotoTable(SpoofGuardTable)}},
		{Table: SpoofGuardTable.ID, Priority: 200,
			Match:   []of.MatchField{of.MatchInPort(p.OFPort), of.MatchEthSrc(p.MAC), ipMatch(), of.MatchIPSrc(host(p.IP))},
			Actions: []of.Action{gotoTable(ConntrackTable)}},
		{Table: SpoofGuardTable.ID, Priority: 200,
			Match:   []of.MatchField{of.MatchInPort(p.OFPort), of.MatchEthSrc(p.MAC), arpMatch(), of.MatchARPSpa(p.IP), of.MatchARPSha(p.MAC)},
			Actions: []of.Action{gotoTable(ARPResponderTable)}},
		arpResponder(p.IP, p.MAC),
		// Routed to the pod (through our gateway MAC, or out of a tunnel).
		{Table: L3ForwardingTable.ID, Priority: 200,
			Match: []of.MatchField{of.MatchEthDst(n.GatewayMAC), ipMatch(), of.MatchIPDst(host(p.IP))},
			Actions: []of.Action{
				of.SetField{Field: of.FieldEthSrc, Value: n.GatewayMAC},
				of.SetField{Field: of.FieldEthDst, Value: p.MAC},
				of.DecTTL{}, gotoTable(L2ForwardingTable)}},
		l2Forward(p.MAC, p.OFPort),
	}
}

// PriorityHold is the priority of the flows that hold a pod's port.
const PriorityHold = 250

// PodHoldFlows keep a new pod's port from forwarding IP traffic until the
// NetworkPolicies that apply to it are realized: its IP packets are dropped
// in SpoofGuard, and every packet for it in Output (above the flows that
// allow established connections, which run before). ARP still works, so
// that the pod's first packets after the release need no new resolution.
func PodHoldFlows(p PodPort) []of.Flow {
	return []of.Flow{
		{Table: SpoofGuardTable.ID, Priority: PriorityHold,
			Match: []of.MatchField{of.MatchInPort(p.OFPort), ipMatch()}},
		{Table: OutputTable.ID, Priority: PriorityHold,
			Match: []of.MatchField{OutputPortReg.Match(p.OFPort)}},
	}
}

// RemoteNodeFlows send traffic for another node's pods into the tunnel, and
// answer ARP for its gateway (the node's host route goes through it).
func RemoteNodeFlows(n NodeConfig, r RemoteNode) []of.Flow {
	return []of.Flow{
		arpResponder(r.GatewayIP, GlobalVirtualMAC),
		{Table: L3ForwardingTable.ID, Priority: 200,
			Match: []of.MatchField{ipMatch(), of.MatchIPDst(r.PodCIDR)},
			Actions: []of.Action{
				of.DecTTL{},
				of.SetField{Field: of.FieldEthSrc, Value: n.GatewayMAC},
				of.SetField{Field: of.FieldEthDst, Value: GlobalVirtualMAC},
				of.SetField{Field: of.FieldTunDst, Value: r.NodeIP.AsSlice()},
				OutputPortReg.Load(n.TunnelOFPort), OutputKnownBit.Load(1),
				gotoTable(ConntrackCommitTable)}},
	}
}

// arpResponder answers ARP requests for ip with mac, from the flow itself.
func arpResponder(ip netip.Addr, mac net.HardwareAddr) of.Flow {
	return of.Flow{Table: ARPResponderTable.ID, Priority: 200,
		Match: []of.MatchField{arpMatch(), of.MatchARPOp(1), of.MatchARPTpa(ip)},
		Actions: []of.Action{
			of.Move{Src: of.FieldEthSrc, Dst: of.FieldEthDst, NBits: 48},
			of.SetField{Field: of.FieldEthSrc, Value: mac},
			of.SetField{Field: of.FieldARPOp, Value: []byte{0, 2}},
			of.Move{Src: of.FieldARPSha, Dst: of.FieldARPTha, NBits: 48},
			of.SetField{Field: of.FieldARPSha, Value: mac},
			of.Move{Src: of.FieldARPSpa, Dst: of.FieldARPTpa, NBits: 32},
			of.SetField{Field: of.FieldARPSpa, Value: ip.AsSlice()},
			of.Output{Port: of.PortInPort},
		}}
}

func l2Forward(mac net.HardwareAddr, port uint32) of.Flow {
	return of.Flow{Table: L2ForwardingTable.ID, Priority: 200,
		Match:   []of.MatchField{of.MatchEthDst(mac)},
		Actions: []of.Action{OutputPortReg.Load(port), OutputKnownBit.Load(1), gotoTable(IngressRuleTable)}}
}

func ptr[T any](v T) *T { return &v }
