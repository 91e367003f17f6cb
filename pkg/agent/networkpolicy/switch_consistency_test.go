package networkpolicy

import (
	"context"
	"fmt"
	"math/rand"
	"net/netip"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// fakeSwitch applies bundles as OVS does (deletes, then adds replacing
// flows with the same key) and keeps the resulting flow table.
type fakeSwitch struct{ flows map[string]string }

func (s *fakeSwitch) Bundle(_ context.Context, add, del []of.Flow) error {
	for _, f := range del {
		delete(s.flows, f.Key())
	}
	for _, f := range add {
		s.flows[f.Key()] = f.String()
	}
	return nil
}

func randomState(rnd *rand.Rand) *State {
	ips := func(n int, base byte) []controlplane.GroupMember {
		var ms []controlplane.GroupMember
		for i := 0; i < n; i++ {
			ip := fmt.Sprintf("10.10.%d.%d", base, 2+rnd.Intn(12))
			ms = append(ms, member("p"+ip, "node-2", ip))
		}
		return ms
	}
	var ags []*controlplane.AddressGroup
	for g := 0; g < 4; g++ {
		ags = append(ags, ag(fmt.Sprintf("ag%d", g), ips(rnd.Intn(4), byte(g))...))
	}
	var locals []controlplane.GroupMember
	for _, ip := range []string{"10.10.0.3", "10.10.0.4", "10.10.0.5"} {
		if rnd.Intn(3) > 0 {
			locals = append(locals, member("l"+ip, node, ip))
		}
	}
	var atgs []*controlplane.AppliedToGroup
	for g := 0; g < 3; g++ {
		var ms []controlplane.GroupMember
		for _, m := range locals {
			if rnd.Intn(2) == 0 {
				ms = append(ms, m)
			}
		}
		atgs = append(atgs, atg(fmt.Sprintf("atg%d", g), ms...))
	}
	var policies []*controlplane.NetworkPolicy
	for p := 0; p < 1+rnd.Intn(5); p++ {
		var rules []controlplane.NetworkPolicyRule
		for r := 0; r < rnd.Intn(3); r++ {
			peer := groups(fmt.Sprintf("ag%d", rnd.Intn(4)))
			if rnd.Intn(4) == 0 {
				peer = controlplane.NetworkPolicyPeer{}
			}
			var svcs []controlplane.Service
			if rnd.Intn(2) == 0 {
				svcs = append(svcs, tcp(80+rnd.Intn(3)))
			}
			if rnd.Intn(2) == 0 {
				rules = append(rules, ingress(peer, svcs...))
			} else {
				rules = append(rules, egress(peer, svcs...))
			}
		}
		types := [][]controlplane.Direction{in, out, inOut}[rnd.Intn(3)]
		policies = append(policies, policy(fmt.Sprintf("uid-%d", rnd.Intn(6)), fmt.Sprintf("atg%d", rnd.Intn(3)), types, rules...))
	}
	// Policy UIDs may repeat: keep one of each.
	seen := map[string]bool{}
	var uniq []*controlplane.NetworkPolicy
	for _, p := range policies {
		if !seen[string(p.UID)] {
			seen[string(p.UID)] = true
			uniq = append(uniq, p)
		}
	}
	s := state(uniq, atgs, ags)
	s.LocalPods = map[netip.Addr]uint32{}
	for i, ip := range []string{"10.10.0.3", "10.10.0.4", "10.10.0.5"} {
		s.LocalPods[netip.MustParseAddr(ip)] = uint32(3 + i)
	}
	return s
}

// After every Realize of a random sequence of states, the switch holds
// exactly the flows a fresh compile of that state has (ids aside): no
// flow of an earlier state is left behind, none is missing.
func TestRealizeSequenceLeavesExactlyTheStatesFlows(t *testing.T) {
	ctx := context.Background()
	for seed := int64(1); seed <= 30; seed++ {
		rnd := rand.New(rand.NewSource(seed))
		sw := &fakeSwitch{flows: map[string]string{}}
		syncer := agentof.NewFlowSyncer(sw, 1)
		r := NewReconciler(syncer)
		for step := 0; step < 40; step++ {
			s := randomState(rnd)
			require.NoError(t, r.Realize(ctx, s))
			// Compare shapes with conjunction ids renamed by first use.
			want := canonical(flatten(r.compiler.Compile(s)))
			var got []string
			for _, f := range sw.flows {
				got = append(got, f)
			}
			sort.Strings(got)
			require.Equal(t, want, canonical(got), "seed %d step %d", seed, step)
		}
	}
}

// canonical sorts flows and drops duplicates (owners may share a flow;
// the switch holds it once). Both lists come from the same compiler, so
// conjunction ids agree.
func canonical(flows []string) []string {
	set := map[string]bool{}
	for _, f := range flows {
		set[f] = true
	}
	out := make([]string, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}
