package networkpolicy

import (
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
	add := func(name string, lbls map[string]string) {
		pods.set(name, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}})
	}
	add("p1", map[string]string{"app": "a", "tier": "x"})
	add("p2", map[string]string{"app": "b"})
	add("p3", nil)
	add("p1", map[string]string{"app": "b"}) // relabelled
	groups := newSelectorIndex()
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
	assert.NotContains(t, pods.byKV[labelKV{"app", "b"}], "p1")
	assert.NotContains(t, pods.byKV, labelKV{"tier", "x"})
}

func uniq(s []string) map[string]bool {
	m := map[string]bool{}
	for _, v := range s {
		m[v] = true
	}
	return m
}
