package networkpolicy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
	"github.com/ovs-cni/antrea/pkg/ovs/ovstest"
)

const bridge = "br-int"

var (
	gwMAC   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	itNode  = agentof.NodeConfig{GatewayOFPort: 2, TunnelOFPort: 1, GatewayMAC: gwMAC, GatewayIP: netip.MustParseAddr("10.10.0.1"), PodCIDR: netip.MustParsePrefix("10.10.0.0/24")}
	itPorts = []agentof.PodPort{podPort(3), podPort(4), podPort(5), podPort(6)}
)

// podPort is the pod 10.10.0.<n> at ofport n with MAC 02:00:00:00:00:<n>.
func podPort(n int) agentof.PodPort {
	return agentof.PodPort{OFPort: uint32(n), MAC: podMAC(n), IP: netip.AddrFrom4([4]byte{10, 10, 0, byte(n)})}
}

func podMAC(n int) net.HardwareAddr { return net.HardwareAddr{0x02, 0, 0, 0, 0, byte(n)} }

// startBridge runs a private OVS with a netdev bridge whose ports have the
// ofports of the fixtures (1 tunnel, 2 gateway, 3-6 pods), and returns a
// FlowSyncer installing into it through an OpenFlow connection.
func startBridge(t testing.TB) (*ovstest.OVS, *agentof.FlowSyncer) {
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
	return o, agentof.NewFlowSyncer(c, 1)
}

// itState: web1 (10.10.0.3) accepts TCP 8080 from app=app (app1 10.10.0.5
// here, app2 10.10.1.7 behind the tunnel) and may open no connection;
// app1 may connect to 10.10.0.0/24 except web2 (10.10.0.4).
func itState() *State {
	web := member("web1", node, "10.10.0.3")
	app := member("app1", node, "10.10.0.5")
	return state([]*controlplane.NetworkPolicy{
		policy("uid-web", "atg-web", in, ingress(groups("ag-app"), tcp(8080))),
		policy("uid-web-egress", "atg-web", out),
		policy("uid-app-egress", "atg-app", out, egress(controlplane.NetworkPolicyPeer{
			IPBlocks: []controlplane.IPBlock{{CIDR: "10.10.0.0/24", Except: []string{"10.10.0.4/32"}}}})),
	}, []*controlplane.AppliedToGroup{atg("atg-web", web), atg("atg-app", app)},
		[]*controlplane.AddressGroup{ag("ag-app", app, app2)})
}

var (
	tracedTableRE = regexp.MustCompile(`(?m)^ *(\d+)\. (.*), priority (\d+)`)
	outputRE      = regexp.MustCompile(`-> output port is (\d+)`)
)

// verdict is where a traced packet ended: out of a port, or dropped by the
// last flow it matched.
type verdict struct {
	output string // ofport, "" when dropped
	table  string // the last table visited
	flow   string // the last flow matched, "match, priority N"
	trace  string
}

func (v verdict) String() string {
	if v.output != "" {
		return "output:" + v.output
	}
	return "drop in table " + v.table + " by " + v.flow
}

// trace runs ofproto/trace with ctNext as the conntrack states of the
// successive recirculations.
func trace(t *testing.T, o *ovstest.OVS, flow string, ctNext ...string) verdict {
	t.Helper()
	args := []string{"ofproto/trace", bridge, flow}
	for _, c := range ctNext {
		args = append(args, "--ct-next", c)
	}
	v := verdict{trace: o.Appctl(t, args...)}
	for _, m := range tracedTableRE.FindAllStringSubmatch(v.trace, -1) {
		v.table, v.flow = m[1], m[2]+", priority "+m[3]
	}
	if m := outputRE.FindStringSubmatch(v.trace); m != nil && !strings.Contains(v.trace, "Datapath actions: drop") {
		v.output = m[1]
	}
	return v
}

// tcpFlow is a TCP packet from pod n (the gateway if n is 2) to pod m.
func tcpFlow(from, to int, srcPort, dstPort int) string {
	srcMAC, srcIP := podMAC(from), fmt.Sprintf("10.10.0.%d", from)
	if from == 2 {
		srcMAC, srcIP = gwMAC, "10.10.0.1"
	}
	return fmt.Sprintf("in_port=%d,dl_src=%s,dl_dst=%s,tcp,nw_src=%s,nw_dst=10.10.0.%d,nw_ttl=64,tp_src=%d,tp_dst=%d",
		from, srcMAC, podMAC(to), srcIP, to, srcPort, dstPort)
}

