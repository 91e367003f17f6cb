package openflow

import (
	"encoding/binary"
	"fmt"
)

// Version is the OpenFlow version this package speaks: 1.5 (wire version
// 0x06). OVS accepts Nicira extension matches and actions in it, and it has
// native bundles and the insert-bucket group command that big groups need.
const Version uint8 = 0x06

// Message types (OpenFlow 1.5 enum ofp_type).
const (
	typeHello          uint8 = 0
	typeError          uint8 = 1
	typeEchoRequest    uint8 = 2
	typeEchoReply      uint8 = 3
	typeFeaturesReq    uint8 = 5
	typeFeaturesReply  uint8 = 6
	typeFlowMod        uint8 = 14
	typeGroupMod       uint8 = 15
	typeMultipartReq   uint8 = 18
	typeMultipartReply uint8 = 19
	typeBarrierReq     uint8 = 20
	typeBarrierReply   uint8 = 21
	typeBundleControl  uint8 = 33
	typeBundleAdd      uint8 = 34
)

// Flow mod commands.
const (
	flowAdd          uint8 = 0
	flowModify       uint8 = 1
	flowModifyStrict uint8 = 2
	flowDelete       uint8 = 3
	flowDeleteStrict uint8 = 4
)

// Reserved numbers.
const (
	portAny    uint32 = 0xffffffff // OFPP_ANY
	groupAny   uint32 = 0xffffffff // OFPG_ANY
	tableAll   uint8  = 0xff       // OFPTT_ALL
	noBuffer   uint32 = 0xffffffff // OFP_NO_BUFFER
	nxVendorID uint32 = 0x00002320 // NX_VENDOR_ID
	headerLen         = 8
	// maxMsgLen is the largest OpenFlow message (16-bit length).
	maxMsgLen = 0xffff
	// maxInnerLen is the largest message that still fits in a BUNDLE_ADD
	// (which adds 16 bytes around it).
	maxInnerLen = maxMsgLen - 16
)

// Standard action types (enum ofp_action_type).
const (
	actOutput    uint16 = 0
	actGroup     uint16 = 22
	actDecNwTTL  uint16 = 24
	actSetField  uint16 = 25
	actCopyField uint16 = 28
	actExperimen uint16 = 0xffff
)

// Nicira action subtypes (enum nx_action_subtype).
const (
	nxastResubmitTable uint16 = 14
	nxastOutputReg     uint16 = 15
	nxastConjunction   uint16 = 34
	nxastCT            uint16 = 35
	nxastNAT           uint16 = 36
)

// Instruction types.
const (
	instGotoTable    uint16 = 1
	instApplyActions uint16 = 4
)

// appendHeader appends an ofp_header with a zero length; finish patches it.
func appendHeader(b []byte, typ uint8, xid uint32) []byte {
	b = append(b, Version, typ, 0, 0)
	return binary.BigEndian.AppendUint32(b, xid)
}

// finish sets the length of the message that starts at start.
func finish(b []byte, start int) ([]byte, error) {
	n := len(b) - start
	if n > maxMsgLen {
		return b[:start], fmt.Errorf("openflow: message of %d bytes exceeds the OpenFlow maximum of %d", n, maxMsgLen)
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(n))
	return b, nil
}

// flowModArgs are the parts of a flow mod that depend on the command.
type flowModArgs struct {
	command    uint8
	table      uint8
	cookieMask uint64
	withBody   bool // encode instructions (add and modify)
}

// appendFlowMod appends an OFPT_FLOW_MOD for f.
func appendFlowMod(b []byte, xid uint32, f *Flow, a flowModArgs) ([]byte, error) {
	start := len(b)
	b = appendHeader(b, typeFlowMod, xid)
	b = binary.BigEndian.AppendUint64(b, f.Cookie)
	b = binary.BigEndian.AppendUint64(b, a.cookieMask)
	b = append(b, a.table, a.command)
	b = binary.BigEndian.AppendUint16(b, f.IdleTimeout)
	b = binary.BigEndian.AppendUint16(b, f.HardTimeout)
	b = binary.BigEndian.AppendUint16(b, f.Priority)
	b = binary.BigEndian.AppendUint32(b, noBuffer)
	b = binary.BigEndian.AppendUint32(b, portAny)
	b = binary.BigEndian.AppendUint32(b, groupAny)
	b = append(b, 0, 0, 0, 0) // flags, importance
	var err error
	if b, err = appendMatch(b, f.Match); err != nil {
		return b[:start], fmt.Errorf("flow %s: %w", f.Key(), err)
	}
	if a.withBody {
		if b, err = appendInstructions(b, f.Actions); err != nil {
			return b[:start], fmt.Errorf("flow %s: %w", f.Key(), err)
		}
	}
	if b, err = finish(b, start); err != nil {
		return b, fmt.Errorf("flow %s: %w", f.Key(), err)
	}
	return b, nil
}

