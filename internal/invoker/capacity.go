package invoker

import (
	"container/list"
	"context"
	"sync"
	"time"

	"github.com/gust-faas/gust/internal/gust"
)

// capacity is an invoker's memory budget in MB: the sum of the memory limits
// of the activations it runs never exceeds it. Waiters are served in
// arrival order, so a large activation is not starved by small ones.
type capacity struct {
	mu      sync.Mutex
	total   int
	used    int
	waiters list.List // of *waiter
}

type waiter struct {
	mb    int
	ready chan struct{}
}

func newCapacity(totalMB int) *capacity { return &capacity{total: totalMB} }

// acquire reserves mb, waiting at most wait (0: until ctx ends). It fails
// with 503 when the wait runs out, and refuses at once an activation that
// could never fit.
func (c *capacity) acquire(ctx context.Context, mb int, wait time.Duration) error {
	c.mu.Lock()
	if mb > c.total {
		c.mu.Unlock()
		return gust.Errorf(gust.KindUnavailable, "The action needs %d MB but the invoker has %d MB in all.", mb, c.total)
	}
	if c.waiters.Len() == 0 && c.used+mb <= c.total {
		c.used += mb
		c.mu.Unlock()
		return nil
	}
	w := &waiter{mb: mb, ready: make(chan struct{})}
	el := c.waiters.PushBack(w)
	c.mu.Unlock()

	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	case <-timeout:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-w.ready:
		// Granted while giving up: keep it.
		return nil
	default:
	}
	c.waiters.Remove(el)
	c.grantLocked() // the head may have changed
	return gust.Errorf(gust.KindUnavailable, gust.MsgUnavailable)
}

func (c *capacity) release(mb int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.used -= mb
	c.grantLocked()
}

// grantLocked wakes waiters from the head while they fit.
func (c *capacity) grantLocked() {
	for el := c.waiters.Front(); el != nil; el = c.waiters.Front() {
		w := el.Value.(*waiter)
		if c.used+w.mb > c.total {
			return
		}
		c.used += w.mb
		c.waiters.Remove(el)
		close(w.ready)
	}
}

// free returns the MB not reserved.
func (c *capacity) free() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total - c.used
}
