package ovsdb

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestKeyedMutex(t *testing.T) {
	var k keyedMutex
	var inA atomic.Int32
	var maxA atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock := k.lock("a")
			n := inA.Add(1)
			if n > maxA.Load() {
				maxA.Store(n)
			}
			time.Sleep(time.Millisecond)
			inA.Add(-1)
			unlock()
		}()
	}
	// Another key is not blocked by "a".
	done := make(chan struct{})
	go func() {
		unlock := k.lock("b")
		unlock()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("lock of key b blocked")
	}
	wg.Wait()
	assert.Equal(t, int32(1), maxA.Load(), "one holder of key a at a time")
	assert.Empty(t, k.locks, "unused locks are freed")
}
