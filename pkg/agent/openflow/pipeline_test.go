package openflow

import (
	"context"
	"errors"
	"flag"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

var update = flag.Bool("update", false, "rewrite golden files")

var testNode = NodeConfig{
	GatewayOFPort: 2,
	TunnelOFPort:  1,
	GatewayMAC:    net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01},
	GatewayIP:     netip.MustParseAddr("10.10.0.1"),
	PodCIDR:       netip.MustParsePrefix("10.10.0.0/24"),
}

var testPod = PodPort{OFPort: 3, MAC: net.HardwareAddr{0x02, 0, 0, 0, 0, 0x03}, IP: netip.MustParseAddr("10.10.0.3")}

var testRemote = RemoteNode{
	PodCIDR:   netip.MustParsePrefix("10.10.1.0/24"),
	GatewayIP: netip.MustParseAddr("10.10.1.1"),
	NodeIP:    netip.MustParseAddr("172.18.0.12"),
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create %s", path)
	assert.Equal(t, string(want), got)
}

type recordingBundler struct {
	adds, dels [][]of.Flow
	fail       error
}

func (r *recordingBundler) Bundle(_ context.Context, add, del []of.Flow) error {
	if r.fail != nil {
		err := r.fail
		r.fail = nil
		return err
	}
	r.adds = append(r.adds, add)
	r.dels = append(r.dels, del)
	return nil
}

func TestPipelineGolden(t *testing.T) {
	b := &recordingBundler{}
	s := NewFlowSyncer(b, 1)
	ctx := context.Background()
	require.NoError(t, s.Sync(ctx, "base", CategoryBase, BaseFlows(testNode)))
	require.NoError(t, s.Sync(ctx, "pod/c3", CategoryPod, PodFlows(testNode, testPod)))
	require.NoError(t, s.Sync(ctx, "node/node-2", CategoryNode, RemoteNodeFlows(testNode, testRemote)))
	require.NoError(t, s.Sync(ctx, "traceflow/tf", CategoryTraceflow, TraceflowReceiveFlows(testNode,
		TraceflowTag{DSCP: 7, SrcIP: netip.MustParseAddr("10.10.1.5"), Protocol: of.ProtoTCP})))
	golden(t, "pipeline.golden", s.Dump())
}

// TestPipelineGoldenConnectionStats is the base pipeline of a node whose
// flow exporter counts connections through learned flows (userspace
// datapath): only the commit flows of table 105 and the output flow of
// table 110 differ from pipeline.golden.
func TestPipelineGoldenConnectionStats(t *testing.T) {
	b := &recordingBundler{}
	s := NewFlowSyncer(b, 1)
	n := testNode
	n.ConnectionStats = true
	require.NoError(t, s.Sync(context.Background(), "base", CategoryBase, BaseFlows(n)))
	golden(t, "pipeline_connection_stats.golden", s.Dump())

	plain := map[string]string{}
	for _, f := range BaseFlows(testNode) {
		plain[f.Key()] = of.ActionsString(f.Actions)
	}
	var changed []string
	for _, f := range BaseFlows(n) {
		require.Contains(t, plain, f.Key(), "counting connections adds no flow of its own")
		if plain[f.Key()] != of.ActionsString(f.Actions) {
			changed = append(changed, f.Key())
		}
	}
	assert.ElementsMatch(t, []string{
		"table=105,priority=200,reg0=0x1/0xffff,ct_state=+new+trk,dl_type=0x800",
		"table=105,priority=190,ct_state=+new+trk,dl_type=0x800",
		"table=110,priority=200,reg0=0x10000/0x10000,dl_type=0x800",
	}, changed)
}

func TestCTLabelFields(t *testing.T) {
	label := uint64(0x80000003_00000007)
	assert.Equal(t, uint64(7), EgressRuleLabel.Of(label))
	assert.Equal(t, uint64(0x80000003), IngressRuleLabel.Of(label))
	assert.Equal(t, uint64(0x80000003_00000007), CTLabelField{Start: 0, End: 63}.Of(label))
}

func TestTraceflowDropReport(t *testing.T) {
	for _, tc := range []struct {
		name string
		drop of.Flow
		want string
	}{
		{"ingress isolation: the bit joins the match",
			of.Flow{Table: IngressDefaultTable.ID, Priority: 100, Match: []of.MatchField{of.MatchEthType(of.EthTypeIPv4), OutputPortReg.Match(3)}},
			"table=100,priority=101,reg1=0x3,reg0=0x40000/0x40000,dl_type=0x800 actions=CONTROLLER"},
		{"a drop that matches reg0 already: one reg0 match with both",
			of.Flow{Table: IngressRuleTable.ID, Priority: 205, Match: []of.MatchField{of.MatchEthType(of.EthTypeIPv4), PortTypeField.Match(PortTypeGateway)}},
			"table=90,priority=206,reg0=0x40001/0x4ffff,dl_type=0x800 actions=CONTROLLER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, TraceflowDropReport(tc.drop).String())
		})
	}
}

func TestTablesAreOrderedAndMissesGoForward(t *testing.T) {
	for i, tbl := range Tables {
		if i > 0 {
			assert.Greater(t, tbl.ID, Tables[i-1].ID, "tables are declared in pipeline order")
		}
		if !tbl.MissDrop {
			assert.Greater(t, tbl.Miss, tbl.ID, "table %s misses forward", tbl.Name)
			assert.NotEmpty(t, TableName(tbl.Miss), "table %s misses to a declared table", tbl.Name)
		}
	}
}

