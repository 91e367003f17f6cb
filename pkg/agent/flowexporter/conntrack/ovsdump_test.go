package conntrack

import (
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-cni/antrea/pkg/agent/flowexporter/connection"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func tcp(src string, sport uint16, dst string, dport uint16) connection.Tuple {
	return connection.Tuple{Proto: 6, Src: addr(src), SrcPort: sport, Dst: addr(dst), DstPort: dport}
}

// TestParseCapturedNetdevDump parses what OVS 3.1's userspace datapath
// printed in a lab (dpctl/dump-conntrack -s zone=65520): ICMP, UDP, TCP
// with labels, the gateway's mark, a Service's DNAT; no counters.
func TestParseCapturedNetdevDump(t *testing.T) {
	text, err := os.ReadFile("testdata/dump-conntrack-netdev.txt")
	require.NoError(t, err)
	conns, err := ParseDumpConntrack(string(text))
	require.NoError(t, err)
	require.Len(t, conns, 5)

	icmp := conns[0]
	assert.Equal(t, connection.Tuple{Proto: 1, Src: addr("10.10.0.3"), Dst: addr("10.10.1.2"), SrcPort: 5526}, icmp.Orig)
	assert.Equal(t, connection.Tuple{Proto: 1, Src: addr("10.10.1.2"), Dst: addr("10.10.0.3"), SrcPort: 5526}, icmp.Reply)
	assert.Equal(t, uint64(0x80000003_00000007), icmp.LabelLow)
	assert.Zero(t, icmp.LabelHigh)
	assert.Empty(t, icmp.TCPState)

	udp := conns[1]
	assert.Equal(t, connection.Tuple{Proto: 17, Src: addr("10.10.0.3"), SrcPort: 34690, Dst: addr("10.10.0.2"), DstPort: 80}, udp.Orig)

	tcpConn := conns[2]
	assert.Equal(t, uint16(65520), tcpConn.Zone)
	assert.Equal(t, "TIME_WAIT", tcpConn.TCPState)
	assert.True(t, tcpConn.Closed())
	assert.False(t, tcpConn.HasCounters, "the userspace datapath keeps no counters")
	assert.False(t, tcpConn.DNATed())

	gw := conns[3]
	assert.Equal(t, uint32(32), gw.Mark)
	assert.Zero(t, gw.LabelLow)

	svc := conns[4]
	assert.Equal(t, tcp("10.10.0.3", 47854, "10.96.134.223", 80), svc.Orig)
	assert.Equal(t, tcp("10.10.0.2", 80, "10.10.0.3", 47854), svc.Reply)
	assert.True(t, svc.DNATed())
}

func TestParseCapturedVerboseDump(t *testing.T) {
	text, err := os.ReadFile("testdata/dump-conntrack-netdev-m.txt")
	require.NoError(t, err)
	conns, err := ParseDumpConntrack(string(text))
	require.NoError(t, err)
	require.Len(t, conns, 2)
	assert.Equal(t, tcp("10.10.0.3", 47854, "10.96.134.223", 80), conns[0].Orig)
	assert.Equal(t, uint16(65520), conns[0].Zone)
	assert.Empty(t, conns[0].TCPState, "the verbose form has only state_orig and state_reply")
}

func TestParseEntries(t *testing.T) {
	start, err := time.ParseInLocation("2006-01-02T15:04:05.000", "2024-03-01T10:00:01.250", time.Local)
	require.NoError(t, err)
	tests := []struct {
		name    string
		line    string
		want    connection.Conn
		wantErr string
	}{
		{"counters and start, as the kernel datapath prints them",
			"tcp,orig=(src=10.10.0.3,dst=10.10.0.2,sport=42298,dport=80,packets=6,bytes=485),reply=(src=10.10.0.2,dst=10.10.0.3,sport=80,dport=42298,packets=4,bytes=392),start=2024-03-01T10:00:01.250,zone=65520,timeout=431999,labels=0x200000001,protoinfo=(state=ESTABLISHED)",
			connection.Conn{Zone: 65520, Orig: tcp("10.10.0.3", 42298, "10.10.0.2", 80), Reply: tcp("10.10.0.2", 80, "10.10.0.3", 42298),
				OrigCounters: connection.Counters{Packets: 6, Bytes: 485}, ReplyCounters: connection.Counters{Packets: 4, Bytes: 392}, HasCounters: true,
				LabelLow: 0x200000001, TCPState: "ESTABLISHED", Start: start}, ""},
		{"a label above 64 bits", "udp,orig=(src=1.1.1.1,dst=2.2.2.2,sport=1,dport=2),reply=(src=2.2.2.2,dst=1.1.1.1,sport=2,dport=1),labels=0x100000000000000000000000000000003",
			connection.Conn{}, "labels"},
		{"high label bits", "udp,orig=(src=1.1.1.1,dst=2.2.2.2,sport=1,dport=2),reply=(src=2.2.2.2,dst=1.1.1.1,sport=2,dport=1),labels=0x50000000000000003",
			connection.Conn{Orig: connection.Tuple{Proto: 17, Src: addr("1.1.1.1"), Dst: addr("2.2.2.2"), SrcPort: 1, DstPort: 2},
				Reply: connection.Tuple{Proto: 17, Src: addr("2.2.2.2"), Dst: addr("1.1.1.1"), SrcPort: 2, DstPort: 1}, LabelLow: 3, LabelHigh: 5}, ""},
		{"numeric protocol", "47,orig=(src=1.1.1.1,dst=2.2.2.2,sport=0,dport=0),reply=(src=2.2.2.2,dst=1.1.1.1,sport=0,dport=0),zone=7",
			connection.Conn{Zone: 7, Orig: connection.Tuple{Proto: 47, Src: addr("1.1.1.1"), Dst: addr("2.2.2.2")}, Reply: connection.Tuple{Proto: 47, Src: addr("2.2.2.2"), Dst: addr("1.1.1.1")}}, ""},
		{"unknown protocol name", "gre,orig=(src=1.1.1.1,dst=2.2.2.2),reply=(src=2.2.2.2,dst=1.1.1.1)", connection.Conn{}, `protocol "gre"`},
		{"no reply", "tcp,orig=(src=1.1.1.1,dst=2.2.2.2,sport=1,dport=2),zone=1", connection.Conn{}, "no orig or reply"},
		{"bad address", "tcp,orig=(src=1.1.1,dst=2.2.2.2,sport=1,dport=2),reply=(src=2.2.2.2,dst=1.1.1.1,sport=2,dport=1)", connection.Conn{}, `src "1.1.1"`},
		{"unclosed tuple", "tcp,orig=(src=1.1.1.1,dst=2.2.2.2", connection.Conn{}, "unclosed"},
		{"bad zone", "tcp,orig=(src=1.1.1.1,dst=2.2.2.2,sport=1,dport=2),reply=(src=2.2.2.2,dst=1.1.1.1,sport=2,dport=1),zone=x", connection.Conn{}, `zone "x"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conns, err := ParseDumpConntrack(tc.line + "\n")
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				assert.ErrorContains(t, err, "line 1")
				return
			}
			require.NoError(t, err)
			require.Len(t, conns, 1)
			assert.Equal(t, tc.want, conns[0])
		})
	}
}

func TestParseEmpty(t *testing.T) {
	conns, err := ParseDumpConntrack("\n")
	require.NoError(t, err)
	assert.Empty(t, conns)
}
