package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	agentapi "github.com/ovs-cni/antrea/pkg/agent/apiserver"
	"github.com/ovs-cni/antrea/pkg/agent/config"
	"github.com/ovs-cni/antrea/pkg/agent/networkpolicy"
	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/agent/podconfig"
	"github.com/ovs-cni/antrea/pkg/agent/policysync"
	"github.com/ovs-cni/antrea/pkg/agent/trace"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

type nopBundler struct{}

func (nopBundler) Bundle(context.Context, []of.Flow, []of.Flow) error { return nil }

func testInspector(t *testing.T) *inspector {
	t.Helper()
	ip := netip.MustParseAddr("10.10.0.5")
	pod := podconfig.Pod{ContainerID: "c1", PodNamespace: "x", PodName: "a", HostIf: "a-1234", IP: ip,
		MAC: net.HardwareAddr{2, 0, 0, 0, 0, 5}, OFPort: 7}
	flows := agentof.NewFlowSyncer(nopBundler{}, 3)
	ctx := context.Background()
	require.NoError(t, flows.Sync(ctx, podconfig.Owner("c1"), agentof.CategoryPod, []of.Flow{
		{Table: agentof.SpoofGuardTable.ID, Priority: 200, Match: []of.MatchField{of.MatchInPort(7)}},
		{Table: agentof.L2ForwardingTable.ID, Priority: 200, Match: []of.MatchField{of.MatchInPort(7)}},
	}))
	require.NoError(t, flows.Sync(ctx, networkpolicy.IsolationOwner(ip), agentof.CategoryPolicy, []of.Flow{
		{Table: agentof.IngressDefaultTable.ID, Priority: 100, Match: []of.MatchField{of.MatchInPort(7)}},
	}))
	require.NoError(t, flows.Sync(ctx, networkpolicy.RuleOwnerPrefix("uid-1")+"in/0", agentof.CategoryPolicy, []of.Flow{
		{Table: agentof.IngressRuleTable.ID, Priority: 200, Match: []of.MatchField{of.MatchInPort(9)}},
	}))
	require.NoError(t, flows.Sync(ctx, "node/n2", agentof.CategoryNode, []of.Flow{
		{Table: agentof.L3ForwardingTable.ID, Priority: 200, Match: []of.MatchField{of.MatchInPort(1)}},
	}))
	return &inspector{
		cfg:    config.AgentConfig{NodeName: "n1", OVSDatapathType: "netdev", TunnelType: "vxlan"},
		nodeIP: netip.MustParseAddr("172.18.0.11"), podCIDR: netip.MustParsePrefix("10.10.0.0/24"), gatewayIP: netip.MustParseAddr("10.10.0.1"),
		ovsVersion: func() string { return "3.1.0" },
		pods:       func() []podconfig.Pod { return []podconfig.Pod{pod} },
		flows:      flows,
		policies: func() *policysync.RealizedState {
			return &policysync.RealizedState{Policies: []policysync.RealizedPolicy{{Namespace: "x", Name: "deny", UID: "uid-1"}}}
		},
		ready:     func() error { return nil },
		connected: func() bool { return true },
	}
}

func TestInspectorFlows(t *testing.T) {
	in := testInspector(t)
	tables := func(flows []agentapi.Flow) []string {
		var out []string
		for _, f := range flows {
			out = append(out, f.TableName)
		}
		return out
	}
	tests := []struct {
		name    string
		q       agentapi.FlowQuery
		want    []string
		wantErr string
	}{
		{"all", agentapi.FlowQuery{}, []string{"SpoofGuard", "L3Forwarding", "L2ForwardingCalc", "IngressRule", "IngressDefaultRule"}, ""},
		{"by pod: its flows and its isolation", agentapi.FlowQuery{Pod: "x/a"}, []string{"SpoofGuard", "L2ForwardingCalc", "IngressDefaultRule"}, ""},
		{"by policy", agentapi.FlowQuery{Policy: "x/deny"}, []string{"IngressRule"}, ""},
		{"by table number", agentapi.FlowQuery{Table: "10"}, []string{"SpoofGuard"}, ""},
		{"by table name", agentapi.FlowQuery{Table: "l2forwardingcalc"}, []string{"L2ForwardingCalc"}, ""},
		{"pod and table", agentapi.FlowQuery{Pod: "x/a", Table: "SpoofGuard"}, []string{"SpoofGuard"}, ""},
		{"unknown pod", agentapi.FlowQuery{Pod: "x/b"}, nil, "pod x/b on this node: not found"},
		{"bad pod", agentapi.FlowQuery{Pod: "b"}, nil, `pod "b": want namespace/name`},
		{"unknown policy", agentapi.FlowQuery{Policy: "x/allow"}, nil, "NetworkPolicy x/allow applied on this node: not found"},
		{"unknown table", agentapi.FlowQuery{Table: "Nope"}, nil, `table "Nope": not a table number or one of Classification`},
		{"table out of range", agentapi.FlowQuery{Table: "7"}, nil, "table 7: no such table"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := in.Flows(tc.q)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, tables(got))
		})
	}
	_, err := in.Flows(agentapi.FlowQuery{Pod: "x/b"})
	assert.True(t, errors.Is(err, agentapi.ErrNotFound))
}

