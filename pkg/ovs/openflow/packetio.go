package openflow

import (
	"context"
	"encoding/binary"
	"fmt"

	"k8s.io/klog/v2"
)

// Message types of packet I/O and asynchronous configuration.
const (
	typePacketIn  uint8 = 10
	typeSetConfig uint8 = 9
	typePacketOut uint8 = 13
	typeSetAsync  uint8 = 28
)

// Packet-in reasons (OpenFlow 1.5 ofp_packet_in_reason).
const (
	PacketInReasonApplyAction uint8 = 1
	PacketInReasonActionSet   uint8 = 3
	PacketInReasonGroup       uint8 = 4
	// PacketInReasonPacketOut: a packet the controller sent came back.
	PacketInReasonPacketOut uint8 = 5
)

// PacketIn is a packet the switch sent to the controller (output to
// CONTROLLER in a flow or bucket).
type PacketIn struct {
	TableID uint8
	Cookie  uint64
	Reason  uint8
	// Match holds the packet's pipeline fields (in_port, registers...).
	Match []MatchField
	// Data is the Ethernet frame (the whole of it: output to CONTROLLER
	// asks for no buffering).
	Data []byte
}

// InPort returns the port the packet entered the bridge by (0 if the
// switch did not say).
func (p PacketIn) InPort() uint32 {
	for _, m := range p.Match {
		if m.Field == FieldInPort && len(m.Value) == 4 {
			return binary.BigEndian.Uint32(m.Value)
		}
	}
	return 0
}

// parsePacketIn decodes an OpenFlow 1.5 ofp_packet_in.
func parsePacketIn(msg []byte) (PacketIn, error) {
	const fixed = headerLen + 16
	if len(msg) < fixed {
		return PacketIn{}, fmt.Errorf("openflow: packet-in of %d bytes is truncated", len(msg))
	}
	p := PacketIn{Reason: msg[headerLen+6], TableID: msg[headerLen+7], Cookie: binary.BigEndian.Uint64(msg[headerLen+8:])}
	match, n, err := decodeMatch(msg[fixed:])
	if err != nil {
		return PacketIn{}, fmt.Errorf("openflow: packet-in match: %w", err)
	}
	p.Match = match
	rest := msg[fixed+n:]
	if len(rest) < 2 {
		return PacketIn{}, fmt.Errorf("openflow: packet-in without data")
	}
	p.Data = append([]byte(nil), rest[2:]...)
	return p, nil
}

// PacketOut is a packet the controller sends into the switch.
type PacketOut struct {
	// InPort is the port the packet counts as coming from (CONTROLLER if
	// zero).
	InPort  uint32
	Actions []Action
	Data    []byte
}

func encodePacketOut(xid uint32, po PacketOut) ([]byte, error) {
	inPort := po.InPort
	if inPort == 0 {
		inPort = PortController
	}
	b := appendHeader(make([]byte, 0, 64+len(po.Data)), typePacketOut, xid)
	b = binary.BigEndian.AppendUint32(b, 0xffffffff) // no buffer
	lenAt := len(b)
	b = append(b, 0, 0, 0, 0) // actions_len, pad
	var err error
	if b, err = appendMatch(b, []MatchField{MatchInPort(inPort)}); err != nil {
		return nil, err
	}
	start := len(b)
	if b, err = appendActions(b, po.Actions); err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint16(b[lenAt:], uint16(len(b)-start))
	b = append(b, po.Data...)
	if len(b) > maxMsgLen {
		return nil, fmt.Errorf("openflow: packet-out of %d bytes is too long", len(b))
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b, nil
}

// PacketOut sends a packet into the switch. It does not wait: a packet
// the switch refuses is logged as an unsolicited error.
func (c *Conn) PacketOut(ctx context.Context, po PacketOut) error {
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	msg, err := encodePacketOut(c.nextXIDs(1), po)
	if err != nil {
		return err
	}
	return s.write(ctx, msg)
}

// SetPacketInHandler makes the connection ask the switch for packet-ins
// (a service connection gets none unless it sets a miss_send_len) and
// hands each to h, in order, from one goroutine per connection. Packets
// arriving while queueSize are waiting are dropped. Set it before Run.
func (c *Conn) SetPacketInHandler(queueSize int, h func(PacketIn)) {
	c.packetIn = h
	c.packetInQueue = queueSize
}

// asyncConfigMsgs are the messages that turn packet-ins on: SET_CONFIG
// with a miss_send_len (no buffering), and SET_ASYNC asking for the
// packet-ins of actions, groups and packet-outs (not table misses nor
// invalid TTLs).
func asyncConfigMsgs(xid uint32) [][]byte {
	cfg := simpleMsg(typeSetConfig, xid, []byte{0, 0, 0xff, 0xff})
	mask := uint32(1)<<PacketInReasonApplyAction | uint32(1)<<PacketInReasonActionSet |
		uint32(1)<<PacketInReasonGroup | uint32(1)<<PacketInReasonPacketOut
	var body []byte
	for _, prop := range []uint16{0, 1} { // OFPACPT_PACKET_IN_SLAVE, _MASTER
		body = binary.BigEndian.AppendUint16(body, prop)
		body = binary.BigEndian.AppendUint16(body, 8)
		body = binary.BigEndian.AppendUint32(body, mask)
	}
	return [][]byte{cfg, simpleMsg(typeSetAsync, xid+1, body)}
}

// deliverPacketIns runs h on the session's packet-ins until it closes.
func (s *session) deliverPacketIns(h func(PacketIn)) {
	for {
		select {
		case <-s.done:
			return
		case p := <-s.packetIns:
			h(p)
		}
	}
}

// queuePacketIn decodes and queues one packet-in (reader goroutine).
func (s *session) queuePacketIn(msg []byte) {
	if s.packetIns == nil {
		return
	}
	p, err := parsePacketIn(msg)
	if err != nil {
		klog.ErrorS(err, "Dropping a packet-in")
		return
	}
	select {
	case s.packetIns <- p:
	default:
		s.packetInDrops.Add(1)
	}
}
