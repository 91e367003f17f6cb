package traceflow

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTagSpaceIsDSCPPool2(t *testing.T) {
	seen := map[uint8]bool{}
	for i := 0; i < TagCount; i++ {
		tag := TagOf(i)
		assert.True(t, IsTag(tag), "tag %d", tag)
		assert.Equal(t, uint8(3), tag&3, "pool 2 codepoints end in binary 11")
		assert.Less(t, tag, uint8(64), "6 bits")
		seen[tag] = true
	}
	assert.Len(t, seen, TagCount)
	for _, dscp := range []uint8{0, 1, 8, 10, 34, 46, 48, 64 | 3} {
		assert.False(t, IsTag(dscp), "DSCP %d (standard codepoints, or more than 6 bits) is no tag", dscp)
	}
}

func TestTagsAllocation(t *testing.T) {
	tags := NewTags()
	a, err := tags.Allocate("a")
	require.NoError(t, err)
	again, err := tags.Allocate("a")
	require.NoError(t, err)
	assert.Equal(t, a, again, "a Traceflow keeps its tag")
	b, err := tags.Allocate("b")
	require.NoError(t, err)
	assert.NotEqual(t, a, b)

	// Round robin: a released tag is the last to come back.
	tags.Release("a")
	c, err := tags.Allocate("c")
	require.NoError(t, err)
	assert.NotEqual(t, a, c, "the tag just released is not reused first")

	for i := 3; i < TagCount+1; i++ {
		_, err := tags.Allocate(fmt.Sprint("t", i))
		require.NoError(t, err)
	}
	_, err = tags.Allocate("one-too-many")
	assert.ErrorContains(t, err, "all 16 dataplane tags are taken")
	tags.Release("b")
	got, err := tags.Allocate("one-too-many")
	require.NoError(t, err)
	assert.Equal(t, b, got, "the only free tag")
	tags.Release("unknown") // no-op
}
