package traceflow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
	"github.com/ovs-cni/antrea/pkg/util/inetsum"
)

// Packet is the frame a Traceflow injects: Ethernet, IPv4 with the tag in
// its DSCP, and a TCP segment, a UDP datagram or an ICMP echo request.
type Packet struct {
	SrcMAC, DstMAC net.HardwareAddr
	SrcIP, DstIP   netip.Addr
	// Protocol is of.ProtoTCP, of.ProtoUDP or of.ProtoICMP.
	Protocol         uint8
	SrcPort, DstPort uint16 // TCP and UDP
	TCPFlags         uint8
	DSCP             uint8
	// ID is the IP identification, also the TCP sequence number's upper
	// half and the ICMP echo identifier: the packet's serial number.
	ID uint16
}

const (
	ethHeaderLen  = 14
	ipv4HeaderLen = 20
	tcpHeaderLen  = 20
	udpHeaderLen  = 8
	icmpEchoLen   = 8
	etherTypeIPv4 = 0x0800
	ipTTL         = 64
	ipFlagDF      = 0x4000
	icmpEcho      = 8
	tcpWindow     = 64240
)

// Frame encodes the packet, checksums included.
func (p Packet) Frame() ([]byte, error) {
	if len(p.SrcMAC) != 6 || len(p.DstMAC) != 6 {
		return nil, errors.New("packet: source and destination MAC must be 6 bytes")
	}
	if !p.SrcIP.Is4() || !p.DstIP.Is4() {
		return nil, fmt.Errorf("packet: %s -> %s: IPv4 only", p.SrcIP, p.DstIP)
	}
	if p.DSCP > 63 {
		return nil, fmt.Errorf("packet: DSCP %d is more than 6 bits", p.DSCP)
	}
	src, dst := p.SrcIP.As4(), p.DstIP.As4()
	var l4 []byte
	switch p.Protocol {
	case of.ProtoTCP:
		l4 = make([]byte, tcpHeaderLen)
		binary.BigEndian.PutUint16(l4[0:], p.SrcPort)
		binary.BigEndian.PutUint16(l4[2:], p.DstPort)
		binary.BigEndian.PutUint32(l4[4:], uint32(p.ID)<<16|1) // sequence
		l4[12] = tcpHeaderLen / 4 << 4
		l4[13] = p.TCPFlags
		binary.BigEndian.PutUint16(l4[14:], tcpWindow)
		binary.BigEndian.PutUint16(l4[16:], inetsum.Checksum(l4, inetsum.PseudoHeader(src, dst, of.ProtoTCP, len(l4))))
	case of.ProtoUDP:
		l4 = make([]byte, udpHeaderLen)
		binary.BigEndian.PutUint16(l4[0:], p.SrcPort)
		binary.BigEndian.PutUint16(l4[2:], p.DstPort)
		binary.BigEndian.PutUint16(l4[4:], udpHeaderLen)
		sum := inetsum.Checksum(l4, inetsum.PseudoHeader(src, dst, of.ProtoUDP, len(l4)))
		if sum == 0 {
			sum = 0xffff // 0 means "no checksum" in UDP
		}
		binary.BigEndian.PutUint16(l4[6:], sum)
	case of.ProtoICMP:
		l4 = make([]byte, icmpEchoLen)
		l4[0] = icmpEcho
		binary.BigEndian.PutUint16(l4[4:], p.ID) // identifier
		binary.BigEndian.PutUint16(l4[6:], 1)    // sequence
		binary.BigEndian.PutUint16(l4[2:], inetsum.Checksum(l4, 0))
	default:
		return nil, fmt.Errorf("packet: protocol %d is not TCP, UDP or ICMP", p.Protocol)
	}
	frame := make([]byte, 0, ethHeaderLen+ipv4HeaderLen+len(l4))
	frame = append(frame, p.DstMAC...)
	frame = append(frame, p.SrcMAC...)
	frame = binary.BigEndian.AppendUint16(frame, etherTypeIPv4)
	ip := make([]byte, ipv4HeaderLen)
	ip[0] = 4<<4 | ipv4HeaderLen/4
	ip[1] = p.DSCP << 2
	binary.BigEndian.PutUint16(ip[2:], uint16(ipv4HeaderLen+len(l4)))
	binary.BigEndian.PutUint16(ip[4:], p.ID)
	binary.BigEndian.PutUint16(ip[6:], ipFlagDF)
	ip[8] = ipTTL
	ip[9] = p.Protocol
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	binary.BigEndian.PutUint16(ip[10:], inetsum.Checksum(ip, 0))
	frame = append(frame, ip...)
	return append(frame, l4...), nil
}

// Header is what the agent reads from a traced packet that comes back as a
// packet-in: its tag and its addresses as the pipeline left them (after
// DNAT, for instance).
type Header struct {
	DSCP             uint8
	SrcIP, DstIP     netip.Addr
	Protocol         uint8
	SrcPort, DstPort uint16
	TTL              uint8
}

// ParseFrame reads the Ethernet, IPv4 and transport headers of frame.
func ParseFrame(frame []byte) (Header, error) {
	if len(frame) < ethHeaderLen+ipv4HeaderLen || binary.BigEndian.Uint16(frame[12:]) != etherTypeIPv4 {
		return Header{}, errors.New("not an IPv4 frame")
	}
	ip := frame[ethHeaderLen:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ihl < ipv4HeaderLen || len(ip) < ihl {
		return Header{}, errors.New("malformed IPv4 header")
	}
	src, _ := netip.AddrFromSlice(ip[12:16])
	dst, _ := netip.AddrFromSlice(ip[16:20])
	h := Header{DSCP: ip[1] >> 2, SrcIP: src, DstIP: dst, Protocol: ip[9], TTL: ip[8]}
	l4 := ip[ihl:]
	if (h.Protocol == of.ProtoTCP || h.Protocol == of.ProtoUDP) && len(l4) >= 4 {
		h.SrcPort = binary.BigEndian.Uint16(l4[0:])
		h.DstPort = binary.BigEndian.Uint16(l4[2:])
	}
	return h, nil
}
