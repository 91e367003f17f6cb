package cniserver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLocker(t *testing.T) {
	short := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 50*time.Millisecond)
	}
	tests := []struct {
		name string
		// hold takes locks and returns a release func.
		hold func(l *locker) func()
		// try attempts another lock with a short deadline.
		try     func(l *locker, ctx context.Context) (func(), error)
		wantErr bool
	}{
		{"same container blocks",
			func(l *locker) func() { u, _ := l.lockContainer(context.Background(), "a"); return u },
			func(l *locker, ctx context.Context) (func(), error) { return l.lockContainer(ctx, "a") }, true},
		{"other container proceeds",
			func(l *locker) func() { u, _ := l.lockContainer(context.Background(), "a"); return u },
			func(l *locker, ctx context.Context) (func(), error) { return l.lockContainer(ctx, "b") }, false},
		{"GC waits for operations",
			func(l *locker) func() { u, _ := l.lockContainer(context.Background(), "a"); return u },
			func(l *locker, ctx context.Context) (func(), error) { return l.lockAll(ctx) }, true},
		{"operations wait for GC",
			func(l *locker) func() { u, _ := l.lockAll(context.Background()); return u },
			func(l *locker, ctx context.Context) (func(), error) { return l.lockContainer(ctx, "b") }, true},
		{"waiting GC holds new operations back",
			func(l *locker) func() {
				u, _ := l.lockContainer(context.Background(), "a")
				go func() { _, _ = l.lockAll(context.Background()) }() // never acquired before release
				require.Eventually(t, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.gcWaiting == 1 },
					time.Second, time.Millisecond)
				return u
			},
			func(l *locker, ctx context.Context) (func(), error) { return l.lockContainer(ctx, "b") }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLocker()
			release := tt.hold(l)
			ctx, cancel := short()
			defer cancel()
			unlock, err := tt.try(l, ctx)
			if tt.wantErr {
				assert.ErrorIs(t, err, context.DeadlineExceeded)
			} else {
				require.NoError(t, err)
				unlock()
			}
			release()
		})
	}
}

// TestLockerReleaseAfterTimeout checks that a waiter that gave up leaves
// the locker usable.
func TestLockerReleaseAfterTimeout(t *testing.T) {
	l := newLocker()
	unlockA, err := l.lockContainer(context.Background(), "a")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = l.lockAll(ctx)
	require.Error(t, err)
	unlockA()
	unlockAll, err := l.lockAll(context.Background())
	require.NoError(t, err)
	unlockAll()
	unlockA, err = l.lockContainer(context.Background(), "a")
	require.NoError(t, err)
	unlockA()
	assert.Zero(t, l.shared)
	assert.Zero(t, l.gcWaiting)
	assert.False(t, l.exclusive)
	assert.Empty(t, l.containers)
}