func TestInspectorPodInterfacesAndInfo(t *testing.T) {
	in := testInspector(t)
	assert.Equal(t, []agentapi.PodInterface{{Namespace: "x", Name: "a", ContainerID: "c1", InterfaceName: "a-1234",
		IP: "10.10.0.5", MAC: "02:00:00:00:00:05", OFPort: 7}}, in.PodInterfaces())
	info := in.Info()
	assert.True(t, info.Ready)
	assert.Equal(t, "n1", info.NodeName)
	assert.Equal(t, "3.1.0", info.OVSVersion)
	assert.Equal(t, 1, info.Pods)
	assert.Equal(t, 1, info.NetworkPolicies)
	assert.Equal(t, uint16(3), info.FlowRound)
	assert.Equal(t, 1, info.FlowsByTable["10:SpoofGuard"])
	in.ready = func() error { return errors.New("not serving CNI yet") }
	assert.Equal(t, "not serving CNI yet", in.Info().NotReadyReason)
}

func TestOVSVersionFallsBackToVswitchd(t *testing.T) {
	dir := t.TempDir()
	lis, err := net.Listen("unix", filepath.Join(dir, "ovs-vswitchd.ctl"))
	require.NoError(t, err)
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			var req map[string]any
			_ = json.NewDecoder(c).Decode(&req)
			_ = json.NewEncoder(c).Encode(map[string]any{"result": "ovs-vswitchd (Open vSwitch) 3.1.0\n", "error": nil, "id": req["id"]})
			c.Close()
		}
	}()
	fromDB := func(v string) func(context.Context) (string, error) {
		return func(context.Context) (string, error) { return v, nil }
	}
	assert.Equal(t, "3.2.1", ovsVersionOf(fromDB("3.2.1"), dir)(), "OVSDB's ovs_version first")
	assert.Equal(t, "3.1.0", ovsVersionOf(fromDB(""), dir)(), "else ovs-vswitchd's own answer")
	assert.Equal(t, "", ovsVersionOf(fromDB(""), t.TempDir())(), "nothing to ask")
}

func TestRulePolicyFromAMatchedFlow(t *testing.T) {
	in := testInspector(t)
	step := func(match string) trace.Step {
		return trace.Step{Table: agentof.IngressRuleTable.ID, Priority: 200, Match: match}
	}
	// The rule flow in testInspector matches in_port=9; OVS prints it the
	// same way.
	assert.Equal(t, "NetworkPolicy x/deny, ingress rule 0", in.rulePolicy(step("in_port=9")))
	assert.Equal(t, "", in.rulePolicy(step("in_port=8")))
	require.NoError(t, in.flows.Sync(context.Background(), networkpolicy.RuleOwnerPrefix("uid-1")+"in/1", agentof.CategoryPolicy, []of.Flow{
		{Table: agentof.IngressRuleTable.ID, Priority: 200, Match: []of.MatchField{of.MatchConjID(12)}},
	}))
	assert.Equal(t, "NetworkPolicy x/deny, ingress rule 1", in.conjunctionPolicy("12"), "OVS prints conj_id in decimal, the agent in hex")
	assert.Equal(t, "", in.conjunctionPolicy("13"))
	assert.True(t, sameSet(matchSet("tcp,nw_src=10.0.0.1"), matchSet("dl_type=0x800,nw_proto=6,nw_src=10.0.0.1")))
	assert.Equal(t, "in_port=3,dl_type=0x800", flowMatch("cookie=0x1,table=10,priority=200,in_port=3,dl_type=0x800 actions=drop"))
}

