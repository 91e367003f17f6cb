package apiserver

import (
	"sync"

	"github.com/ovs-cni/antrea/pkg/controller/networkpolicy"
)

// change is one change of a store: old and cur are the object before and
// after (nil when it did not exist), rev the store's revision after it.
type change[T any] struct {
	rev      uint64
	old, cur *T
}

func changeOf[T any](e networkpolicy.Event[T]) change[T] {
	switch e.Type {
	case networkpolicy.Added:
		return change[T]{rev: e.Revision, cur: e.Object}
	case networkpolicy.Deleted:
		return change[T]{rev: e.Revision, old: e.Object}
	}
	return change[T]{rev: e.Revision, old: e.Old, cur: e.Object}
}

// history keeps the last changes of a store, so that a watch can start
// from a recent resourceVersion (the one of a list) without a relist.
type history[T any] struct {
	mu      sync.Mutex
	ring    []change[T]
	next    int // where the next change goes
	n       int // how many are held
	lastRev uint64
	stop    func()
}

// newHistory records the changes of store, up to size of them.
func newHistory[T any](store networkpolicy.Store[T], size int) *history[T] {
	h := &history[T]{ring: make([]change[T], size)}
	_, rev, stop := store.Watch("", func(e networkpolicy.Event[T]) { h.add(changeOf(e)) })
	h.lastRev = rev
	h.stop = stop
	return h
}

func (h *history[T]) add(c change[T]) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ring[h.next] = c
	h.next = (h.next + 1) % len(h.ring)
	if h.n < len(h.ring) {
		h.n++
	}
	h.lastRev = c.rev
}

// between returns the changes with from < rev <= to, in order; ok is false
// when some of them are no longer held.
func (h *history[T]) between(from, to uint64) (out []change[T], ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if from >= to {
		return nil, true
	}
	start := (h.next - h.n + len(h.ring)) % len(h.ring)
	oldest := h.lastRev + 1 // with nothing held, nothing is older
	if h.n > 0 {
		oldest = h.ring[start].rev
	}
	// Revisions are consecutive: every change bumps the revision by one
	// and is recorded.
	if from+1 < oldest {
		return nil, false
	}
	for i := 0; i < h.n; i++ {
		c := h.ring[(start+i)%len(h.ring)]
		if c.rev > from && c.rev <= to {
			out = append(out, c)
		}
	}
	return out, true
}
