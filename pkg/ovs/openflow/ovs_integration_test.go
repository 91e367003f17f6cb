package openflow

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-cni/antrea/pkg/ovs/ovstest"
)

const testBridge = "br-int"

// startOVS runs a private OVS with a netdev bridge and a Conn to it that
// is connected (Run going) when it returns.
func startOVS(t testing.TB, onConnect func(ctx context.Context, c *Conn) error) (*ovstest.OVS, *Conn) {
	t.Helper()
	return startOVSWith(t, func(c *Conn) {
		if onConnect != nil {
			c.onConnect = func(ctx context.Context) error { return onConnect(ctx, c) }
		}
	})
}

// startOVSWith is startOVS with setup run on the Conn before Run.
func startOVSWith(t testing.TB, setup func(c *Conn)) (*ovstest.OVS, *Conn) {
	t.Helper()
	o := ovstest.Start(t)
	o.Vsctl(t, "add-br", testBridge, "--", "set", "bridge", testBridge, "datapath_type=netdev")
	c := NewConn(o.MgmtSocket(testBridge), nil)
	setup(c)
	c.MinBackoff = 20 * time.Millisecond
	c.MaxBackoff = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	require.NoError(t, c.WaitConnected(wctx))
	return o, c
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var statsRE = regexp.MustCompile(`(duration|n_packets|n_bytes|idle_age|hard_age)=[^,]*, ?`)

// dumpFlows returns ovs-ofctl's flows of the bridge, without statistics,
// sorted, one per line.
func dumpFlows(t testing.TB, o *ovstest.OVS, args ...string) []string {
	t.Helper()
	out := o.Ofctl(t, "dump-flows", testBridge, args...)
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(statsRE.ReplaceAllString(l, ""))
		if l == "" || strings.HasPrefix(l, "OFPST_FLOW") || strings.HasPrefix(l, "NXST_FLOW") {
			continue
		}
		lines = append(lines, l)
	}
	sort.Strings(lines)
	return lines
}

// dumpGroups returns ovs-ofctl's groups of the bridge, sorted.
func dumpGroups(t testing.TB, o *ovstest.OVS) []string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(o.Ofctl(t, "dump-groups", testBridge), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "OFPST_GROUP_DESC") {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return lines
}

// ofctl runs ovs-ofctl against the bridge and returns its output and
// error, for commands expected to fail.
func ofctl(o *ovstest.OVS, cmd string, args ...string) (string, error) {
	full := append([]string{"-O", "OpenFlow15", cmd, "unix:" + o.MgmtSocket(testBridge)}, args...)
	out, err := exec.Command("ovs-ofctl", full...).CombinedOutput()
	return string(out), err
}

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func ip4(s string) []byte { return netip.MustParseAddr(s).AsSlice() }

func u8(v uint8) *uint8 { return &v }

