package openflow

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

type keyBundler struct {
	calls    int
	add, del []string
	fail     error
}

func (b *keyBundler) Bundle(_ context.Context, add, del []of.Flow) error {
	if b.fail != nil {
		return b.fail
	}
	b.calls++
	b.add, b.del = nil, nil
	for _, f := range add {
		b.add = append(b.add, f.Key())
	}
	for _, f := range del {
		b.del = append(b.del, f.Key())
	}
	return nil
}

func flow(table uint8, prio uint16, port uint32) of.Flow {
	return of.Flow{Table: table, Priority: prio, Match: []of.MatchField{of.MatchInPort(port)}}
}

func TestSyncAllIsOneBundleAndKeepsSharedFlows(t *testing.T) {
	ctx := context.Background()
	b := &keyBundler{}
	s := NewFlowSyncer(b, 1)
	shared := flow(90, 100, 3)
	require.NoError(t, s.SyncAll(ctx, CategoryPolicy, map[string][]of.Flow{
		"a": {shared, flow(90, 100, 4)},
		"b": {shared},
		"c": {flow(100, 100, 5)},
	}))
	assert.Equal(t, 1, b.calls, "three owners, one bundle")
	assert.Len(t, b.add, 3, "the shared flow is sent once")
	assert.Equal(t, []string{"a", "b", "c"}, s.Owners())

	// a goes and c changes: the shared flow stays (b still has it).
	require.NoError(t, s.SyncAll(ctx, CategoryPolicy, map[string][]of.Flow{
		"a": nil,
		"c": {flow(100, 100, 6)},
	}))
	assert.Equal(t, 2, b.calls)
	assert.ElementsMatch(t, []string{flow(90, 100, 4).Key(), flow(100, 100, 5).Key()}, b.del)
	assert.Equal(t, []string{flow(100, 100, 6).Key()}, b.add)
	assert.Equal(t, []string{"b", "c"}, s.Owners())

	// A flow moving from one owner to another is not deleted.
	require.NoError(t, s.SyncAll(ctx, CategoryPolicy, map[string][]of.Flow{
		"b": nil,
		"d": {shared},
	}))
	assert.Empty(t, b.del)
	assert.Equal(t, 3, b.calls, "d's flow has the same key and actions: re-sent with d's cookie")

	// Sync of one owner sees the shared refcount too.
	require.NoError(t, s.Sync(ctx, "e", CategoryPod, []of.Flow{shared}))
	require.NoError(t, s.Sync(ctx, "d", CategoryPolicy, nil))
	assert.NotContains(t, b.del, shared.Key(), "e still has it")

	// Nothing changes: nothing sent.
	calls := b.calls
	require.NoError(t, s.SyncAll(ctx, CategoryPolicy, map[string][]of.Flow{"c": {flow(100, 100, 6)}}))
	assert.Equal(t, calls, b.calls)
}

func TestSyncAllFailureChangesNothing(t *testing.T) {
	ctx := context.Background()
	b := &keyBundler{fail: errors.New("switch gone")}
	s := NewFlowSyncer(b, 1)
	err := s.SyncAll(ctx, CategoryPolicy, map[string][]of.Flow{"a": {flow(90, 100, 3)}})
	require.ErrorContains(t, err, "switch gone")
	assert.Empty(t, s.Owners())
	b.fail = nil
	require.NoError(t, s.SyncAll(ctx, CategoryPolicy, map[string][]of.Flow{"a": {flow(90, 100, 3)}}))
	assert.Equal(t, []string{"a"}, s.Owners())

	err = s.SyncAll(ctx, CategoryPolicy, map[string][]of.Flow{"x": {flow(90, 100, 3)}, "y": {{Table: 90, Priority: 100, Match: []of.MatchField{of.MatchInPort(3)}, Actions: []of.Action{of.Resubmit{Table: 100}}}}})
	require.ErrorContains(t, err, "disagree")
}

func TestAfterChangeRunsOnlyAfterAChangedBundle(t *testing.T) {
	ctx := context.Background()
	b := &keyBundler{}
	s := NewFlowSyncer(b, 1)
	var after []int
	s.SetAfterChange(func(_ context.Context, category int) { after = append(after, category) })

	require.NoError(t, s.Sync(ctx, "p", CategoryPolicy, []of.Flow{flow(90, 100, 3)}))
	require.NoError(t, s.Sync(ctx, "p", CategoryPolicy, []of.Flow{flow(90, 100, 3)}))
	require.NoError(t, s.Sync(ctx, "svc", CategoryService, []of.Flow{flow(40, 200, 1)}))
	assert.Equal(t, []int{CategoryPolicy, CategoryService}, after, "the unchanged sync sends nothing and runs nothing")

	b.fail = errors.New("boom")
	require.Error(t, s.Sync(ctx, "p", CategoryPolicy, nil))
	assert.Len(t, after, 2, "a failed bundle changed nothing")
}

