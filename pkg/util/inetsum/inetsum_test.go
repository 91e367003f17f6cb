package inetsum

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestChecksum(t *testing.T) {
	// The IPv4 header of RFC 1071's usual example (checksum 0xb861).
	hdr := []byte{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7}
	assert.Equal(t, uint16(0xb861), Checksum(hdr, 0))
	binary.BigEndian.PutUint16(hdr[10:], 0xb861)
	assert.Equal(t, uint16(0), Checksum(hdr, 0), "a header with its checksum sums to 0")
	// An odd length pads with a zero byte.
	assert.Equal(t, Checksum([]byte{1, 2, 3, 0}, 0), Checksum([]byte{1, 2, 3}, 0))
	// The pseudo-header: addresses, protocol and length.
	assert.Equal(t, uint32(0x0a0a+0x0001+0x0a0a+0x0002+6+20), PseudoHeader([4]byte{10, 10, 0, 1}, [4]byte{10, 10, 0, 2}, 6, 20))
}
