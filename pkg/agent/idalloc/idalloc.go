// Package idalloc hands out small numeric ids (conjunction ids, group ids)
// that stay stable per key across compiles, lowest free id first. Ids of
// keys a compile no longer used stay reserved until ReleaseUnused, so that
// an id is never given to a new owner while flows or groups of its previous
// owner may still be installed.
package idalloc

import (
	"slices"
	"sort"
)

// Allocator allocates ids per key. It is not safe for concurrent use.
type Allocator struct {
	ids  map[string]uint32
	used map[string]bool // keys asked for since Begin
	free []uint32        // released ids, ascending
	next uint32          // the next never-used id
}

// New returns an allocator whose first id is first.
func New(first uint32) *Allocator {
	return &Allocator{ids: map[string]uint32{}, used: map[string]bool{}, next: first}
}

// Begin starts a compile: no key is in use yet.
func (a *Allocator) Begin() { a.used = map[string]bool{} }

// Get returns key's id, allocating one if key has none.
func (a *Allocator) Get(key string) uint32 {
	a.used[key] = true
	if id, ok := a.ids[key]; ok {
		return id
	}
	var id uint32
	if len(a.free) > 0 {
		id, a.free = a.free[0], a.free[1:]
	} else {
		id = a.next
		a.next++
	}
	a.ids[key] = id
	return id
}

// ReleaseUnused frees the ids of the keys the last compile did not use and
// returns them, ascending.
func (a *Allocator) ReleaseUnused() []uint32 {
	var released []uint32
	for k, id := range a.ids {
		if !a.used[k] {
			delete(a.ids, k)
			released = append(released, id)
		}
	}
	sort.Slice(released, func(i, j int) bool { return released[i] < released[j] })
	a.free = append(a.free, released...)
	sort.Slice(a.free, func(i, j int) bool { return a.free[i] < a.free[j] })
	return released
}

// Release frees key's id at once, for an owner that knows nothing uses it
// any more, and reports whether key had one.
func (a *Allocator) Release(key string) (uint32, bool) {
	id, ok := a.ids[key]
	if !ok {
		return 0, false
	}
	delete(a.ids, key)
	delete(a.used, key)
	i, _ := slices.BinarySearch(a.free, id)
	a.free = slices.Insert(a.free, i, id)
	return id, true
}

// Keys returns the key of each allocated id.
func (a *Allocator) Keys() map[uint32]string {
	out := make(map[uint32]string, len(a.ids))
	for k, id := range a.ids {
		out[id] = k
	}
	return out
}
