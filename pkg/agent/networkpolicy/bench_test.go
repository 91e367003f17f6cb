package networkpolicy

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// benchState is 10,000 ingress rules: 2,500 policies of 4 rules, each
// policy applied to one of 100 local pods (25 policies per pod), each
// rule allowing its own 10 peer addresses on one of 4 TCP ports.
func benchState() *State {
	const policies, rulesPer, localPods, peersPer = 2500, 4, 100, 10
	var ps []*controlplane.NetworkPolicy
	var atgs []*controlplane.AppliedToGroup
	var ags []*controlplane.AddressGroup
	local := map[netip.Addr]uint32{}
	for p := 0; p < localPods; p++ {
		ip := netip.AddrFrom4([4]byte{10, 10, 0, byte(p + 10)})
		local[ip] = uint32(100 + p)
		atgs = append(atgs, atg(fmt.Sprintf("atg-%d", p), member(fmt.Sprintf("pod%d", p), node, ip.String())))
	}
	peer := 0
	for i := 0; i < policies; i++ {
		var rules []controlplane.NetworkPolicyRule
		for r := 0; r < rulesPer; r++ {
			var ms []controlplane.GroupMember
			for k := 0; k < peersPer; k++ {
				ip := netip.AddrFrom4([4]byte{10, byte(20 + peer>>16), byte(peer >> 8), byte(peer)})
				ms = append(ms, member(fmt.Sprintf("peer%d", peer), "node-2", ip.String()))
				peer++
			}
			name := fmt.Sprintf("ag-%d-%d", i, r)
			ags = append(ags, ag(name, ms...))
			rules = append(rules, ingress(groups(name), tcp(8000+r)))
		}
		ps = append(ps, policy(fmt.Sprintf("uid-%05d", i), fmt.Sprintf("atg-%d", i%localPods), in, rules...))
	}
	s := state(ps, atgs, ags)
	s.LocalPods = local
	return s
}

// BenchmarkRealize10kRules installs the flows of 10,000 rules into a real
// OVS (userspace datapath) through the agent's own OpenFlow connection, in
// the one atomic bundle of a Realize: compile, diff against nothing, and
// the bundle. Reported: flows installed, the rate, and the memory the
// realized state keeps (compiler and syncer caches).
func BenchmarkRealize10kRules(b *testing.B) {
	for i := 0; i < b.N; i++ {
		o, syncer := startBridge(b)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		installPipeline(b, ctx, syncer)
		s := benchState()
		r := NewReconciler(syncer)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		if err := r.Realize(ctx, s); err != nil {
			cancel()
			b.Fatal(err)
		}
		took := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		// One more peer in one rule: the cost of a small change at this
		// size. The group comes as a new object, as the agent's cache
		// hands out changed groups.
		g := *s.AddressGroups["ag-0-0"]
		g.Members = append(slices.Clone(g.Members), member("new-peer", "node-2", "10.250.0.1"))
		s.AddressGroups["ag-0-0"] = &g
		start = time.Now()
		if err := r.Realize(ctx, s); err != nil {
			cancel()
			b.Fatal(err)
		}
		incremental := time.Since(start)
		flows := countFlows(NewCompiler().Compile(s), OwnerPrefix)
		installed := o.Ofctl(b, "dump-aggregate", bridge)
		cancel()
		b.ReportMetric(float64(flows), "flows")
		b.ReportMetric(took.Seconds(), "s/realize")
		b.ReportMetric(float64(flows)/took.Seconds(), "flows/s")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB/retained")
		b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/(1<<20), "MiB/allocated")
		b.ReportMetric(incremental.Seconds()*1000, "ms/one-more-peer")
		b.Logf("%d policy flows realized in %s; switch: %s", flows, took, installed)
	}
}

// BenchmarkCompile10kRules compiles the state of BenchmarkRealize10kRules
// with a fresh compiler, without a switch: the agent's own share of a
// full realization.
func BenchmarkCompile10kRules(b *testing.B) {
	s := benchState()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		NewCompiler().CompileKeyed(s)
	}
}

// BenchmarkReadCounters10kRules reads the counters of the 10,000 rules'
// policy tables (50, 60, 90, 100) over a second OpenFlow connection, as
// the statistics collector does every interval: the counted flows only
// (the switch filters on the cookie's counted bit), and for comparison
// every flow of those tables.
func BenchmarkReadCounters10kRules(b *testing.B) {
	o, syncer := startBridge(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	installPipeline(b, ctx, syncer)
	if err := NewReconciler(syncer).Realize(ctx, benchState()); err != nil {
		b.Fatal(err)
	}
	c := of.NewConn(o.MgmtSocket(bridge), nil)
	cctx, ccancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(cctx)
	}()
	defer func() {
		ccancel()
		<-done
	}()
	tables := []agentof.Table{agentof.EgressRuleTable, agentof.EgressDefaultTable, agentof.IngressRuleTable, agentof.IngressDefaultTable}
	read := func(cookie, mask uint64) (int, time.Duration) {
		start, n := time.Now(), 0
		for _, t := range tables {
			fs, err := c.DumpFlowsByCookie(ctx, int(t.ID), cookie, mask)
			if err != nil {
				b.Fatal(err)
			}
			n += len(fs)
		}
		return n, time.Since(start)
	}
	b.ResetTimer()
	for range b.N {
		counted, tc := read(agentof.CookieCounted, agentof.CookieCounted)
		all, ta := read(0, 0)
		b.ReportMetric(float64(counted), "counted-flows")
		b.ReportMetric(tc.Seconds()*1000, "ms/read-counted")
		b.ReportMetric(float64(all), "all-flows")
		b.ReportMetric(ta.Seconds()*1000, "ms/read-all")
	}
}

// BenchmarkChangeSharedAllowFlow: 4,000 policies each allow all egress
// from the same 100 local pods, so each pod's allow flow is shared by
// 4,000 rule owners; one policy then changes (a port added). The cost of
// the change must follow the change, not owners x pods.
func BenchmarkChangeSharedAllowFlow(b *testing.B) {
	const policies, localPods = 4000, 100
	local := map[netip.Addr]uint32{}
	var members []controlplane.GroupMember
	for p := 0; p < localPods; p++ {
		ip := netip.AddrFrom4([4]byte{10, 10, 0, byte(p + 10)})
		local[ip] = uint32(100 + p)
		members = append(members, member(fmt.Sprintf("pod%d", p), node, ip.String()))
	}
	var ps []*controlplane.NetworkPolicy
	for i := 0; i < policies; i++ {
		ps = append(ps, policy(fmt.Sprintf("uid-%05d", i), "atg-all", out, egress(controlplane.NetworkPolicyPeer{})))
	}
	s := state(ps, []*controlplane.AppliedToGroup{atg("atg-all", members...)}, nil)
	s.LocalPods = local
	for range b.N {
		c := NewCompiler()
		start := time.Now()
		c.CompileChanges(s)
		first := time.Since(start)
		changed := *s
		changed.Policies = slices.Clone(s.Policies)
		changed.Policies[policies/2] = policy("uid-02000", "atg-all", out, egress(controlplane.NetworkPolicyPeer{}, tcp(53)))
		start = time.Now()
		c.CompileChanges(&changed)
		b.ReportMetric(first.Seconds()*1000, "ms/first-compile")
		b.ReportMetric(time.Since(start).Seconds()*1000, "ms/one-policy-changed")
	}
}
