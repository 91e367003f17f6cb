// Package inetsum computes the Internet checksum (RFC 1071) of packets
// the agent builds: IPv4 headers, TCP, UDP and ICMP.
package inetsum

import "encoding/binary"

// PseudoHeader is the partial sum of the IPv4 pseudo-header of a TCP or
// UDP segment of length bytes.
func PseudoHeader(src, dst [4]byte, proto byte, length int) uint32 {
	sum := uint32(binary.BigEndian.Uint16(src[0:])) + uint32(binary.BigEndian.Uint16(src[2:]))
	sum += uint32(binary.BigEndian.Uint16(dst[0:])) + uint32(binary.BigEndian.Uint16(dst[2:]))
	return sum + uint32(proto) + uint32(length)
}

// Checksum is the Internet checksum of b, starting from a partial sum (0,
// or PseudoHeader's). Over data that carries a correct checksum it is 0.
func Checksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
