package openflow

import (
	"encoding/binary"
	"fmt"
	"time"
)

// msgHeader is a decoded ofp_header.
type msgHeader struct {
	version uint8
	typ     uint8
	length  uint16
	xid     uint32
}

func parseHeader(b []byte) msgHeader {
	return msgHeader{version: b[0], typ: b[1], length: binary.BigEndian.Uint16(b[2:]), xid: binary.BigEndian.Uint32(b[4:])}
}

var typeNames = map[uint8]string{
	typeHello: "HELLO", typeError: "ERROR", typeEchoRequest: "ECHO_REQUEST", typeEchoReply: "ECHO_REPLY",
	4: "EXPERIMENTER", typeFeaturesReq: "FEATURES_REQUEST", typeFeaturesReply: "FEATURES_REPLY",
	typeFlowMod: "FLOW_MOD", typeGroupMod: "GROUP_MOD", typeMultipartReq: "MULTIPART_REQUEST",
	typeMultipartReply: "MULTIPART_REPLY", typeBarrierReq: "BARRIER_REQUEST", typeBarrierReply: "BARRIER_REPLY",
	typeBundleControl: "BUNDLE_CONTROL", typeBundleAdd: "BUNDLE_ADD_MESSAGE",
	typePacketIn: "PACKET_IN", typePacketOut: "PACKET_OUT", typeSetConfig: "SET_CONFIG", typeSetAsync: "SET_ASYNC",
}

func typeName(t uint8) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type%d", t)
}

