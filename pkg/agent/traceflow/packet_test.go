package traceflow

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
	"github.com/ovs-cni/antrea/pkg/util/inetsum"
)

var (
	srcMAC = net.HardwareAddr{0x0a, 0, 0, 0, 0, 0x03}
	gwMAC  = net.HardwareAddr{0x0e, 0, 10, 10, 0, 1}
)

// valid says whether the Internet checksum of b (checksum included) is
// right: the sum of a checksummed block is 0xffff.
func valid(b []byte, sum uint32) bool { return inetsum.Checksum(b, sum) == 0 }

func TestPacketFrame(t *testing.T) {
	src, dst := netip.MustParseAddr("10.10.0.3"), netip.MustParseAddr("10.10.1.2")
	for _, tc := range []struct {
		name  string
		p     Packet
		l4Len int
	}{
		{"TCP SYN", Packet{Protocol: of.ProtoTCP, SrcPort: 50000, DstPort: 80, TCPFlags: 0x02, DSCP: 7, ID: 0x1234}, tcpHeaderLen},
		{"UDP", Packet{Protocol: of.ProtoUDP, SrcPort: 50001, DstPort: 53, DSCP: 63, ID: 1}, udpHeaderLen},
		{"ICMP echo", Packet{Protocol: of.ProtoICMP, DSCP: 3, ID: 0xbeef}, icmpEchoLen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			p.SrcMAC, p.DstMAC, p.SrcIP, p.DstIP = srcMAC, gwMAC, src, dst
			frame, err := p.Frame()
			require.NoError(t, err)
			require.Len(t, frame, ethHeaderLen+ipv4HeaderLen+tc.l4Len)
			assert.Equal(t, []byte(gwMAC), frame[0:6])
			assert.Equal(t, []byte(srcMAC), frame[6:12])
			ip := frame[ethHeaderLen : ethHeaderLen+ipv4HeaderLen]
			assert.True(t, valid(ip, 0), "IP header checksum")
			assert.Equal(t, p.DSCP, ip[1]>>2, "the tag is the DSCP")
			assert.Equal(t, uint8(0), ip[1]&3, "ECN left alone")
			l4 := frame[ethHeaderLen+ipv4HeaderLen:]
			switch p.Protocol {
			case of.ProtoTCP, of.ProtoUDP:
				assert.True(t, valid(l4, inetsum.PseudoHeader(src.As4(), dst.As4(), p.Protocol, len(l4))), "L4 checksum")
			case of.ProtoICMP:
				assert.True(t, valid(l4, 0), "ICMP checksum")
				assert.Equal(t, uint8(8), l4[0], "echo request")
				assert.Equal(t, p.ID, binary.BigEndian.Uint16(l4[4:]), "identifier")
			}
			if p.Protocol == of.ProtoTCP {
				assert.Equal(t, p.TCPFlags, l4[13])
			}

			h, err := ParseFrame(frame)
			require.NoError(t, err)
			assert.Equal(t, Header{DSCP: p.DSCP, SrcIP: src, DstIP: dst, Protocol: p.Protocol, SrcPort: p.SrcPort, DstPort: p.DstPort, TTL: ipTTL}, h)
		})
	}
}

func TestPacketFrameErrors(t *testing.T) {
	ok := Packet{SrcMAC: srcMAC, DstMAC: gwMAC, SrcIP: netip.MustParseAddr("10.10.0.3"), DstIP: netip.MustParseAddr("10.10.0.4"), Protocol: of.ProtoTCP}
	for _, tc := range []struct {
		name   string
		change func(*Packet)
		want   string
	}{
		{"no MAC", func(p *Packet) { p.DstMAC = nil }, "MAC must be 6 bytes"},
		{"IPv6", func(p *Packet) { p.DstIP = netip.MustParseAddr("fd00::1") }, "IPv4 only"},
		{"DSCP too big", func(p *Packet) { p.DSCP = 64 }, "more than 6 bits"},
		{"SCTP", func(p *Packet) { p.Protocol = of.ProtoSCTP }, "protocol 132 is not TCP, UDP or ICMP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ok
			tc.change(&p)
			_, err := p.Frame()
			assert.ErrorContains(t, err, tc.want)
		})
	}
	_, err := ParseFrame([]byte{1, 2, 3})
	assert.ErrorContains(t, err, "not an IPv4 frame")
	arp := make([]byte, 60)
	binary.BigEndian.PutUint16(arp[12:], 0x0806)
	_, err = ParseFrame(arp)
	assert.ErrorContains(t, err, "not an IPv4 frame")
}
