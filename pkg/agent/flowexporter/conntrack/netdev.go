package conntrack

import (
	"context"
	"fmt"
	"net/netip"

	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/agent/flowexporter/connection"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// Appctl runs a command of ovs-vswitchd's control socket (what
// ovs-appctl does) and returns its output.
type Appctl func(ctx context.Context, method string, args ...string) (string, error)

// FlowStats reads and deletes the learned ConnectionStats flows; the
// agent's OpenFlow connection (openflow.Conn) is one.
type FlowStats interface {
	DumpFlows(ctx context.Context, table int) ([]of.FlowStats, error)
	Bundle(ctx context.Context, add, del []of.Flow) error
}

// Netdev reads the userspace datapath's connections of one zone. That
// conntrack keeps no counters: they come from the two flows per
// connection that the pipeline learns into the ConnectionStats table
// when it commits the connection (openflow.NodeConfig.ConnectionStats).
// Netdev also deletes those flows once their connection has been gone
// from conntrack in two dumps in a row (so that a flow learned between
// the flow dump and the conntrack dump is never taken for a leftover).
type Netdev struct {
	appctl Appctl
	flows  FlowStats
	zone   uint16
	table  uint8
	cookie uint64
	// absent counts the dumps in a row in which a learned flow's
	// connection was not in conntrack.
	absent map[flowKey]int
}

// NewNetdev reads zone through appctl, with the counters of the flows
// of table whose cookie is cookie.
func NewNetdev(appctl Appctl, flows FlowStats, zone uint16, table uint8, cookie uint64) *Netdev {
	return &Netdev{appctl: appctl, flows: flows, zone: zone, table: table, cookie: cookie, absent: map[flowKey]int{}}
}

// flowKey is what a learned flow matches: the original tuple of the
// connection (ICMP without its id, which OVS does not match on), and
// the direction.
type flowKey struct {
	orig  connection.Tuple
	reply bool
}

func keyOf(t connection.Tuple, reply bool) flowKey {
	if t.Proto == 1 || t.Proto == 58 {
		t.SrcPort, t.DstPort = 0, 0
	}
	return flowKey{orig: t, reply: reply}
}

// Dump implements flowexporter.Source.
func (n *Netdev) Dump(ctx context.Context) ([]connection.Conn, error) {
	// Flows first: a flow is learned before its connection is
	// committed, so every connection of the conntrack dump that had a
	// flow at the time of the flow dump is matched.
	stats, err := n.flows.DumpFlows(ctx, int(n.table))
	if err != nil {
		return nil, fmt.Errorf("dump connection counter flows: %w", err)
	}
	text, err := n.appctl(ctx, "dpctl/dump-conntrack", "-s", fmt.Sprintf("zone=%d", n.zone))
	if err != nil {
		return nil, fmt.Errorf("dump the userspace datapath's conntrack: %w", err)
	}
	conns, err := ParseDumpConntrack(text)
	if err != nil {
		return nil, err
	}
	counters := make(map[flowKey]connection.Counters, len(stats))
	learned := make(map[flowKey]of.Flow, len(stats))
	for _, fs := range stats {
		if fs.Cookie != n.cookie {
			continue
		}
		k, ok := learnedKey(fs.Match)
		if !ok {
			continue
		}
		counters[k] = connection.Counters{Packets: fs.PacketCount, Bytes: fs.ByteCount}
		learned[k] = of.Flow{Table: fs.Table, Priority: fs.Priority, Match: fs.Match}
	}
	out := conns[:0]
	seen := make(map[flowKey]bool, 2*len(conns))
	for _, c := range conns {
		if c.Zone != n.zone {
			continue
		}
		ko, kr := keyOf(c.Orig, false), keyOf(c.Orig, true)
		seen[ko], seen[kr] = true, true
		o, okO := counters[ko]
		r, okR := counters[kr]
		if !c.HasCounters && (okO || okR) {
			c.OrigCounters, c.ReplyCounters, c.HasCounters = o, r, true
		}
		out = append(out, c)
	}
	var stale []of.Flow
	for k, f := range learned {
		if seen[k] {
			delete(n.absent, k)
			continue
		}
		n.absent[k]++
		if n.absent[k] >= 2 {
			stale = append(stale, f)
		}
	}
	for k := range n.absent {
		if _, ok := learned[k]; !ok {
			delete(n.absent, k)
		}
	}
	if len(stale) > 0 {
		if err := n.flows.Bundle(ctx, nil, stale); err != nil {
			// Not fatal: they are tried again at the next dump.
			klog.ErrorS(err, "Deleting the counter flows of closed connections failed", "flows", len(stale))
		} else {
			for _, f := range stale {
				k, _ := learnedKey(f.Match)
				delete(n.absent, k)
			}
			klog.V(4).InfoS("Deleted the counter flows of closed connections", "flows", len(stale))
		}
	}
	return out, nil
}

// learnedKey reads the connection and direction a learned flow counts.
func learnedKey(match []of.MatchField) (flowKey, bool) {
	var k flowKey
	var have int
	for _, m := range match {
		switch m.Field {
		case of.FieldCTNwProto:
			if len(m.Value) == 1 {
				k.orig.Proto = m.Value[0]
				have++
			}
		case of.FieldCTNwSrc:
			if a, ok := netip.AddrFromSlice(m.Value); ok {
				k.orig.Src = a
				have++
			}
		case of.FieldCTNwDst:
			if a, ok := netip.AddrFromSlice(m.Value); ok {
				k.orig.Dst = a
				have++
			}
		case of.FieldCTTpSrc:
			if len(m.Value) == 2 {
				k.orig.SrcPort = uint16(m.Value[0])<<8 | uint16(m.Value[1])
			}
		case of.FieldCTTpDst:
			if len(m.Value) == 2 {
				k.orig.DstPort = uint16(m.Value[0])<<8 | uint16(m.Value[1])
			}
		case of.FieldCTState:
			if len(m.Value) == 4 {
				k.reply = m.Value[3]&byte(of.CTRpl) != 0
			}
		}
	}
	if have != 3 {
		return k, false
	}
	return keyOf(k.orig, k.reply), true
}