// simpleMsg is a message with only a header and an optional body.
func simpleMsg(typ uint8, xid uint32, body []byte) []byte {
	b := appendHeader(make([]byte, 0, headerLen+len(body)), typ, xid)
	b = append(b, body...)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

// helloMsg offers OpenFlow 1.5 only, with a version bitmap element.
func helloMsg(xid uint32) []byte {
	body := []byte{0, 1, 0, 8} // OFPHET_VERSIONBITMAP, length 8
	body = binary.BigEndian.AppendUint32(body, 1<<Version)
	return simpleMsg(typeHello, xid, body)
}

// helloSupports tells whether a peer's HELLO allows our version: by its
// version bitmap when it sent one, else by its header version.
func helloSupports(msg []byte) bool {
	h := parseHeader(msg)
	for p := msg[headerLen:]; len(p) >= 4; {
		t, n := binary.BigEndian.Uint16(p), int(binary.BigEndian.Uint16(p[2:]))
		if n < 4 || n > len(p) {
			break
		}
		if t == 1 {
			for i := 4; i+4 <= n; i += 4 {
				word := binary.BigEndian.Uint32(p[i:])
				bit := int(Version) - (i-4)/4*32
				if bit >= 0 && bit < 32 && word&(1<<bit) != 0 {
					return true
				}
			}
			return false
		}
		p = p[(n+7)&^7:]
	}
	return h.version >= Version
}

// Error is an OFPT_ERROR the switch sent in reply to one of our messages.
type Error struct {
	Type, Code   uint16
	Experimenter uint32 // for experimenter errors (Type 0xffff)
	// FailedType and FailedXID come from the start of the failing message
	// the switch echoes back.
	FailedType uint8
	FailedXID  uint32
	Data       []byte
	// Context says what the failing message was, when the client knows
	// (e.g. the flow of a bundle add).
	Context string
}

var errorTypeNames = []string{"HELLO_FAILED", "BAD_REQUEST", "BAD_ACTION", "BAD_INSTRUCTION", "BAD_MATCH",
	"FLOW_MOD_FAILED", "GROUP_MOD_FAILED", "PORT_MOD_FAILED", "TABLE_MOD_FAILED", "QUEUE_OP_FAILED",
	"SWITCH_CONFIG_FAILED", "ROLE_REQUEST_FAILED", "METER_MOD_FAILED", "TABLE_FEATURES_FAILED",
	"BAD_PROPERTY", "ASYNC_CONFIG_FAILED", "FLOW_MONITOR_FAILED", "BUNDLE_FAILED"}

var errorCodeNames = map[uint16][]string{
	1: {"BAD_VERSION", "BAD_TYPE", "BAD_MULTIPART", "BAD_EXPERIMENTER", "BAD_EXP_TYPE", "EPERM", "BAD_LEN",
		"BUFFER_EMPTY", "BUFFER_UNKNOWN", "BAD_TABLE_ID", "IS_SLAVE", "BAD_PORT", "BAD_PACKET", "MULTIPART_BUFFER_OVERFLOW"},
	2: {"BAD_TYPE", "BAD_LEN", "BAD_EXPERIMENTER", "BAD_EXP_TYPE", "BAD_OUT_PORT", "BAD_ARGUMENT", "EPERM",
		"TOO_MANY", "BAD_QUEUE", "BAD_OUT_GROUP", "MATCH_INCONSISTENT", "UNSUPPORTED_ORDER", "BAD_TAG",
		"BAD_SET_TYPE", "BAD_SET_LEN", "BAD_SET_ARGUMENT"},
	3: {"UNKNOWN_INST", "UNSUP_INST", "BAD_TABLE_ID", "UNSUP_METADATA", "UNSUP_METADATA_MASK",
		"BAD_EXPERIMENTER", "BAD_EXP_TYPE", "BAD_LEN", "EPERM"},
	4: {"BAD_TYPE", "BAD_LEN", "BAD_TAG", "BAD_DL_ADDR_MASK", "BAD_NW_ADDR_MASK", "BAD_WILDCARDS",
		"BAD_FIELD", "BAD_VALUE", "BAD_MASK", "BAD_PREREQ", "DUP_FIELD", "EPERM"},
	5: {"UNKNOWN", "TABLE_FULL", "BAD_TABLE_ID", "OVERLAP", "EPERM", "BAD_TIMEOUT", "BAD_COMMAND", "BAD_FLAGS"},
	6: {"GROUP_EXISTS", "INVALID_GROUP", "WEIGHT_UNSUPPORTED", "OUT_OF_GROUPS", "OUT_OF_BUCKETS",
		"CHAINING_UNSUPPORTED", "WATCH_UNSUPPORTED", "LOOP", "UNKNOWN_GROUP", "CHAINED_GROUP", "BAD_TYPE",
		"BAD_COMMAND", "BAD_BUCKET", "BAD_WATCH", "EPERM", "UNKNOWN_BUCKET", "BUCKET_EXISTS"},
	17: {"UNKNOWN", "EPERM", "BAD_ID", "BUNDLE_EXIST", "BUNDLE_CLOSED", "OUT_OF_BUNDLES", "BAD_TYPE",
		"BAD_FLAGS", "MSG_BAD_LEN", "MSG_BAD_XID", "MSG_UNSUP", "MSG_CONFLICT", "MSG_TOO_MANY",
		"MSG_FAILED", "TIMEOUT", "BUNDLE_IN_PROGRESS"},
}

// Name is the error's type and code, like "BAD_MATCH/BAD_PREREQ".
func (e *Error) Name() string {
	if e.Type == 0xffff {
		return fmt.Sprintf("EXPERIMENTER(%#x)/%d", e.Experimenter, e.Code)
	}
	t := fmt.Sprintf("type%d", e.Type)
	if int(e.Type) < len(errorTypeNames) {
		t = errorTypeNames[e.Type]
	}
	c := fmt.Sprintf("code%d", e.Code)
	if names := errorCodeNames[e.Type]; int(e.Code) < len(names) {
		c = names[e.Code]
	}
	return t + "/" + c
}

func (e *Error) Error() string {
	s := fmt.Sprintf("openflow error %s (type %d, code %d) for %s xid %d", e.Name(), e.Type, e.Code, typeName(e.FailedType), e.FailedXID)
	if e.Context != "" {
		s += ": " + e.Context
	}
	return s
}

// parseError decodes an OFPT_ERROR message.
func parseError(msg []byte) *Error {
	h := parseHeader(msg)
	e := &Error{FailedXID: h.xid}
	p := msg[headerLen:]
	if len(p) < 4 {
		return e
	}
	e.Type, e.Code = binary.BigEndian.Uint16(p), binary.BigEndian.Uint16(p[2:])
	p = p[4:]
	if e.Type == 0xffff && len(p) >= 4 {
		e.Experimenter = binary.BigEndian.Uint32(p)
		p = p[4:]
	}
	e.Data = append([]byte(nil), p...)
	if len(p) >= headerLen {
		fh := parseHeader(p)
		e.FailedType, e.FailedXID = fh.typ, fh.xid
		// A failed bundle add echoes the BUNDLE_ADD; name the inner message.
		if fh.typ == typeBundleAdd && len(p) >= 2*headerLen+8 {
			e.FailedType = p[headerLen+8+1]
		}
	}
	return e
}

// Bundle control types and flags (OpenFlow 1.5 §7.3.9).
const (
	bundleOpen     uint16 = 0
	bundleCommit   uint16 = 4
	bundleDiscard  uint16 = 6
	bundleAtomic   uint16 = 1 << 0
	bundleOrdered  uint16 = 1 << 1
	bundleFlags           = bundleAtomic | bundleOrdered
	bundleAddExtra        = headerLen + 8
)

func bundleControlMsg(xid, id uint32, ctl uint16) []byte {
	body := binary.BigEndian.AppendUint32(nil, id)
	body = binary.BigEndian.AppendUint16(body, ctl)
	body = binary.BigEndian.AppendUint16(body, bundleFlags)
	return simpleMsg(typeBundleControl, xid, body)
}

// bundleControlType is the type of a BUNDLE_CONTROL reply.
func bundleControlType(msg []byte) uint16 {
	if len(msg) < headerLen+8 {
		return 0xffff
	}
	return binary.BigEndian.Uint16(msg[headerLen+4:])
}

// appendBundleAdd appends a BUNDLE_ADD_MESSAGE around inner, a complete
// message whose xid must equal xid (OVS insists on it).
func appendBundleAdd(b []byte, xid, id uint32, inner []byte) ([]byte, error) {
	start := len(b)
	b = appendHeader(b, typeBundleAdd, xid)
	b = binary.BigEndian.AppendUint32(b, id)
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint16(b, bundleFlags)
	b = append(b, inner...)
	return finish(b, start)
}

// Multipart types and flags.
const (
	multipartFlowDesc uint16 = 1 // OFPMP_FLOW_DESC (OFPMP_FLOW before 1.5)
	multipartMore     uint16 = 1 // OFPMPF_REPLY_MORE
)

// multipartMore reports whether a multipart reply has more parts coming.
func multipartHasMore(msg []byte) bool {
	return len(msg) >= headerLen+4 && binary.BigEndian.Uint16(msg[headerLen+2:])&multipartMore != 0
}

// flowStatsRequest asks for all flows of table (tableAll for all tables).
// flowStatsRequest asks for the flows of table (tableAll: every table)
// whose cookie has the bits of cookie under mask.
func flowStatsRequest(xid uint32, table uint8, cookie, mask uint64) []byte {
	body := binary.BigEndian.AppendUint16(nil, multipartFlowDesc)
	body = append(body, 0, 0, 0, 0, 0, 0) // flags, pad
	body = append(body, table, 0, 0, 0)
	body = binary.BigEndian.AppendUint32(body, portAny)
	body = binary.BigEndian.AppendUint32(body, groupAny)
	body = append(body, 0, 0, 0, 0)
	body = binary.BigEndian.AppendUint64(body, cookie)
	body = binary.BigEndian.AppendUint64(body, mask)
	body, _ = appendMatch(body, nil)
	return simpleMsg(typeMultipartReq, xid, body)
}

// FlowStats is one flow as the switch reports it. Flow.Actions is left
// empty; Instructions holds the raw encoded instructions.
type FlowStats struct {
	Flow
	Instructions []byte
	PacketCount  uint64
	ByteCount    uint64
	Duration     time.Duration
}

// OXS statistics fields (OFPXSC_OPENFLOW_BASIC).
const (
	oxsClass       uint16 = 0x8002
	oxsDuration    uint8  = 0
	oxsPacketCount uint8  = 4
	oxsByteCount   uint8  = 5
)

// decodeFlowDescs decodes the body of one OFPMP_FLOW_DESC reply part.
func decodeFlowDescs(msg []byte) ([]FlowStats, error) {
	if len(msg) < headerLen+8 {
		return nil, fmt.Errorf("openflow: multipart reply truncated")
	}
	if t := binary.BigEndian.Uint16(msg[headerLen:]); t != multipartFlowDesc {
		return nil, fmt.Errorf("openflow: multipart reply of type %d, want flow desc", t)
	}
	var out []FlowStats
	for p := msg[headerLen+8:]; len(p) > 0; {
		if len(p) < 32 {
			return nil, fmt.Errorf("openflow: flow desc truncated")
		}
		n := int(binary.BigEndian.Uint16(p))
		if n < 32 || n > len(p) {
			return nil, fmt.Errorf("openflow: flow desc length %d out of range", n)
		}
		fs, err := decodeFlowDesc(p[:n])
		if err != nil {
			return nil, err
		}
		out = append(out, fs)
		p = p[n:]
	}
	return out, nil
}

func decodeFlowDesc(p []byte) (FlowStats, error) {
	var fs FlowStats
	fs.Table = p[4]
	fs.Priority = binary.BigEndian.Uint16(p[6:])
	fs.IdleTimeout = binary.BigEndian.Uint16(p[8:])
	fs.HardTimeout = binary.BigEndian.Uint16(p[10:])
	fs.Cookie = binary.BigEndian.Uint64(p[16:])
	match, n, err := decodeMatch(p[24:])
	if err != nil {
		return fs, fmt.Errorf("flow desc match: %w", err)
	}
	fs.Match = match
	rest := p[24+n:]
	if len(rest) < 4 {
		return fs, fmt.Errorf("openflow: flow desc stats truncated")
	}
	sl := int(binary.BigEndian.Uint16(rest[2:]))
	padded := (sl + 7) &^ 7
	if sl < 4 || padded > len(rest) {
		return fs, fmt.Errorf("openflow: flow desc stats length %d out of range", sl)
	}
	for s := rest[4:sl]; len(s) >= 4; {
		h := binary.BigEndian.Uint32(s)
		class, field, l := uint16(h>>16), uint8(h>>9&0x7f), int(h&0xff)
		if 4+l > len(s) {
			break
		}
		v := s[4 : 4+l]
		if class == oxsClass && l == 8 {
			switch field {
			case oxsDuration:
				fs.Duration = time.Duration(binary.BigEndian.Uint32(v))*time.Second + time.Duration(binary.BigEndian.Uint32(v[4:]))
			case oxsPacketCount:
				fs.PacketCount = binary.BigEndian.Uint64(v)
			case oxsByteCount:
				fs.ByteCount = binary.BigEndian.Uint64(v)
			}
		}
		s = s[4+l:]
	}
	fs.Instructions = append([]byte(nil), rest[padded:]...)
	return fs, nil
}

// Features is the switch's FEATURES_REPLY.
type Features struct {
	DatapathID uint64
	NTables    uint8
}

func parseFeatures(msg []byte) (Features, error) {
	if len(msg) < headerLen+24 {
		return Features{}, fmt.Errorf("openflow: features reply truncated")
	}
	return Features{DatapathID: binary.BigEndian.Uint64(msg[headerLen:]), NTables: msg[headerLen+12]}, nil
}
