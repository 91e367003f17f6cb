package openflow

import (
	"net/netip"

	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// Traceflow. A traced packet carries TraceflowBit through the pipeline of
// every node it crosses: on the sender the agent's packet-out loads the bit
// before it resubmits the packet to table 0 (TraceflowInjectActions), on a
// node the packet reaches through the tunnel the Traceflow's receive flow
// loads it (registers do not cross the tunnel; the packet carries its tag
// in the IP DSCP field instead, see TraceflowReceiveFlows). Nothing else
// ever sets the bit, so the flows that match it see traced packets only:
//
//   - table 110, priority 230 to 233 (base flows): where the packet would
//     leave the bridge, it goes to the agent instead (a local pod, the
//     gateway, no port at all), or into the tunnel and to the agent both;
//   - tables 60 and 100, priority 101 (NetworkPolicy isolation, see
//     TraceflowDropReport): a packet that isolation would drop goes to the
//     agent;
//   - table 40: a Service without endpoints sends every new connection to
//     the agent already.
//
// The agent reads the packet-in's registers (where it came in, the output
// port, the rule ids in EgressRuleReg and IngressRuleReg) and its data
// (the addresses after DNAT) and reports what the node did.

// Priorities of the Traceflow flows.
const (
	// PriorityTraceflowReceive: table 0, above the tunnel's flow.
	PriorityTraceflowReceive = 210
	// PriorityTraceflowDrop: tables 60 and 100, above isolation (100) and
	// below any tier that must decide before isolation.
	PriorityTraceflowDrop = 101
	// priorityTraceflowOutput: table 110, above hairpin (210), below the
	// hold of new pods' ports (250).
	priorityTraceflowOutput = 230
)

// TraceflowTag is what tells a traced packet that arrives from the tunnel
// apart: its DSCP tag, and the source pod and protocol of its Traceflow.
type TraceflowTag struct {
	DSCP     uint8
	SrcIP    netip.Addr
	Protocol uint8
}

// TraceflowInjectActions are the actions of the packet-out that injects a
// traced packet as if it came in by the source pod's port (the packet-out's
// in_port).
func TraceflowInjectActions() []of.Action {
	return []of.Action{TraceflowBit.Load(1), gotoTable(ClassifierTable)}
}

// TraceflowReceiveFlows are the flows of one running Traceflow on a node
// the packet may reach through the tunnel: it is classified like any
// tunnel packet, with TraceflowBit set.
func TraceflowReceiveFlows(n NodeConfig, t TraceflowTag) []of.Flow {
	return []of.Flow{{Table: ClassifierTable.ID, Priority: PriorityTraceflowReceive,
		Match: []of.MatchField{of.MatchInPort(n.TunnelOFPort), ipMatch(), of.MatchIPProto(t.Protocol),
			of.MatchIPDSCP(t.DSCP), of.MatchIPSrc(host(t.SrcIP))},
		Actions: append([]of.Action{TraceflowBit.Load(1)}, tunnelClassification(n)...)}}
}

// TraceflowDropReport is the companion of a flow that drops (drop): the
// same match for traced packets only, one priority above, sending them to
// the agent instead.
func TraceflowDropReport(drop of.Flow) of.Flow {
	match := make([]of.MatchField, 0, len(drop.Match)+1)
	merged := false
	for _, m := range drop.Match {
		if m.Field == TraceflowBit.Field() {
			m = mergeBit(m, TraceflowBit)
			merged = true
		}
		match = append(match, m)
	}
	if !merged {
		match = append(match, TraceflowBit.Match(1))
	}
	return of.Flow{Table: drop.Table, Priority: drop.Priority + 1, Match: match, Actions: []of.Action{toController()}}
}

// mergeBit adds the single-bit field f, set, to a match of its register.
func mergeBit(m of.MatchField, f RegField) of.MatchField {
	v, mask := beUint32(m.Value), uint32(0xffffffff)
	if m.Mask != nil {
		mask = beUint32(m.Mask)
	}
	return of.MatchReg(f.Reg, v|1<<f.Start, mask|f.Mask())
}

func beUint32(b []byte) uint32 {
	var n uint32
	for _, x := range b {
		n = n<<8 | uint32(x)
	}
	return n
}

func toController() of.Action { return of.Output{Port: of.PortController} }

// traceflowOutputFlows are table 110's flows for traced packets: what
// would leave by IN_PORT (hairpin), a local pod's port or the gateway goes
// to the agent only; what goes into the tunnel goes there and to the
// agent, so that the next node sees it too; a packet without an output
// port (which the miss would drop) goes to the agent.
func traceflowOutputFlows(n NodeConfig) []of.Flow {
	traced := func(fvs ...FieldValue) of.MatchField {
		return MatchFields(append([]FieldValue{{TraceflowBit, 1}}, fvs...)...)
	}
	return []of.Flow{
		{Table: OutputTable.ID, Priority: priorityTraceflowOutput + 3,
			Match:   []of.MatchField{ipMatch(), traced(FieldValue{HairpinBit, 1})},
			Actions: []of.Action{toController()}},
		{Table: OutputTable.ID, Priority: priorityTraceflowOutput + 2,
			Match:   []of.MatchField{ipMatch(), traced(FieldValue{OutputKnownBit, 1}), OutputPortReg.Match(n.TunnelOFPort)},
			Actions: []of.Action{outputToReg(), toController()}},
		{Table: OutputTable.ID, Priority: priorityTraceflowOutput + 1,
			Match:   []of.MatchField{ipMatch(), traced(FieldValue{OutputKnownBit, 1})},
			Actions: []of.Action{toController()}},
		{Table: OutputTable.ID, Priority: priorityTraceflowOutput,
			Match:   []of.MatchField{ipMatch(), traced()},
			Actions: []of.Action{toController()}},
	}
}
