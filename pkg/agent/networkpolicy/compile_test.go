package networkpolicy

import (
	"flag"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

var update = flag.Bool("update", false, "rewrite golden files")

const node = "node-1"

// Pods of the fixtures. On node-1: web1 (ofport 3), web2 (4), app1 (5),
// db (6); on node-2: app2, web3.
var (
	web1 = member("web1", node, "10.10.0.3", controlplane.NamedPort{Name: "http", Port: 8080, Protocol: controlplane.ProtocolTCP})
	web2 = member("web2", node, "10.10.0.4", controlplane.NamedPort{Name: "http", Port: 80, Protocol: controlplane.ProtocolTCP})
	app1 = member("app1", node, "10.10.0.5")
	db   = member("db", node, "10.10.0.6", controlplane.NamedPort{Name: "pg", Port: 5432})
	app2 = member("app2", "node-2", "10.10.1.7")
	web3 = member("web3", "node-2", "10.10.1.3", controlplane.NamedPort{Name: "http", Port: 8080, Protocol: controlplane.ProtocolTCP})

	localPods = map[netip.Addr]uint32{
		netip.MustParseAddr("10.10.0.3"): 3,
		netip.MustParseAddr("10.10.0.4"): 4,
		netip.MustParseAddr("10.10.0.5"): 5,
		netip.MustParseAddr("10.10.0.6"): 6,
	}
)

func member(name, node, ip string, ports ...controlplane.NamedPort) controlplane.GroupMember {
	return controlplane.GroupMember{Pod: controlplane.PodReference{Namespace: "default", Name: name}, Node: node, IPs: []string{ip}, Ports: ports}
}

func atg(name string, ms ...controlplane.GroupMember) *controlplane.AppliedToGroup {
	return &controlplane.AppliedToGroup{Name: name, Members: ms}
}

func ag(name string, ms ...controlplane.GroupMember) *controlplane.AddressGroup {
	return &controlplane.AddressGroup{Name: name, Members: ms}
}

func tcp(port int) controlplane.Service {
	p := intstr.FromInt32(int32(port))
	return controlplane.Service{Protocol: controlplane.ProtocolTCP, Port: &p}
}

func named(name string) controlplane.Service {
	p := intstr.FromString(name)
	return controlplane.Service{Protocol: controlplane.ProtocolTCP, Port: &p}
}

func portRangeSvc(proto controlplane.Protocol, from, to int32) controlplane.Service {
	p := intstr.FromInt32(from)
	return controlplane.Service{Protocol: proto, Port: &p, EndPort: &to}
}

func ingress(from controlplane.NetworkPolicyPeer, svcs ...controlplane.Service) controlplane.NetworkPolicyRule {
	return controlplane.NetworkPolicyRule{Direction: controlplane.DirectionIn, From: from, Services: svcs}
}

func egress(to controlplane.NetworkPolicyPeer, svcs ...controlplane.Service) controlplane.NetworkPolicyRule {
	return controlplane.NetworkPolicyRule{Direction: controlplane.DirectionOut, To: to, Services: svcs}
}

func groups(names ...string) controlplane.NetworkPolicyPeer {
	return controlplane.NetworkPolicyPeer{AddressGroups: names}
}

func policy(uid, appliedTo string, policyTypes []controlplane.Direction, rules ...controlplane.NetworkPolicyRule) *controlplane.NetworkPolicy {
	return &controlplane.NetworkPolicy{UID: types.UID(uid), Name: uid, Namespace: "default", Rules: rules,
		AppliedToGroups: []string{appliedTo}, PolicyTypes: policyTypes, Span: []string{node}}
}

var (
	in    = []controlplane.Direction{controlplane.DirectionIn}
	out   = []controlplane.Direction{controlplane.DirectionOut}
	inOut = []controlplane.Direction{controlplane.DirectionIn, controlplane.DirectionOut}
)

func state(policies []*controlplane.NetworkPolicy, atgs []*controlplane.AppliedToGroup, ags []*controlplane.AddressGroup) *State {
	s := &State{NodeName: node, GatewayIP: netip.MustParseAddr("10.10.0.1"), Policies: policies,
		AppliedToGroups: map[string]*controlplane.AppliedToGroup{}, AddressGroups: map[string]*controlplane.AddressGroup{},
		LocalPods: localPods}
	for _, g := range atgs {
		s.AppliedToGroups[g.Name] = g
	}
	for _, g := range ags {
		s.AddressGroups[g.Name] = g
	}
	return s
}

// render prints the flows in pipeline order, each followed by its owner
// (the "match/<table>" owners as "match").
func render(flows map[string][]of.Flow) string {
	var all []of.Flow
	owners := map[string]string{}
	for owner, fs := range flows {
		short := strings.TrimPrefix(owner, OwnerPrefix)
		if strings.HasPrefix(owner, ownerMatchPrefix) {
			short = "match"
		}
		for _, f := range fs {
			all = append(all, f)
			owners[f.Key()] = short
		}
	}
	of.SortFlows(all)
	var b strings.Builder
	for _, f := range all {
		fmt.Fprintf(&b, "%-110s [%s]\n", f.String(), owners[f.Key()])
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create %s", path)
	assert.Equal(t, string(want), got)
}

// goldenCases are the states of the golden tests, also installed into a
// real OVS by the integration test to check that OVS accepts every flow.
func goldenCases() map[string]*State {
	webATG := atg("atg-web", web1)
	return map[string]*State{
		// The seed's example: pods app=web accept TCP 8080 only from app=app.
		"seed_example": state(
			[]*controlplane.NetworkPolicy{policy("uid-web", "atg-web", in, ingress(groups("ag-app"), tcp(8080)))},
			[]*controlplane.AppliedToGroup{webATG}, []*controlplane.AddressGroup{ag("ag-app", app1, app2)}),
		// No rules: isolation in both directions only.
		"default_deny": state(
			[]*controlplane.NetworkPolicy{policy("uid-deny", "atg-web", inOut)},
			[]*controlplane.AppliedToGroup{atg("atg-web", web1, web2)}, nil),
		// Egress to a block with two excepts, and to a pod, on UDP 53.
		"egress_ipblock_except": state(
			[]*controlplane.NetworkPolicy{policy("uid-egress", "atg-app", out, egress(controlplane.NetworkPolicyPeer{
				AddressGroups: []string{"ag-db"},
				IPBlocks:      []controlplane.IPBlock{{CIDR: "10.20.0.0/16", Except: []string{"10.20.1.0/24", "10.20.128.0/17"}}},
			}, controlplane.Service{Protocol: controlplane.ProtocolUDP, Port: ptrIntStr(53)}))},
			[]*controlplane.AppliedToGroup{atg("atg-app", app1)}, []*controlplane.AddressGroup{ag("ag-db", db)}),
		// "http" is 8080 on web1 and 80 on web2: two conjunctions.
		"named_port": state(
			[]*controlplane.NetworkPolicy{policy("uid-named", "atg-web", in, ingress(groups("ag-app"), named("http")))},
			[]*controlplane.AppliedToGroup{atg("atg-web", web1, web2)}, []*controlplane.AddressGroup{ag("ag-app", app1)}),
		// Ports 8000 to 8080, from anywhere in a /24.
		"endport_range": state(
			[]*controlplane.NetworkPolicy{policy("uid-range", "atg-web", in, ingress(
				controlplane.NetworkPolicyPeer{IPBlocks: []controlplane.IPBlock{{CIDR: "192.168.10.0/24"}}},
				portRangeSvc(controlplane.ProtocolTCP, 8000, 8080)))},
			[]*controlplane.AppliedToGroup{webATG}, nil),
		// Any source on TCP 80 (two clauses), and a rule with neither
		// peers nor ports (allow flows, no conjunction).
		"empty_peer": state(
			[]*controlplane.NetworkPolicy{
				policy("uid-any-80", "atg-web", in, ingress(controlplane.NetworkPolicyPeer{}, tcp(80))),
				policy("uid-allow-all", "atg-db", in, ingress(controlplane.NetworkPolicyPeer{})),
			},
			[]*controlplane.AppliedToGroup{webATG, atg("atg-db", db)}, nil),
		// Two policies whose rules share ag-app, the port and web1: the
		// shared clause flows carry both conjunctions.
		"shared_address_group": state(
			[]*controlplane.NetworkPolicy{
				policy("uid-a", "atg-web", in, ingress(groups("ag-app"), tcp(8080))),
				policy("uid-b", "atg-web", in, ingress(groups("ag-app", "ag-db"), tcp(8080), tcp(9090))),
			},
			[]*controlplane.AppliedToGroup{webATG}, []*controlplane.AddressGroup{ag("ag-app", app1, app2), ag("ag-db", db)}),
		// web3 runs on node-2 and web4 has no port yet: only web1 gets
		// flows. app2 (node-2) is a source like any other.
		"remote_pod_ignored": state(
			[]*controlplane.NetworkPolicy{policy("uid-web", "atg-web", inOut,
				ingress(groups("ag-app"), tcp(8080)), egress(groups("ag-app")))},
			[]*controlplane.AppliedToGroup{atg("atg-web", web1, web3, member("web4", node, "10.10.0.9"))},
			[]*controlplane.AddressGroup{ag("ag-app", app2)}),
	}
}

func ptrIntStr(port int32) *intstr.IntOrString {
	p := intstr.FromInt32(port)
	return &p
}

func TestCompileGolden(t *testing.T) {
	for name, s := range goldenCases() {
		t.Run(name, func(t *testing.T) {
			flows := Compile(s)
			for _, fs := range flows {
				for _, f := range fs {
					require.NoError(t, f.Validate(), f.String())
				}
			}
			golden(t, name, render(flows))
		})
	}
}

func TestCompileIsDeterministic(t *testing.T) {
	for name, s := range goldenCases() {
		assert.Equal(t, render(Compile(s)), render(Compile(s)), name)
	}
}

func TestSeedExampleShape(t *testing.T) {
	flows := Compile(goldenCases()["seed_example"])
	text := render(flows)
	for _, want := range []string{
		"table=90,priority=100,dl_type=0x800,nw_src=10.10.0.5 actions=conjunction(1,1/3)",
		"table=90,priority=100,dl_type=0x800,nw_src=10.10.1.7 actions=conjunction(1,1/3)",
		"table=90,priority=100,reg1=0x3,dl_type=0x800 actions=conjunction(1,2/3)",
		"table=90,priority=100,dl_type=0x800,nw_proto=6,tcp_dst=8080 actions=conjunction(1,3/3)",
		"cookie=0x100000000,table=90,priority=90,conj_id=0x1,dl_type=0x800 actions=load:0x1->NXM_NX_REG6[0..31],resubmit(,105)",
		"table=100,priority=100,reg1=0x3,dl_type=0x800 actions=drop",
		"table=100,priority=101,reg1=0x3,reg0=0x40000/0x40000,dl_type=0x800 actions=CONTROLLER",
		"table=90,priority=205,reg0=0x1/0xffff,dl_type=0x800,nw_src=10.10.0.1 actions=resubmit(,105)",
		"table=50,priority=210,ct_state=-new+est,dl_type=0x800 actions=resubmit(,70)",
	} {
		assert.Contains(t, text, want)
	}
	assert.Len(t, flows[ownerRulePrefix+"uid-web/in/0"], 1)
	assert.NotContains(t, text, "table=60", "an ingress-only policy does not isolate egress")
}

func TestNamedPortSplitsConjunctions(t *testing.T) {
	flows := Compile(goldenCases()["named_port"])
	text := render(flows)
	// The source is shared by both conjunctions; each pod and port has its own.
	assert.Contains(t, text, "nw_src=10.10.0.5 actions=conjunction(1,1/3),conjunction(2,1/3)")
	assert.Contains(t, text, "reg1=0x3,dl_type=0x800 actions=conjunction(2,2/3)")
	assert.Contains(t, text, "tcp_dst=8080 actions=conjunction(2,3/3)")
	assert.Contains(t, text, "reg1=0x4,dl_type=0x800 actions=conjunction(1,2/3)")
	assert.Contains(t, text, "tcp_dst=80 actions=conjunction(1,3/3)")
	assert.Len(t, flows[ownerRulePrefix+"uid-named/in/0"], 2)
}

func TestUnresolvedPeersAllowNothing(t *testing.T) {
	s := state([]*controlplane.NetworkPolicy{
		// ag-missing is not known yet, ag-empty has no members: no source.
		policy("uid-a", "atg-web", in, ingress(groups("ag-missing", "ag-empty"), tcp(80))),
		// "grpc" is a port of no pod.
		policy("uid-b", "atg-web", in, ingress(controlplane.NetworkPolicyPeer{}, named("grpc"))),
		// Egress named port to a block: never resolved on blocks.
		policy("uid-c", "atg-web", out, egress(controlplane.NetworkPolicyPeer{
			IPBlocks: []controlplane.IPBlock{{CIDR: "10.0.0.0/8"}}}, named("http"))),
	}, []*controlplane.AppliedToGroup{atg("atg-web", web1)}, []*controlplane.AddressGroup{ag("ag-empty")})
	flows := Compile(s)
	var owners []string
	for o := range flows {
		owners = append(owners, o)
	}
	sort.Strings(owners)
	assert.Equal(t, []string{ownerBase, ownerIsolationPrefix + "10.10.0.3"}, owners)
	assert.Len(t, flows[ownerIsolationPrefix+"10.10.0.3"], 4, "isolated in both directions, each drop with its Traceflow report")
}

func TestAllowFlowsCarryTheRuleID(t *testing.T) {
	// Two policies allow everything into web1: their allow flows have one
	// match, so they share one flow, which loads the lower rule id; a
	// conjunctive rule loads its own.
	s := state([]*controlplane.NetworkPolicy{
		policy("uid-a", "atg-web", in, ingress(controlplane.NetworkPolicyPeer{})),
		policy("uid-b", "atg-web", in, ingress(controlplane.NetworkPolicyPeer{})),
		policy("uid-c", "atg-web", in, ingress(groups("ag-app"), tcp(8080))),
		policy("uid-d", "atg-web", out, egress(controlplane.NetworkPolicyPeer{})),
	}, []*controlplane.AppliedToGroup{atg("atg-web", web1)}, []*controlplane.AddressGroup{ag("ag-app", app1)})
	flows := Compile(s)
	shared := "cookie=0x100000000,table=90,priority=90,reg1=0x3,dl_type=0x800 actions=load:0x1->NXM_NX_REG6[0..31],resubmit(,105)"
	for _, owner := range []string{"uid-a/in/0", "uid-b/in/0"} {
		require.Len(t, flows[ownerRulePrefix+owner], 1, owner)
		assert.Equal(t, shared, flows[ownerRulePrefix+owner][0].String(), owner)
	}
	require.Len(t, flows[ownerRulePrefix+"uid-c/in/0"], 1)
	assert.Equal(t, "cookie=0x100000000,table=90,priority=90,conj_id=0x3,dl_type=0x800 actions=load:0x3->NXM_NX_REG6[0..31],resubmit(,105)",
		flows[ownerRulePrefix+"uid-c/in/0"][0].String())
	require.Len(t, flows[ownerRulePrefix+"uid-d/out/0"], 1)
	assert.Equal(t, "cookie=0x100000000,table=50,priority=90,dl_type=0x800,nw_src=10.10.0.3 actions=load:0x4->NXM_NX_REG5[0..31],resubmit(,70)",
		flows[ownerRulePrefix+"uid-d/out/0"][0].String(), "egress rules use their own register")
}

func TestPolicyTypesGateRules(t *testing.T) {
	// An egress rule of a policy that isolates ingress only is ignored,
	// or it would let traffic skip another policy's egress isolation.
	s := state([]*controlplane.NetworkPolicy{policy("uid-a", "atg-web", in, egress(controlplane.NetworkPolicyPeer{}))},
		[]*controlplane.AppliedToGroup{atg("atg-web", web1)}, nil)
	text := render(Compile(s))
	assert.NotContains(t, text, "table=50,priority=90")
	assert.NotContains(t, text, "table=60")
	// Without policyTypes: ingress, plus egress since there is an egress rule.
	s.Policies[0].PolicyTypes = nil
	text = render(Compile(s))
	assert.Contains(t, text, "cookie=0x100000000,table=50,priority=90,dl_type=0x800,nw_src=10.10.0.3 actions=load:0x1->NXM_NX_REG5[0..31],resubmit(,70)")
	assert.Contains(t, text, "table=60,priority=100,dl_type=0x800,nw_src=10.10.0.3 actions=drop")
	assert.Contains(t, text, "table=100,priority=100,reg1=0x3,dl_type=0x800 actions=drop")
}

func TestGatewayFlowWithoutGatewayIP(t *testing.T) {
	s := state(nil, nil, nil)
	s.GatewayIP = netip.Addr{}
	flows := Compile(s)
	require.Len(t, flows, 1)
	require.Len(t, flows[ownerBase], 2)
	assert.Equal(t, "table=90,priority=205,reg0=0x1/0xffff,dl_type=0x800 actions=resubmit(,105)", flows[ownerBase][1].String())
}

func TestConjunctionIDsStableAndReused(t *testing.T) {
	c := NewCompiler()
	pa := policy("uid-a", "atg-web", in, ingress(groups("ag-app"), tcp(80)))
	pb := policy("uid-b", "atg-web", in, ingress(groups("ag-app"), tcp(81)))
	pc := policy("uid-c", "atg-web", in, ingress(groups("ag-app"), tcp(82)))
	atgs := []*controlplane.AppliedToGroup{atg("atg-web", web1)}
	ags := []*controlplane.AddressGroup{ag("ag-app", app1)}
	conjOf := func(flows map[string][]of.Flow, uid string) string {
		fs := flows[ownerRulePrefix+uid+"/in/0"]
		if len(fs) != 1 {
			return ""
		}
		return fs[0].Match[0].String()
	}

	f := c.Compile(state([]*controlplane.NetworkPolicy{pa, pb}, atgs, ags))
	c.ReleaseUnusedIDs()
	assert.Equal(t, "conj_id=0x1", conjOf(f, "uid-a"))
	assert.Equal(t, "conj_id=0x2", conjOf(f, "uid-b"))

	// a goes, c comes: c must not take a's id while a's flows may remain.
	f = c.Compile(state([]*controlplane.NetworkPolicy{pb, pc}, atgs, ags))
	assert.Equal(t, "conj_id=0x2", conjOf(f, "uid-b"), "b keeps its id")
	assert.Equal(t, "conj_id=0x3", conjOf(f, "uid-c"))
	c.ReleaseUnusedIDs()

	// Once released, the freed id 1 is reused.
	pd := policy("uid-d", "atg-web", in, ingress(groups("ag-app"), tcp(83)))
	f = c.Compile(state([]*controlplane.NetworkPolicy{pb, pc, pd}, atgs, ags))
	assert.Equal(t, "conj_id=0x1", conjOf(f, "uid-d"))
	assert.Equal(t, "conj_id=0x3", conjOf(f, "uid-c"))
}

// TestRulesByConjunctionID: every rule's allow flows load its id into
// the rule register of its direction, and Rules maps the id back to the
// policy and the rule's place among the rules of its direction.
func TestRulesByConjunctionID(t *testing.T) {
	s := state([]*controlplane.NetworkPolicy{
		policy("uid-web", "atg-web", inOut,
			ingress(groups("ag-app"), tcp(8080)),
			egress(controlplane.NetworkPolicyPeer{}, tcp(53)),
			ingress(controlplane.NetworkPolicyPeer{})),
	}, []*controlplane.AppliedToGroup{atg("atg-web", web1)}, []*controlplane.AddressGroup{ag("ag-app", app1)})
	c := NewCompiler()
	text := render(c.Compile(s))
	rules := c.Rules()
	require.Len(t, rules, 3)
	byName := map[string]uint32{}
	for id, r := range rules {
		assert.Equal(t, "default", r.PolicyNamespace)
		assert.Equal(t, "uid-web", r.PolicyName)
		assert.Equal(t, types.UID("uid-web"), r.PolicyUID)
		byName[r.Name()] = id
	}
	require.ElementsMatch(t, []string{"ingress-0", "ingress-1", "egress-0"}, slices.Collect(maps.Keys(byName)))
	assert.Contains(t, text, fmt.Sprintf("cookie=0x100000000,table=90,priority=90,conj_id=%#x,dl_type=0x800 actions=load:%#x->NXM_NX_REG6[0..31],resubmit(,105)", byName["ingress-0"], byName["ingress-0"]))
	assert.Contains(t, text, fmt.Sprintf("cookie=0x100000000,table=50,priority=90,conj_id=%#x,dl_type=0x800 actions=load:%#x->NXM_NX_REG5[0..31],resubmit(,70)", byName["egress-0"], byName["egress-0"]))
	// A rule with neither peers nor ports has no conjunction, but its
	// allow flow loads an id all the same.
	assert.Contains(t, text, fmt.Sprintf("cookie=0x100000000,table=90,priority=90,reg1=0x3,dl_type=0x800 actions=load:%#x->NXM_NX_REG6[0..31],resubmit(,105)", byName["ingress-1"]))
}

// TestSharedSingleClauseAllowFlow: two rules that allow everything to the
// same pod produce the same allow flow, which loads the lower id, so that
// both owners install one identical flow; when that rule goes, the flow
// loads the other's id.
func TestSharedSingleClauseAllowFlow(t *testing.T) {
	all := ingress(controlplane.NetworkPolicyPeer{})
	s := state([]*controlplane.NetworkPolicy{policy("uid-a", "atg-web", in, all), policy("uid-b", "atg-web", in, all)},
		[]*controlplane.AppliedToGroup{atg("atg-web", web1)}, nil)
	c := NewCompiler()
	flows := c.Compile(s)
	a, b := flows[ownerRulePrefix+"uid-a/in/0"], flows[ownerRulePrefix+"uid-b/in/0"]
	require.Len(t, a, 1)
	require.Equal(t, a, b)
	assert.Equal(t, "cookie=0x100000000,table=90,priority=90,reg1=0x3,dl_type=0x800 actions=load:0x1->NXM_NX_REG6[0..31],resubmit(,105)", a[0].String())
	assert.Equal(t, "uid-a", c.Rules()[1].PolicyName)

	s.Policies = s.Policies[1:]
	c.ReleaseUnusedIDs()
	flows = c.Compile(s)
	require.Len(t, flows[ownerRulePrefix+"uid-b/in/0"], 1)
	assert.Equal(t, "cookie=0x100000000,table=90,priority=90,reg1=0x3,dl_type=0x800 actions=load:0x2->NXM_NX_REG6[0..31],resubmit(,105)", flows[ownerRulePrefix+"uid-b/in/0"][0].String())
	assert.Equal(t, map[uint32]Rule{2: {PolicyUID: "uid-b", PolicyNamespace: "default", PolicyName: "uid-b", Direction: controlplane.DirectionIn}}, c.Rules())
}
