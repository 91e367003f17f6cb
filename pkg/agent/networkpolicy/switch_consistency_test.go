package networkpolicy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// fakeSwitch applies bundles as OVS does (deletes, then adds replacing
// flows with the same key) and keeps the resulting flow table.
type fakeSwitch struct {
	flows map[string]string
	fail  error
}

func (s *fakeSwitch) Bundle(_ context.Context, add, del []of.Flow) error {
	if s.fail != nil {
		return s.fail
	}
	for _, f := range del {
		delete(s.flows, f.Key())
	}
	for _, f := range add {
		s.flows[f.Key()] = f.String()
	}
	return nil
}

var localIPs = []string{"10.10.0.3", "10.10.0.4", "10.10.0.5"}

// randomPorts names port "http" on a pod, as one of two numbers, or not.
func randomPorts(rnd *rand.Rand) []controlplane.NamedPort {
	if rnd.Intn(3) == 0 {
		return nil
	}
	return []controlplane.NamedPort{{Name: "http", Protocol: controlplane.ProtocolTCP, Port: int32(8080 + rnd.Intn(2))}}
}

func randomAddressGroup(rnd *rand.Rand, g int) *controlplane.AddressGroup {
	var ms []controlplane.GroupMember
	for i := rnd.Intn(4); i > 0; i-- {
		ip := fmt.Sprintf("10.10.%d.%d", g, 2+rnd.Intn(12))
		m := member("p"+ip, "node-2", ip, randomPorts(rnd)...)
		if rnd.Intn(5) == 0 { // a second address
			m.IPs = append(m.IPs, fmt.Sprintf("10.11.%d.%d", g, 2+rnd.Intn(12)))
		}
		ms = append(ms, m)
	}
	return ag(fmt.Sprintf("ag%d", g), ms...)
}

func randomAppliedToGroup(rnd *rand.Rand, g int, locals []controlplane.GroupMember) *controlplane.AppliedToGroup {
	var ms []controlplane.GroupMember
	for _, m := range locals {
		if rnd.Intn(2) == 0 {
			ms = append(ms, m)
		}
	}
	return atg(fmt.Sprintf("atg%d", g), ms...)
}

func randomLocals(rnd *rand.Rand) []controlplane.GroupMember {
	var locals []controlplane.GroupMember
	for _, ip := range localIPs {
		if rnd.Intn(3) > 0 {
			locals = append(locals, member("l"+ip, node, ip, randomPorts(rnd)...))
		}
	}
	return locals
}

func randomPolicy(rnd *rand.Rand, uid string) *controlplane.NetworkPolicy {
	var rules []controlplane.NetworkPolicyRule
	for r := 0; r < rnd.Intn(3); r++ {
		peer := groups(fmt.Sprintf("ag%d", rnd.Intn(4)))
		switch rnd.Intn(6) {
		case 0:
			peer = controlplane.NetworkPolicyPeer{}
		case 1:
			peer.IPBlocks = []controlplane.IPBlock{{CIDR: "10.10.0.0/22", Except: []string{fmt.Sprintf("10.10.%d.0/24", rnd.Intn(4))}}}
		}
		var svcs []controlplane.Service
		switch rnd.Intn(4) {
		case 0, 1:
			svcs = append(svcs, tcp(80+rnd.Intn(3)))
		case 2:
			svcs = append(svcs, named("http"))
		}
		if rnd.Intn(2) == 0 {
			rules = append(rules, ingress(peer, svcs...))
		} else {
			rules = append(rules, egress(peer, svcs...))
		}
	}
	types := [][]controlplane.Direction{in, out, inOut, nil}[rnd.Intn(4)]
	p := policy(uid, fmt.Sprintf("atg%d", rnd.Intn(3)), types, rules...)
	if rnd.Intn(4) == 0 {
		p.AppliedToGroups = append(p.AppliedToGroups, fmt.Sprintf("atg%d", rnd.Intn(3)))
	}
	return p
}

