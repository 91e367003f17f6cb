package networkpolicy

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSmallSet(t *testing.T) {
	var s smallSet[int]
	for i := range 40 {
		assert.True(t, s.add(i))
		assert.False(t, s.add(i), "added twice")
		assert.Equal(t, i+1, s.len())
	}
	assert.NotNil(t, s.m, "a map once large")
	for i := range 40 {
		assert.True(t, s.has(i))
	}
	for i := 0; i < 40; i += 2 {
		assert.True(t, s.remove(i))
		assert.False(t, s.remove(i))
	}
	got := slices.Sorted(s.all())
	assert.Len(t, got, 20)
	assert.Equal(t, 1, got[0])
	for i := 1; i < 40; i += 2 {
		s.remove(i)
	}
	assert.Zero(t, s.len())
	assert.False(t, s.has(1))

	var small smallSet[string]
	small.add("a")
	small.add("b")
	assert.True(t, small.remove("a"))
	assert.Equal(t, []string{"b"}, slices.Collect(small.all()))
}

func TestGroupRefs(t *testing.T) {
	groups := make([]*group, 40)
	for i := range groups {
		groups[i] = &group{}
	}
	for _, large := range []bool{false, true} {
		var r groupRefs
		n := 3
		if large {
			n = 40
		}
		for _, g := range groups[:n] {
			assert.True(t, r.inc(g), "first reference")
			assert.False(t, r.inc(g), "second reference")
		}
		assert.Equal(t, n, r.len())
		assert.Len(t, slices.Collect(r.all()), n)
		for _, g := range groups[:n] {
			assert.False(t, r.dec(g), "one reference left")
			assert.True(t, r.dec(g), "last reference")
			assert.False(t, r.dec(g), "no reference")
		}
		assert.Zero(t, r.len())
	}
}
