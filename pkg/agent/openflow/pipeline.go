// Package openflow declares the agent's OpenFlow pipeline as data (the
// tables in order, the registers and marks with their bit layout) and builds
// the flows of each feature from plain inputs. It does no I/O: the flows it
// returns are installed by a FlowSyncer.
//
//	     ┌────────────┐  ┌──────────┐  ┌─────────┐  ┌──────────┐  ┌───────────┐
//	in ─▶│0 Classifier│─▶│10 Spoof- │─▶│29 UnSNAT│─▶│30 CT zone│─▶│31 CT state│─┐
//	     └────────────┘  │   Guard  │  └─────────┘  └──────────┘  └───────────┘ │
//	       gw0, tun0 ────┼──────────┼─────────────────────▲                      │
//	                     └────┬─────┘      35 SessionAffinity (learned) ◀───────┤
//	                    ARP   ▼                                                  ▼
//	                     20 ARP responder    41 EndpointDNAT ◀─▶ 40 DNAT ─▶ 50/60 Egress
//	                                                                             │
//	     110 Output ◀─ 105 CT commit ◀─ 90/100 Ingress ◀─ 80 L2 fwd ◀─ 70 L3 fwd ◀┘
//	        │          (hairpin SNAT)
//	        └─▶ 120 ConnectionStats (learned; flow exporter on netdev only)
//
// How to add a table: declare it in Tables in pipeline order with a number
// between its neighbours and say where its misses go (Miss, or MissDrop);
// its miss flow is then generated with the base flows. Write a builder that
// returns the feature's flows; the syncer installs and removes them by owner.
package openflow