// pipelineFlows covers every match and action kind the encoder knows.
func pipelineFlows() ([]Flow, []GroupEntry, []string) {
	gw := mac("aa:bb:cc:dd:ee:ff")
	flows := []Flow{
		{Table: 10, Priority: 200, Cookie: 0x1000, Match: []MatchField{
			MatchInPort(3), MatchEthType(EthTypeARP), MatchARPOp(1), MatchARPTpa(netip.MustParseAddr("10.0.0.1"))},
			Actions: []Action{
				Move{Src: FieldEthSrc, Dst: FieldEthDst, NBits: 48},
				SetField{Field: FieldEthSrc, Value: gw},
				LoadReg{Field: FieldARPOp, Start: 0, End: 15, Value: 2},
				Move{Src: FieldARPSha, Dst: FieldARPTha, NBits: 48},
				SetField{Field: FieldARPSha, Value: gw},
				Move{Src: FieldARPSpa, Dst: FieldARPTpa, NBits: 32},
				SetField{Field: FieldARPSpa, Value: ip4("10.0.0.1")},
				Output{Port: PortInPort},
			}},
		{Table: 20, Priority: 100, Match: []MatchField{MatchEthType(EthTypeIPv4), MatchCTState(0, CTTrk)},
			Actions: []Action{CT{Zone: 65520, Table: u8(21), NAT: &NAT{}}}},
		{Table: 21, Priority: 100, Match: []MatchField{MatchEthType(EthTypeIPv4), MatchCTState(CTTrk|CTNew, CTEst)},
			Actions: []Action{
				CT{Commit: true, Zone: 65520, Exec: []Action{LoadReg{Field: FieldCTMark, Start: 0, End: 7, Value: 1}}},
				GotoTable{Table: 30}}},
		{Table: 21, Priority: 90, Match: []MatchField{MatchEthType(EthTypeIPv4), MatchIPProto(ProtoTCP)},
			Actions: []Action{CT{Commit: true, Zone: 65521, NAT: &NAT{SNAT: true, IPMin: ip4("10.0.0.1"), IPMax: ip4("10.0.0.2"), PortMin: 1000, PortMax: 2000}}}},
		{Table: 21, Priority: 80, Match: []MatchField{MatchEthType(EthTypeIPv4), MatchIPProto(ProtoUDP)},
			Actions: []Action{CT{Commit: true, Zone: 1, Table: u8(22), NAT: &NAT{DNAT: true, IPMin: ip4("10.96.0.10"), PortMin: 53}}}},
		{Table: 40, Priority: 200, Match: []MatchField{MatchEthType(EthTypeIPv4), MatchIPSrc(netip.MustParsePrefix("10.1.0.0/16"))},
			Actions: []Action{Conjunction{ID: 7, Clause: 1, NClauses: 2}}},
		{Table: 40, Priority: 200, Match: []MatchField{MatchEthType(EthTypeIPv4), MatchIPProto(ProtoTCP), MatchL4Dst(ProtoTCP, 80, 0)},
			Actions: []Action{Conjunction{ID: 7, Clause: 2, NClauses: 2}}},
		{Table: 40, Priority: 200, Match: []MatchField{MatchConjID(7), MatchEthType(EthTypeIPv4)},
			Actions: []Action{LoadReg{Field: Reg(3), Start: 0, End: 31, Value: 7}, Resubmit{Table: 50}}},
		{Table: 50, Priority: 100, Match: []MatchField{MatchReg(0, 0x10000, 0x10000)},
			Actions: []Action{OutputReg{Reg: 1, Start: 0, End: 15}}},
		{Table: 60, Priority: 100, Cookie: 0x2000, IdleTimeout: 300, Match: []MatchField{
			{Field: FieldTunID, Value: be(0x64, 8)},
			{Field: FieldTunSrc, Value: ip4("192.168.0.1")},
			MatchTunDst(netip.MustParseAddr("192.168.0.2")),
			{Field: FieldPktMark, Value: be(0x5, 4)},
			MatchCTMark(0x1, 0xff),
			{Field: FieldCTZone, Value: be(65520, 2)},
			MatchEthType(EthTypeIPv4),
			MatchIPDst(netip.MustParsePrefix("10.10.0.0/24"))},
			Actions: []Action{SetField{Field: FieldTunDst, Value: ip4("192.168.0.9")}, DecTTL{}, Group{ID: 5}}},
		{Table: 60, Priority: 90, Match: []MatchField{MatchEthType(EthTypeIPv4), MatchIPProto(ProtoUDP), MatchL4Dst(ProtoUDP, 0x1000, 0xf000)},
			Actions: []Action{Output{Port: PortController}}},
		{Table: 60, Priority: 80, Match: []MatchField{MatchEthType(EthTypeIPv4), MatchIPProto(ProtoSCTP), MatchL4Dst(ProtoSCTP, 9, 0)},
			Actions: []Action{Output{Port: PortLocal}}},
		{Table: 60, Priority: 70, Match: []MatchField{MatchEthType(EthTypeIPv4), MatchIPProto(ProtoICMP), {Field: FieldICMPType, Value: []byte{8}}},
			Actions: []Action{Output{Port: 4}}},
		{Table: 60, Priority: 60, Match: []MatchField{MatchEthType(EthTypeARP), MatchARPSha(gw), {Field: FieldARPTha, Value: mac("00:00:00:00:00:01")},
			MatchARPSpa(netip.MustParseAddr("10.0.0.2")), MatchEthSrc(gw), MatchEthDst(mac("ff:ff:ff:ff:ff:ff"))},
			Actions: []Action{LoadReg{Field: FieldPktMark, Start: 0, End: 31, Value: 9}, Move{Src: Reg(2), Dst: FieldTunID, NBits: 32}, Resubmit{Table: 70}}},
		{Table: 80, Priority: 211, Match: []MatchField{MatchCTState(CTEst, CTNew), MatchCTLabelBits(32, 32, 7), MatchEthType(EthTypeIPv4)},
			Actions: []Action{Resubmit{Table: 70}}},
		{Table: 70, Priority: 0},
	}
	groups := []GroupEntry{
		{ID: 5, Type: GroupSelect, Buckets: []Bucket{
			{Weight: 100, Actions: []Action{LoadReg{Field: Reg(3), Start: 0, End: 31, Value: 0x0a000001}, Resubmit{Table: 70}}},
			{Weight: 50, Actions: []Action{Output{Port: 2}}}}},
		{ID: 6, Type: GroupAll, Buckets: []Bucket{{Actions: []Action{Output{Port: 1}}}, {Actions: []Action{Output{Port: 2}}}}},
	}
	// As ovs-ofctl -O OpenFlow15 dump-flows prints them, sorted.
	want := []string{
		"cookie=0x0, table=20, priority=100,ct_state=-trk,ip actions=ct(table=21,zone=65520,nat)",
		"cookie=0x0, table=21, priority=100,ct_state=+new-est+trk,ip actions=ct(commit,zone=65520,exec(set_field:0x1/0xff->ct_mark)),goto_table:30",
		"cookie=0x0, table=21, priority=80,udp actions=ct(commit,table=22,zone=1,nat(dst=10.96.0.10:53))",
		"cookie=0x0, table=21, priority=90,tcp actions=ct(commit,zone=65521,nat(src=10.0.0.1-10.0.0.2:1000-2000))",
		"cookie=0x0, table=40, priority=200,conj_id=7,ip actions=set_field:0x7->reg3,resubmit(,50)",
		"cookie=0x0, table=40, priority=200,ip,nw_src=10.1.0.0/16 actions=conjunction(7,1/2)",
		"cookie=0x0, table=40, priority=200,tcp,tp_dst=80 actions=conjunction(7,2/2)",
		"cookie=0x0, table=50, priority=100,reg0=0x10000/0x10000 actions=output:NXM_NX_REG1[0..15]",
		"cookie=0x0, table=60, priority=60,arp,dl_src=aa:bb:cc:dd:ee:ff,dl_dst=ff:ff:ff:ff:ff:ff,arp_spa=10.0.0.2,arp_sha=aa:bb:cc:dd:ee:ff,arp_tha=00:00:00:00:00:01 actions=set_field:0x9->pkt_mark,move:NXM_NX_REG2[]->NXM_NX_TUN_ID[0..31],resubmit(,70)",
		"cookie=0x0, table=60, priority=70,icmp,icmp_type=8 actions=output:4",
		"cookie=0x0, table=60, priority=80,sctp,tp_dst=9 actions=LOCAL",
		"cookie=0x0, table=60, priority=90,udp,tp_dst=0x1000/0xf000 actions=CONTROLLER:65535",
		"cookie=0x0, table=70, priority=0 actions=drop",
		"cookie=0x0, table=80, priority=211,ct_state=-new+est,ct_label=0x700000000/0xffffffff00000000,ip actions=resubmit(,70)",
		"cookie=0x1000, table=10, priority=200,arp,in_port=3,arp_tpa=10.0.0.1,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:aa:bb:cc:dd:ee:ff->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:aa:bb:cc:dd:ee:ff->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.0.0.1->arp_spa,IN_PORT",
		"cookie=0x2000, table=60, idle_timeout=300, priority=100,pkt_mark=0x5,ct_zone=65520,ct_mark=0x1/0xff,ip,tun_id=0x64,tun_src=192.168.0.1,tun_dst=192.168.0.2,nw_dst=10.10.0.0/24 actions=set_field:192.168.0.9->tun_dst,dec_ttl,group:5",
	}
	return flows, groups, want
}

