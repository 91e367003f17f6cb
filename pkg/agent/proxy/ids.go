package proxy

import "sort"

// idAllocator hands out group ids, stable per key, lowest free id first.
// Ids of keys that a compile no longer used stay reserved until
// releaseUnused, so that an id is never given to a new service port while
// the group (and flow) of its previous one may still be installed.
type idAllocator struct {
	ids  map[string]uint32
	used map[string]bool // keys asked for since begin
	free []uint32        // released ids, ascending
	next uint32          // the next never-used id
}

func newIDAllocator(first uint32) *idAllocator {
	return &idAllocator{ids: map[string]uint32{}, used: map[string]bool{}, next: first}
}

// begin starts a compile: no key is in use yet.
func (a *idAllocator) begin() { a.used = map[string]bool{} }

// get returns key's id, allocating one if key has none.
func (a *idAllocator) get(key string) uint32 {
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

// releaseUnused frees the ids of the keys the last compile did not use and
// returns them, ascending.
func (a *idAllocator) releaseUnused() []uint32 {
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