// appendAddFlow, appendModifyFlow and appendDeleteFlow encode the strict
// flow mods Bundle uses.
func appendAddFlow(b []byte, xid uint32, f *Flow) ([]byte, error) {
	return appendFlowMod(b, xid, f, flowModArgs{command: flowAdd, table: f.Table, withBody: true})
}

func appendModifyFlow(b []byte, xid uint32, f *Flow) ([]byte, error) {
	return appendFlowMod(b, xid, f, flowModArgs{command: flowModifyStrict, table: f.Table, withBody: true})
}

func appendDeleteFlow(b []byte, xid uint32, f *Flow) ([]byte, error) {
	g := Flow{Table: f.Table, Priority: f.Priority, Match: f.Match}
	return appendFlowMod(b, xid, &g, flowModArgs{command: flowDeleteStrict, table: f.Table})
}

// appendDeleteByCookie deletes, in every table, the flows whose cookie
// matches cookie under mask.
func appendDeleteByCookie(b []byte, xid uint32, cookie, mask uint64) ([]byte, error) {
	f := Flow{Cookie: cookie}
	return appendFlowMod(b, xid, &f, flowModArgs{command: flowDelete, table: tableAll, cookieMask: mask})
}

// appendInstructions encodes actions as an apply-actions instruction,
// followed by goto_table when the last action is a GotoTable. No actions
// means no instructions: drop.
func appendInstructions(b []byte, as []Action) ([]byte, error) {
	var gotoTable *GotoTable
	for i, a := range as {
		if g, ok := a.(GotoTable); ok {
			if i != len(as)-1 {
				return b, fmt.Errorf("openflow: goto_table must be the last action")
			}
			gotoTable = &g
			as = as[:i]
		}
	}
	if len(as) > 0 {
		start := len(b)
		b = binary.BigEndian.AppendUint16(b, instApplyActions)
		b = append(b, 0, 0, 0, 0, 0, 0) // length, pad
		var err error
		if b, err = appendActions(b, as); err != nil {
			return b, err
		}
		binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	}
	if gotoTable != nil {
		b = binary.BigEndian.AppendUint16(b, instGotoTable)
		b = binary.BigEndian.AppendUint16(b, 8)
		b = append(b, gotoTable.Table, 0, 0, 0)
	}
	return b, nil
}

// appendActions encodes an action list.
func appendActions(b []byte, as []Action) ([]byte, error) {
	var err error
	for _, a := range as {
		if b, err = appendAction(b, a); err != nil {
			return b, fmt.Errorf("action %s: %w", a, err)
		}
	}
	return b, nil
}

// nxHeader appends the common header of a Nicira action of length n.
func nxHeader(b []byte, n int, subtype uint16) []byte {
	b = binary.BigEndian.AppendUint16(b, actExperimen)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	b = binary.BigEndian.AppendUint32(b, nxVendorID)
	return binary.BigEndian.AppendUint16(b, subtype)
}

// nxmHeaderOf is the 32-bit NXM header of f for move/load/output:reg,
// and its width in bits.
func nxmHeaderOf(f Field) (uint32, int, error) {
	d, err := lookupField(f)
	if err != nil {
		return 0, 0, err
	}
	w := d.width
	if d.nxm == nxm0(0) {
		w = 2
	}
	return oxmHeader(d.nxm, false, w), w * 8, nil
}

// ofsNbits packs a bit range as NXM's ofs_nbits.
func ofsNbits(start, end, width int) (uint16, error) {
	if start < 0 || end < start || end >= width || end-start >= 64 {
		return 0, fmt.Errorf("openflow: bit range [%d..%d] invalid for a %d-bit field", start, end, width)
	}
	return uint16(start<<6 | (end - start)), nil
}

