package proxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
	"github.com/ovs-cni/antrea/pkg/ovs/ovstest"
)

const bridge = "br-int"

var (
	gwMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	itNode = agentof.NodeConfig{GatewayOFPort: 2, TunnelOFPort: 1, GatewayMAC: gwMAC,
		GatewayIP: netip.MustParseAddr("10.10.0.1"), PodCIDR: netip.MustParsePrefix("10.10.0.0/24")}
	itRemote = agentof.RemoteNode{PodCIDR: netip.MustParsePrefix("10.10.1.0/24"),
		GatewayIP: netip.MustParseAddr("10.10.1.1"), NodeIP: netip.MustParseAddr("172.18.0.12")}
	itPorts = []agentof.PodPort{podPort(3), podPort(4), podPort(5), podPort(6)}
)

// podPort is the pod 10.10.0.<n> at ofport n with MAC 02:00:00:00:00:<n>.
func podPort(n int) agentof.PodPort {
	return agentof.PodPort{OFPort: uint32(n), MAC: podMAC(n), IP: netip.AddrFrom4([4]byte{10, 10, 0, byte(n)})}
}

func podMAC(n int) net.HardwareAddr { return net.HardwareAddr{0x02, 0, 0, 0, 0, byte(n)} }

// startBridge runs a private OVS with a netdev bridge whose ports have the
// ofports of the fixtures (1 tunnel, 2 gateway, 3-6 pods), and returns a
// connection to it.
func startBridge(t testing.TB) (*ovstest.OVS, *of.Conn) {
	t.Helper()
	o := ovstest.Start(t)
	o.Vsctl(t, "add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev", "fail_mode=secure",
		"protocols=OpenFlow13,OpenFlow15")
	o.Vsctl(t, "add-port", bridge, "tun0", "--", "set", "interface", "tun0", "type=vxlan",
		"options:remote_ip=flow", "options:key=flow", "ofport_request=1")
	o.Vsctl(t, "add-port", bridge, "gw0", "--", "set", "interface", "gw0", "type=internal", "ofport_request=2")
	for _, p := range itPorts {
		name := fmt.Sprintf("pod%d", p.OFPort)
		o.Vsctl(t, "add-port", bridge, name, "--", "set", "interface", name, "type=internal", fmt.Sprintf("ofport_request=%d", p.OFPort))
	}
	c := of.NewConn(o.MgmtSocket(bridge), nil)
	c.MinBackoff, c.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
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

// pipelineFlows are the base, pod and remote node flows, with the table-30
// zone lookup un-NATing (the change this package needs).
func pipelineFlows() []of.Flow {
	flows := agentof.BaseFlows(itNode)
	for i, f := range flows {
		if f.Table == agentof.ConntrackTable.ID && f.Priority == 200 {
			flows[i].Actions = []of.Action{of.CT{Zone: agentof.CTZone, Table: ptr(agentof.ConntrackStateTable.ID), NAT: &of.NAT{}}}
		}
	}
	for _, p := range itPorts {
		flows = append(flows, agentof.PodFlows(itNode, p)...)
	}
	return append(flows, agentof.RemoteNodeFlows(itNode, itRemote)...)
}

func ptr[T any](v T) *T { return &v }

func flatten(m map[string][]of.Flow) []of.Flow {
	var out []of.Flow
	for _, k := range sortedKeys(m) {
		out = append(out, m[k]...)
	}
	return out
}

var (
	hashRecircRE  = regexp.MustCompile(`Datapath actions: hash\([^)]*\)\),recirc\((0x[0-9a-f]+)\)`)
	flowLineRE    = regexp.MustCompile(`^\s*Flow: (.*)$`)
	resumeRE      = regexp.MustCompile(`Resuming from table (\d+)`)
	nwDstRE       = regexp.MustCompile(`nw_dst=([0-9.]+),.*tp_dst=(\d+)`)
	usingBucketRE = regexp.MustCompile(`-> using bucket (\d+)`)
	outputRE      = regexp.MustCompile(`-> output port is (\d+)`)
)

// trace runs ofproto/trace with ctNext as the conntrack states of the
// successive recirculations.
func trace(t *testing.T, o *ovstest.OVS, flow string, ctNext ...string) string {
	t.Helper()
	args := []string{"ofproto/trace", bridge, flow}
	for _, c := range ctNext {
		args = append(args, "--ct-next", c)
	}
	return o.Appctl(t, args...)
}

// resumedAt returns the destination ip:port of the packet when the trace
// resumed in table (after a ct recirculation), "" if it never did.
func resumedAt(trace string, table int) string {
	last := ""
	for _, l := range strings.Split(trace, "\n") {
		if m := flowLineRE.FindStringSubmatch(l); m != nil {
			last = m[1]
		}
		if m := resumeRE.FindStringSubmatch(l); m != nil && m[1] == fmt.Sprint(table) {
			if d := nwDstRE.FindStringSubmatch(last); d != nil {
				return d[1] + ":" + d[2]
			}
		}
	}
	return ""
}

const clientFields = "in_port=5,dl_src=02:00:00:00:00:05,dl_dst=02:00:00:00:00:01,tcp,nw_src=10.10.0.5,nw_ttl=64,tp_src=40000"

// synFlow is a TCP SYN from pod 5 (10.10.0.5) to dst:port, routed to the
// gateway MAC as pods do.
func synFlow(dst string, port int) string {
	return fmt.Sprintf("%s,nw_dst=%s,tp_dst=%d,tcp_flags=syn", clientFields, dst, port)
}

// apply installs the compile result, replacing prev (the previous result's
// flows) and deleting released groups, as a reconciler would.
func apply(ctx context.Context, c *of.Conn, prev []of.Flow, r Result, released []uint32) error {
	return c.Apply(ctx, of.Change{DelFlows: prev, AddGroups: r.Groups, AddFlows: flatten(r.Flows), DelGroups: released})
}

func installPipeline(t testing.TB, ctx context.Context, c *of.Conn) {
	t.Helper()
	require.NoError(t, c.Apply(ctx, of.Change{AddFlows: pipelineFlows()}))
}

// dumpGroups returns the bridge's groups, one per line.
func dumpGroups(t *testing.T, o *ovstest.OVS) []string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(o.Ofctl(t, "dump-groups", bridge), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "group_id=") {
			lines = append(lines, l)
		}
	}
	return lines
}

