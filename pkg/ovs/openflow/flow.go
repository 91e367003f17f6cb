// Package openflow is our OpenFlow model and client: flows are plain values
// (table, priority, cookie, match fields, actions) that print in the
// ovs-ofctl syntax, are compared by that text, and are installed over the
// bridge's management socket in ordered, atomic bundles.
package openflow

import (
	"fmt"
	"math/bits"
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
	var buf [96]byte
	return string(f.AppendKey(buf[:0]))
}

// AppendKey appends Key() to b, without building it piece by piece: the
// compilers key every flow they make, so this is on their hot path.
func (f Flow) AppendKey(b []byte) []byte {
	b = append(b, "table="...)
	b = strconv.AppendUint(b, uint64(f.Table), 10)
	b = append(b, ",priority="...)
	b = strconv.AppendUint(b, uint64(f.Priority), 10)
	return f.appendMatch(b)
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

// appendMatch appends ",field=value" for each match field, in ovs-ofctl's
// order.
func (f Flow) appendMatch(b []byte) []byte {
	fields := f.Match
	if !matchSorted(fields) {
		var buf [8]MatchField
		fields = append(buf[:0], f.Match...)
		// Insertion sort: stable, and matches are short.
		for i := 1; i < len(fields); i++ {
			for j := i; j > 0 && fieldOrder(fields[j].Field) < fieldOrder(fields[j-1].Field); j-- {
				fields[j], fields[j-1] = fields[j-1], fields[j]
			}
		}
	}
	for _, m := range fields {
		b = append(b, ',')
		b = m.appendTo(b)
	}
	return b
}

func matchSorted(fields []MatchField) bool {
	for i := 1; i < len(fields); i++ {
		if fieldOrder(fields[i].Field) < fieldOrder(fields[i-1].Field) {
			return false
		}
	}
	return true
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
func (m MatchField) String() string { return string(m.appendTo(nil)) }

func (m MatchField) appendTo(b []byte) []byte {
	b = append(b, m.Field...)
	b = append(b, '=')
	if m.Field == FieldCTState {
		return appendCTState(b, uint32(beUint(m.Value)), uint32(beUint(m.Mask)))
	}
	if ones, ok := prefixLen(m.Mask); ok && (m.Field == FieldIPSrc || m.Field == FieldIPDst || m.Field == FieldARPSpa || m.Field == FieldARPTpa) {
		b = appendValue(b, m.Field, m.Value)
		b = append(b, '/')
		return strconv.AppendInt(b, int64(ones), 10)
	}
	b = appendValue(b, m.Field, m.Value)
	if m.Mask != nil {
		b = append(b, '/')
		b = appendValue(b, m.Field, m.Mask)
	}
	return b
}

// fieldOrders is the position of each field in printed matches, which
// keeps them in a stable, readable order (registers come at 5, unknown
// fields last).
var fieldOrders = func() map[Field]int {
	order := []Field{FieldInPort, FieldTunID, FieldTunSrc, FieldTunDst, FieldPktMark, FieldConjID, FieldCTState, FieldCTMark, FieldCTZone,
		FieldEthSrc, FieldEthDst, FieldEthType, FieldARPOp, FieldARPSpa, FieldARPTpa, FieldARPSha, FieldARPTha,
		FieldIPProto, FieldIPDSCP, FieldIPSrc, FieldIPDst, FieldICMPType, FieldTCPSrc, FieldTCPDst, FieldUDPSrc, FieldUDPDst, FieldSCTPDst,
		FieldCTNwSrc, FieldCTNwDst, FieldCTNwProto, FieldCTTpSrc, FieldCTTpDst}
	m := make(map[Field]int, len(order))
	for i, f := range order {
		m[f] = i
	}
	return m
}()

func fieldOrder(f Field) int {
	if i, ok := fieldOrders[f]; ok {
		return i
	}
	if strings.HasPrefix(string(f), "reg") {
		return 5
	}
	return 100
}

func formatValue(f Field, v []byte) string { return string(appendValue(nil, f, v)) }

// appendValue appends a field's value as ovs-ofctl prints it: MACs with
// colons, IP addresses dotted, ports and protocols in decimal, the rest
// in hex.
func appendValue(b []byte, f Field, v []byte) []byte {
	switch f {
	case FieldEthSrc, FieldEthDst, FieldARPSha, FieldARPTha:
		const digits = "0123456789abcdef"
		for i, c := range v {
			if i > 0 {
				b = append(b, ':')
			}
			b = append(b, digits[c>>4], digits[c&0xf])
		}
		return b
	case FieldIPSrc, FieldIPDst, FieldARPSpa, FieldARPTpa, FieldTunDst, FieldTunSrc, FieldCTNwSrc, FieldCTNwDst:
		if a, ok := netip.AddrFromSlice(v); ok {
			return a.AppendTo(b)
		}
	case FieldInPort, FieldIPProto, FieldIPDSCP, FieldARPOp, FieldTCPSrc, FieldTCPDst, FieldUDPSrc, FieldUDPDst, FieldSCTPDst, FieldICMPType,
		FieldCTNwProto, FieldCTTpSrc, FieldCTTpDst:
		return strconv.AppendUint(b, beUint(v), 10)
	}
	return appendHex(b, v)
}

// appendHex appends v, a big-endian number of any width, as 0x... with
// no leading zeros (0x0 for zero).
func appendHex(b []byte, v []byte) []byte {
	for len(v) > 8 && v[0] == 0 {
		v = v[1:]
	}
	if len(v) <= 8 {
		b = append(b, "0x"...)
		return strconv.AppendUint(b, beUint(v), 16)
	}
	const digits = "0123456789abcdef"
	b = append(b, "0x"...)
	if v[0]>>4 != 0 {
		b = append(b, digits[v[0]>>4])
	}
	b = append(b, digits[v[0]&0xf])
	for _, c := range v[1:] {
		b = append(b, digits[c>>4], digits[c&0xf])
	}
	return b
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

func appendCTState(b []byte, value, mask uint32) []byte {
	if mask == 0 {
		mask = 0xff
	}
	for _, f := range ctFlags {
		if mask&f.bit == 0 {
			continue
		}
		if value&f.bit != 0 {
			b = append(b, '+')
		} else {
			b = append(b, '-')
		}
		b = append(b, f.name...)
	}
	return b
}

// prefixLen returns the length of a contiguous network mask.
func prefixLen(mask []byte) (int, bool) {
	if len(mask) != 4 {
		return 0, false
	}
	m := uint32(mask[0])<<24 | uint32(mask[1])<<16 | uint32(mask[2])<<8 | uint32(mask[3])
	ones := bits.LeadingZeros32(^m)
	if m<<ones != 0 { // not contiguous
		return 0, false
	}
	return ones, true
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
