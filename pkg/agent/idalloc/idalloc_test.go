package idalloc

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAllocator(t *testing.T) {
	a := New(1)
	a.Begin()
	assert.Equal(t, uint32(1), a.Get("a"))
	assert.Equal(t, uint32(2), a.Get("b"))
	assert.Equal(t, uint32(3), a.Get("c"))
	assert.Empty(t, a.ReleaseUnused())
	a.Begin()
	a.Get("b")
	assert.Equal(t, uint32(4), a.Get("d"), "unused ids stay reserved until released")
	assert.Equal(t, []uint32{1, 3}, a.ReleaseUnused(), "a and c were not used")
	a.Begin()
	assert.Equal(t, uint32(2), a.Get("b"))
	assert.Equal(t, uint32(1), a.Get("e"), "lowest freed id first")
	assert.Equal(t, uint32(3), a.Get("f"))
	assert.Equal(t, uint32(5), a.Get("g"))
}

func TestFirstID(t *testing.T) {
	a := New(100)
	a.Begin()
	assert.Equal(t, uint32(100), a.Get("x"))
}

func TestRelease(t *testing.T) {
	a := New(1)
	a.Begin()
	a.Get("a")
	a.Get("b")
	a.Get("c")
	id, ok := a.Release("c")
	assert.True(t, ok)
	assert.Equal(t, uint32(3), id)
	id, ok = a.Release("a")
	assert.True(t, ok)
	assert.Equal(t, uint32(1), id)
	_, ok = a.Release("a")
	assert.False(t, ok, "a second release of a key finds nothing")
	assert.Equal(t, uint32(1), a.Get("d"), "lowest released id first")
	assert.Equal(t, uint32(3), a.Get("e"))
	assert.Equal(t, uint32(4), a.Get("f"))
}
