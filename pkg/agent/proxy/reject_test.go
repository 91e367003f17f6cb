package proxy

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
	"github.com/ovs-cni/antrea/pkg/util/inetsum"
)

var (
	rejPodMAC = []byte{2, 0, 0, 0, 0, 3}
	rejGwMAC  = []byte{0x0e, 0, 0x0a, 0x0a, 0, 1}
	rejPodIP  = []byte{10, 10, 0, 3}
	rejVIP    = []byte{10, 96, 0, 10}
)

// frame builds pod -> ClusterIP with the given L4 protocol and header.
func frame(proto byte, l4 []byte) []byte {
	f := append(append(append([]byte{}, rejGwMAC...), rejPodMAC...), 0x08, 0x00)
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
	ip[8], ip[9] = 64, proto
	copy(ip[12:], rejPodIP)
	copy(ip[16:], rejVIP)
	binary.BigEndian.PutUint16(ip[10:], inetsum.Checksum(ip, 0))
	return append(append(f, ip...), l4...)
}

func tcpSeg(flags byte, seq, ack uint32, payload int) []byte {
	s := make([]byte, 20+payload)
	binary.BigEndian.PutUint16(s[0:], 40000)
	binary.BigEndian.PutUint16(s[2:], 80)
	binary.BigEndian.PutUint32(s[4:], seq)
	binary.BigEndian.PutUint32(s[8:], ack)
	s[12], s[13] = 5<<4, flags
	return s
}

func TestRejectReply(t *testing.T) {
	udp := []byte{0x9c, 0x40, 0, 53, 0, 12, 0, 0, 'a', 'b', 'c', 'd'}
	for _, tc := range []struct {
		name      string
		in        []byte
		proto     byte
		flags     byte
		seq, ack  uint32
		icmpQuote int
		err       string
	}{
		{name: "TCP SYN gets RST+ACK of seq+1", in: frame(of.ProtoTCP, tcpSeg(tcpSYN, 1000, 0, 0)), proto: of.ProtoTCP, flags: tcpRST | tcpACK, ack: 1001},
		{name: "TCP with data counts its bytes", in: frame(of.ProtoTCP, tcpSeg(tcpSYN, 1000, 0, 5)), proto: of.ProtoTCP, flags: tcpRST | tcpACK, ack: 1006},
		{name: "TCP ACK gets RST with its ack as seq", in: frame(of.ProtoTCP, tcpSeg(tcpACK, 5, 777, 0)), proto: of.ProtoTCP, flags: tcpRST, seq: 777},
		{name: "UDP gets ICMP port unreachable quoting 28 bytes", in: frame(of.ProtoUDP, udp), proto: of.ProtoICMP, icmpQuote: 28},
		{name: "SCTP too", in: frame(of.ProtoSCTP, make([]byte, 16)), proto: of.ProtoICMP, icmpQuote: 28},
		{name: "never answer a reset", in: frame(of.ProtoTCP, tcpSeg(tcpRST, 1, 0, 0)), err: "reset"},
		{name: "ICMP is not rejected", in: frame(of.ProtoICMP, make([]byte, 8)), err: "protocol 1"},
		{name: "ARP is not IPv4", in: append(append(append([]byte{}, rejGwMAC...), rejPodMAC...), append([]byte{0x08, 0x06}, make([]byte, 28)...)...), err: "not an IPv4 frame"},
		{name: "truncated IP", in: frame(of.ProtoTCP, tcpSeg(tcpSYN, 1, 0, 0))[:30], err: "not an IPv4 frame"},
		{name: "truncated TCP", in: frame(of.ProtoTCP, []byte{1, 2, 3}), err: "truncated TCP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := RejectReply(tc.in)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, rejPodMAC, out[0:6], "to the sender")
			assert.Equal(t, rejGwMAC, out[6:12], "from the MAC it sent to")
			ip := out[14:34]
			assert.Equal(t, uint16(0), inetsum.Checksum(ip, 0), "IP checksum")
			assert.Equal(t, tc.proto, ip[9])
			assert.Equal(t, rejVIP, ip[12:16], "from the ClusterIP")
			assert.Equal(t, rejPodIP, ip[16:20], "to the pod")
			assert.Equal(t, int(binary.BigEndian.Uint16(ip[2:])), len(out)-14)
			l4 := out[34:]
			switch tc.proto {
			case of.ProtoTCP:
				var src, dst [4]byte
				copy(src[:], rejVIP)
				copy(dst[:], rejPodIP)
				assert.Equal(t, uint16(0), inetsum.Checksum(l4, inetsum.PseudoHeader(src, dst, of.ProtoTCP, len(l4))), "TCP checksum")
				assert.Equal(t, uint16(80), binary.BigEndian.Uint16(l4[0:]))
				assert.Equal(t, uint16(40000), binary.BigEndian.Uint16(l4[2:]))
				assert.Equal(t, tc.seq, binary.BigEndian.Uint32(l4[4:]))
				assert.Equal(t, tc.ack, binary.BigEndian.Uint32(l4[8:]))
				assert.Equal(t, tc.flags, l4[13])
			case of.ProtoICMP:
				assert.Equal(t, []byte{3, 3}, l4[0:2])
				assert.Equal(t, uint16(0), inetsum.Checksum(l4, 0), "ICMP checksum")
				assert.Equal(t, tc.in[14:14+tc.icmpQuote], l4[8:])
			}
		})
	}
}

type recordingSender struct{ sent []of.PacketOut }

func (r *recordingSender) PacketOut(_ context.Context, po of.PacketOut) error {
	r.sent = append(r.sent, po)
	return nil
}

func TestRejecterAnswersOnInPortAndLimits(t *testing.T) {
	out := &recordingSender{}
	r := NewRejecter(out, 1, 2)
	syn := frame(of.ProtoTCP, tcpSeg(tcpSYN, 1, 0, 0))
	pi := of.PacketIn{TableID: agentof.DNATTable.ID, Match: []of.MatchField{of.MatchInPort(7)}, Data: syn}
	assert.False(t, r.HandlePacketIn(context.Background(), of.PacketIn{TableID: 99, Data: syn}), "not from the DNAT table")
	for i := 0; i < 5; i++ {
		assert.True(t, r.HandlePacketIn(context.Background(), pi))
	}
	require.Len(t, out.sent, 2, "the burst of 2, then rate limited")
	assert.Equal(t, []of.Action{of.Output{Port: 7}}, out.sent[0].Actions)
}
