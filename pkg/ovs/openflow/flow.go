// Package openflow is our OpenFlow model and client: flows are plain values
// (table, priority, cookie, match fields, actions) that print in the
// ovs-ofctl syntax, are compared by that text, and are installed over the
// bridge's management socket in ordered, atomic bundles.
package openflow

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Field names a packet or metadata field that flows match on or write to.
// The names are ovs-ofctl's.
type Field string

// Fields the pipeline uses.
const (
	FieldInPort   Field = "in_port"
	FieldEthType  Field = "dl_type"
	FieldEthSrc   Field = "dl_src"
	FieldEthDst   Field = "dl_dst"
	FieldIPProto  Field = "nw_proto"
	FieldIPSrc    Field = "nw_src"
	FieldIPDst    Field = "nw_dst"
	FieldTCPSrc   Field = "tcp_src"
	FieldTCPDst   Field = "tcp_dst"
	FieldUDPSrc   Field = "udp_src"
	FieldUDPDst   Field = "udp_dst"
	FieldSCTPDst  Field = "sctp_dst"
	FieldICMPType Field = "icmp_type"
	FieldARPOp    Field = "arp_op"
	FieldARPSpa   Field = "arp_spa"
	FieldARPTpa   Field = "arp_tpa"
	FieldARPSha   Field = "arp_sha"
	FieldARPTha   Field = "arp_tha"
	FieldTunDst   Field = "tun_dst"
	FieldTunSrc   Field = "tun_src"
	FieldTunID    Field = "tun_id"
	FieldCTState  Field = "ct_state"
	FieldCTMark   Field = "ct_mark"
	FieldCTZone   Field = "ct_zone"
	FieldConjID   Field = "conj_id"
	FieldPktMark  Field = "pkt_mark"
)

// Reg is the 32-bit register NXM_NX_REGn.
func Reg(n int) Field { return Field(fmt.Sprintf("reg%d", n)) }

// Ethernet types and IP protocols.
const (
	EthTypeIPv4 = 0x0800
	EthTypeARP  = 0x0806
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoSCTP   = 132
)

// MatchField is one field of a match: Value, and Mask when only some bits
// matter (a nil Mask matches all bits). Values are big-endian bytes of the
// field's width.
type MatchField struct {
	Field Field
	Value []byte
	Mask  []byte
}

// Flow is one OpenFlow flow entry.
type Flow struct {
	Table    uint8
	Priority uint16
	Cookie   uint64
	Match    []MatchField
	Actions  []Action
	// IdleTimeout and HardTimeout in seconds; 0 means none.
	IdleTimeout uint16
	HardTimeout uint16
}

// Key identifies a flow within a bridge, as OpenFlow does: table, priority
// and match. Two flows with the same Key replace each other.
func (f Flow) Key() string {
	var b strings.Builder
	b.Grow(64)
	b.WriteString("table=")
	b.WriteString(strconv.Itoa(int(f.Table)))
	b.WriteString(",priority=")
	b.WriteString(strconv.Itoa(int(f.Priority)))
	f.writeMatch(&b)
	return b.String()
}

// String prints the flow like `ovs-ofctl add-flow` takes it.
func (f Flow) String() string {
	var b strings.Builder
	if f.Cookie != 0 {
		fmt.Fprintf(&b, "cookie=%#x,", f.Cookie)
	}
	b.WriteString(f.Key())
	if f.IdleTimeout != 0 {
		fmt.Fprintf(&b, ",idle_timeout=%d", f.IdleTimeout)
	}
	if f.HardTimeout != 0 {
		fmt.Fprintf(&b, ",hard_timeout=%d", f.HardTimeout)
	}
	b.WriteString(" actions=")
	b.WriteString(ActionsString(f.Actions))
	return b.String()
}

// writeMatch writes the match fields in ovs-ofctl's order.
func (f Flow) writeMatch(b *strings.Builder) {
	fields := f.Match
	less := func(i, j int) bool { return fieldOrder(fields[i].Field) < fieldOrder(fields[j].Field) }
	if !sort.SliceIsSorted(fields, less) {
		fields = append([]MatchField(nil), f.Match...)
		sort.SliceStable(fields, func(i, j int) bool { return fieldOrder(fields[i].Field) < fieldOrder(fields[j].Field) })
	}
	for _, m := range fields {
		b.WriteString(",")
		b.WriteString(m.String())
	}
}

// ActionsString prints actions, "drop" for none.
func ActionsString(as []Action) string {
	if len(as) == 0 {
		return "drop"
	}
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.String()
	}
	return strings.Join(parts, ",")
}

// String prints field=value[/mask], with ct_state as flags (+trk-new)
// and IPv4 masks as prefix lengths, as ovs-ofctl does.
func (m MatchField) String() string {
	if m.Field == FieldCTState {
		return string(m.Field) + "=" + ctStateString(uint32(beUint(m.Value)), uint32(beUint(m.Mask)))
	}
	if ones, ok := prefixLen(m.Mask); ok && (m.Field == FieldIPSrc || m.Field == FieldIPDst || m.Field == FieldARPSpa || m.Field == FieldARPTpa) {
		return fmt.Sprintf("%s=%s/%d", m.Field, formatValue(m.Field, m.Value), ones)
	}
	s := string(m.Field) + "=" + formatValue(m.Field, m.Value)
	if m.Mask != nil {
		s += "/" + formatValue(m.Field, m.Mask)
	}
	return s
}

