// Package connection is the flow exporter's model: a connection as the
// datapath's conntrack reports it, what the agent knows about its ends,
// and the record exported for it.
package connection

import (
	"fmt"
	"net/netip"
	"time"
)

// Tuple is one direction of a connection. ICMP connections carry the
// echo id in SrcPort and DstPort 0.
type Tuple struct {
	Proto   uint8
	Src     netip.Addr
	Dst     netip.Addr
	SrcPort uint16
	DstPort uint16
}

func (t Tuple) String() string {
	return fmt.Sprintf("%d:%s:%d->%s:%d", t.Proto, t.Src, t.SrcPort, t.Dst, t.DstPort)
}

// Reversed is the tuple of the other direction.
func (t Tuple) Reversed() Tuple {
	return Tuple{Proto: t.Proto, Src: t.Dst, Dst: t.Src, SrcPort: t.DstPort, DstPort: t.SrcPort}
}

// Counters of one direction.
type Counters struct {
	Packets uint64
	Bytes   uint64
}

// Sub is c minus prev, 0 where c is below prev (counters that restarted).
func (c Counters) Sub(prev Counters) Counters {
	var d Counters
	if c.Packets > prev.Packets {
		d.Packets = c.Packets - prev.Packets
	}
	if c.Bytes > prev.Bytes {
		d.Bytes = c.Bytes - prev.Bytes
	}
	return d
}

// Key identifies a connection in conntrack: its zone and original tuple.
type Key struct {
	Zone uint16
	Orig Tuple
}

// Conn is one conntrack entry.
type Conn struct {
	Zone  uint16
	Orig  Tuple
	Reply Tuple
	// Counters since the connection started, of the original and the
	// reply direction; meaningful when HasCounters.
	OrigCounters  Counters
	ReplyCounters Counters
	HasCounters   bool
	Mark          uint32
	// LabelLow and LabelHigh are the 128-bit ct_label.
	LabelLow  uint64
	LabelHigh uint64
	// TCPState is conntrack's TCP state (ESTABLISHED, TIME_WAIT, ...);
	// empty for other protocols.
	TCPState string
	// Start is when conntrack created the entry; zero when the datapath
	// does not tell.
	Start time.Time
}

// Key returns the connection's key.
func (c *Conn) Key() Key { return Key{Zone: c.Zone, Orig: c.Orig} }

// DNATed reports whether the connection's destination was translated
// (a Service): the reply does not come from the original destination.
func (c *Conn) DNATed() bool {
	return c.Reply.Src != c.Orig.Dst || c.Reply.SrcPort != c.Orig.DstPort
}

// Closed reports whether a TCP connection has finished (conntrack keeps
// it a while longer).
func (c *Conn) Closed() bool {
	switch c.TCPState {
	case "TIME_WAIT", "CLOSE", "CLOSED":
		return true
	}
	return false
}