func appendAction(b []byte, a Action) ([]byte, error) {
	switch a := a.(type) {
	case Output:
		b = binary.BigEndian.AppendUint16(b, actOutput)
		b = binary.BigEndian.AppendUint16(b, 16)
		b = binary.BigEndian.AppendUint32(b, a.Port)
		maxLen := uint16(0)
		if a.Port == PortController {
			maxLen = 0xffff // OFPCML_NO_BUFFER: send the whole packet
		}
		b = binary.BigEndian.AppendUint16(b, maxLen)
		return append(b, 0, 0, 0, 0, 0, 0), nil
	case OutputReg:
		h, w, err := nxmHeaderOf(Reg(a.Reg))
		if err != nil {
			return b, err
		}
		on, err := ofsNbits(a.Start, a.End, w)
		if err != nil {
			return b, err
		}
		b = nxHeader(b, 24, nxastOutputReg)
		b = binary.BigEndian.AppendUint16(b, on)
		b = binary.BigEndian.AppendUint32(b, h)
		b = binary.BigEndian.AppendUint16(b, 0) // max_len
		return append(b, 0, 0, 0, 0, 0, 0), nil
	case Resubmit:
		b = nxHeader(b, 16, nxastResubmitTable)
		b = binary.BigEndian.AppendUint16(b, 0xfff8) // in_port: OFPP_IN_PORT, i.e. keep it
		return append(b, a.Table, 0, 0, 0), nil
	case LoadReg:
		return appendLoad(b, a)
	case SetField:
		start := len(b)
		b = binary.BigEndian.AppendUint16(b, actSetField)
		b = append(b, 0, 0)
		var err error
		if b, err = appendOXM(b, MatchField{Field: a.Field, Value: a.Value}); err != nil {
			return b[:start], err
		}
		b = pad8(b, start)
		binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
		return b, nil
	case Move:
		sh, sw, err := nxmHeaderOf(a.Src)
		if err != nil {
			return b, err
		}
		dh, dw, err := nxmHeaderOf(a.Dst)
		if err != nil {
			return b, err
		}
		if a.NBits <= 0 || a.SrcOfs < 0 || a.DstOfs < 0 || a.SrcOfs+a.NBits > sw || a.DstOfs+a.NBits > dw {
			return b, fmt.Errorf("openflow: move of %d bits out of the fields' range", a.NBits)
		}
		// OpenFlow 1.5 copy_field (OVS takes NXAST_REG_MOVE only up to 1.4).
		b = binary.BigEndian.AppendUint16(b, actCopyField)
		b = binary.BigEndian.AppendUint16(b, 24)
		b = binary.BigEndian.AppendUint16(b, uint16(a.NBits))
		b = binary.BigEndian.AppendUint16(b, uint16(a.SrcOfs))
		b = binary.BigEndian.AppendUint16(b, uint16(a.DstOfs))
		b = append(b, 0, 0)
		b = binary.BigEndian.AppendUint32(b, sh)
		b = binary.BigEndian.AppendUint32(b, dh)
		return append(b, 0, 0, 0, 0), nil
	case DecTTL:
		b = binary.BigEndian.AppendUint16(b, actDecNwTTL)
		b = binary.BigEndian.AppendUint16(b, 8)
		return append(b, 0, 0, 0, 0), nil
	case Conjunction:
		if a.NClauses < 2 || a.NClauses > 64 || a.Clause < 1 || a.Clause > a.NClauses {
			return b, fmt.Errorf("openflow: conjunction clause %d/%d invalid (clauses are 1-based, 2..64 of them)", a.Clause, a.NClauses)
		}
		b = nxHeader(b, 16, nxastConjunction)
		b = append(b, a.Clause-1, a.NClauses) // the wire clause is 0-based
		return binary.BigEndian.AppendUint32(b, a.ID), nil
	case Group:
		b = binary.BigEndian.AppendUint16(b, actGroup)
		b = binary.BigEndian.AppendUint16(b, 8)
		return binary.BigEndian.AppendUint32(b, a.ID), nil
	case CT:
		return appendCT(b, a)
	case Learn:
		return appendLearn(b, a)
	case GotoTable:
		return b, fmt.Errorf("openflow: goto_table is an instruction; it cannot appear inside ct, a bucket or before other actions")
	}
	return b, fmt.Errorf("openflow: unsupported action type %T", a)
}

