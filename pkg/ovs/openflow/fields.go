package openflow

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Field classes of OXM/NXM headers (OpenFlow 1.5 §7.2.3.2, OVS
// include/openflow/nicira-ext.h and lib/meta-flow.h).
const (
	classNXM0         uint16 = 0x0000 // NXM_OF_*: OpenFlow 1.0 fields, Nicira numbering
	classNXM1         uint16 = 0x0001 // NXM_NX_*: Nicira extension fields
	classOpenflowBase uint16 = 0x8000 // OXM_OF_*: OpenFlow basic fields
	classPacketRegs   uint16 = 0x8001 // OXM_OF_PKT_REG<n>: OVS's 64-bit xreg<n>
	classExperimenter uint16 = 0xffff
)

// Additional fields, beyond the ones the pipeline started with.
const (
	FieldSCTPSrc  Field = "sctp_src"
	FieldICMPCode Field = "icmp_code"
	FieldCTLabel  Field = "ct_label"
	FieldMetadata Field = "metadata"
	FieldIPDSCP   Field = "ip_dscp"
	// The original direction's tuple of the packet's conntrack entry
	// (valid for tracked, not invalid packets, in either direction).
	FieldCTNwProto Field = "ct_nw_proto"
	FieldCTNwSrc   Field = "ct_nw_src"
	FieldCTNwDst   Field = "ct_nw_dst"
	FieldCTTpSrc   Field = "ct_tp_src"
	FieldCTTpDst   Field = "ct_tp_dst"
)

// fieldCode is one header's class and field number.
type fieldCode struct {
	class uint16
	field uint8
}

// fieldDef describes how a Field is encoded: match is the header used in
// matches and set_field (OXM basic when the field has one, else NXM), nxm
// the header used in move, load and output:reg (NXM, so that OVS prints
// the same NXM_* names as ActionsString), and width its size in bytes.
type fieldDef struct {
	match fieldCode
	nxm   fieldCode
	width int
}

func oxm(n uint8) fieldCode  { return fieldCode{classOpenflowBase, n} }
func nxm0(n uint8) fieldCode { return fieldCode{classNXM0, n} }
func nxm1(n uint8) fieldCode { return fieldCode{classNXM1, n} }

var fieldDefs = map[Field]fieldDef{
	FieldInPort:   {oxm(0), oxm(0), 4},
	FieldMetadata: {oxm(2), oxm(2), 8},
	FieldEthDst:   {oxm(3), nxm0(1), 6},
	FieldEthSrc:   {oxm(4), nxm0(2), 6},
	FieldEthType:  {oxm(5), nxm0(3), 2},
	FieldIPDSCP:   {oxm(8), oxm(8), 1},
	FieldIPProto:  {oxm(10), nxm0(6), 1},
	FieldIPSrc:    {oxm(11), nxm0(7), 4},
	FieldIPDst:    {oxm(12), nxm0(8), 4},
	FieldTCPSrc:   {oxm(13), nxm0(9), 2},
	FieldTCPDst:   {oxm(14), nxm0(10), 2},
	FieldUDPSrc:   {oxm(15), nxm0(11), 2},
	FieldUDPDst:   {oxm(16), nxm0(12), 2},
	FieldSCTPSrc:  {oxm(17), oxm(17), 2},
	FieldSCTPDst:  {oxm(18), oxm(18), 2},
	FieldICMPType: {oxm(19), nxm0(13), 1},
	FieldICMPCode: {oxm(20), nxm0(14), 1},
	FieldARPOp:    {oxm(21), nxm0(15), 2},
	FieldARPSpa:   {oxm(22), nxm0(16), 4},
	FieldARPTpa:   {oxm(23), nxm0(17), 4},
	FieldARPSha:   {oxm(24), nxm1(17), 6},
	FieldARPTha:   {oxm(25), nxm1(18), 6},
	FieldTunID:    {oxm(38), nxm1(16), 8},
	FieldTunSrc:   {nxm1(31), nxm1(31), 4},
	FieldTunDst:   {nxm1(32), nxm1(32), 4},
	FieldPktMark:  {nxm1(33), nxm1(33), 4},
	FieldConjID:   {nxm1(37), nxm1(37), 4},
	FieldCTState:  {nxm1(105), nxm1(105), 4},
	FieldCTZone:   {nxm1(106), nxm1(106), 2},
	FieldCTMark:   {nxm1(107), nxm1(107), 4},
	FieldCTLabel:  {nxm1(108), nxm1(108), 16},
	// NXM_NX_CT_NW_PROTO and friends (OVS meta-flow.h).
	FieldCTNwProto: {nxm1(119), nxm1(119), 1},
	FieldCTNwSrc:   {nxm1(120), nxm1(120), 4},
	FieldCTNwDst:   {nxm1(121), nxm1(121), 4},
	FieldCTTpSrc:   {nxm1(124), nxm1(124), 2},
	FieldCTTpDst:   {nxm1(125), nxm1(125), 2},
}

// fieldsByCode maps every header code we know (match and NXM forms) back to
// its Field, for decoding matches from the switch.
var fieldsByCode = func() map[fieldCode]Field {
	m := map[fieldCode]Field{}
	for f, d := range fieldDefs {
		m[d.match] = f
		m[d.nxm] = f
	}
	m[nxm0(0)] = FieldInPort // NXM_OF_IN_PORT is 16 bits wide
	for i := 0; i < 16; i++ {
		m[nxm1(uint8(i))] = Reg(i)
	}
	return m
}()

// lookupField returns the encoding of f, including reg0..reg15.
func lookupField(f Field) (fieldDef, error) {
	if d, ok := fieldDefs[f]; ok {
		return d, nil
	}
	if s, ok := strings.CutPrefix(string(f), "reg"); ok {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 && n < 16 {
			c := nxm1(uint8(n))
			return fieldDef{match: c, nxm: c, width: 4}, nil
		}
	}
	return fieldDef{}, fmt.Errorf("openflow: unknown field %q", f)
}

// oxmHeader is the 32-bit OXM/NXM header: class, field, hasmask and
// payload length.
func oxmHeader(c fieldCode, hasMask bool, width int) uint32 {
	h := uint32(c.class)<<16 | uint32(c.field)<<9 | uint32(width)
	if hasMask {
		h |= 1 << 8
		h += uint32(width) // the payload holds value and mask
	}
	return h
}

// appendOXM appends one match TLV (value, then mask when set).
func appendOXM(b []byte, m MatchField) ([]byte, error) {
	d, err := lookupField(m.Field)
	if err != nil {
		return b, err
	}
	if len(m.Value) != d.width {
		return b, fmt.Errorf("openflow: field %s: value is %d bytes, want %d", m.Field, len(m.Value), d.width)
	}
	if m.Mask != nil && len(m.Mask) != d.width {
		return b, fmt.Errorf("openflow: field %s: mask is %d bytes, want %d", m.Field, len(m.Mask), d.width)
	}
	b = binary.BigEndian.AppendUint32(b, oxmHeader(d.match, m.Mask != nil, d.width))
	if m.Mask == nil {
		return append(b, m.Value...), nil
	}
	// The switch rejects value bits outside the mask; clear them.
	for i := range m.Value {
		b = append(b, m.Value[i]&m.Mask[i])
	}
	return append(b, m.Mask...), nil
}

// appendMatch appends an OpenFlow 1.5 ofp_match of type OXM, padded to 8
// bytes.
func appendMatch(b []byte, ms []MatchField) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 1, 0, 0) // type OFPMT_OXM, length patched below
	seen := make(map[Field]bool, len(ms))
	for _, m := range ms {
		if seen[m.Field] {
			return b, fmt.Errorf("openflow: field %s matched twice", m.Field)
		}
		seen[m.Field] = true
		var err error
		if b, err = appendOXM(b, m); err != nil {
			return b, err
		}
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return pad8(b, start), nil
}

