package openflow

import (
	"net"
	"net/netip"
)

// Constructors of match fields; they encode values at the field's width.

func MatchInPort(port uint32) MatchField {
	return MatchField{Field: FieldInPort, Value: be(uint64(port), 4)}
}
func MatchEthType(t uint16) MatchField {
	return MatchField{Field: FieldEthType, Value: be(uint64(t), 2)}
}
func MatchEthSrc(mac net.HardwareAddr) MatchField {
	return MatchField{Field: FieldEthSrc, Value: []byte(mac)}
}
func MatchEthDst(mac net.HardwareAddr) MatchField {
	return MatchField{Field: FieldEthDst, Value: []byte(mac)}
}
func MatchIPProto(p uint8) MatchField { return MatchField{Field: FieldIPProto, Value: []byte{p}} }

// MatchIPDSCP matches the 6-bit DSCP of the IPv4 TOS byte (0 to 63).
func MatchIPDSCP(dscp uint8) MatchField {
	return MatchField{Field: FieldIPDSCP, Value: []byte{dscp & 0x3f}}
}
func MatchARPOp(op uint16) MatchField { return MatchField{Field: FieldARPOp, Value: be(uint64(op), 2)} }

// MatchIPSrc matches an IPv4 source address or prefix.
func MatchIPSrc(p netip.Prefix) MatchField { return prefixMatch(FieldIPSrc, p) }

// MatchIPDst matches an IPv4 destination address or prefix.
func MatchIPDst(p netip.Prefix) MatchField { return prefixMatch(FieldIPDst, p) }

// MatchARPSpa matches the ARP sender protocol address.
func MatchARPSpa(a netip.Addr) MatchField { return MatchField{Field: FieldARPSpa, Value: a.AsSlice()} }

// MatchARPTpa matches the ARP target protocol address.
func MatchARPTpa(a netip.Addr) MatchField { return MatchField{Field: FieldARPTpa, Value: a.AsSlice()} }

// MatchARPSha matches the ARP sender hardware address.
func MatchARPSha(mac net.HardwareAddr) MatchField {
	return MatchField{Field: FieldARPSha, Value: []byte(mac)}
}

// MatchTunDst matches the tunnel destination of a received packet's
// metadata.
func MatchTunDst(a netip.Addr) MatchField { return MatchField{Field: FieldTunDst, Value: a.AsSlice()} }

// MatchL4Dst matches the destination port of proto (TCP, UDP or SCTP),
// with mask for port ranges (0 means exact).
func MatchL4Dst(proto uint8, port, mask uint16) MatchField {
	f := FieldTCPDst
	switch proto {
	case ProtoUDP:
		f = FieldUDPDst
	case ProtoSCTP:
		f = FieldSCTPDst
	}
	m := MatchField{Field: f, Value: be(uint64(port), 2)}
	if mask != 0 && mask != 0xffff {
		m.Mask = be(uint64(mask), 2)
	}
	return m
}

// MatchReg matches bits of register n: value within mask (mask 0 means all
// 32 bits).
func MatchReg(n int, value, mask uint32) MatchField {
	m := MatchField{Field: Reg(n), Value: be(uint64(value), 4)}
	if mask != 0 && mask != 0xffffffff {
		m.Mask = be(uint64(mask), 4)
	}
	return m
}

// MatchCTMark matches bits of the connection mark.
func MatchCTMark(value, mask uint32) MatchField {
	m := MatchField{Field: FieldCTMark, Value: be(uint64(value), 4)}
	if mask != 0 && mask != 0xffffffff {
		m.Mask = be(uint64(mask), 4)
	}
	return m
}

// MatchCTLabelBits matches bits ofs..ofs+nbits-1 of the connection's
// 128-bit label (bit 0 the least significant) equal to value; the bits
// must lie in the label's low 64.
func MatchCTLabelBits(ofs, nbits int, value uint64) MatchField {
	mask := (uint64(1)<<nbits - 1) << ofs
	if nbits >= 64 {
		mask = ^uint64(0) << ofs
	}
	v, m := make([]byte, 16), make([]byte, 16)
	copy(v[8:], be(value<<ofs&mask, 8))
	copy(m[8:], be(mask, 8))
	return MatchField{Field: FieldCTLabel, Value: v, Mask: m}
}

// MatchConjID matches the conjunction id a conjunctive match resolved to.
func MatchConjID(id uint32) MatchField {
	return MatchField{Field: FieldConjID, Value: be(uint64(id), 4)}
}

// Conntrack state bits (NXM_NX_CT_STATE).
const (
	CTNew  uint32 = 0x01
	CTEst  uint32 = 0x02
	CTRel  uint32 = 0x04
	CTRpl  uint32 = 0x08
	CTInv  uint32 = 0x10
	CTTrk  uint32 = 0x20
	CTSNAT uint32 = 0x40
	CTDNAT uint32 = 0x80
)

// MatchCTState matches conntrack state: the bits of set must be on and
// the bits of unset off; others are ignored. E.g. +trk+est-new is
// MatchCTState(CTTrk|CTEst, CTNew).
func MatchCTState(set, unset uint32) MatchField {
	return MatchField{Field: FieldCTState, Value: be(uint64(set), 4), Mask: be(uint64(set|unset), 4)}
}

func prefixMatch(f Field, p netip.Prefix) MatchField {
	m := MatchField{Field: f, Value: p.Addr().AsSlice()}
	if p.Bits() < p.Addr().BitLen() {
		mask := net.CIDRMask(p.Bits(), p.Addr().BitLen())
		m.Value = p.Masked().Addr().AsSlice()
		m.Mask = []byte(mask)
	}
	return m
}