func TestIntegrationPipelineFlows(t *testing.T) {
	o, c := startOVS(t, nil)
	ctx := testCtx(t)
	flows, groups, want := pipelineFlows()
	require.NoError(t, c.Apply(ctx, Change{AddGroups: groups, AddFlows: flows, DelFlows: []Flow{{Table: 0, Priority: 0}}}))
	assert.Equal(t, want, dumpFlows(t, o))
	// DumpFlows decodes every match back to the same Key.
	stats, err := c.DumpFlows(ctx, -1)
	require.NoError(t, err)
	var gotKeys, wantKeys []string
	for _, fs := range stats {
		gotKeys = append(gotKeys, fs.Key())
	}
	for _, f := range flows {
		wantKeys = append(wantKeys, f.Key())
	}
	assert.ElementsMatch(t, wantKeys, gotKeys)
	assert.Equal(t, []string{
		"group_id=5,type=select,bucket=bucket_id:0,weight:100,actions=set_field:0xa000001->reg3,resubmit(,70),bucket=bucket_id:1,weight:50,actions=output:2",
		"group_id=6,type=all,bucket=bucket_id:0,actions=output:1,bucket=bucket_id:1,actions=output:2",
	}, dumpGroups(t, o))

	// Installing the same set again replaces, modify-strict changes
	// actions, deleting groups removes the flows using them.
	require.NoError(t, c.Apply(ctx, Change{AddGroups: groups, AddFlows: flows}))
	mod := flows[len(flows)-1]
	mod.Actions = []Action{Output{Port: 7}}
	require.NoError(t, c.Apply(ctx, Change{ModFlows: []Flow{mod}, DelGroups: []uint32{5, 6}}))
	got := dumpFlows(t, o)
	assert.Len(t, got, len(want)-1)
	assert.Contains(t, got, "cookie=0x0, table=70, priority=0 actions=output:7")
	assert.Empty(t, dumpGroups(t, o))
}

