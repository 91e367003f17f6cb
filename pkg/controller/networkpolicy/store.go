package networkpolicy

import (
	"slices"
	"sort"
	"sync"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane"
)

// EventType is the kind of change of a watch event.
type EventType string

// Event types, as in a Kubernetes watch.
const (
	Added    EventType = "ADDED"
	Modified EventType = "MODIFIED"
	Deleted  EventType = "DELETED"
)

// Event is a change to one object of a Store, as seen by one watcher.
type Event[T any] struct {
	Type EventType
	// Object is the new object, or the last one for Deleted.
	Object *T
	// Old is the object as it was before a Modified event (nil for
	// Added and Deleted), so that watchers can send patches.
	Old *T
	// Revision is the store's revision after the change.
	Revision uint64
}

// Store holds computed objects by name, each with its span, for the API
// server to serve with list/watch and a nodeName field selector. Objects
// are shared and must not be modified.
type Store[T any] interface {
	// Get returns the object of that name.
	Get(name string) (*T, bool)
	// List returns all objects and the revision they reflect.
	List() ([]*T, uint64)
	// ListForNode returns exactly the objects whose span contains node.
	ListForNode(node string) []*T
	// Watch returns the objects for node ("" for all) with the revision
	// they reflect, and from then on calls handler with each change as
	// node sees it: an object entering its span is Added, leaving it is
	// Deleted. handler is called in order, with the store locked: it must
	// not block nor call the store. stop ends the watch.
	Watch(node string, handler func(Event[T])) (initial []*T, revision uint64, stop func())
}

// MemoryStore is the in-memory Store the controller writes to.
type MemoryStore[T any] struct {
	name func(*T) string
	span func(*T) []string

	mu       sync.RWMutex
	objects  map[string]*T
	revision uint64
	watchers map[int]*watcher[T]
	nextID   int
}

type watcher[T any] struct {
	node    string
	handler func(Event[T])
}

var (
	_ Store[controlplane.AppliedToGroup] = (*MemoryStore[controlplane.AppliedToGroup])(nil)
	_ Store[controlplane.AddressGroup]   = (*MemoryStore[controlplane.AddressGroup])(nil)
	_ Store[controlplane.NetworkPolicy]  = (*MemoryStore[controlplane.NetworkPolicy])(nil)
)

// NewMemoryStore returns an empty store of objects named and spanned by
// these functions.
func NewMemoryStore[T any](name func(*T) string, span func(*T) []string) *MemoryStore[T] {
	return &MemoryStore[T]{name: name, span: span, objects: map[string]*T{}, watchers: map[int]*watcher[T]{}}
}

func newAppliedToGroupStore() *MemoryStore[controlplane.AppliedToGroup] {
	return NewMemoryStore(
		func(g *controlplane.AppliedToGroup) string { return g.Name },
		func(g *controlplane.AppliedToGroup) []string { return g.Span })
}

func newAddressGroupStore() *MemoryStore[controlplane.AddressGroup] {
	return NewMemoryStore(
		func(g *controlplane.AddressGroup) string { return g.Name },
		func(g *controlplane.AddressGroup) []string { return g.Span })
}

func newNetworkPolicyStore() *MemoryStore[controlplane.NetworkPolicy] {
	return NewMemoryStore(policyKey, func(p *controlplane.NetworkPolicy) []string { return p.Span })
}

// policyKey names an internal NetworkPolicy in its store: namespace/name.
func policyKey(p *controlplane.NetworkPolicy) string { return p.Namespace + "/" + p.Name }

// Get implements Store.
func (s *MemoryStore[T]) Get(name string) (*T, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	obj, ok := s.objects[name]
	return obj, ok
}

// List implements Store.
func (s *MemoryStore[T]) List() ([]*T, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.listLocked(""), s.revision
}

// ListForNode implements Store. It scans the objects: spans are sorted, so
// each test is a binary search, and no per-node index is kept (it would
// hold one entry per object per node).
func (s *MemoryStore[T]) ListForNode(node string) []*T {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.listLocked(node)
}

func (s *MemoryStore[T]) listLocked(node string) []*T {
	out := make([]*T, 0, len(s.objects))
	for _, obj := range s.objects {
		if node == "" || spanHas(s.span(obj), node) {
			out = append(out, obj)
		}
	}
	sort.Slice(out, func(i, j int) bool { return s.name(out[i]) < s.name(out[j]) })
	return out
}

// Watch implements Store.
func (s *MemoryStore[T]) Watch(node string, handler func(Event[T])) ([]*T, uint64, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextID
	s.nextID++
	s.watchers[id] = &watcher[T]{node: node, handler: handler}
	stop := func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.watchers, id)
	}
	return s.listLocked(node), s.revision, stop
}

// Update adds or replaces an object. Its span must not change after; it is
// sorted here if it is not already.
func (s *MemoryStore[T]) Update(obj *T) {
	if span := s.span(obj); !slices.IsSorted(span) {
		slices.Sort(span)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name := s.name(obj)
	old := s.objects[name]
	s.objects[name] = obj
	s.revision++
	s.notify(old, obj)
}

// reserve makes room for n objects in an empty store, so that a first
// sync of many objects does not grow its map step by step.
func (s *MemoryStore[T]) reserve(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.objects) == 0 && n > 0 {
		s.objects = make(map[string]*T, n)
	}
}

// Delete removes the object of that name, if any.
func (s *MemoryStore[T]) Delete(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.objects[name]
	if !ok {
		return
	}
	delete(s.objects, name)
	s.revision++
	s.notify(old, nil)
}

// Len returns the number of objects.
func (s *MemoryStore[T]) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.objects)
}

// notify tells each watcher about the change from old to cur (either may
// be nil), as its node sees it.
func (s *MemoryStore[T]) notify(old, cur *T) {
	for _, w := range s.watchers {
		if e, ok := nodeEvent(w.node, old, cur, s.span); ok {
			e.Revision = s.revision
			w.handler(e)
		}
	}
}

// nodeEvent is the event a watcher of node sees when an object changes
// from old to cur; ok is false when the node sees no change.
func nodeEvent[T any](node string, old, cur *T, span func(*T) []string) (Event[T], bool) {
	had := old != nil && (node == "" || spanHas(span(old), node))
	has := cur != nil && (node == "" || spanHas(span(cur), node))
	switch {
	case had && has:
		return Event[T]{Type: Modified, Object: cur, Old: old}, true
	case has:
		return Event[T]{Type: Added, Object: cur}, true
	case had:
		return Event[T]{Type: Deleted, Object: old}, true
	}
	return Event[T]{}, false
}

// spanHas reports whether a sorted span holds node.
func spanHas(span []string, node string) bool {
	_, found := slices.BinarySearch(span, node)
	return found
}

// Stats counts the stored objects and the watchers per node.
func (s *MemoryStore[T]) Stats() (objects int, watchersByNode map[string]int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	watchersByNode = map[string]int{}
	for _, w := range s.watchers {
		watchersByNode[w.node]++
	}
	return len(s.objects), watchersByNode
}
