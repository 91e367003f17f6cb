package openflow

import (
	"net"
	"net/netip"

	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// GlobalVirtualMAC is the destination MAC of packets sent into a tunnel,
// and the MAC the ARP responder gives for remote gateways.
var GlobalVirtualMAC = net.HardwareAddr{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}

// HairpinVirtualIP is the source address a pod sees on a connection it
// made to itself through a Service. Without the source NAT the pod would
// receive a packet from its own address, which its kernel drops as a
// martian. The address is link-local and never leaves the bridge.
var HairpinVirtualIP = netip.MustParseAddr("169.254.169.252")

// NodePortVirtualIP is where the node's network stack sends the packets
// that arrive for a NodePort (destination NAT to this address, same
// port, out of the gateway): the proxy balances them in table 40 like a
// ClusterIP. Link-local, on the gateway only.
var NodePortVirtualIP = netip.MustParseAddr("169.254.169.110")

// LearnedCookie is the cookie of the flows that learn actions add
// (session affinity). It carries the category but no round: learned flows
// expire by themselves and are not swept at a restart.
func LearnedCookie(category int) uint64 { return uint64(category&0xff) << categoryShift }

// NodeConfig is what every flow of this node depends on.
type NodeConfig struct {
	GatewayOFPort uint32
	TunnelOFPort  uint32
	GatewayMAC    net.HardwareAddr
	GatewayIP     netip.Addr
	PodCIDR       netip.Prefix
	// ConnectionStats makes the commit of each new connection learn two
	// flows into the ConnectionStats table (one per direction, matching
	// the connection's original tuple), which every forwarded packet
	// looks up: their counters are the connection's packets and bytes.
	// The flow exporter needs it on the userspace datapath, whose
	// conntrack keeps no counters.
	ConnectionStats bool
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
		// The node's stack sends node-port packets to the node-port
		// virtual IP, whose neighbour entry is the global virtual MAC:
		// give them the gateway's MAC, so that L3 forwarding routes them
		// like any packet the gateway sends to a pod (every packet of the
		// connection, not only the first that the DNAT table sees).
		of.Flow{Table: ClassifierTable.ID, Priority: 210,
			Match: []of.MatchField{of.MatchInPort(n.GatewayOFPort), of.MatchEthDst(GlobalVirtualMAC)},
			Actions: []of.Action{PortTypeField.Load(PortTypeGateway),
				of.SetField{Field: of.FieldEthDst, Value: n.GatewayMAC}, gotoTable(SpoofGuardTable)}},
		// Tunnel packets were routed by the sending node: from here on they
		// look like packets routed by our gateway.
		of.Flow{Table: ClassifierTable.ID, Priority: 200,
			Match:   []of.MatchField{of.MatchInPort(n.TunnelOFPort)},
			Actions: tunnelClassification(n)},
		// SpoofGuard: the gateway may send any IP; its ARP must be its own.
		// (Its IP packets go through UnSNAT: the replies to the node's
		// own connections to Services come back by it.)
		of.Flow{Table: SpoofGuardTable.ID, Priority: 200,
			Match:   []of.MatchField{of.MatchInPort(n.GatewayOFPort), ipMatch()},
			Actions: []of.Action{gotoTable(UnSNATTable)}},
		of.Flow{Table: SpoofGuardTable.ID, Priority: 200,
			Match:   []of.MatchField{of.MatchInPort(n.GatewayOFPort), arpMatch(), of.MatchARPSpa(n.GatewayIP), of.MatchARPSha(n.GatewayMAC)},
			Actions: []of.Action{gotoTable(ARPResponderTable)}},
		arpResponder(n.GatewayIP, n.GatewayMAC),
		// A pod's reply on a hairpin connection goes to the virtual
		// source: un-SNAT it in its own zone first, so that the service
		// zone then sees the reply of the DNATed connection.
		of.Flow{Table: UnSNATTable.ID, Priority: 200,
			Match: []of.MatchField{ipMatch(), of.MatchIPDst(host(HairpinVirtualIP))},
			Actions: []of.Action{HairpinBit.Load(1),
				of.CT{Zone: SNATCTZone, Table: ptr(ConntrackTable.ID), NAT: &of.NAT{}}}},
		// Conntrack: every IP packet goes through the zone, and replies of
		// DNATed (service) connections are un-NATed there; a connection
		// without a NAT binding is left alone. Invalid packets stop.
		of.Flow{Table: ConntrackTable.ID, Priority: 200,
			Match:   []of.MatchField{ipMatch()},
			Actions: []of.Action{of.CT{Zone: CTZone, Table: &ctState, NAT: &of.NAT{}}}},
		of.Flow{Table: ConntrackStateTable.ID, Priority: 200,
			Match: []of.MatchField{of.MatchCTState(of.CTInv|of.CTTrk, 0), ipMatch()}},
		// A new connection first looks up the session affinity flows
		// learned from earlier ones (they only fill registers), then the
		// Service flows.
		of.Flow{Table: ConntrackStateTable.ID, Priority: 190,
			Match:   []of.MatchField{of.MatchCTState(of.CTNew|of.CTTrk, 0), ipMatch()},
			Actions: []of.Action{of.Resubmit{Table: SessionAffinityTable.ID}, gotoTable(DNATTable)}},
		// A learned endpoint that is no longer an endpoint: forget the
		// hit and balance again (back to table 40, whose affinity flows
		// need the bit, so this does not loop).
		of.Flow{Table: EndpointDNATTable.ID, Priority: 1,
			Match:   []of.MatchField{ipMatch()},
			Actions: []of.Action{AffinityHitBit.Load(0), of.Resubmit{Table: DNATTable.ID}}},
		// L2 forwarding to the gateway.
		l2Forward(n.GatewayMAC, n.GatewayOFPort),
		// Established and related connections skip ingress policy (but
		// not the hairpin source NAT in the commit table).
		of.Flow{Table: IngressRuleTable.ID, Priority: 210,
			Match:   []of.MatchField{of.MatchCTState(of.CTEst, of.CTNew), ipMatch()},
			Actions: []of.Action{gotoTable(ConntrackCommitTable)}},
		// Commit new connections; mark those from the gateway so that
		// their replies can be sent back to it. The label records the
		// NetworkPolicy rules that allowed the connection.
		of.Flow{Table: ConntrackCommitTable.ID, Priority: 200,
			Match: []of.MatchField{of.MatchCTState(of.CTNew|of.CTTrk, 0), ipMatch(), PortTypeField.Match(PortTypeGateway)},
			Actions: append(n.learnConnectionStats(), of.CT{Commit: true, Zone: CTZone, Table: ptr(OutputTable.ID),
				Exec: append([]of.Action{of.LoadReg{Field: of.FieldCTMark, Start: 0, End: 31, Value: uint64(GatewayCTMark)}}, recordRules()...)})},
		of.Flow{Table: ConntrackCommitTable.ID, Priority: 190,
			Match:   []of.MatchField{of.MatchCTState(of.CTNew|of.CTTrk, 0), ipMatch()},
			Actions: append(n.learnConnectionStats(), of.CT{Commit: true, Zone: CTZone, Table: ptr(OutputTable.ID), Exec: recordRules()})},
		// A connection of the node's own stack that a Service sent to an
		// endpoint outside the pod network would go back out of the
		// gateway with the gateway's address as its source, which the
		// node would drop as a martian: give it the hairpin address (in
		// the SNAT zone, as a pod's hairpin) and send it back out of the
		// gateway, where the node masquerades it. Its replies come back
		// by the gateway to the hairpin address, are un-SNATed in table
		// 29 (which sets the hairpin bit, so that they skip this flow),
		// and leave by the gateway again.
		of.Flow{Table: ConntrackCommitTable.ID, Priority: PriorityHairpin,
			Match: []of.MatchField{ipMatch(), OutputPortReg.Match(n.GatewayOFPort),
				MatchFields(FieldValue{PortTypeField, PortTypeGateway}, FieldValue{HairpinBit, 0})},
			Actions: []of.Action{HairpinBit.Load(1), of.CT{Commit: true, Zone: SNATCTZone, Table: ptr(OutputTable.ID),
				NAT: &of.NAT{SNAT: true, IPMin: HairpinVirtualIP.AsSlice()}}}},
		// A hairpin packet goes back out of the port it came in by (OVS
		// does not output to the input port otherwise).
		of.Flow{Table: OutputTable.ID, Priority: 210,
			Match:   []of.MatchField{ipMatch(), HairpinBit.Match(1)},
			Actions: []of.Action{of.Output{Port: of.PortInPort}}},
		// Output to the port L2 forwarding found (counted first in the
		// connection's learned flow, when connections are counted).
		of.Flow{Table: OutputTable.ID, Priority: 200,
			Match:   []of.MatchField{ipMatch(), OutputKnownBit.Match(1)},
			Actions: append(n.countConnection(), outputToReg())},
	)
	return append(flows, traceflowOutputFlows(n)...)
}