func TestIntegrationBundleAtomic(t *testing.T) {
	o, c := startOVS(t, nil)
	ctx := testCtx(t)
	good := Flow{Table: 0, Priority: 10, Match: []MatchField{MatchInPort(1)}, Actions: []Action{Output{Port: 2}}}
	require.NoError(t, c.Bundle(ctx, []Flow{good}, nil))
	before := dumpFlows(t, o)

	// nw_src without dl_type=ip violates a prerequisite: OVS rejects it
	// when the bundle add arrives.
	bad := Flow{Table: 0, Priority: 20, Match: []MatchField{MatchIPSrc(netip.MustParsePrefix("10.0.0.0/8"))}, Actions: []Action{Output{Port: 3}}}
	other := Flow{Table: 1, Priority: 10, Actions: []Action{Output{Port: 4}}}
	err := c.Bundle(ctx, []Flow{other, bad}, []Flow{good})
	require.Error(t, err)
	var ofErr *Error
	require.ErrorAs(t, err, &ofErr)
	assert.Equal(t, "BAD_MATCH/BAD_PREREQ", ofErr.Name())
	assert.Contains(t, err.Error(), "add flow table=0,priority=20,")
	assert.Equal(t, before, dumpFlows(t, o), "a failed bundle must change nothing")

	// A group action to a missing group fails only at commit time.
	missing := Flow{Table: 2, Priority: 10, Actions: []Action{Group{ID: 99}}}
	err = c.Bundle(ctx, []Flow{other, missing}, []Flow{good})
	require.Error(t, err)
	t.Log(err)
	assert.Equal(t, before, dumpFlows(t, o), "a failed bundle must change nothing")

	// A message that cannot be encoded, after chunks of the bundle went
	// out already: the bundle is discarded.
	var many []Flow
	for i := range 5000 {
		many = append(many, Flow{Table: 3, Priority: 10, Match: []MatchField{MatchInPort(uint32(i + 1))}, Actions: []Action{Output{Port: 4}}})
	}
	unencodable := Flow{Table: 3, Priority: 20, Match: []MatchField{{Field: "no_such_field", Value: []byte{1}}}}
	err = c.Bundle(ctx, append(many, unencodable), []Flow{good})
	require.ErrorContains(t, err, "encode")
	assert.Contains(t, err.Error(), "no_such_field")
	assert.Equal(t, before, dumpFlows(t, o), "a bundle that could not be encoded must change nothing")

	// The connection is still usable.
	require.NoError(t, c.Bundle(ctx, []Flow{other}, []Flow{good}))
	assert.Equal(t, []string{"cookie=0x0, table=0, priority=0 actions=NORMAL", "cookie=0x0, table=1, priority=10 actions=output:4"}, dumpFlows(t, o))
}