// appendLoad encodes a LoadReg as an OpenFlow 1.5 set_field, masked
// unless it writes the whole field (OVS accepts NXAST_REG_LOAD only up to
// OpenFlow 1.4).
func appendLoad(b []byte, a LoadReg) ([]byte, error) {
	d, err := lookupField(a.Field)
	if err != nil {
		return b, err
	}
	w := d.width * 8
	if _, err := ofsNbits(a.Start, a.End, w); err != nil {
		return b, err
	}
	n := a.End - a.Start + 1
	if n < 64 && a.Value>>n != 0 {
		return b, fmt.Errorf("openflow: value %#x does not fit in %d bits", a.Value, n)
	}
	value := make([]byte, d.width)
	mask := make([]byte, d.width)
	for i := 0; i < n; i++ {
		bit := a.Start + i // bit number from the least significant end
		byteIdx := d.width - 1 - bit/8
		mask[byteIdx] |= 1 << (bit % 8)
		if a.Value>>i&1 != 0 {
			value[byteIdx] |= 1 << (bit % 8)
		}
	}
	m := MatchField{Field: a.Field, Value: value, Mask: mask}
	if n == w {
		m.Mask = nil
	}
	start := len(b)
	b = binary.BigEndian.AppendUint16(b, actSetField)
	b = append(b, 0, 0)
	if b, err = appendOXM(b, m); err != nil {
		return b[:start], err
	}
	b = pad8(b, start)
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return b, nil
}

// NXAST_CT flags and NXAST_NAT flags/ranges (nicira-ext.h).
const (
	ctFlagCommit   uint16 = 1 << 0
	ctRecircNone   uint8  = 0xff
	natFlagSrc     uint16 = 1 << 0
	natFlagDst     uint16 = 1 << 1
	natRangeIPv4Lo uint16 = 1 << 0
	natRangeIPv4Hi uint16 = 1 << 1
	natRangePortLo uint16 = 1 << 4
	natRangePortHi uint16 = 1 << 5
)

func appendCT(b []byte, a CT) ([]byte, error) {
	start := len(b)
	b = nxHeader(b, 0, nxastCT)
	var flags uint16
	if a.Commit {
		flags |= ctFlagCommit
	}
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint32(b, 0) // zone_src: none, zone is immediate
	b = binary.BigEndian.AppendUint16(b, a.Zone)
	table := ctRecircNone
	if a.Table != nil {
		table = *a.Table
	}
	b = append(b, table, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, 0) // alg
	if a.NAT != nil {
		var err error
		if b, err = appendNAT(b, *a.NAT); err != nil {
			return b[:start], err
		}
	}
	for _, e := range a.Exec {
		var dst Field
		switch e := e.(type) {
		case LoadReg:
			dst = e.Field
		case SetField:
			dst = e.Field
		case Move:
			dst = e.Dst
		default:
			return b[:start], fmt.Errorf("openflow: ct exec allows only load, set_field and move, not %s", e)
		}
		if dst != FieldCTMark && dst != FieldCTLabel {
			return b[:start], fmt.Errorf("openflow: ct exec may only write ct_mark or ct_label, not %s", dst)
		}
	}
	var err error
	if b, err = appendActions(b, a.Exec); err != nil {
		return b[:start], err
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return b, nil
}

func appendNAT(b []byte, n NAT) ([]byte, error) {
	if (n.IPMin != nil && len(n.IPMin) != 4) || (n.IPMax != nil && len(n.IPMax) != 4) {
		return b, fmt.Errorf("openflow: nat addresses must be IPv4 (4 bytes)")
	}
	start := len(b)
	b = nxHeader(b, 0, nxastNAT)
	b = append(b, 0, 0)
	var flags, ranges uint16
	switch {
	case n.SNAT:
		flags = natFlagSrc
	case n.DNAT:
		flags = natFlagDst
	}
	if flags != 0 && n.IPMin != nil {
		ranges |= natRangeIPv4Lo
		if n.IPMax != nil {
			ranges |= natRangeIPv4Hi
		}
		if n.PortMin != 0 {
			ranges |= natRangePortLo
			if n.PortMax != 0 {
				ranges |= natRangePortHi
			}
		}
	}
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint16(b, ranges)
	if ranges&natRangeIPv4Lo != 0 {
		b = append(b, n.IPMin...)
	}
	if ranges&natRangeIPv4Hi != 0 {
		b = append(b, n.IPMax...)
	}
	if ranges&natRangePortLo != 0 {
		b = binary.BigEndian.AppendUint16(b, n.PortMin)
	}
	if ranges&natRangePortHi != 0 {
		b = binary.BigEndian.AppendUint16(b, n.PortMax)
	}
	b = pad8(b, start)
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return b, nil
}

// Validate reports whether f can be encoded (known fields of the right
// widths, valid bit ranges, goto_table last, ...), without the switch's
// own checks such as match prerequisites.
func (f *Flow) Validate() error {
	_, err := appendAddFlow(nil, 0, f)
	return err
}