// tunnelClassification is what table 0 does with a packet from the
// tunnel.
func tunnelClassification(n NodeConfig) []of.Action {
	return []of.Action{PortTypeField.Load(PortTypeTunnel),
		of.SetField{Field: of.FieldEthDst, Value: n.GatewayMAC}, gotoTable(ConntrackTable)}
}

func outputToReg() of.Action {
	return of.OutputReg{Reg: OutputPortReg.Reg, Start: OutputPortReg.Start, End: OutputPortReg.End}
}

// learnConnectionStats are the learn actions of a commit: with
// ConnectionStats, a flow per direction of the new connection in the
// ConnectionStats table, matching its original tuple (the ct_nw_* and
// ct_tp_* fields are the same in both directions) and the reply bit. They
// have no timeout: the flow exporter deletes them once the connection is
// gone from conntrack, and reads their counters until then.
func (n NodeConfig) learnConnectionStats() []of.Action {
	if !n.ConnectionStats {
		return nil
	}
	learn := func(reply uint64) of.Action {
		return of.Learn{Table: ConnectionStatsTable.ID, Priority: 200, Cookie: LearnedCookie(CategoryFlowExporter), Specs: []of.LearnSpec{
			of.LearnMatchValue(of.FieldEthType, of.EthTypeIPv4),
			// -inv+trk with the reply bit: what OVS requires of a match on
			// the conntrack tuple (a valid, tracked connection).
			ctStateBit(of.CTRpl, reply), ctStateBit(of.CTInv, 0), ctStateBit(of.CTTrk, 1),
			of.LearnMatchField(of.FieldCTNwProto), of.LearnMatchField(of.FieldCTNwSrc), of.LearnMatchField(of.FieldCTNwDst),
			of.LearnMatchField(of.FieldCTTpSrc), of.LearnMatchField(of.FieldCTTpDst),
		}}
	}
	return []of.Action{learn(0), learn(1)}
}