func TestIntegrationDumpAndDeleteByCookie(t *testing.T) {
	o, c := startOVS(t, nil)
	ctx := testCtx(t)
	flows, groups, _ := pipelineFlows()
	require.NoError(t, c.Apply(ctx, Change{AddGroups: groups, AddFlows: flows}))
	require.NoError(t, c.DeleteByCookie(ctx, 0, ^uint64(0))) // the default NORMAL flow (cookie 0) and others

	stats, err := c.DumpFlows(ctx, -1)
	require.NoError(t, err)
	got := map[string]bool{}
	for _, fs := range stats {
		got[fs.Key()] = true
	}
	want := map[string]bool{}
	for _, f := range flows {
		if f.Cookie != 0 {
			want[f.Key()] = true
		}
	}
	assert.Equal(t, want, got)

	stats, err = c.DumpFlows(ctx, 60)
	require.NoError(t, err)
	require.Len(t, stats, 1)
	assert.Equal(t, uint64(0x2000), stats[0].Cookie)
	assert.Equal(t, uint16(300), stats[0].IdleTimeout)
	assert.NotEmpty(t, stats[0].Instructions)

	require.NoError(t, c.DeleteByCookie(ctx, 0x1000, 0xf000))
	assert.Equal(t, []string{"cookie=0x2000, table=60, idle_timeout=300, priority=100,pkt_mark=0x5,ct_zone=65520,ct_mark=0x1/0xff,ip,tun_id=0x64,tun_src=192.168.0.1,tun_dst=192.168.0.2,nw_dst=10.10.0.0/24 actions=set_field:192.168.0.9->tun_dst,dec_ttl,group:5"},
		dumpFlows(t, o))
}

func TestIntegrationReconnect(t *testing.T) {
	var connects atomic.Int32
	flow := Flow{Table: 0, Priority: 10, Cookie: 0x1, Match: []MatchField{MatchInPort(1)}, Actions: []Action{Output{Port: 2}}}
	o, c := startOVS(t, func(ctx context.Context, c *Conn) error {
		connects.Add(1)
		return c.Bundle(ctx, []Flow{flow}, nil) // replay
	})
	ctx := testCtx(t)
	require.Equal(t, int32(1), connects.Load())
	require.Contains(t, dumpFlows(t, o), "cookie=0x1, table=0, priority=10,in_port=1 actions=output:2")

	o.RestartVswitchd(t)
	require.Eventually(t, func() bool { return connects.Load() == 2 && c.Connected() }, 20*time.Second, 20*time.Millisecond)
	require.Contains(t, dumpFlows(t, o), "cookie=0x1, table=0, priority=10,in_port=1 actions=output:2")
	stats, err := c.DumpFlows(ctx, 0)
	require.NoError(t, err)
	assert.NotEmpty(t, stats)
}

func TestIntegrationBigGroup(t *testing.T) {
	o, c := startOVS(t, nil)
	ctx := testCtx(t)
	g := GroupEntry{ID: 10, Type: GroupSelect}
	for i := 0; i < 5000; i++ {
		g.Buckets = append(g.Buckets, Bucket{Weight: 100, Actions: []Action{
			LoadReg{Field: Reg(3), Start: 0, End: 31, Value: 0x0a000000 + uint64(i)},
			LoadReg{Field: Reg(4), Start: 0, End: 15, Value: 8080},
			Resubmit{Table: 42}}})
	}
	mods, err := encodeGroupMods(&g)
	require.NoError(t, err)
	require.Greater(t, len(mods), 1, "5,000 buckets must not fit in one message")
	flow := Flow{Table: 0, Priority: 5, Match: []MatchField{MatchInPort(1)}, Actions: []Action{Group{ID: 10}}}
	start := time.Now()
	require.NoError(t, c.Apply(ctx, Change{AddGroups: []GroupEntry{g}, AddFlows: []Flow{flow}}))
	t.Logf("group with %d buckets in %d group mods installed in %v", len(g.Buckets), len(mods), time.Since(start))
	// A group this large cannot be dumped (its group desc entry would
	// exceed OpenFlow's 64 KiB), so probe buckets by removing them: OVS
	// fails with UNKNOWN_BUCKET for a bucket that does not exist.
	for _, id := range []int{0, 1000, 2500, 4999} {
		_, err := ofctl(o, "remove-buckets", fmt.Sprintf("group_id=10,command_bucket_id=%d", id))
		assert.NoError(t, err, "bucket %d", id)
	}
	out, err := ofctl(o, "remove-buckets", "group_id=10,command_bucket_id=5000")
	assert.Error(t, err)
	assert.Contains(t, out, "UNKNOWN_BUCKET")

	// Replacing it with a small group drops the other buckets.
	g.Buckets = g.Buckets[:3]
	require.NoError(t, c.Apply(ctx, Change{AddGroups: []GroupEntry{g}}))
	assert.Equal(t, []string{"group_id=10,type=select," +
		"bucket=bucket_id:0,weight:100,actions=set_field:0xa000000->reg3,set_field:0x1f90/0xffff->reg4,resubmit(,42)," +
		"bucket=bucket_id:1,weight:100,actions=set_field:0xa000001->reg3,set_field:0x1f90/0xffff->reg4,resubmit(,42)," +
		"bucket=bucket_id:2,weight:100,actions=set_field:0xa000002->reg3,set_field:0x1f90/0xffff->reg4,resubmit(,42)"},
		dumpGroups(t, o))
	assert.Contains(t, dumpFlows(t, o), "cookie=0x0, table=0, priority=5,in_port=1 actions=group:10")
}

