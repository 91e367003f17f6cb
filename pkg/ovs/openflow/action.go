package openflow

import (
	"fmt"
	"strings"
)

// Action is one OpenFlow or Nicira action.
type Action interface {
	String() string
}

// PortInPort and friends are the reserved output ports.
const (
	PortInPort     uint32 = 0xfffffff8
	PortController uint32 = 0xfffffffd
	PortLocal      uint32 = 0xfffffffe
)

// Output sends the packet to a port.
type Output struct{ Port uint32 }

func (a Output) String() string {
	switch a.Port {
	case PortInPort:
		return "IN_PORT"
	case PortLocal:
		return "LOCAL"
	case PortController:
		return "CONTROLLER"
	}
	return fmt.Sprintf("output:%d", a.Port)
}

// OutputReg sends the packet to the port number held in bits of a register
// (NXAST_OUTPUT_REG).
type OutputReg struct {
	Reg        int
	Start, End int // bit range, inclusive
}

func (a OutputReg) String() string {
	return fmt.Sprintf("output:NXM_NX_REG%d[%d..%d]", a.Reg, a.Start, a.End)
}

// Resubmit continues in another table (NXAST_RESUBMIT_TABLE, in_port kept).
type Resubmit struct{ Table uint8 }

func (a Resubmit) String() string { return fmt.Sprintf("resubmit(,%d)", a.Table) }

// GotoTable is the OpenFlow 1.3 instruction; it must go forward.
type GotoTable struct{ Table uint8 }

func (a GotoTable) String() string { return fmt.Sprintf("goto_table:%d", a.Table) }

// LoadReg writes Value into bits Start..End of a register or other field
// (set_field with mask, or NXAST_REG_LOAD).
type LoadReg struct {
	Field      Field
	Start, End int
	Value      uint64
}

func (a LoadReg) String() string {
	return fmt.Sprintf("load:%#x->%s[%d..%d]", a.Value, nxmName(a.Field), a.Start, a.End)
}

// SetField writes a whole field (eth_src, eth_dst, arp_op, arp_sha,
// arp_spa, tun_dst, nw_src, nw_dst, ...). Value is big-endian at the
// field's width.
type SetField struct {
	Field Field
	Value []byte
}

func (a SetField) String() string {
	return fmt.Sprintf("set_field:%s->%s", formatValue(a.Field, a.Value), a.Field)
}

// Move copies NBits bits from Src (from bit SrcOfs) to Dst (from bit
// DstOfs) (NXAST_REG_MOVE).
type Move struct {
	Src, Dst       Field
	SrcOfs, DstOfs int
	NBits          int
}

func (a Move) String() string {
	return fmt.Sprintf("move:%s[%d..%d]->%s[%d..%d]", nxmName(a.Src), a.SrcOfs, a.SrcOfs+a.NBits-1, nxmName(a.Dst), a.DstOfs, a.DstOfs+a.NBits-1)
}

// DecTTL decrements the IP TTL (drops at zero).
type DecTTL struct{}

func (DecTTL) String() string { return "dec_ttl" }

// Conjunction marks clause Clause (1-based) of NClauses of conjunction ID.
type Conjunction struct {
	ID       uint32
	Clause   uint8
	NClauses uint8
}

func (a Conjunction) String() string {
	return fmt.Sprintf("conjunction(%d,%d/%d)", a.ID, a.Clause, a.NClauses)
}

// Group sends the packet to a group.
type Group struct{ ID uint32 }

func (a Group) String() string { return fmt.Sprintf("group:%d", a.ID) }

// NAT is the nat() argument of ct: SNAT or DNAT to an address (and port)
// range; an empty NAT un-NATs replies and related packets.
type NAT struct {
	SNAT, DNAT bool
	IPMin      []byte // IPv4, nil for none
	IPMax      []byte
	PortMin    uint16
	PortMax    uint16
}

func (n NAT) String() string {
	kind := ""
	switch {
	case n.SNAT:
		kind = "src"
	case n.DNAT:
		kind = "dst"
	default:
		return "nat"
	}
	s := "nat(" + kind
	if n.IPMin != nil {
		s += "=" + formatValue(FieldIPDst, n.IPMin)
		if n.IPMax != nil {
			s += "-" + formatValue(FieldIPDst, n.IPMax)
		}
		if n.PortMin != 0 {
			s += fmt.Sprintf(":%d", n.PortMin)
			if n.PortMax != 0 {
				s += fmt.Sprintf("-%d", n.PortMax)
			}
		}
	}
	return s + ")"
}

// CT sends the packet through conntrack (NXAST_CT) in Zone; with Table
// set, processing continues there with the ct_* fields filled in.
type CT struct {
	Commit bool
	Zone   uint16
	Table  *uint8
	NAT    *NAT
	// Exec runs on commit; only LoadReg/SetField/Move into ct_mark or
	// ct_label are valid here.
	Exec []Action
}

func (a CT) String() string {
	var parts []string
	if a.Commit {
		parts = append(parts, "commit")
	}
	if a.Table != nil {
		parts = append(parts, fmt.Sprintf("table=%d", *a.Table))
	}
	parts = append(parts, fmt.Sprintf("zone=%d", a.Zone))
	if a.NAT != nil {
		parts = append(parts, a.NAT.String())
	}
	if len(a.Exec) > 0 {
		parts = append(parts, "exec("+ActionsString(a.Exec)+")")
	}
	return "ct(" + strings.Join(parts, ",") + ")"
}

// nxmName is the NXM name ovs-ofctl prints for a field inside move/load.
func nxmName(f Field) string {
	switch f {
	case FieldEthSrc:
		return "NXM_OF_ETH_SRC"
	case FieldEthDst:
		return "NXM_OF_ETH_DST"
	case FieldARPSha:
		return "NXM_NX_ARP_SHA"
	case FieldARPTha:
		return "NXM_NX_ARP_THA"
	case FieldARPSpa:
		return "NXM_OF_ARP_SPA"
	case FieldARPTpa:
		return "NXM_OF_ARP_TPA"
	case FieldARPOp:
		return "NXM_OF_ARP_OP"
	case FieldIPSrc:
		return "NXM_OF_IP_SRC"
	case FieldIPDst:
		return "NXM_OF_IP_DST"
	case FieldTunDst:
		return "NXM_NX_TUN_IPV4_DST"
	case FieldTunID:
		return "NXM_NX_TUN_ID"
	case FieldCTMark:
		return "NXM_NX_CT_MARK"
	case FieldCTLabel:
		return "NXM_NX_CT_LABEL"
	case FieldCTState:
		return "NXM_NX_CT_STATE"
	case FieldCTNwProto, FieldCTNwSrc, FieldCTNwDst, FieldCTTpSrc, FieldCTTpDst:
		return "NXM_NX_" + strings.ToUpper(string(f))
	case FieldPktMark:
		return "NXM_NX_PKT_MARK"
	case FieldInPort:
		return "NXM_OF_IN_PORT"
	case FieldEthType:
		return "NXM_OF_ETH_TYPE"
	case FieldIPProto:
		return "NXM_OF_IP_PROTO"
	case FieldTCPDst:
		return "NXM_OF_TCP_DST"
	case FieldUDPDst:
		return "NXM_OF_UDP_DST"
	case FieldSCTPDst:
		return "OXM_OF_SCTP_DST"
	}
	if strings.HasPrefix(string(f), "reg") {
		return "NXM_NX_REG" + strings.TrimPrefix(string(f), "reg")
	}
	return strings.ToUpper(string(f))
}
