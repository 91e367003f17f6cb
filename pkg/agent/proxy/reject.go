package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/time/rate"
	"k8s.io/klog/v2"

	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
	"github.com/ovs-cni/antrea/pkg/util/inetsum"
)

// PacketSender sends packets into the switch (openflow.Conn).
type PacketSender interface {
	PacketOut(ctx context.Context, po of.PacketOut) error
}

// Rejecter answers the first packets of connections to service ports
// without endpoints, which table 40 sends to the controller: a TCP reset
// for TCP, an ICMP port unreachable for UDP and SCTP, as kube-proxy does.
// The answer leaves by the port the packet came in by.
type Rejecter struct {
	out     PacketSender
	limiter *rate.Limiter
}

// NewRejecter returns a Rejecter that answers at most perSecond packets
// per second (bursts of burst); the others are dropped.
func NewRejecter(out PacketSender, perSecond float64, burst int) *Rejecter {
	return &Rejecter{out: out, limiter: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// HandlePacketIn answers p if it is the proxy's; it returns whether it
// was.
func (r *Rejecter) HandlePacketIn(ctx context.Context, p of.PacketIn) bool {
	if p.TableID != agentof.DNATTable.ID {
		return false
	}
	inPort := p.InPort()
	reply, err := RejectReply(p.Data)
	if err == nil && (inPort == 0 || inPort > 0xffffff00) {
		err = fmt.Errorf("no input port to answer on (%#x)", inPort)
	}
	if err != nil {
		klog.V(2).InfoS("Not rejecting a packet to a Service without endpoints", "reason", err)
		return true
	}
	if !r.limiter.Allow() {
		return true
	}
	if err := r.out.PacketOut(ctx, of.PacketOut{Actions: []of.Action{of.Output{Port: inPort}}, Data: reply}); err != nil {
		klog.ErrorS(err, "Sending a reject for a Service without endpoints")
	}
	return true
}

const (
	ethHeaderLen  = 14
	ipv4HeaderLen = 20
	tcpHeaderLen  = 20
	etherTypeIPv4 = 0x0800

	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// RejectReply builds the answer to an Ethernet/IPv4 frame sent to a
// service port without endpoints: from the address it was sent to, back
// to its sender.
func RejectReply(frame []byte) ([]byte, error) {
	if len(frame) < ethHeaderLen+ipv4HeaderLen || binary.BigEndian.Uint16(frame[12:]) != etherTypeIPv4 {
		return nil, errors.New("not an IPv4 frame")
	}
	ip := frame[ethHeaderLen:]
	if ip[0]>>4 != 4 {
		return nil, errors.New("not IPv4")
	}
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if ihl < ipv4HeaderLen || total < ihl || total > len(ip) {
		return nil, errors.New("malformed IPv4 header")
	}
	if binary.BigEndian.Uint16(ip[6:])&0x1fff != 0 {
		return nil, errors.New("not the first fragment")
	}
	ip = ip[:total]
	var src, dst [4]byte
	copy(src[:], ip[12:16])
	copy(dst[:], ip[16:20])
	l4 := ip[ihl:]
	var proto byte
	var payload []byte
	switch ip[9] {
	case of.ProtoTCP:
		if len(l4) < tcpHeaderLen {
			return nil, errors.New("truncated TCP header")
		}
		if l4[13]&tcpRST != 0 {
			return nil, errors.New("never answer a reset")
		}
		proto, payload = of.ProtoTCP, tcpReset(l4, dst, src)
	case of.ProtoUDP, of.ProtoSCTP:
		// The offending datagram's IP header and first 8 bytes.
		quote := ip[:min(len(ip), ihl+8)]
		proto, payload = of.ProtoICMP, icmpPortUnreachable(quote)
	default:
		return nil, fmt.Errorf("protocol %d is not rejected", ip[9])
	}
	out := make([]byte, 0, ethHeaderLen+ipv4HeaderLen+len(payload))
	out = append(out, frame[6:12]...) // to the sender
	out = append(out, frame[0:6]...)  // from where it was sent
	out = binary.BigEndian.AppendUint16(out, etherTypeIPv4)
	h := make([]byte, ipv4HeaderLen)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(ipv4HeaderLen+len(payload)))
	h[8] = 64
	h[9] = proto
	copy(h[12:16], dst[:])
	copy(h[16:20], src[:])
	binary.BigEndian.PutUint16(h[10:], inetsum.Checksum(h, 0))
	out = append(out, h...)
	return append(out, payload...), nil
}

// tcpReset is the reset answering segment seg, sent from -> to.
func tcpReset(seg []byte, from, to [4]byte) []byte {
	dataOff := int(seg[12]>>4) * 4
	flags := seg[13]
	rst := make([]byte, tcpHeaderLen)
	copy(rst[0:2], seg[2:4]) // source port: the port it was sent to
	copy(rst[2:4], seg[0:2])
	rst[12] = 5 << 4
	if flags&tcpACK != 0 {
		// The sequence number it acknowledged, no ACK (RFC 9293 3.10.7.1).
		copy(rst[4:8], seg[8:12])
		rst[13] = tcpRST
	} else {
		n := uint32(0)
		if dataOff <= len(seg) {
			n = uint32(len(seg) - dataOff)
		}
		if flags&tcpSYN != 0 {
			n++
		}
		if flags&tcpFIN != 0 {
			n++
		}
		binary.BigEndian.PutUint32(rst[8:], binary.BigEndian.Uint32(seg[4:])+n)
		rst[13] = tcpRST | tcpACK
	}
	binary.BigEndian.PutUint16(rst[16:], inetsum.Checksum(rst, inetsum.PseudoHeader(from, to, of.ProtoTCP, len(rst))))
	return rst
}

// icmpPortUnreachable is an ICMP destination unreachable (port) quoting
// quote.
func icmpPortUnreachable(quote []byte) []byte {
	m := make([]byte, 8, 8+len(quote))
	m[0], m[1] = 3, 3
	m = append(m, quote...)
	binary.BigEndian.PutUint16(m[2:], inetsum.Checksum(m, 0))
	return m
}