// manyFlows returns n distinct flows spread over a few tables.
func manyFlows(n int, cookie uint64) []Flow {
	flows := make([]Flow, n)
	for i := range flows {
		flows[i] = Flow{Table: uint8(10 + i%4), Priority: 100, Cookie: cookie, Match: []MatchField{
			MatchEthType(EthTypeIPv4),
			MatchIPDst(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)),
			MatchReg(0, uint32(i%7), 0xffff)},
			Actions: []Action{LoadReg{Field: Reg(1), Start: 0, End: 15, Value: uint64(i % 1000)}, Resubmit{Table: 60}}}
	}
	return flows
}

func TestIntegrationBundle10kFlows(t *testing.T) {
	o, c := startOVS(t, nil)
	ctx := testCtx(t)
	flows := manyFlows(10000, 0x77)
	start := time.Now()
	require.NoError(t, c.Bundle(ctx, flows, nil))
	t.Logf("10,000-flow bundle: %v", time.Since(start))
	stats, err := c.DumpFlows(ctx, -1)
	require.NoError(t, err)
	assert.Len(t, stats, 10001) // and the default NORMAL flow
	keys := map[string]bool{}
	for _, fs := range stats {
		keys[fs.Key()] = true
	}
	missing := 0
	for _, f := range flows {
		if !keys[f.Key()] {
			if missing < 3 {
				t.Errorf("flow %s missing from the dump", f.Key())
			}
			missing++
		}
	}
	if missing > 0 {
		for k := range keys {
			t.Log(k)
			break
		}
	}
	require.Zero(t, missing)
	assert.Len(t, dumpFlows(t, o, "cookie=0x77/-1"), 10000)

	// Delete half, strictly, and replace the other half in one bundle.
	start = time.Now()
	require.NoError(t, c.Bundle(ctx, flows[5000:], flows[:5000]))
	t.Logf("5,000 deletes + 5,000 replacements: %v", time.Since(start))
	stats, err = c.DumpFlows(ctx, -1)
	require.NoError(t, err)
	assert.Len(t, stats, 5001)

	require.NoError(t, c.DeleteByCookie(ctx, 0x77, ^uint64(0)))
	stats, err = c.DumpFlows(ctx, -1)
	require.NoError(t, err)
	assert.Len(t, stats, 1)
}