func TestSyncDiffs(t *testing.T) {
	b := &recordingBundler{}
	s := NewFlowSyncer(b, 7)
	ctx := context.Background()
	flows := PodFlows(testNode, testPod)
	require.NoError(t, s.Sync(ctx, "pod/c3", CategoryPod, flows))
	require.Len(t, b.adds, 1)
	assert.Len(t, b.adds[0], len(flows))
	for _, f := range b.adds[0] {
		assert.Equal(t, uint64(7), f.Cookie>>RoundShift, "flows carry the round in their cookie")
	}

	// The same desired state sends nothing.
	require.NoError(t, s.Sync(ctx, "pod/c3", CategoryPod, flows))
	assert.Len(t, b.adds, 1)

	// A changed MAC changes only the flows that mention it.
	moved := testPod
	moved.MAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x33}
	require.NoError(t, s.Sync(ctx, "pod/c3", CategoryPod, PodFlows(testNode, moved)))
	require.Len(t, b.adds, 2)
	assert.Len(t, b.adds[1], 5, "classifier flow unchanged")
	assert.Len(t, b.dels[1], 3, "old spoofguard and L2 flows whose match changed")

	// Delete removes everything of the owner.
	require.NoError(t, s.Delete(ctx, "pod/c3"))
	assert.Len(t, b.dels[2], len(flows))
	assert.Empty(t, s.Owners())
}

func TestSyncFailureKeepsCacheForRetry(t *testing.T) {
	b := &recordingBundler{fail: errors.New("bundle rejected")}
	s := NewFlowSyncer(b, 1)
	ctx := context.Background()
	err := s.Sync(ctx, "base", CategoryBase, BaseFlows(testNode))
	require.ErrorContains(t, err, "bundle rejected")
	assert.Empty(t, s.Flows(), "nothing is recorded as installed after a failed bundle")
	require.NoError(t, s.Sync(ctx, "base", CategoryBase, BaseFlows(testNode)))
	assert.Len(t, b.adds[0], len(BaseFlows(testNode)), "the retry sends the whole change")
}

func TestSharedFlowStaysWhileAnotherOwnerNeedsIt(t *testing.T) {
	b := &recordingBundler{}
	s := NewFlowSyncer(b, 1)
	ctx := context.Background()
	shared := arpResponder(netip.MustParseAddr("10.10.1.1"), GlobalVirtualMAC)
	require.NoError(t, s.Sync(ctx, "a", CategoryNode, []of.Flow{shared}))
	require.NoError(t, s.Sync(ctx, "b", CategoryNode, []of.Flow{shared}))
	require.NoError(t, s.Delete(ctx, "a"))
	assert.Contains(t, s.Dump(), "arp_tpa=10.10.1.1")
	for _, d := range b.dels {
		assert.Empty(t, d)
	}
}

func TestReplayInstallsEverything(t *testing.T) {
	b := &recordingBundler{}
	s := NewFlowSyncer(b, 1)
	ctx := context.Background()
	require.NoError(t, s.Sync(ctx, "base", CategoryBase, BaseFlows(testNode)))
	require.NoError(t, s.Sync(ctx, "pod/c3", CategoryPod, PodFlows(testNode, testPod)))
	require.NoError(t, s.Replay(ctx))
	last := b.adds[len(b.adds)-1]
	assert.Equal(t, len(BaseFlows(testNode))+len(PodFlows(testNode, testPod)), len(last))
	assert.Equal(t, strings.Count(s.Dump(), "\n"), len(last))
}

// blockingBundler holds the first Bundle call until released, as a
// connection that is down holds a request.
type blockingBundler struct {
	recordingBundler
	release chan struct{}
	calls   int
	mu      sync.Mutex
}

func (b *blockingBundler) Bundle(ctx context.Context, add, del []of.Flow) error {
	b.mu.Lock()
	b.calls++
	first := b.calls == 1
	b.mu.Unlock()
	if first {
		<-b.release
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.recordingBundler.Bundle(ctx, add, del)
}

// TestReplayWhileSyncWaits is the reconnect case: a Sync waits for the
// connection, and the connection's on-connect hook replays the cache. The
// replay must not wait for the Sync (it would never finish).
func TestReplayWhileSyncWaits(t *testing.T) {
	b := &blockingBundler{release: make(chan struct{})}
	b.calls = 1 // the first Sync below goes through
	s := NewFlowSyncer(b, 1)
	ctx := context.Background()
	require.NoError(t, s.Sync(ctx, "base", CategoryBase, BaseFlows(testNode)))
	b.calls = 0 // the next call blocks

	syncDone := make(chan error, 1)
	go func() { syncDone <- s.Sync(ctx, "pod/c3", CategoryPod, PodFlows(testNode, testPod)) }()
	require.Eventually(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return b.calls == 1 }, time.Second, time.Millisecond)

	replayDone := make(chan error, 1)
	go func() { replayDone <- s.Replay(ctx) }()
	select {
	case err := <-replayDone:
		require.NoError(t, err)
	case <-time.After(2 * time.Second):
		t.Fatal("Replay waited for the Sync that waits for the connection: deadlock")
	}
	close(b.release)
	require.NoError(t, <-syncDone)
	assert.Contains(t, s.Dump(), "in_port=3", "the pod's flows are cached once their bundle applied")
}