func TestTraceOutcome(t *testing.T) {
	in := testInspector(t)
	src := in.pods()[0]
	forward := []agentapi.TraceStep{
		{Table: 70, TableName: "L3Forwarding", Kind: "node", Actions: []string{"set_field:172.18.0.12->tun_dst", "set_field:0x1->reg1", "resubmit(,105)"}},
		{Table: 110, TableName: "Output", Kind: "base", Actions: []string{"output:NXM_NX_REG1[]", ">> Not tunneling to our own address"}},
	}
	out, why := in.outcome(trace.Result{TunnelDst: "172.18.0.12", Dropped: true}, forward, src, netip.MustParseAddr("10.10.1.2"))
	assert.Equal(t, "sent into the tunnel to node 172.18.0.12", out, "the pipeline's decision, whatever the trace's datapath did")
	assert.Empty(t, why)

	local := []agentapi.TraceStep{
		{Table: 80, Kind: "pod", Actions: []string{"set_field:0x7->reg1"}},
		{Table: 90, Kind: "networkpolicy", Policy: "NetworkPolicy x/deny, ingress rule 0"},
		{Table: 110, Actions: []string{"output:NXM_NX_REG1[]"}},
	}
	out, why = in.outcome(trace.Result{OutputPorts: []int{7}}, local, src, src.IP)
	assert.Equal(t, "delivered to pod x/a (port 7)", out)
	assert.Equal(t, "allowed by NetworkPolicy x/deny, ingress rule 0", why)

	dropped := []agentapi.TraceStep{{Table: 80, Actions: []string{"set_field:0x7->reg1"}}, {Table: 100, TableName: "IngressDefaultRule", Kind: "networkpolicy", Actions: []string{"drop"}}}
	out, why = in.outcome(trace.Result{Dropped: true}, dropped, src, src.IP)
	assert.Equal(t, "dropped in table 100 IngressDefaultRule", out)
	assert.Contains(t, why, "dropped: x/a is isolated for ingress by NetworkPolicies")
}

func TestTraceDestinationPodThenService(t *testing.T) {
	in := testInspector(t)
	notFound := func(resource string) error {
		return apierrors.NewNotFound(schema.GroupResource{Resource: resource}, "x")
	}
	in.podIP = func(_ context.Context, ns, name string) (netip.Addr, error) {
		if ns == "y" && name == "b" {
			return netip.MustParseAddr("10.10.1.7"), nil
		}
		return netip.Addr{}, notFound("pods")
	}
	in.serviceIP = func(_ context.Context, ns, name string) (netip.Addr, error) {
		if ns == "y" && name == "web" {
			return netip.MustParseAddr("10.96.0.42"), nil
		}
		return netip.Addr{}, notFound("services")
	}
	ctx := context.Background()
	tests := []struct {
		dst, wantIP, wantService, wantErr string
	}{
		{dst: "x/a", wantIP: "10.10.0.5"}, // a local pod
		{dst: "y/b", wantIP: "10.10.1.7"}, // a pod of another node
		{dst: "y/web", wantIP: "10.96.0.42", wantService: "y/web"},
		{dst: "10.96.0.10", wantIP: "10.96.0.10"},
		{dst: "y/nope", wantErr: "destination y/nope: no pod or Service of that name"},
		{dst: "not-an-ip", wantErr: `destination "not-an-ip": want namespace/name of a pod or a Service, or an IPv4 address`},
	}
	for _, tt := range tests {
		t.Run(tt.dst, func(t *testing.T) {
			packet, _, ip, service, err := in.tracePacket(ctx, agentapi.TraceQuery{Source: "x/a", Destination: tt.dst})
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantIP, ip.String())
			assert.Equal(t, tt.wantService, service)
			assert.Contains(t, packet, "nw_dst="+tt.wantIP)
		})
	}
}

func TestTraceFollowsAServiceGroup(t *testing.T) {
	raw := `40. ct_state=+new+trk,tcp,nw_dst=10.96.128.192,tp_dst=80, priority 200, cookie 0x1050000000000
    group:3
     -> no live bucket
`
	parsed := trace.Parse(raw)
	id, ok := endingGroup(parsed, raw)
	require.True(t, ok)
	assert.Equal(t, uint32(3), id)
	_, ok = endingGroup(parsed, "40. priority 200\n    group:3\n    -> bucket 0\n")
	assert.False(t, ok, "a group OVS followed needs nothing more")

	in := testInspector(t)
	table := uint8(50)
	in.group = func(id uint32) (of.GroupEntry, bool) {
		if id != 3 {
			return of.GroupEntry{}, false
		}
		return of.GroupEntry{ID: 3, Type: of.GroupSelect, Buckets: []of.Bucket{{Weight: 100, Actions: []of.Action{
			of.CT{Commit: true, Zone: 65520, Table: &table, NAT: &of.NAT{DNAT: true, IPMin: []byte{10, 10, 0, 2}, PortMin: 8080}},
		}}}}, true
	}
	ep, ok := in.groupEndpoint(3)
	require.True(t, ok)
	assert.Equal(t, "10.10.0.2:8080", ep.String())
	_, ok = in.groupEndpoint(4)
	assert.False(t, ok)
}
