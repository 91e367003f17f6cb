package networkpolicy

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
)

func groupNames(gs []*controlplane.AddressGroup) []string {
	out := []string{}
	for _, g := range gs {
		out = append(out, g.Name)
	}
	return out
}

func TestListForNode(t *testing.T) {
	s := newAddressGroupStore()
	s.Update(&controlplane.AddressGroup{Name: "g1", Span: []string{"a", "b"}})
	s.Update(&controlplane.AddressGroup{Name: "g2", Span: []string{"b", "c"}})
	s.Update(&controlplane.AddressGroup{Name: "g3"})
	s.Update(&controlplane.AddressGroup{Name: "g4", Span: []string{"d", "a"}}) // unsorted
	tests := []struct {
		node string
		want []string
	}{
		{"a", []string{"g1", "g4"}},
		{"b", []string{"g1", "g2"}},
		{"c", []string{"g2"}},
		{"d", []string{"g4"}},
		{"e", []string{}},
		{"", []string{"g1", "g2", "g3", "g4"}},
	}
	for _, tt := range tests {
		t.Run(tt.node, func(t *testing.T) {
			assert.Equal(t, tt.want, groupNames(s.ListForNode(tt.node)))
		})
	}
	s.Delete("g1")
	assert.Equal(t, []string{"g4"}, groupNames(s.ListForNode("a")))
	_, ok := s.Get("g1")
	assert.False(t, ok)
}

func TestWatchForNode(t *testing.T) {
	s := newAddressGroupStore()
	s.Update(&controlplane.AddressGroup{Name: "g1", Span: []string{"a"}})
	s.Update(&controlplane.AddressGroup{Name: "g2", Span: []string{"b"}})
	type seen struct {
		Type EventType
		Name string
		Rev  uint64
	}
	var events []seen
	initial, rev, stop := s.Watch("a", func(e Event[controlplane.AddressGroup]) {
		events = append(events, seen{e.Type, e.Object.Name, e.Revision})
	})
	assert.Equal(t, []string{"g1"}, groupNames(initial))
	assert.Equal(t, uint64(2), rev)

	s.Update(&controlplane.AddressGroup{Name: "g1", Span: []string{"a", "b"}}) // stays on a
	s.Update(&controlplane.AddressGroup{Name: "g2", Span: []string{"a", "b"}}) // enters a
	s.Update(&controlplane.AddressGroup{Name: "g1", Span: []string{"b"}})      // leaves a
	s.Update(&controlplane.AddressGroup{Name: "g3", Span: []string{"c"}})      // not a's
	s.Delete("g2")                                                             // gone from a
	s.Delete("g3")                                                             // not a's
	assert.Equal(t, []seen{
		{Modified, "g1", 3}, {Added, "g2", 4}, {Deleted, "g1", 5}, {Deleted, "g2", 7},
	}, events)

	stop()
	s.Update(&controlplane.AddressGroup{Name: "g4", Span: []string{"a"}})
	assert.Len(t, events, 4, "no event after stop")
}

func TestLabelIndexes(t *testing.T) {
	pods := newLabelIndex[*corev1.Pod]()
	pods.indexAt = 0 // index by label from the first pod
	add := func(name string, lbls map[string]string) {
		pods.set(name, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}})
	}
	add("p1", map[string]string{"app": "a", "tier": "x"})
	add("p2", map[string]string{"app": "b"})
	add("p3", nil)
	add("p1", map[string]string{"app": "b"}) // relabelled
	groups := newSelectorIndex[string]()
	selectors := map[string]string{
		"eqA": "app=a", "eqB": "app=b", "inAB": "app in (a,b)", "notA": "app notin (a)",
		"exists": "app", "tierAndApp": "app=b,tier=x", "all": "",
	}
	for name, s := range selectors {
		sel, err := labels.Parse(s)
		assert.NoError(t, err)
		groups.add(name, sel)
	}
	tests := []struct {
		selector string
		pods     []string
	}{
		{"app=a", nil},
		{"app=b", []string{"p1", "p2"}},
		{"app in (a,b)", []string{"p1", "p2"}},
		{"app notin (a)", []string{"p1", "p2", "p3"}},
		{"!app", []string{"p3"}},
		{"app=b,tier=x", nil},
		{"", []string{"p1", "p2", "p3"}},
	}
	for _, tt := range tests {
		t.Run("pods "+tt.selector, func(t *testing.T) {
			sel, err := labels.Parse(tt.selector)
			assert.NoError(t, err)
			var got []string
			pods.match(sel, func(name string, _ *corev1.Pod) { got = append(got, name) })
			assert.ElementsMatch(t, tt.pods, got)
		})
	}
	// The candidate selectors of a pod include every selector matching it.
	for _, lbls := range []map[string]string{{"app": "a"}, {"app": "b", "tier": "x"}, {"tier": "x"}, nil} {
		var got []string
		groups.candidates(lbls, func(name string) { got = append(got, name) })
		for name, s := range selectors {
			sel, _ := labels.Parse(s)
			if sel.Matches(labels.Set(lbls)) {
				assert.Contains(t, got, name, "labels %v", lbls)
			}
		}
		assert.Len(t, got, len(uniq(got)), "each candidate once")
	}
	pods.remove("p1")
	b := pods.byKV[labelKV{"app", "b"}]
	assert.Equal(t, 1, b.len(), "p2 left")
	assert.NotContains(t, pods.byKV, labelKV{"tier", "x"})
}

// TestIndexesSmallAndLarge checks that the indexes answer the same whether
// they hold few objects (a list) or many (by label).
func TestIndexesSmallAndLarge(t *testing.T) {
	for _, n := range []int{3, 40} {
		pods := newLabelIndex[*corev1.Pod]()
		groups := newSelectorIndex[string]()
		for i := range n {
			lbls := map[string]string{"app": fmt.Sprint("a", i%3)}
			pods.set(fmt.Sprint("p", i), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("p", i), Labels: lbls}})
			sel, err := labels.Parse(fmt.Sprint("app=a", i%3))
			assert.NoError(t, err)
			groups.add(fmt.Sprint("g", i), sel)
		}
		sel, _ := labels.Parse("app=a1")
		var got []string
		pods.match(sel, func(name string, _ *corev1.Pod) { got = append(got, name) })
		assert.Len(t, got, (n+1)/3, "n=%d", n)
		var cands []string
		groups.candidates(map[string]string{"app": "a1"}, func(name string) { cands = append(cands, name) })
		assert.GreaterOrEqual(t, len(cands), (n+1)/3)
		assert.Len(t, cands, len(uniq(cands)))
		for i := range n {
			sel, _ := labels.Parse(fmt.Sprint("app=a", i%3))
			groups.remove(fmt.Sprint("g", i), sel)
			pods.remove(fmt.Sprint("p", i))
		}
		assert.True(t, groups.empty())
		assert.Zero(t, pods.len())
	}
}

func uniq(s []string) map[string]bool {
	m := map[string]bool{}
	for _, v := range s {
		m[v] = true
	}
	return m
}