func TestOwnedFlows(t *testing.T) {
	ctx := context.Background()
	s := NewFlowSyncer(&keyBundler{}, 1)
	require.NoError(t, s.SyncAll(ctx, CategoryPod, map[string][]of.Flow{
		"pod/a": {flow(80, 200, 4), flow(10, 200, 4)},
		"pod/b": {flow(10, 200, 5)},
		"other": {flow(0, 1, 1)},
	}))
	got := s.OwnedFlows(func(o string) bool { return o != "other" })
	require.Len(t, got, 2)
	require.Len(t, got["pod/a"], 2)
	assert.Equal(t, uint8(10), got["pod/a"][0].Table, "sorted in pipeline order")
	assert.Equal(t, uint8(80), got["pod/a"][1].Table)
	assert.Len(t, got["pod/b"], 1)
	assert.Empty(t, s.OwnedFlows(func(string) bool { return false }))
}

func TestCountByTable(t *testing.T) {
	s := NewFlowSyncer(&keyBundler{}, 1)
	shared := flow(90, 100, 3)
	require.NoError(t, s.SyncAll(context.Background(), CategoryPolicy, map[string][]of.Flow{
		"a": {shared, flow(90, 100, 4), flow(10, 200, 4)},
		"b": {shared},
	}))
	assert.Equal(t, map[uint8]int{90: 2, 10: 1}, s.CountByTable(), "the shared flow once")
	counts := map[uint8]int{}
	for _, f := range s.Flows() {
		counts[f.Table]++
	}
	assert.Equal(t, counts, s.CountByTable(), "as Flows counts them")
}

// A failed sync (the switch refuses, or owners disagree) leaves the owner
// counts of shared flows as they were: later deletes still happen exactly
// when the last owner goes.
func TestFailedSyncKeepsOwnerCounts(t *testing.T) {
	ctx := context.Background()
	b := &keyBundler{}
	s := NewFlowSyncer(b, 1)
	shared, other := flow(90, 100, 3), flow(90, 100, 4)
	require.NoError(t, s.SyncAll(ctx, CategoryPolicy, map[string][]of.Flow{"a": {shared}, "b": {shared}}))

	b.fail = errors.New("switch gone")
	require.Error(t, s.SyncAll(ctx, CategoryPolicy, map[string][]of.Flow{"a": nil, "c": {shared}, "d": {other}}))
	b.fail = nil
	disagreeing := other
	disagreeing.Actions = []of.Action{of.Resubmit{Table: 100}}
	require.ErrorContains(t, s.SyncAll(ctx, CategoryPolicy, map[string][]of.Flow{"x": {other}, "y": {disagreeing}}), "disagree")

	require.NoError(t, s.SyncAll(ctx, CategoryPolicy, map[string][]of.Flow{"a": nil}))
	assert.Empty(t, b.del, "b still has the shared flow")
	require.NoError(t, s.SyncAll(ctx, CategoryPolicy, map[string][]of.Flow{"b": nil}))
	assert.Equal(t, []string{shared.Key()}, b.del, "the last owner went")

	require.NoError(t, s.SyncAll(ctx, CategoryPolicy, map[string][]of.Flow{"z": {other}}))
	require.NoError(t, s.SyncAll(ctx, CategoryPolicy, map[string][]of.Flow{"z": nil}))
	assert.Equal(t, []string{other.Key()}, b.del, "no count was left from the failed syncs")
	assert.Empty(t, s.Owners())
}

// Bundles list flows in pipeline order: by table, then priority, highest
// first.
func TestSyncAllSendsPipelineOrder(t *testing.T) {
	b := &keyBundler{}
	s := NewFlowSyncer(b, 1)
	require.NoError(t, s.SyncAll(context.Background(), CategoryPolicy, map[string][]of.Flow{
		"a": {flow(100, 1, 1), flow(90, 100, 2), flow(90, 200, 3)},
		"b": {flow(0, 5, 4), flow(90, 100, 5)},
	}))
	require.Len(t, b.add, 5)
	assert.Equal(t, flow(0, 5, 4).Key(), b.add[0])
	assert.Equal(t, flow(90, 200, 3).Key(), b.add[1])
	assert.ElementsMatch(t, []string{flow(90, 100, 2).Key(), flow(90, 100, 5).Key()}, b.add[2:4])
	assert.Equal(t, flow(100, 1, 1).Key(), b.add[4])
}

// The syncer stamps the round and category into cookies and keeps the
// flags an owner sets under CookieFlagsMask; KeyOwners finds flows by
// them.
func TestCookieFlagsAreKept(t *testing.T) {
	b := &keyBundler{}
	s := NewFlowSyncer(b, 3)
	counted, plain := flow(90, 90, 1), flow(90, 100, 2)
	counted.Cookie = CookieCounted | 0xdead // bits outside the flags are the syncer's
	require.NoError(t, s.SyncAll(context.Background(), CategoryPolicy, map[string][]of.Flow{"a": {counted, plain}}))
	cookies := map[string]uint64{}
	for _, f := range s.Flows() {
		cookies[f.Key()] = f.Cookie
	}
	assert.Equal(t, s.Cookie(CategoryPolicy)|CookieCounted, cookies[counted.Key()])
	assert.Equal(t, s.Cookie(CategoryPolicy), cookies[plain.Key()])
	assert.Equal(t, map[string]string{counted.Key(): "a"}, s.KeyOwners(func(_ string, f of.Flow) bool { return f.Cookie&CookieCounted != 0 }))
}