func BenchmarkBundle10kFlows(b *testing.B) {
	_, c := startOVS(b, nil)
	ctx := testCtx(b)
	flows := manyFlows(10000, 0x1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Alternate cookies so that every round really rewrites the flows.
		for j := range flows {
			flows[j].Cookie = uint64(i)
		}
		if err := c.Bundle(ctx, flows, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(len(flows)*b.N)/b.Elapsed().Seconds(), "flows/s")
}

func TestIntegrationBundle100kFlows(t *testing.T) {
	_, c := startOVS(t, nil)
	ctx := testCtx(t)
	flows := manyFlows(100000, 0x5)
	start := time.Now()
	require.NoError(t, c.Bundle(ctx, flows, nil))
	t.Logf("100,000-flow bundle: %v", time.Since(start))
	stats, err := c.DumpFlows(ctx, -1)
	require.NoError(t, err)
	assert.Len(t, stats, 100001)
}

func TestIntegrationLearn(t *testing.T) {
	o, c := startOVS(t, nil)
	ctx := testCtx(t)
	learn := Learn{Table: 35, Priority: 200, IdleTimeout: 10, Cookie: 0x5, Specs: []LearnSpec{
		LearnMatchValue(FieldEthType, EthTypeIPv4),
		LearnMatchValue(FieldIPProto, uint64(ProtoTCP)),
		LearnMatchField(FieldIPSrc),
		LearnMatchField(FieldIPDst),
		LearnMatchField(FieldTCPDst),
		LearnLoadField(Reg(3), Reg(3), 0, 31),
		LearnLoadField(Reg(4), Reg(4), 0, 15),
		LearnLoadValue(Reg(4), 16, 16, 1),
	}}
	sctp := learn
	sctp.Specs = []LearnSpec{LearnMatchValue(FieldEthType, EthTypeIPv4), LearnMatchValue(FieldIPProto, uint64(ProtoSCTP)), LearnMatchField(FieldSCTPDst)}
	flows := []Flow{
		{Table: 0, Priority: 10, Match: []MatchField{MatchEthType(EthTypeIPv4), MatchIPProto(ProtoTCP)},
			Actions: []Action{LoadReg{Field: Reg(3), Start: 0, End: 31, Value: 0x0a000005}, learn, Resubmit{Table: 1}}},
		{Table: 0, Priority: 9, Match: []MatchField{MatchEthType(EthTypeIPv4), MatchIPProto(ProtoSCTP)}, Actions: []Action{sctp}},
	}
	require.NoError(t, c.Apply(ctx, Change{AddFlows: flows, DelFlows: []Flow{{Table: 0, Priority: 0}}}))
	assert.Equal(t, []string{
		"cookie=0x0, table=0, priority=10,tcp actions=set_field:0xa000005->reg3,learn(table=35,idle_timeout=10,priority=200,cookie=0x5,eth_type=0x800,nw_proto=6,NXM_OF_IP_SRC[],NXM_OF_IP_DST[],NXM_OF_TCP_DST[],load:NXM_NX_REG3[]->NXM_NX_REG3[],load:NXM_NX_REG4[0..15]->NXM_NX_REG4[0..15],load:0x1->NXM_NX_REG4[16]),resubmit(,1)",
		"cookie=0x0, table=0, priority=9,sctp actions=learn(table=35,idle_timeout=10,priority=200,cookie=0x5,eth_type=0x800,nw_proto=132,OXM_OF_SCTP_DST[])",
	}, dumpFlows(t, o))
}

// TestIntegrationConnectionTuple installs what the flow exporter needs on
// the userspace datapath: a learn of the conntrack original tuple with
// single ct_state bits, a flow matching that tuple, and a commit that
// moves registers into ct_label; OVS takes them, prints them as we do, and
// DumpFlows decodes the tuple match back to the same key.
func TestIntegrationConnectionTuple(t *testing.T) {
	o, c := startOVS(t, nil)
	ctx := testCtx(t)
	bit := func(n int, v uint64) LearnSpec { return LearnSpec{Dst: FieldCTState, DstOfs: n, NBits: 1, Value: v} }
	learn := Learn{Table: 120, Priority: 200, Cookie: 0x6, Specs: []LearnSpec{
		LearnMatchValue(FieldEthType, EthTypeIPv4), bit(3, 1), bit(5, 1),
		LearnMatchField(FieldCTNwProto), LearnMatchField(FieldCTNwSrc), LearnMatchField(FieldCTNwDst),
		LearnMatchField(FieldCTTpSrc), LearnMatchField(FieldCTTpDst),
	}}
	tuple := Flow{Table: 120, Priority: 200, Cookie: 0x6, Match: []MatchField{
		MatchEthType(EthTypeIPv4), MatchCTState(CTTrk, CTInv|CTRpl),
		{Field: FieldCTNwProto, Value: []byte{ProtoTCP}},
		{Field: FieldCTNwSrc, Value: netip.MustParseAddr("10.10.0.3").AsSlice()},
		{Field: FieldCTNwDst, Value: netip.MustParseAddr("10.96.0.10").AsSlice()},
		{Field: FieldCTTpSrc, Value: []byte{0xc3, 0x50}},
		{Field: FieldCTTpDst, Value: []byte{0, 80}},
	}}
	tbl := uint8(110)
	flows := []Flow{
		{Table: 105, Priority: 190, Match: []MatchField{MatchCTState(CTNew|CTTrk, 0), MatchEthType(EthTypeIPv4)},
			Actions: []Action{learn, CT{Commit: true, Zone: 65520, Table: &tbl, Exec: []Action{
				Move{Src: Reg(5), Dst: FieldCTLabel, NBits: 32},
				Move{Src: Reg(6), Dst: FieldCTLabel, DstOfs: 32, NBits: 32}}}}},
		tuple,
	}
	require.NoError(t, c.Apply(ctx, Change{AddFlows: flows}))
	assert.Equal(t, []string{
		"cookie=0x0, table=105, priority=190,ct_state=+new+trk,ip actions=learn(table=120,priority=200,cookie=0x6,eth_type=0x800,NXM_NX_CT_STATE[3]=0x1,NXM_NX_CT_STATE[5]=0x1,NXM_NX_CT_NW_PROTO[],NXM_NX_CT_NW_SRC[],NXM_NX_CT_NW_DST[],NXM_NX_CT_TP_SRC[],NXM_NX_CT_TP_DST[]),ct(commit,table=110,zone=65520,exec(move:NXM_NX_REG5[]->NXM_NX_CT_LABEL[0..31],move:NXM_NX_REG6[]->NXM_NX_CT_LABEL[32..63]))",
		"cookie=0x6, table=120, priority=200,ct_state=-rpl-inv+trk,ct_nw_src=10.10.0.3,ct_nw_dst=10.96.0.10,ct_nw_proto=6,ct_tp_src=50000,ct_tp_dst=80,ip actions=drop",
	}, append(dumpFlows(t, o, "table=105"), dumpFlows(t, o, "table=120")...))
	stats, err := c.DumpFlows(ctx, 120)
	require.NoError(t, err)
	require.Len(t, stats, 1)
	assert.Equal(t, tuple.Key(), stats[0].Key())
	assert.Equal(t, "table=120,priority=200,ct_state=-rpl-inv+trk,dl_type=0x800,ct_nw_src=10.10.0.3,ct_nw_dst=10.96.0.10,ct_nw_proto=6,ct_tp_src=50000,ct_tp_dst=80", stats[0].Key())
}

func TestIntegrationPacketInOut(t *testing.T) {
	got := make(chan PacketIn, 4)
	o, c := startOVSWith(t, func(c *Conn) { c.SetPacketInHandler(16, func(p PacketIn) { got <- p }) })
	tctx := testCtx(t)

	// Table 0 sends UDP to the controller with a register set; table 1
	// counts what the controller sends.
	require.NoError(t, c.Apply(tctx, Change{AddFlows: []Flow{
		{Table: 0, Priority: 10, Cookie: 0x77, Match: []MatchField{MatchEthType(EthTypeIPv4), MatchIPProto(ProtoUDP)},
			Actions: []Action{LoadReg{Field: Reg(5), Start: 0, End: 31, Value: 0xabc}, Output{Port: PortController}}},
		{Table: 1, Priority: 10, Match: []MatchField{MatchEthType(EthTypeIPv4)}},
	}, DelFlows: []Flow{{Table: 0, Priority: 0}}}))
	frame := udpFrame()
	require.NoError(t, c.PacketOut(tctx, PacketOut{Actions: []Action{Resubmit{Table: 0}}, Data: frame}))
	select {
	case p := <-got:
		assert.Equal(t, uint8(0), p.TableID)
		assert.Equal(t, uint64(0x77), p.Cookie)
		assert.Equal(t, PacketInReasonPacketOut, p.Reason)
		assert.Equal(t, PortController, p.InPort())
		assert.Equal(t, frame, p.Data)
		assert.Contains(t, p.Match, MatchField{Field: Reg(5), Value: []byte{0, 0, 0x0a, 0xbc}})
	case <-time.After(5 * time.Second):
		t.Fatal("no packet-in within 5 s")
	}
	require.NoError(t, c.PacketOut(tctx, PacketOut{Actions: []Action{Resubmit{Table: 1}}, Data: frame}))
	require.Eventually(t, func() bool {
		return strings.Contains(o.Ofctl(t, "dump-flows", testBridge, "table=1"), "n_packets=1,")
	}, 5*time.Second, 50*time.Millisecond, "the packet-out reaches table 1")
	assert.Zero(t, c.PacketInDrops())
}

// udpFrame is an Ethernet/IPv4/UDP frame from 10.0.0.1:1000 to
// 10.0.0.2:53.
func udpFrame() []byte {
	f := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00,
		0x45, 0, 0, 32, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
		0x03, 0xe8, 0, 53, 0, 12, 0, 0, 'a', 'b', 'c', 'd'}
	return f
}