// fieldOrder keeps printed matches in a stable, readable order.
func fieldOrder(f Field) int {
	order := []Field{FieldInPort, FieldTunID, FieldTunSrc, FieldTunDst, FieldPktMark, FieldConjID, FieldCTState, FieldCTMark, FieldCTZone,
		FieldEthSrc, FieldEthDst, FieldEthType, FieldARPOp, FieldARPSpa, FieldARPTpa, FieldARPSha, FieldARPTha,
		FieldIPProto, FieldIPDSCP, FieldIPSrc, FieldIPDst, FieldICMPType, FieldTCPSrc, FieldTCPDst, FieldUDPSrc, FieldUDPDst, FieldSCTPDst,
		FieldCTNwSrc, FieldCTNwDst, FieldCTNwProto, FieldCTTpSrc, FieldCTTpDst}
	for i, o := range order {
		if o == f {
			return i
		}
	}
	if strings.HasPrefix(string(f), "reg") {
		return 5
	}
	return 100
}

func formatValue(f Field, v []byte) string {
	switch f {
	case FieldEthSrc, FieldEthDst, FieldARPSha, FieldARPTha:
		return net.HardwareAddr(v).String()
	case FieldIPSrc, FieldIPDst, FieldARPSpa, FieldARPTpa, FieldTunDst, FieldTunSrc, FieldCTNwSrc, FieldCTNwDst:
		if a, ok := netip.AddrFromSlice(v); ok {
			return a.String()
		}
	case FieldCTState:
		return fmt.Sprintf("%#x", beUint(v))
	case FieldInPort, FieldIPProto, FieldIPDSCP, FieldARPOp, FieldTCPSrc, FieldTCPDst, FieldUDPSrc, FieldUDPDst, FieldSCTPDst, FieldICMPType,
		FieldCTNwProto, FieldCTTpSrc, FieldCTTpDst:
		return fmt.Sprintf("%d", beUint(v))
	}
	return fmt.Sprintf("%#x", beUint(v))
}

func beUint(v []byte) uint64 {
	var n uint64
	for _, b := range v {
		n = n<<8 | uint64(b)
	}
	return n
}

func be(n uint64, width int) []byte {
	out := make([]byte, width)
	for i := width - 1; i >= 0; i-- {
		out[i] = byte(n)
		n >>= 8
	}
	return out
}

var ctFlags = []struct {
	bit  uint32
	name string
}{{0x01, "new"}, {0x02, "est"}, {0x04, "rel"}, {0x08, "rpl"}, {0x10, "inv"}, {0x20, "trk"}, {0x40, "snat"}, {0x80, "dnat"}}

func ctStateString(value, mask uint32) string {
	if mask == 0 {
		mask = 0xff
	}
	var b strings.Builder
	for _, f := range ctFlags {
		if mask&f.bit == 0 {
			continue
		}
		if value&f.bit != 0 {
			b.WriteString("+" + f.name)
		} else {
			b.WriteString("-" + f.name)
		}
	}
	return b.String()
}

// prefixLen returns the length of a contiguous network mask.
func prefixLen(mask []byte) (int, bool) {
	if len(mask) != 4 {
		return 0, false
	}
	ones, bits := net.IPMask(mask).Size()
	return ones, bits == 32
}

// SortFlows sorts flows in pipeline order: by table, then by priority
// (highest first), then by key.
func SortFlows(fs []Flow) {
	if len(fs) < 2 {
		return
	}
	// Each key is built once, not once per comparison.
	type keyed struct {
		key string
		f   Flow
	}
	ks := make([]keyed, len(fs))
	for i, f := range fs {
		ks[i] = keyed{f.Key(), f}
	}
	sort.Slice(ks, func(i, j int) bool {
		a, b := &ks[i], &ks[j]
		if a.f.Table != b.f.Table {
			return a.f.Table < b.f.Table
		}
		if a.f.Priority != b.f.Priority {
			return a.f.Priority > b.f.Priority
		}
		return a.key < b.key
	})
	for i := range ks {
		fs[i] = ks[i].f
	}
}

// SameFlow reports whether a and b, two flows with the same Key, would be
// installed identically (cookie, timeouts and actions). It is what
// comparing their String()s tells, without printing them.
func SameFlow(a, b Flow) bool {
	if a.Cookie != b.Cookie || a.IdleTimeout != b.IdleTimeout || a.HardTimeout != b.HardTimeout || len(a.Actions) != len(b.Actions) {
		return false
	}
	for i := range a.Actions {
		if !sameAction(a.Actions[i], b.Actions[i]) {
			return false
		}
	}
	return true
}

func sameAction(a, b Action) bool {
	switch x := a.(type) {
	case Conjunction:
		y, ok := b.(Conjunction)
		return ok && x == y
	case Resubmit:
		y, ok := b.(Resubmit)
		return ok && x == y
	case Output:
		y, ok := b.(Output)
		return ok && x == y
	case GotoTable:
		y, ok := b.(GotoTable)
		return ok && x == y
	case Group:
		y, ok := b.(Group)
		return ok && x == y
	}
	// Actions with slices inside (SetField, CT, ...): compare what they
	// print, which is what the switch receives.
	return a.String() == b.String()
}