func randomState(rnd *rand.Rand) *State {
	var ags []*controlplane.AddressGroup
	for g := 0; g < 4; g++ {
		ags = append(ags, randomAddressGroup(rnd, g))
	}
	locals := randomLocals(rnd)
	var atgs []*controlplane.AppliedToGroup
	for g := 0; g < 3; g++ {
		atgs = append(atgs, randomAppliedToGroup(rnd, g, locals))
	}
	var policies []*controlplane.NetworkPolicy
	for p := 0; p < 1+rnd.Intn(5); p++ {
		policies = append(policies, randomPolicy(rnd, fmt.Sprintf("uid-%d", rnd.Intn(6))))
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
	for i, ip := range localIPs {
		s.LocalPods[netip.MustParseAddr(ip)] = uint32(3 + i)
	}
	return s
}

// mutate returns the next state of s: a few of its objects replaced by
// new ones (changed or not), policies added or removed, local pods come,
// go or change ofport, the gateway changes; everything else is the same
// objects, as the agent's cache hands them out.
func mutate(rnd *rand.Rand, s *State) *State {
	next := *s
	next.Policies = slices.Clone(s.Policies)
	next.AppliedToGroups = maps.Clone(s.AppliedToGroups)
	next.AddressGroups = maps.Clone(s.AddressGroups)
	next.LocalPods = maps.Clone(s.LocalPods)
	for n := 1 + rnd.Intn(3); n > 0; n-- {
		switch rnd.Intn(11) {
		case 0:
			g := rnd.Intn(4)
			next.AddressGroups[fmt.Sprintf("ag%d", g)] = randomAddressGroup(rnd, g)
		case 1: // the same members, a new object
			name := fmt.Sprintf("ag%d", rnd.Intn(4))
			if old := next.AddressGroups[name]; old != nil {
				copied := *old
				next.AddressGroups[name] = &copied
			}
		case 2:
			g := rnd.Intn(3)
			next.AppliedToGroups[fmt.Sprintf("atg%d", g)] = randomAppliedToGroup(rnd, g, randomLocals(rnd))
		case 3:
			uid := fmt.Sprintf("uid-%d", rnd.Intn(6))
			next.Policies = slices.DeleteFunc(next.Policies, func(p *controlplane.NetworkPolicy) bool { return string(p.UID) == uid })
			if rnd.Intn(3) > 0 {
				next.Policies = append(next.Policies, randomPolicy(rnd, uid))
			}
		case 4:
			if len(next.Policies) > 0 {
				i := rnd.Intn(len(next.Policies))
				next.Policies = slices.Delete(next.Policies, i, i+1)
			}
		case 5:
			ip := netip.MustParseAddr(localIPs[rnd.Intn(len(localIPs))])
			if _, ok := next.LocalPods[ip]; ok && rnd.Intn(2) == 0 {
				delete(next.LocalPods, ip)
			} else {
				next.LocalPods[ip] = uint32(3 + rnd.Intn(6))
			}
		case 6:
			rnd.Shuffle(len(next.Policies), func(i, j int) { next.Policies[i], next.Policies[j] = next.Policies[j], next.Policies[i] })
		case 7:
			if rnd.Intn(3) == 0 {
				next.GatewayIP = netip.MustParseAddr(fmt.Sprintf("10.10.0.%d", 1+rnd.Intn(2)))
			}
		case 8:
			if g := next.AddressGroups["ag0"]; g != nil && rnd.Intn(2) == 0 {
				delete(next.AddressGroups, "ag0") // a group not received yet
			}
		case 9:
			delete(next.AppliedToGroups, fmt.Sprintf("atg%d", rnd.Intn(3)))
		case 10:
			if rnd.Intn(4) == 0 { // the node's name: every applied-to member is elsewhere
				next.NodeName = map[string]string{node: "node-x", "node-x": node}[next.NodeName]
			}
		}
	}
	return &next
}

var (
	conjIDRe      = regexp.MustCompile(`conj_id=0x([0-9a-f]+)`)
	loadIDRe      = regexp.MustCompile(`load:0x([0-9a-f]+)->NXM_NX_REG([56])`)
	labelIDRe     = regexp.MustCompile(`ct_label=0x([0-9a-f]+)/0x(f+0{0,8})\b`)
	conjActionsRe = regexp.MustCompile(`actions=(conjunction\([0-9]+,[0-9]+/[0-9]+\)(,conjunction\([0-9]+,[0-9]+/[0-9]+\))*)$`)
	conjunctionRe = regexp.MustCompile(`conjunction\(([0-9]+),`)
)

// withIDKeys writes every conjunction id in flows as the key it was
// allocated for (policy UID, direction, rule index, ports), so that the
// flows of two compilers compare whatever ids each allocated, and
// returns them sorted without duplicates.
func withIDKeys(flows []string, keys map[uint32]string) []string {
	name := func(hex string, base int) string {
		id, err := strconv.ParseUint(hex, base, 64)
		if err != nil {
			return "?" + hex
		}
		if k, ok := keys[uint32(id)]; ok {
			return "<" + k + ">"
		}
		return fmt.Sprintf("<unknown %d>", id)
	}
	out := make([]string, 0, len(flows))
	for _, f := range flows {
		f = conjIDRe.ReplaceAllStringFunc(f, func(m string) string { return "conj_id=" + name(conjIDRe.FindStringSubmatch(m)[1], 16) })
		f = loadIDRe.ReplaceAllStringFunc(f, func(m string) string {
			sm := loadIDRe.FindStringSubmatch(m)
			return "load:" + name(sm[1], 16) + "->NXM_NX_REG" + sm[2]
		})
		f = labelIDRe.ReplaceAllStringFunc(f, func(m string) string {
			sm := labelIDRe.FindStringSubmatch(m)
			v, _ := strconv.ParseUint(sm[1], 16, 64)
			if len(sm[2]) == 16 { // the ingress rule's bits 32-63
				v >>= 32
			}
			return "ct_label=" + name(strconv.FormatUint(v, 16), 16) + "/" + sm[2]
		})
		if m := conjActionsRe.FindStringSubmatchIndex(f); m != nil {
			parts := strings.Split(f[m[2]:m[3]], "),")
			for i, p := range parts {
				p = strings.TrimSuffix(p, ")") + ")"
				parts[i] = conjunctionRe.ReplaceAllStringFunc(p, func(x string) string {
					return "conjunction(" + name(conjunctionRe.FindStringSubmatch(x)[1], 10) + ","
				})
			}
			sort.Strings(parts)
			f = f[:m[2]] + strings.Join(parts, ",")
		}
		out = append(out, f)
	}
	return canonical(out)
}

// Incremental realizations (only changed policies compiled again, only
// changed flows sent) leave the switch with exactly the flows a fresh
// compiler makes of each state, ids aside; a failed bundle in between is
// caught up with by the next Realize.
func TestIncrementalRealizeMatchesFreshCompile(t *testing.T) {
	ctx := context.Background()
	for seed := int64(1); seed <= 300; seed++ {
		rnd := rand.New(rand.NewSource(seed))
		sw := &fakeSwitch{flows: map[string]string{}}
		r := NewReconciler(agentof.NewFlowSyncer(sw, 1))
		s := randomState(rnd)
		for step := 0; step < 60; step++ {
			s = mutate(rnd, s)
			if rnd.Intn(8) == 0 {
				// The bundle fails (if the change needs one at all).
				sw.fail = errors.New("switch gone")
				err := r.Realize(ctx, s)
				sw.fail = nil
				if err != nil {
					continue
				}
			} else {
				require.NoError(t, r.Realize(ctx, s), "seed %d step %d", seed, step)
			}
			fresh := NewCompiler()
			fresh.SetCookie(r.compiler.cookie)
			want := withIDKeys(flatten(fresh.Compile(s)), fresh.ids.Keys())
			got := withIDKeys(slices.Collect(maps.Values(sw.flows)), r.compiler.ids.Keys())
			require.Equal(t, want, got, "seed %d step %d", seed, step)
		}
	}
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

// Every flow the compiler keeps owns its match and actions: none is cut
// out of an array shared with other flows, which a long-lived flow would
// pin (with its compile's other flows gone) for as long as it lives.
func TestKeptFlowsShareNoArrays(t *testing.T) {
	rnd := rand.New(rand.NewSource(7))
	c := NewCompiler()
	s := randomState(rnd)
	var emitted []of.Flow
	for step := 0; step < 200; step++ {
		s = mutate(rnd, s)
		for _, p := range c.CompileChanges(s) {
			for _, f := range p.Set {
				emitted = append(emitted, f)
			}
		}
	}
	for _, ks := range c.keys {
		require.Equal(t, len(ks.match), cap(ks.match), ks.key)
		for _, m := range ks.match {
			require.Equal(t, len(m.Value), cap(m.Value), ks.key)
		}
	}
	for _, f := range emitted {
		require.Equal(t, len(f.Actions), cap(f.Actions), "actions of %s", f.Key())
	}
}
