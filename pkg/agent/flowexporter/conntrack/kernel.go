package conntrack

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ovs-cni/antrea/pkg/agent/flowexporter/connection"
)

// Lister lists the kernel's conntrack table; a netlink.Handle (opened in
// the datapath's network namespace) is one.
type Lister interface {
	ConntrackTableList(table netlink.ConntrackTableType, family netlink.InetFamily) ([]*netlink.ConntrackFlow, error)
}

// Kernel reads the kernel datapath's connections of one zone through
// netlink, with their accounting counters (net.netfilter.nf_conntrack_acct,
// see EnableAccounting) and start time (nf_conntrack_timestamp, when on).
type Kernel struct {
	lister Lister
	zone   uint16
}

// NewKernel reads zone through lister.
func NewKernel(lister Lister, zone uint16) *Kernel { return &Kernel{lister: lister, zone: zone} }

// Dump implements flowexporter.Source. A dump the kernel interrupted
// (the table changed meanwhile) is an error: a connection missing from
// it must not be taken as closed.
func (k *Kernel) Dump(_ context.Context) ([]connection.Conn, error) {
	flows, err := k.lister.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
	if err != nil {
		return nil, fmt.Errorf("dump the kernel's conntrack table: %w", err)
	}
	out := make([]connection.Conn, 0, len(flows))
	for _, f := range flows {
		if f.Zone != k.zone {
			continue
		}
		c, ok := fromNetlink(f)
		if ok {
			out = append(out, c)
		}
	}
	return out, nil
}

// Names of the kernel's TCP conntrack states (enum tcp_conntrack).
var kernelTCPStates = []string{"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2"}

func fromNetlink(f *netlink.ConntrackFlow) (connection.Conn, bool) {
	orig, ok1 := tupleOf(f.Forward)
	reply, ok2 := tupleOf(f.Reverse)
	if !ok1 || !ok2 {
		return connection.Conn{}, false
	}
	c := connection.Conn{
		Zone: f.Zone, Orig: orig, Reply: reply, Mark: f.Mark,
		OrigCounters:  connection.Counters{Packets: f.Forward.Packets, Bytes: f.Forward.Bytes},
		ReplyCounters: connection.Counters{Packets: f.Reverse.Packets, Bytes: f.Reverse.Bytes},
	}
	c.HasCounters = c.OrigCounters != (connection.Counters{}) || c.ReplyCounters != (connection.Counters{})
	if len(f.Labels) == 16 {
		// The kernel's label bitmap: bit n in byte n/8 on the
		// little-endian hosts the agent runs on, as OVS wrote it.
		c.LabelLow = binary.LittleEndian.Uint64(f.Labels[0:8])
		c.LabelHigh = binary.LittleEndian.Uint64(f.Labels[8:16])
	}
	if tcp, ok := f.ProtoInfo.(*netlink.ProtoInfoTCP); ok && int(tcp.State) < len(kernelTCPStates) {
		c.TCPState = kernelTCPStates[tcp.State]
	}
	if f.TimeStart != 0 {
		c.Start = time.Unix(0, int64(f.TimeStart))
	}
	return c, true
}

func tupleOf(t netlink.IPTuple) (connection.Tuple, bool) {
	src, ok1 := netip.AddrFromSlice(t.SrcIP.To4())
	dst, ok2 := netip.AddrFromSlice(t.DstIP.To4())
	if !ok1 || !ok2 {
		return connection.Tuple{}, false
	}
	return connection.Tuple{Proto: t.Protocol, Src: src, Dst: dst, SrcPort: t.SrcPort, DstPort: t.DstPort}, true
}

// AcctSysctl is the kernel switch for conntrack's packet and byte
// counters (per network namespace).
const AcctSysctl = "/proc/sys/net/netfilter/nf_conntrack_acct"

// EnableAccounting turns on the kernel's conntrack counters at path (the
// sysctl AcctSysctl) if they are off, and reports whether it changed it.
// Connections that started before keep no counters.
func EnableAccounting(path string) (bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	if strings.TrimSpace(string(data)) == "1" {
		return false, nil
	}
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
		return false, fmt.Errorf("enable conntrack accounting (%s): %w", path, err)
	}
	return true, nil
}
