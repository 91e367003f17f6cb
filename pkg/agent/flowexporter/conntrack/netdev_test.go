package conntrack

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-cni/antrea/pkg/agent/flowexporter/connection"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

const (
	statsTable  = 120
	statsCookie = 0x60000000000
)

// fakeSwitch holds learned counter flows and the conntrack dump text.
type fakeSwitch struct {
	flows    []of.FlowStats
	dump     string
	dumpErr  error
	calls    []string
	deleted  [][]of.Flow
	bundleOK bool
}

func (f *fakeSwitch) appctl(_ context.Context, method string, args ...string) (string, error) {
	f.calls = append(f.calls, method+" "+strings.Join(args, " "))
	return f.dump, f.dumpErr
}

func (f *fakeSwitch) DumpFlows(_ context.Context, table int) ([]of.FlowStats, error) {
	f.calls = append(f.calls, fmt.Sprintf("dump-flows %d", table))
	return f.flows, nil
}

func (f *fakeSwitch) Bundle(_ context.Context, add, del []of.Flow) error {
	if !f.bundleOK {
		return errors.New("switch said no")
	}
	f.deleted = append(f.deleted, del)
	return nil
}

// learnedFlow is a flow as the ConnectionStats learn installs it.
func learnedFlow(t connection.Tuple, reply bool, packets, bytes uint64) of.FlowStats {
	state := of.MatchCTState(of.CTTrk, of.CTInv|of.CTRpl)
	if reply {
		state = of.MatchCTState(of.CTTrk|of.CTRpl, of.CTInv)
	}
	return of.FlowStats{Flow: of.Flow{Table: statsTable, Priority: 200, Cookie: statsCookie, Match: []of.MatchField{
		of.MatchEthType(of.EthTypeIPv4), state,
		{Field: of.FieldCTNwProto, Value: []byte{t.Proto}},
		{Field: of.FieldCTNwSrc, Value: t.Src.AsSlice()},
		{Field: of.FieldCTNwDst, Value: t.Dst.AsSlice()},
		{Field: of.FieldCTTpSrc, Value: []byte{byte(t.SrcPort >> 8), byte(t.SrcPort)}},
		{Field: of.FieldCTTpDst, Value: []byte{byte(t.DstPort >> 8), byte(t.DstPort)}},
	}}, PacketCount: packets, ByteCount: bytes}
}

func TestNetdevJoinsCountersAndDeletesLeftoverFlows(t *testing.T) {
	web := tcp("10.10.0.3", 42298, "10.10.0.2", 80)
	svc := tcp("10.10.0.3", 47854, "10.96.134.223", 80)
	gone := tcp("10.10.0.3", 40000, "10.10.0.2", 80)
	ping := connection.Tuple{Proto: 1, Src: addr("10.10.0.3"), Dst: addr("10.10.1.2"), SrcPort: 8} // ct_tp_src is the ICMP type
	sw := &fakeSwitch{bundleOK: true, dump: `
tcp,orig=(src=10.10.0.3,dst=10.10.0.2,sport=42298,dport=80),reply=(src=10.10.0.2,dst=10.10.0.3,sport=80,dport=42298),zone=65520,timeout=29,protoinfo=(state=TIME_WAIT)
tcp,orig=(src=10.10.0.3,dst=10.96.134.223,sport=47854,dport=80),reply=(src=10.10.0.2,dst=10.10.0.3,sport=80,dport=47854),zone=65520,timeout=29,protoinfo=(state=ESTABLISHED)
icmp,orig=(src=10.10.0.3,dst=10.10.1.2,id=5526,type=8,code=0),reply=(src=10.10.1.2,dst=10.10.0.3,id=5526,type=0,code=0),zone=65520,timeout=29
`, flows: []of.FlowStats{
		learnedFlow(web, false, 6, 485), learnedFlow(web, true, 4, 392),
		// The Service connection's flow of the reply direction has not
		// been learned yet.
		learnedFlow(svc, false, 1, 74),
		learnedFlow(ping, false, 2, 196), learnedFlow(ping, true, 2, 196),
		learnedFlow(gone, false, 9, 900), learnedFlow(gone, true, 9, 900),
	}}
	// A flow of another cookie in the table is not ours.
	other := learnedFlow(gone, false, 1, 1)
	other.Cookie = 0x1010000000000
	sw.flows = append(sw.flows, other)

	n := NewNetdev(sw.appctl, sw, 65520, statsTable, statsCookie)
	conns, err := n.Dump(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"dump-flows 120", "dpctl/dump-conntrack -s zone=65520"}, sw.calls, "flows before conntrack")
	require.Len(t, conns, 3)
	assert.Equal(t, web, conns[0].Orig)
	assert.True(t, conns[0].HasCounters)
	assert.Equal(t, connection.Counters{Packets: 6, Bytes: 485}, conns[0].OrigCounters)
	assert.Equal(t, connection.Counters{Packets: 4, Bytes: 392}, conns[0].ReplyCounters)
	assert.Equal(t, connection.Counters{Packets: 1, Bytes: 74}, conns[1].OrigCounters)
	assert.Zero(t, conns[1].ReplyCounters)
	assert.Equal(t, connection.Counters{Packets: 2, Bytes: 196}, conns[2].OrigCounters, "ICMP flows match without the echo id")
	assert.Empty(t, sw.deleted, "a flow without its connection is kept through one dump")

	// The second dump without that connection deletes its flows.
	_, err = n.Dump(context.Background())
	require.NoError(t, err)
	require.Len(t, sw.deleted, 1)
	require.Len(t, sw.deleted[0], 2)
	for _, f := range sw.deleted[0] {
		k, ok := learnedKey(f.Match)
		require.True(t, ok)
		assert.Equal(t, gone, k.orig)
		assert.Equal(t, uint8(statsTable), f.Table)
		assert.Equal(t, uint16(200), f.Priority)
	}
}

func TestNetdevRetriesAFailedDelete(t *testing.T) {
	gone := tcp("10.10.0.3", 40000, "10.10.0.2", 80)
	sw := &fakeSwitch{flows: []of.FlowStats{learnedFlow(gone, false, 1, 60)}}
	n := NewNetdev(sw.appctl, sw, 65520, statsTable, statsCookie)
	for range 2 {
		_, err := n.Dump(context.Background())
		require.NoError(t, err, "a failed delete does not fail the dump")
	}
	assert.Empty(t, sw.deleted)
	sw.bundleOK = true
	_, err := n.Dump(context.Background())
	require.NoError(t, err)
	require.Len(t, sw.deleted, 1, "tried again at the next dump")
}

func TestNetdevErrors(t *testing.T) {
	sw := &fakeSwitch{dumpErr: errors.New("no such socket")}
	_, err := NewNetdev(sw.appctl, sw, 65520, statsTable, statsCookie).Dump(context.Background())
	assert.ErrorContains(t, err, "dump the userspace datapath's conntrack: no such socket")

	sw = &fakeSwitch{dump: "tcp,orig=(src=1.1.1.1\n"}
	_, err = NewNetdev(sw.appctl, sw, 65520, statsTable, statsCookie).Dump(context.Background())
	assert.ErrorContains(t, err, "unclosed")
}
