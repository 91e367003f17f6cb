package conntrack

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ovs-cni/antrea/pkg/agent/flowexporter/connection"
	"github.com/ovs-cni/antrea/pkg/lab/netnsutil"
)

type fakeLister struct {
	flows []*netlink.ConntrackFlow
	err   error
}

func (f fakeLister) ConntrackTableList(netlink.ConntrackTableType, netlink.InetFamily) ([]*netlink.ConntrackFlow, error) {
	return f.flows, f.err
}

func ipTuple(proto uint8, src string, sport uint16, dst string, dport uint16, packets, bytes uint64) netlink.IPTuple {
	return netlink.IPTuple{Protocol: proto, SrcIP: net.ParseIP(src), SrcPort: sport, DstIP: net.ParseIP(dst), DstPort: dport, Packets: packets, Bytes: bytes}
}

func TestKernelConvertsAndFiltersByZone(t *testing.T) {
	started := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	labels := make([]byte, 16)
	labels[0] = 0x07 // egress rule 7
	labels[4] = 0x03 // ingress rule 0x80000003
	labels[7] = 0x80
	flows := []*netlink.ConntrackFlow{
		{Zone: 65520, Mark: 0x20, Labels: labels, TimeStart: uint64(started.UnixNano()), ProtoInfo: &netlink.ProtoInfoTCP{State: 3},
			Forward: ipTuple(6, "10.10.0.3", 47854, "10.96.0.10", 80, 6, 485),
			Reverse: ipTuple(6, "10.10.1.2", 80, "10.10.0.3", 47854, 4, 392)},
		// Another zone (the hairpin SNAT zone, or the host's own).
		{Zone: 0, Forward: ipTuple(17, "172.18.0.11", 53000, "172.18.0.2", 53, 1, 60), Reverse: ipTuple(17, "172.18.0.2", 53, "172.18.0.11", 53000, 1, 90)},
		// Without accounting: no counters, no start.
		{Zone: 65520, ProtoInfo: &netlink.ProtoInfoTCP{State: 7},
			Forward: ipTuple(6, "10.10.0.3", 40000, "10.10.0.2", 80, 0, 0), Reverse: ipTuple(6, "10.10.0.2", 80, "10.10.0.3", 40000, 0, 0)},
	}
	conns, err := NewKernel(fakeLister{flows: flows}, 65520).Dump(context.Background())
	require.NoError(t, err)
	require.Len(t, conns, 2)
	assert.Equal(t, connection.Conn{
		Zone: 65520, Mark: 0x20,
		Orig:         tcp("10.10.0.3", 47854, "10.96.0.10", 80),
		Reply:        tcp("10.10.1.2", 80, "10.10.0.3", 47854),
		OrigCounters: connection.Counters{Packets: 6, Bytes: 485}, ReplyCounters: connection.Counters{Packets: 4, Bytes: 392}, HasCounters: true,
		LabelLow: 0x80000003_00000007, TCPState: "ESTABLISHED", Start: time.Unix(0, started.UnixNano()),
	}, conns[0])
	assert.False(t, conns[1].HasCounters)
	assert.Equal(t, "TIME_WAIT", conns[1].TCPState)
	assert.True(t, conns[1].Closed())
	assert.True(t, conns[1].Start.IsZero())
}

func TestKernelInterruptedDumpIsAnError(t *testing.T) {
	_, err := NewKernel(fakeLister{err: netlink.ErrDumpInterrupted}, 65520).Dump(context.Background())
	assert.ErrorIs(t, err, netlink.ErrDumpInterrupted)
}

func TestEnableAccounting(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nf_conntrack_acct")
	require.NoError(t, os.WriteFile(p, []byte("0\n"), 0o644))
	changed, err := EnableAccounting(p)
	require.NoError(t, err)
	assert.True(t, changed)
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "1", string(data))
	changed, err = EnableAccounting(p)
	require.NoError(t, err)
	assert.False(t, changed)
	_, err = EnableAccounting(filepath.Join(t.TempDir(), "missing"))
	assert.ErrorContains(t, err, "missing")
}

// TestKernelDumpInANetns runs the netlink path against a real kernel
// conntrack table, in a network namespace of its own: nftables puts the
// namespace's connections in zone 65520 with a mark and label bits 0 and
// 33 (egress rule 1, ingress rule 2 in our layout), as the OVS kernel
// datapath's commit would, and a TCP connection over loopback carries a
// known amount of data.
func TestKernelDumpInANetns(t *testing.T) {
	name := fmt.Sprintf("fexp-ct-%d", os.Getpid())
	require.NoError(t, netnsutil.Create(name))
	t.Cleanup(func() { _ = netnsutil.Delete(name) })
	rules := `table inet fexp {
  chain pre { type filter hook prerouting priority -300; ct zone set 65520; }
  chain out { type filter hook output priority -300; ct zone set 65520; }
  chain post { type filter hook postrouting priority 0; ct mark set 0x20; ct label set 0; ct label set 33; }
}`
	cmd := exec.Command("ip", "netns", "exec", name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "nft: %s", out)
	require.NoError(t, netnsutil.Do(name, func() error {
		_, err := EnableAccounting(AcctSysctl)
		return err
	}))

	var ln net.Listener
	require.NoError(t, netnsutil.Do(name, func() (err error) {
		ln, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	}))
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = io.CopyN(io.Discard, c, 10000)
			_, _ = c.Write(make([]byte, 3000))
			accepted <- c
		}
	}()
	var client net.Conn
	require.NoError(t, netnsutil.Do(name, func() (err error) {
		client, err = net.Dial("tcp4", ln.Addr().String())
		return err
	}))
	defer client.Close()
	_, err = client.Write(make([]byte, 10000))
	require.NoError(t, err)
	_, err = io.ReadFull(client, make([]byte, 3000))
	require.NoError(t, err)
	server := <-accepted
	defer server.Close()

	h, err := netns.GetFromName(name)
	require.NoError(t, err)
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	require.NoError(t, err)
	defer nl.Close()
	conns, err := NewKernel(nl, 65520).Dump(context.Background())
	require.NoError(t, err)
	local := client.LocalAddr().(*net.TCPAddr)
	var found *connection.Conn
	for i := range conns {
		if conns[i].Orig.SrcPort == uint16(local.Port) {
			found = &conns[i]
		}
	}
	require.NotNil(t, found, "the connection is in zone 65520: %+v", conns)
	assert.Equal(t, "127.0.0.1", found.Orig.Src.String())
	assert.Equal(t, uint16(ln.Addr().(*net.TCPAddr).Port), found.Orig.DstPort)
	assert.Equal(t, "ESTABLISHED", found.TCPState)
	assert.Equal(t, uint32(0x20), found.Mark)
	assert.Equal(t, uint64(1<<0|1<<33), found.LabelLow)
	assert.True(t, found.HasCounters)
	// Payload plus TCP/IP headers (the handshake included).
	assert.GreaterOrEqual(t, found.OrigCounters.Bytes, uint64(10000))
	assert.Less(t, found.OrigCounters.Bytes, uint64(12000))
	assert.GreaterOrEqual(t, found.ReplyCounters.Bytes, uint64(3000))
	assert.Less(t, found.ReplyCounters.Bytes, uint64(4000))
	assert.GreaterOrEqual(t, found.OrigCounters.Packets, uint64(3))
}