// A TCP SYN to the ClusterIP is sent to the service's group; whichever
// bucket the datapath hash picks, the packet is DNATed by conntrack to one
// of the endpoints and continues in table 50 with the endpoint as nw_dst,
// then is routed to the local pod or into the tunnel.
func TestIntegrationServiceTrace(t *testing.T) {
	o, c := startBridge(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	installPipeline(t, ctx, c)
	comp := NewCompiler()
	r := comp.Compile(goldenCases()["two_endpoints_tcp"])
	require.NoError(t, apply(ctx, c, nil, r, nil))

	newConn := []string{"trk,new", "trk,new", "trk,new"}
	first := trace(t, o, synFlow("10.96.0.10", 80), newConn...)
	require.Contains(t, first, "30. ip, priority 200\n    ct(table=31,zone=65520,nat)", first)
	require.Contains(t, first, "40. ct_state=+new+trk,tcp,nw_dst=10.96.0.10,tp_dst=80, priority 200\n    group:1", first)
	// The select group's default method hashes in the datapath and
	// recirculates; the trace stops there, and is resumed from that
	// recirculation with chosen hashes.
	m := hashRecircRE.FindStringSubmatch(first)
	require.NotNil(t, m, "group:1 hashes and recirculates\n%s", first)
	wantOut := map[string]string{"10.10.0.3:8080": "3", "10.10.1.7:8080": "1"}
	seen := map[string]bool{}
	for h := 1; h <= 16; h++ {
		flow := fmt.Sprintf("recirc_id=%s,dp_hash=%#x,ct_state=new|trk,ct_zone=65520,reg0=0x2,%s,nw_dst=10.96.0.10,tp_dst=80", m[1], h, clientFields)
		tr := trace(t, o, flow, newConn...)
		ep := resumedAt(tr, 50)
		require.Contains(t, wantOut, ep, "dp_hash %#x: resumed in table 50 towards an endpoint\n%s", h, tr)
		assert.Contains(t, tr, "ct(commit,table=50,zone=65520,nat(dst="+ep+"))", tr)
		out := outputRE.FindStringSubmatch(tr)
		require.NotNil(t, out, tr)
		assert.Equal(t, wantOut[ep], out[1], "endpoint %s: routed to its port\n%s", ep, tr)
		seen[ep] = true
	}
	assert.Len(t, seen, 2, "both endpoints are picked by some hash")

	// Later packets of the connection are +est (and, with nat in table
	// 30, already translated): they never reach the group again.
	est := trace(t, o, clientFields+",nw_dst=10.96.0.10,tp_dst=80", "trk,est")
	assert.NotContains(t, est, "group:1", est)
	assert.Contains(t, est, "40. priority 0", est)

	// The endpoints go away: a flow at its own priority sends new
	// connections to the agent (which rejects them), and the group is
	// deleted only once its id is released.
	prev := flatten(r.Flows)
	sp := goldenCases()["two_endpoints_tcp"]
	sp[0].Endpoints = nil
	r = comp.Compile(sp)
	require.Empty(t, r.Groups)
	require.NoError(t, apply(ctx, c, prev, r, comp.ReleaseUnused()))
	tr := trace(t, o, synFlow("10.96.0.10", 80), newConn...)
	assert.Contains(t, tr, "40. ct_state=+new+trk,tcp,nw_dst=10.96.0.10,tp_dst=80, priority 190\n    CONTROLLER:65535", tr)
	assert.Contains(t, tr, "Datapath actions: userspace(pid=0,controller(reason=1", tr)
	assert.Len(t, dumpGroups(t, o), 1, "the stale group stays until released")

	// The service goes away: its flow and group too.
	prev = flatten(r.Flows)
	r = comp.Compile(nil)
	released := comp.ReleaseUnused()
	assert.Equal(t, []uint32{1}, released)
	require.NoError(t, apply(ctx, c, prev, r, released))
	assert.Empty(t, dumpGroups(t, o))
	tr = trace(t, o, synFlow("10.96.0.10", 80), newConn...)
	assert.Contains(t, tr, "40. priority 0", tr)
}

// OVS accepts the flows and groups of every golden case, moving from one
// to the next as a reconciler would (deleting never-installed groups of
// ports without endpoints is not an error).
func TestIntegrationGoldenCasesInstall(t *testing.T) {
	o, c := startBridge(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	installPipeline(t, ctx, c)
	comp := NewCompiler()
	cases := goldenCases()
	var prev []of.Flow
	for _, name := range append(sortedKeys(cases), "two_endpoints_tcp", "no_endpoints") {
		r := comp.Compile(cases[name])
		require.NoError(t, apply(ctx, c, prev, r, comp.ReleaseUnused()), name)
		prev = flatten(r.Flows)
		assert.Len(t, dumpGroups(t, o), len(r.Groups), name)
		perTable := map[uint8]int{}
		for _, f := range prev {
			perTable[f.Table]++
		}
		for _, table := range []uint8{agentof.DNATTable.ID, agentof.EndpointDNATTable.ID} {
			tbl := o.Ofctl(t, "dump-flows", bridge, "--no-stats", fmt.Sprintf("table=%d", table))
			// Plus the table's own miss (and fallback) flows.
			base := strings.Count(tbl, "priority=0 ") + strings.Count(tbl, "priority=1,")
			assert.Equal(t, perTable[table], strings.Count(tbl, fmt.Sprintf("table=%d", table))-base, "%s\n%s", name, tbl)
		}
	}
}

// A service with 6,000 endpoints: one group of 6,000 buckets, installed
// through several messages in one bundle.
func TestIntegrationLargeService(t *testing.T) {
	o, c := startBridge(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	installPipeline(t, ctx, c)
	const n = 6000
	r := Compile([]ServicePort{svcPort("big", "10.96.0.100", 80, ProtocolTCP, manyEndpoints(n)...)})
	require.NoError(t, apply(ctx, c, nil, r, nil))
	// ovs-ofctl cannot count them: a group description is at most 64 KiB
	// and it shows a window of some 880 buckets. They are checked by
	// tracing instead: above the dp_hash limit OVS hashes the 5-tuple
	// itself and the trace names the bucket it picked.
	groups := dumpGroups(t, o)
	require.Len(t, groups, 1)
	maxBucket := 0
	for port := 40000; port < 40060; port++ {
		tr := trace(t, o, strings.Replace(synFlow("10.96.0.100", 80), "tp_src=40000", fmt.Sprintf("tp_src=%d", port), 1), "trk,new", "trk,new", "trk,new")
		m := usingBucketRE.FindStringSubmatch(tr)
		require.NotNil(t, m, tr)
		b, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		require.Less(t, b, n)
		maxBucket = max(maxBucket, b)
		ep := netip.AddrFrom4([4]byte{10, 11, byte(b >> 8), byte(b)}).String() + ":8080"
		assert.Equal(t, ep, resumedAt(tr, 50), "bucket %d DNATs to its endpoint\n%s", b, tr)
	}
	assert.Greater(t, maxBucket, 5000, "buckets far past what one message holds are installed")
}
