package traceflow

import (
	"fmt"
	"sync"
)

// Tags hands out the dataplane tags of the Traceflows this node sends.
//
// A tag is an IP DSCP value of RFC 2474's pool 2 (binary xxxx11: 3, 7,
// 11, ..., 63), which the RFC reserves for experimental or local use and
// no standard per-hop behaviour uses, so the applications of a pod are
// unlikely to send it. That gives 16 tags. Only the source pod's node
// allocates tags for its Traceflows, and the receive flows match the tag
// together with the source pod's IP and the protocol, so a tag only has
// to be unique among the running Traceflows of one node: no coordination
// between agents is needed.
//
// Tags are handed out round robin, so that a tag just released (whose
// receive flows other nodes may still be removing) is the last to be
// reused.
type Tags struct {
	mu     sync.Mutex
	byName map[string]uint8
	inUse  map[uint8]bool
	next   int // index into the tag space of the next tag to try
}

// TagCount is how many Traceflows one node can run at once.
const TagCount = 16

// TagOf returns the DSCP value of the i-th tag (0 to TagCount-1).
func TagOf(i int) uint8 { return uint8(i<<2 | 3) }

// IsTag says whether dscp is in the tag space.
func IsTag(dscp uint8) bool { return dscp&3 == 3 && dscp < 64 }

// NewTags returns an empty allocator.
func NewTags() *Tags {
	return &Tags{byName: map[string]uint8{}, inUse: map[uint8]bool{}}
}

// Allocate returns name's tag, allocating one if name has none.
func (t *Tags) Allocate(name string) (uint8, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tag, ok := t.byName[name]; ok {
		return tag, nil
	}
	for i := 0; i < TagCount; i++ {
		tag := TagOf((t.next + i) % TagCount)
		if !t.inUse[tag] {
			t.inUse[tag] = true
			t.byName[name] = tag
			t.next = (t.next + i + 1) % TagCount
			return tag, nil
		}
	}
	return 0, fmt.Errorf("all %d dataplane tags are taken by running Traceflows from this node", TagCount)
}

// Release frees name's tag, if it has one.
func (t *Tags) Release(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tag, ok := t.byName[name]; ok {
		delete(t.inUse, tag)
		delete(t.byName, name)
	}
}
