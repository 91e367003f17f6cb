package networkpolicy

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	agentof "github.com/ovs-cni/antrea/pkg/agent/openflow"
	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// bundles records what a FlowSyncer sends, in order.
type bundles struct {
	log   []string // "+flow" / "-flow", in the order sent
	calls int      // bundles sent
	fail  error
}

func (b *bundles) Bundle(_ context.Context, add, del []of.Flow) error {
	if b.fail != nil {
		return b.fail
	}
	b.calls++
	for _, f := range del {
		b.log = append(b.log, "-"+f.Key())
	}
	for _, f := range add {
		b.log = append(b.log, "+"+f.String())
	}
	return nil
}

func (b *bundles) take() []string {
	l := b.log
	b.log = nil
	b.calls = 0
	return l
}

func indexOf(log []string, substr string) int {
	for i, l := range log {
		if strings.Contains(l, substr) {
			return i
		}
	}
	return -1
}

func TestRealize(t *testing.T) {
	ctx := context.Background()
	b := &bundles{}
	syncer := agentof.NewFlowSyncer(b, 1)
	require.NoError(t, syncer.Sync(ctx, "pod/web1", agentof.CategoryPod, []of.Flow{{Table: 0, Priority: 190, Match: []of.MatchField{of.MatchInPort(3)}}}))
	b.take()
	r := NewReconciler(syncer)

	s := goldenCases()["seed_example"]
	require.NoError(t, r.Realize(ctx, s))
	// The allow flow, the clause flows and isolation go in one atomic
	// bundle.
	assert.Equal(t, 1, b.calls)
	log := b.take()
	allow, clause, isolation := indexOf(log, "conj_id=0x1"), indexOf(log, "conjunction(1,2/3)"), indexOf(log, "table=100,priority=100")
	require.True(t, allow >= 0 && clause >= 0 && isolation >= 0, "%v", log)
	assert.Equal(t, flatten(Compile(s)), installedPolicyFlows(syncer))

	// Nothing changed: nothing sent.
	require.NoError(t, r.Realize(ctx, s))
	assert.Empty(t, b.take())

	// A new peer changes one clause owner only.
	s2 := goldenCases()["seed_example"]
	s2.AddressGroups["ag-app"].Members = append(s2.AddressGroups["ag-app"].Members, member("app3", "node-3", "10.10.2.9"))
	require.NoError(t, r.Realize(ctx, s2))
	assert.Equal(t, []string{"+cookie=0x1040000000000,table=90,priority=100,dl_type=0x800,nw_src=10.10.2.9 actions=conjunction(1,1/3)"}, b.take())

	// The policy goes, in one bundle; the pod's own flows stay.
	require.NoError(t, r.Realize(ctx, state(nil, nil, nil)))
	assert.Equal(t, 1, b.calls)
	log = b.take()
	isolation, clause, allow = indexOf(log, "-table=100"), indexOf(log, "-table=90,priority=100"), indexOf(log, "-table=90,priority=90")
	require.True(t, allow >= 0 && clause >= 0 && isolation >= 0, "%v", log)
	assert.Equal(t, []string{ownerBase, "pod/web1"}, syncer.Owners())
}

// installedPolicyFlows returns the syncer's flows outside table 0 (the
// pod's), with only the flags of their cookies (the round and category
// dropped), as flow strings in pipeline order.
func installedPolicyFlows(s *agentof.FlowSyncer) []string {
	var out []string
	for _, f := range s.Flows() {
		if f.Table != 0 {
			f.Cookie &= agentof.CookieFlagsMask
			out = append(out, f.String())
		}
	}
	return out
}

func flatten(flows map[string][]of.Flow) []string {
	var all []of.Flow
	for _, fs := range flows {
		all = append(all, fs...)
	}
	of.SortFlows(all)
	out := make([]string, len(all))
	for i, f := range all {
		out[i] = f.String()
	}
	return out
}