// countConnection looks the packet's connection up in the
// ConnectionStats table, with ConnectionStats.
func (n NodeConfig) countConnection() []of.Action {
	if !n.ConnectionStats {
		return nil
	}
	return []of.Action{of.Resubmit{Table: ConnectionStatsTable.ID}}
}

// ctStateBit makes a learned flow match one ct_state bit (given as its
// mask, e.g. of.CTRpl) equal to v.
func ctStateBit(bit uint32, v uint64) of.LearnSpec {
	ofs := 0
	for bit>>ofs != 1 {
		ofs++
	}
	return of.LearnSpec{Dst: of.FieldCTState, DstOfs: ofs, NBits: 1, Value: v}
}

// PriorityHairpin is the priority of a pod's hairpin flow in the commit
// table, above the commit flows.
const PriorityHairpin = 210

// PodFlows are the flows of one local pod: classification, spoofguard, ARP
// responder, L3 and L2 forwarding, and the source NAT of its connections
// to itself through a Service.
func PodFlows(n NodeConfig, p PodPort) []of.Flow {
	return []of.Flow{
		{Table: ClassifierTable.ID, Priority: 190,
			Match:   []of.MatchField{of.MatchInPort(p.OFPort)},
			Actions: []of.Action{PortTypeField.Load(PortTypePod), gotoTable(SpoofGuardTable)}},
		{Table: SpoofGuardTable.ID, Priority: 200,
			Match:   []of.MatchField{of.MatchInPort(p.OFPort), of.MatchEthSrc(p.MAC), ipMatch(), of.MatchIPSrc(host(p.IP))},
			Actions: []of.Action{gotoTable(UnSNATTable)}},
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
		// Only a Service's DNAT makes a packet from the pod to the pod
		// cross the bridge (the pod's kernel loops its own address back).
		// Policy has seen it as it is; now its source becomes the hairpin
		// address, committed in the SNAT zone, and it goes back in.
		{Table: ConntrackCommitTable.ID, Priority: PriorityHairpin,
			Match: []of.MatchField{ipMatch(), of.MatchIPSrc(host(p.IP)), of.MatchIPDst(host(p.IP))},
			Actions: []of.Action{HairpinBit.Load(1), of.CT{Commit: true, Zone: SNATCTZone, Table: ptr(OutputTable.ID),
				NAT: &of.NAT{SNAT: true, IPMin: HairpinVirtualIP.AsSlice()}}}},
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