// decodeMatch parses an ofp_match at the start of b and returns its fields
// and the padded length it occupies.
func decodeMatch(b []byte) ([]MatchField, int, error) {
	if len(b) < 4 {
		return nil, 0, fmt.Errorf("openflow: match truncated")
	}
	if t := binary.BigEndian.Uint16(b); t != 1 {
		return nil, 0, fmt.Errorf("openflow: match type %d is not OXM", t)
	}
	n := int(binary.BigEndian.Uint16(b[2:]))
	padded := (n + 7) &^ 7
	if n < 4 || padded > len(b) {
		return nil, 0, fmt.Errorf("openflow: match length %d out of range", n)
	}
	var out []MatchField
	p := b[4:n]
	for len(p) > 0 {
		if len(p) < 4 {
			return nil, 0, fmt.Errorf("openflow: OXM header truncated")
		}
		h := binary.BigEndian.Uint32(p)
		class, field, hasMask, plen := uint16(h>>16), uint8(h>>9&0x7f), h&0x100 != 0, int(h&0xff)
		if 4+plen > len(p) {
			return nil, 0, fmt.Errorf("openflow: OXM %#x payload truncated", h)
		}
		payload := p[4 : 4+plen]
		p = p[4+plen:]
		if class == classPacketRegs && field < 8 && (plen == 8 && !hasMask || plen == 16 && hasMask) {
			out = appendXReg(out, int(field), payload, hasMask)
			continue
		}
		var name Field
		if class == classExperimenter {
			if len(payload) < 4 {
				return nil, 0, fmt.Errorf("openflow: experimenter OXM %#x truncated", h)
			}
			name = Field(fmt.Sprintf("oxm_exp_%08x_%d", binary.BigEndian.Uint32(payload), field))
			payload = payload[4:]
		} else if f, ok := fieldsByCode[fieldCode{class, field}]; ok {
			name = f
		} else {
			name = Field(fmt.Sprintf("oxm_%04x_%d", class, field))
		}
		m := MatchField{Field: name}
		if hasMask {
			half := len(payload) / 2
			m.Value = append([]byte(nil), payload[:half]...)
			m.Mask = append([]byte(nil), payload[half:]...)
		} else {
			m.Value = append([]byte(nil), payload...)
		}
		if class == classNXM0 && field == 0 { // NXM_OF_IN_PORT: widen to 32 bits
			m.Value = append([]byte{0, 0}, m.Value...)
		}
		out = append(out, m)
	}
	return out, padded, nil
}

// appendXReg splits a 64-bit packet register xreg<n> (as OVS reports
// registers in OpenFlow 1.5) into reg<2n> (upper half) and reg<2n+1>,
// leaving out halves that are not matched.
func appendXReg(out []MatchField, n int, payload []byte, hasMask bool) []MatchField {
	mask := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if hasMask {
		mask = payload[8:16]
	}
	for half := 0; half < 2; half++ {
		v, m := payload[4*half:4*half+4], mask[4*half:4*half+4]
		mf := MatchField{Field: Reg(2*n + half), Value: append([]byte(nil), v...)}
		switch binary.BigEndian.Uint32(m) {
		case 0:
			continue
		case 0xffffffff:
		default:
			mf.Mask = append([]byte(nil), m...)
		}
		out = append(out, mf)
	}
	return out
}

// pad8 zero-pads b so that the part from start is a multiple of 8 bytes.
func pad8(b []byte, start int) []byte {
	for (len(b)-start)%8 != 0 {
		b = append(b, 0)
	}
	return b
}