// When a rule's conjunction id changes (its ports changed shape), the new
// conj_id flow, the clause flows moved to it and the removal of the old
// conj_id flow are one atomic change.
func TestRealizeMovesConjunctionsAtomically(t *testing.T) {
	ctx := context.Background()
	b := &bundles{}
	r := NewReconciler(agentof.NewFlowSyncer(b, 1))
	s := goldenCases()["seed_example"]
	require.NoError(t, r.Realize(ctx, s))
	b.take()

	// A changed policy is a new object (State's objects are immutable).
	changed := *s.Policies[0]
	changed.Rules = slices.Clone(changed.Rules)
	changed.Rules[0].Services = append(slices.Clone(changed.Rules[0].Services), tcp(9090))
	s.Policies[0] = &changed
	require.NoError(t, r.Realize(ctx, s))
	log := b.take()
	add2, del1 := indexOf(log, "+cookie=0x1040100000000,table=90,priority=90,conj_id=0x2"), indexOf(log, "-table=90,priority=90,conj_id=0x1")
	moved := indexOf(log, "tcp_dst=9090 actions=conjunction(2,3/3)")
	require.True(t, add2 >= 0 && del1 >= 0 && moved >= 0, "%v", log)

	// Id 1 was released after that Realize: the next new rule takes it.
	s.Policies = append(s.Policies, policy("uid-z", "atg-web", in, ingress(groups("ag-app"), tcp(1))))
	b.take()
	require.NoError(t, r.Realize(ctx, s))
	assert.Equal(t, 1, b.calls)
	assert.Contains(t, strings.Join(b.take(), "\n"), "conj_id=0x1,dl_type=0x800 actions=load:0x1->NXM_NX_REG6[0..31],resubmit(,105)")
}

func TestRealizeReportsErrorsAndRetries(t *testing.T) {
	ctx := context.Background()
	b := &bundles{fail: errors.New("switch gone")}
	syncer := agentof.NewFlowSyncer(b, 1)
	r := NewReconciler(syncer)
	s := goldenCases()["default_deny"]
	err := r.Realize(ctx, s)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "switch gone")
	assert.Empty(t, syncer.Owners())

	b.fail = nil
	require.NoError(t, r.Realize(ctx, s))
	assert.Equal(t, []string{ownerBase, ownerIsolationPrefix + "10.10.0.3", ownerIsolationPrefix + "10.10.0.4"}, syncer.Owners())
}

func TestRealizeLeavesOtherOwners(t *testing.T) {
	// Owners without the prefix are never deleted, even when unknown.
	ctx := context.Background()
	syncer := agentof.NewFlowSyncer(&bundles{}, 1)
	require.NoError(t, syncer.Sync(ctx, "node/node-2", agentof.CategoryNode, []of.Flow{{Table: 70, Priority: 200}}))
	r := NewReconciler(syncer)
	require.NoError(t, r.Realize(ctx, &State{NodeName: node, AppliedToGroups: map[string]*controlplane.AppliedToGroup{}}))
	assert.Equal(t, []string{ownerBase, "node/node-2"}, syncer.Owners())
}

// TestReconcilerRuleFollowsRealizedState: Rule answers from the last
// successful Realize only.
func TestReconcilerRuleFollowsRealizedState(t *testing.T) {
	ctx := context.Background()
	b := &bundles{}
	r := NewReconciler(agentof.NewFlowSyncer(b, 1))
	_, ok := r.Rule(1)
	assert.False(t, ok, "nothing realized yet")

	s := state([]*controlplane.NetworkPolicy{policy("uid-web", "atg-web", in, ingress(groups("ag-app"), tcp(8080)))},
		[]*controlplane.AppliedToGroup{atg("atg-web", web1)}, []*controlplane.AddressGroup{ag("ag-app", app1)})
	b.fail = errors.New("switch gone")
	require.Error(t, r.Realize(ctx, s))
	_, ok = r.Rule(1)
	assert.False(t, ok, "a failed Realize installed nothing")

	b.fail = nil
	require.NoError(t, r.Realize(ctx, s))
	rule, ok := r.Rule(1)
	require.True(t, ok)
	assert.Equal(t, Rule{PolicyUID: "uid-web", PolicyNamespace: "default", PolicyName: "uid-web", Direction: controlplane.DirectionIn}, rule)
	assert.Equal(t, "ingress-0", rule.Name())

	s.Policies = nil
	require.NoError(t, r.Realize(ctx, s))
	_, ok = r.Rule(1)
	assert.False(t, ok, "the policy is gone")
}