import (
	"fmt"

	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// Table is one stage of the pipeline.
type Table struct {
	ID   uint8
	Name string
	// Miss is where a packet that matches no flow goes: a later table, or
	// nowhere (drop) when MissDrop.
	Miss     uint8
	MissDrop bool
}

// The pipeline, in order. Numbers follow Antrea 0.1 so that dumps read the
// same as in its documentation.
var (
	ClassifierTable      = Table{ID: 0, Name: "Classification", MissDrop: true}
	SpoofGuardTable      = Table{ID: 10, Name: "SpoofGuard", MissDrop: true}
	ARPResponderTable    = Table{ID: 20, Name: "ARPResponder", MissDrop: true}
	UnSNATTable          = Table{ID: 29, Name: "UnSNAT", Miss: 30}
	ConntrackTable       = Table{ID: 30, Name: "ConntrackZone", Miss: 31}
	ConntrackStateTable  = Table{ID: 31, Name: "ConntrackState", Miss: 40}
	SessionAffinityTable = Table{ID: 35, Name: "SessionAffinity", MissDrop: true}
	DNATTable            = Table{ID: 40, Name: "DNAT", Miss: 50}
	EndpointDNATTable    = Table{ID: 41, Name: "EndpointDNAT", MissDrop: true}
	EgressRuleTable      = Table{ID: 50, Name: "EgressRule", Miss: 60}
	EgressDefaultTable   = Table{ID: 60, Name: "EgressDefaultRule", Miss: 70}
	L3ForwardingTable    = Table{ID: 70, Name: "L3Forwarding", Miss: 80}
	L2ForwardingTable    = Table{ID: 80, Name: "L2ForwardingCalc", Miss: 90}
	IngressRuleTable     = Table{ID: 90, Name: "IngressRule", Miss: 100}
	IngressDefaultTable  = Table{ID: 100, Name: "IngressDefaultRule", Miss: 105}
	ConntrackCommitTable = Table{ID: 105, Name: "ConntrackCommit", Miss: 110}
	OutputTable          = Table{ID: 110, Name: "Output", MissDrop: true}
	// ConnectionStatsTable holds, when the flow exporter counts
	// connections on the userspace datapath, two flows per connection
	// (learned at commit) whose counters are the connection's packets and
	// bytes in each direction. Table 110 looks it up (resubmit, which
	// returns) before output; its miss ends that lookup only.
	ConnectionStatsTable = Table{ID: 120, Name: "ConnectionStats", MissDrop: true}

	Tables = []Table{
		ClassifierTable, SpoofGuardTable, ARPResponderTable, UnSNATTable, ConntrackTable, ConntrackStateTable,
		SessionAffinityTable, DNATTable, EndpointDNATTable, EgressRuleTable, EgressDefaultTable, L3ForwardingTable, L2ForwardingTable,
		IngressRuleTable, IngressDefaultTable, ConntrackCommitTable, OutputTable, ConnectionStatsTable,
	}
)

// TableName returns the name of table id ("" if unknown).
func TableName(id uint8) string {
	for _, t := range Tables {
		if t.ID == id {
			return t.Name
		}
	}
	return ""
}

// Registers and marks. Each is declared once with its bit range.
//
//	reg0[0..15]  PortTypeField: where the packet entered: 0 tunnel, 1 gateway, 2 local pod
//	reg0[16]     OutputKnownBit: L2 forwarding found the output port (in reg1)
//	reg0[17]     HairpinBit: a pod's packet to itself through a Service (or its reply),
//	             source-NATed to HairpinVirtualIP; it leaves by IN_PORT
//	reg0[18]     TraceflowBit: a Traceflow packet (set by the agent's packet-out, or on
//	             arrival from the tunnel by a Traceflow's receive flow); final points send it
//	             to the agent
//	reg1         OutputPortReg: the ofport to output to
//	reg3         EndpointIPReg: the endpoint a Service connection goes to (session affinity)
//	reg4[0..15]  EndpointPortField: its port
//	reg4[16]     AffinityHitBit: a learned session affinity flow chose the endpoint
//	reg5         EgressRuleReg: id (conjunction id) of the egress NetworkPolicy rule that allowed the packet
//	reg6         IngressRuleReg: id (conjunction id) of the ingress NetworkPolicy rule that allowed the packet
//	ct_mark 0x20 GatewayCTMark: the connection was initiated through the gateway
//	ct_label[0..31]  EgressRuleLabel: EgressRuleReg of the connection's first packet
//	ct_label[32..63] IngressRuleLabel: IngressRuleReg of the connection's first packet
//	ct zone 65520 CTZone: the zone of all pod traffic
//	ct zone 65521 SNATCTZone: the source NAT of hairpin connections
type RegField struct {
	Reg        int
	Start, End int
}

var (
	PortTypeField  = RegField{Reg: 0, Start: 0, End: 15}
	OutputKnownBit = RegField{Reg: 0, Start: 16, End: 16}
	HairpinBit     = RegField{Reg: 0, Start: 17, End: 17}
	TraceflowBit   = RegField{Reg: 0, Start: 18, End: 18}
	OutputPortReg  = RegField{Reg: 1, Start: 0, End: 31}

	EndpointIPReg     = RegField{Reg: 3, Start: 0, End: 31}
	EndpointPortField = RegField{Reg: 4, Start: 0, End: 15}
	AffinityHitBit    = RegField{Reg: 4, Start: 16, End: 16}

	// The NetworkPolicy rule that allowed a packet: its allow flow in
	// table 50 or 90 loads the rule's conjunction id (0: no rule, the
	// pod is not isolated in that direction). The commit of a new
	// connection copies both into its ct_label (the flow exporter, the
	// rules' statistics), and a Traceflow's packet-in carries them.
	EgressRuleReg  = RegField{Reg: 5, Start: 0, End: 31}
	IngressRuleReg = RegField{Reg: 6, Start: 0, End: 31}
)

// CTLabelField is a bit range of ct_label (128 bits).
type CTLabelField struct {
	Start, End int
}

// Where a connection's ct_label records the rules that allowed it.
var (
	EgressRuleLabel  = CTLabelField{Start: 0, End: 31}
	IngressRuleLabel = CTLabelField{Start: 32, End: 63}
)

// Match matches the field of a connection's label equal to v.
func (f CTLabelField) Match(v uint64) of.MatchField {
	return of.MatchCTLabelBits(f.Start, f.End-f.Start+1, v)
}

// Of extracts the field from the low 64 bits of a label (the fields
// above all lie there).
func (f CTLabelField) Of(low uint64) uint64 {
	return low >> f.Start & (uint64(1)<<(f.End-f.Start+1) - 1)
}

// recordRules copies the rule registers into the connection's label; it
// runs in the exec of a commit.
func recordRules() []of.Action {
	return []of.Action{
		of.Move{Src: EgressRuleReg.Field(), SrcOfs: EgressRuleReg.Start, Dst: of.FieldCTLabel, DstOfs: EgressRuleLabel.Start, NBits: EgressRuleLabel.End - EgressRuleLabel.Start + 1},
		of.Move{Src: IngressRuleReg.Field(), SrcOfs: IngressRuleReg.Start, Dst: of.FieldCTLabel, DstOfs: IngressRuleLabel.Start, NBits: IngressRuleLabel.End - IngressRuleLabel.Start + 1},
	}
}

// Values of PortTypeField.
const (
	PortTypeTunnel  = 0
	PortTypeGateway = 1
	PortTypePod     = 2
)

// Conntrack.
const (
	CTZone        uint16 = 0xfff0 // 65520
	SNATCTZone    uint16 = 0xfff1 // 65521
	GatewayCTMark uint32 = 0x20
)

// Mask returns the register mask of the field's bits.
func (f RegField) Mask() uint32 {
	n := f.End - f.Start + 1
	if n >= 32 {
		return 0xffffffff
	}
	return ((1 << n) - 1) << f.Start
}

// Match matches value in the field's bits.
func (f RegField) Match(value uint32) of.MatchField {
	return of.MatchReg(f.Reg, value<<f.Start, f.Mask())
}

// FieldValue is a value of a register field, for MatchFields.
type FieldValue struct {
	Field RegField
	Value uint32
}

// MatchFields matches values of several fields of one register at once
// (a flow can match a register only once).
func MatchFields(fvs ...FieldValue) of.MatchField {
	var value, mask uint32
	for _, fv := range fvs {
		value |= fv.Value << fv.Field.Start
		mask |= fv.Field.Mask()
	}
	return of.MatchReg(fvs[0].Field.Reg, value, mask)
}

// Load writes value into the field's bits.
func (f RegField) Load(value uint32) of.Action {
	return of.LoadReg{Field: of.Reg(f.Reg), Start: f.Start, End: f.End, Value: uint64(value)}
}

// Field is the register as an openflow field (for move and learn).
func (f RegField) Field() of.Field { return of.Reg(f.Reg) }

func (f RegField) String() string { return fmt.Sprintf("reg%d[%d..%d]", f.Reg, f.Start, f.End) }

func gotoTable(t Table) of.Action { return of.Resubmit{Table: t.ID} }

// defaultFlows are the miss flows of every table.
func defaultFlows() []of.Flow {
	flows := make([]of.Flow, 0, len(Tables))
	for _, t := range Tables {
		f := of.Flow{Table: t.ID, Priority: 0}
		if !t.MissDrop {
			f.Actions = []of.Action{of.Resubmit{Table: t.Miss}}
		}
		flows = append(flows, f)
	}
	return flows
}