// tunnelFlow is a TCP packet from a remote pod, out of the tunnel.
func tunnelFlow(srcIP string, to, dstPort int) string {
	return fmt.Sprintf("in_port=1,tun_id=0,tun_src=172.18.0.12,tun_dst=172.18.0.11,dl_src=02:00:0a:0a:01:01,dl_dst=aa:bb:cc:dd:ee:ff,"+
		"tcp,nw_src=%s,nw_dst=10.10.0.%d,nw_ttl=63,tp_src=40000,tp_dst=%d", srcIP, to, dstPort)
}

func installPipeline(t testing.TB, ctx context.Context, syncer *agentof.FlowSyncer) {
	t.Helper()
	require.NoError(t, syncer.Sync(ctx, "base", agentof.CategoryBase, agentof.BaseFlows(itNode)))
	for _, p := range itPorts {
		require.NoError(t, syncer.Sync(ctx, fmt.Sprintf("pod/%d", p.OFPort), agentof.CategoryPod, agentof.PodFlows(itNode, p)))
	}
}

// policyFlows returns the bridge's flows of category policy, without
// cookies and statistics, sorted as ovs-ofctl prints them.
func policyFlows(t *testing.T, o *ovstest.OVS) []string {
	t.Helper()
	out := o.Ofctl(t, "dump-flows", bridge, "--no-stats", fmt.Sprintf("cookie=%#x/%#x", agentof.CategoryPolicy<<40, 0xff<<40))
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

func TestIntegrationPolicyTrace(t *testing.T) {
	o, syncer := startBridge(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	installPipeline(t, ctx, syncer)
	r := NewReconciler(syncer)
	s := itState()
	require.NoError(t, r.Realize(ctx, s))
	require.Len(t, policyFlows(t, o), len(flatten(Compile(itState()))), "every compiled flow is in the bridge")

	newConn := []string{"trk,new", "trk,new"}
	const (
		ingressDrop = "drop in table 100 by ip,reg1=0x3, priority 100"
		web1Egress  = "drop in table 60 by ip,nw_src=10.10.0.3, priority 100"
		app1Egress  = "drop in table 60 by ip,nw_src=10.10.0.5, priority 100"
	)
	for _, c := range []struct {
		name string
		flow string
		ct   []string
		want string
	}{
		{"allowed source and port reach web1", tcpFlow(5, 3, 40000, 8080), newConn, "output:3"},
		{"allowed remote source through the tunnel", tunnelFlow("10.10.1.7", 3, 8080), newConn, "output:3"},
		{"other local source dropped", tcpFlow(6, 3, 40000, 8080), newConn, ingressDrop},
		{"other remote source dropped", tunnelFlow("10.10.1.8", 3, 8080), newConn, ingressDrop},
		{"other port dropped", tcpFlow(5, 3, 40000, 80), newConn, ingressDrop},
		{"gateway (kubelet probe) allowed on any port", tcpFlow(2, 3, 40000, 80), newConn, "output:3"},
		{"established reply leaves egress-isolated web1", tcpFlow(3, 5, 8080, 40000), []string{"trk,est"}, "output:5"},
		{"new connection from web1 dropped by its egress isolation", tcpFlow(3, 5, 40000, 8080), newConn, web1Egress},
		{"app1 egress to the except (web2) dropped", tcpFlow(5, 4, 40000, 80), newConn, app1Egress},
		{"app1 egress to the block (db, not isolated) allowed", tcpFlow(5, 6, 40000, 5432), newConn, "output:6"},
		{"non-isolated pod reaches non-isolated pod", tcpFlow(6, 4, 40000, 80), newConn, "output:4"},
	} {
		v := trace(t, o, c.flow, c.ct...)
		assert.Equal(t, c.want, v.String(), "%s\n%s", c.name, v.trace)
	}
	v := trace(t, o, tcpFlow(2, 3, 40000, 80), newConn...)
	assert.Contains(t, v.trace, "90. ip,reg0=0x1/0xffff,nw_src=10.10.0.1, priority 205", "the gateway flow allowed it")
	v = trace(t, o, tcpFlow(3, 5, 8080, 40000), "trk,est")
	assert.Contains(t, v.trace, "50. ct_state=-new+est,ip, priority 210", "the egress established bypass allowed it")

	// The gateway flow does not open egress: a packet from the gateway with
	// a forged pod source is still not a pod's packet (reg0=1), and a pod
	// cannot present reg0=1. Traffic from web1 to the gateway is dropped.
	toGW := fmt.Sprintf("in_port=3,dl_src=%s,dl_dst=%s,tcp,nw_src=10.10.0.3,nw_dst=10.10.0.1,nw_ttl=64,tp_src=40000,tp_dst=80", podMAC(3), gwMAC)
	v = trace(t, o, toGW, newConn...)
	assert.Equal(t, web1Egress, v.String(), v.trace)

	// Without the ingress policy db reaches web1; web1 stays egress-isolated.
	s.Policies = s.Policies[1:]
	require.NoError(t, r.Realize(ctx, s))
	assert.Equal(t, "output:3", trace(t, o, tcpFlow(6, 3, 40000, 8080), newConn...).String())
	assert.Equal(t, web1Egress, trace(t, o, tcpFlow(3, 5, 40000, 8080), newConn...).String())
	require.Len(t, policyFlows(t, o), len(flatten(Compile(s))))

	// No policies: only the base policy flows remain.
	require.NoError(t, r.Realize(ctx, &State{NodeName: node, GatewayIP: itNode.GatewayIP}))
	assert.Len(t, policyFlows(t, o), 2)
	assert.Equal(t, "output:5", trace(t, o, tcpFlow(3, 5, 40000, 8080), newConn...).String())
}

// OVS accepts the flows of every golden case (merged conjunctions, masked
// ports, ipBlock prefixes), and the reconciler moves between them leaving
// exactly the compiled flows in the bridge.
func TestIntegrationGoldenCasesInstall(t *testing.T) {
	o, syncer := startBridge(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	installPipeline(t, ctx, syncer)
	r := NewReconciler(syncer)
	cases := goldenCases()
	for _, name := range sortedKeys(cases) {
		require.NoError(t, r.Realize(ctx, cases[name]), name)
		assert.Len(t, policyFlows(t, o), len(flatten(Compile(cases[name]))), name)
	}
}

// Clause flows of different rules overlap at the same priority (a /24 and
// a /32 in it): OVS considers every conjunctive flow that matches, so each
// rule still allows exactly its own traffic.
func TestIntegrationOverlappingClauses(t *testing.T) {
	o, syncer := startBridge(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	installPipeline(t, ctx, syncer)
	web2 := member("web2", node, "10.10.0.4")
	s := state([]*controlplane.NetworkPolicy{
		policy("uid-block-80", "atg-web2", in, ingress(controlplane.NetworkPolicyPeer{
			IPBlocks: []controlplane.IPBlock{{CIDR: "10.10.0.0/24", Except: []string{"10.10.0.6/32"}}}}, tcp(80))),
		policy("uid-app-8080", "atg-web2", in, ingress(groups("ag-app"), tcp(8080))),
	}, []*controlplane.AppliedToGroup{atg("atg-web2", web2)}, []*controlplane.AddressGroup{ag("ag-app", member("app1", node, "10.10.0.5"))})
	require.NoError(t, NewReconciler(syncer).Realize(ctx, s))
	newConn := []string{"trk,new", "trk,new"}
	drop := "drop in table 100 by ip,reg1=0x4, priority 100"
	for _, c := range []struct {
		flow string
		want string
	}{
		{tcpFlow(5, 4, 40000, 80), "output:4"},   // the block's rule
		{tcpFlow(5, 4, 40000, 8080), "output:4"}, // app1's rule
		{tcpFlow(3, 4, 40000, 80), "output:4"},   // the block's rule
		{tcpFlow(3, 4, 40000, 8080), drop},       // in the block, not app1
		{tcpFlow(6, 4, 40000, 80), drop},         // the block's except
		{tcpFlow(5, 4, 40000, 443), drop},        // neither port
	} {
		v := trace(t, o, c.flow, newConn...)
		assert.Equal(t, c.want, v.String(), "%s\n%s", c.flow, v.trace)
	}
}
