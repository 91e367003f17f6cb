package cniserver

import (
	"context"
	"sync"
)

// locker serializes operations: ADD, CHECK and DEL hold a shared lock plus
// an exclusive lock on their container ID, so operations on one container
// never overlap while different containers proceed in parallel; GC holds
// the exclusive lock, so it never overlaps anything. A waiting GC blocks new
// operations, so a steady stream of ADDs cannot starve it. Every wait gives
// up when its context is done.
type locker struct {
	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every release
	containers map[string]bool
	shared     int
	exclusive  bool
	gcWaiting  int
}

func newLocker() *locker {
	return &locker{changed: make(chan struct{}), containers: map[string]bool{}}
}

// wait calls try with l.mu held until it returns true, waking up on every
// release, or returns the context's error.
func (l *locker) wait(ctx context.Context, try func() bool) error {
	for {
		l.mu.Lock()
		if try() {
			l.mu.Unlock()
			return nil
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// broadcast wakes every waiter; l.mu must be held.
func (l *locker) broadcast() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// lockContainer takes the shared lock and the lock of containerID. The
// returned function releases both.
func (l *locker) lockContainer(ctx context.Context, containerID string) (func(), error) {
	err := l.wait(ctx, func() bool {
		if l.exclusive || l.gcWaiting > 0 {
			return false
		}
		l.shared++
		return true
	})
	if err != nil {
		return nil, err
	}
	err = l.wait(ctx, func() bool {
		if l.containers[containerID] {
			return false
		}
		l.containers[containerID] = true
		return true
	})
	if err != nil {
		l.release(func() { l.shared-- })
		return nil, err
	}
	return func() {
		l.release(func() {
			delete(l.containers, containerID)
			l.shared--
		})
	}, nil
}

// lockAll takes the exclusive lock. The returned function releases it.
func (l *locker) lockAll(ctx context.Context) (func(), error) {
	l.mu.Lock()
	l.gcWaiting++
	l.mu.Unlock()
	err := l.wait(ctx, func() bool {
		if l.exclusive || l.shared > 0 {
			return false
		}
		l.gcWaiting--
		l.exclusive = true
		return true
	})
	if err != nil {
		l.release(func() { l.gcWaiting-- })
		return nil, err
	}
	return func() { l.release(func() { l.exclusive = false }) }, nil
}

// release applies change under l.mu and wakes the waiters.
func (l *locker) release(change func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	change()
	l.broadcast()
}
