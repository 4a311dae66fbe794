package invoker

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gust-faas/gust/internal/gust"
)

// capacity is an invoker's memory budget in MB: the sum of the memory limits
// of its live instances (busy or idle) and of the reservations of calls
// about to start one never exceeds it. Waiters are served in arrival
// order, so a large activation is not starved by small ones.
type capacity struct {
	mu      sync.Mutex
	total   int
	used    int
	waiters list.List // of *waiter
	// reclaim, when set, closes idle instances to free at least need MB
	// (other than those of except) and reports whether it closed any.
	// It is asked only for what is short: see shortfall.
	reclaim func(need int, except *entry) bool
	changed func(used int) // told the new total after every change
	idled   chan struct{}  // closed (and replaced) when an instance went idle while calls wait
}

// errClaimed: while it waited for memory, the call found an idle instance
// of its own function to run on.
var errClaimed = errors.New("an idle instance was claimed")

type waiter struct {
	mb    int
	ready chan struct{}
}

func newCapacity(totalMB int) *capacity { return &capacity{total: totalMB, idled: make(chan struct{})} }

// nudge tells waiters that an instance went idle: one of them may claim it.
func (c *capacity) nudge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiters.Len() > 0 {
		close(c.idled)
		c.idled = make(chan struct{})
	}
}

// reclaimEvery is how often a waiter asks for idle instances to be closed
// again: calls that end leave their instances idle, not freed.
const reclaimEvery = 50 * time.Millisecond

// acquire reserves mb for a call of except's function, closing idle
// instances of other functions when memory is short and waiting at most
// wait (0: until ctx ends). It fails with 503 when the wait runs out, and
// refuses at once an activation that could never fit. While it waits,
// claim (when set) is asked whether the call can run on an idle instance
// of its own function instead; then it returns errClaimed.
func (c *capacity) acquire(ctx context.Context, mb int, wait time.Duration, except *entry, claim func() bool) error {
	if mb > c.total {
		return gust.Errorf(gust.KindUnavailable, "The action needs %d MB but the invoker has %d MB in all.", mb, c.total)
	}
	if c.tryAcquire(mb) {
		return nil
	}
	if c.reclaim != nil && c.reclaimFor(mb, except) && c.tryAcquire(mb) {
		return nil
	}
	c.mu.Lock()
	if c.waiters.Len() == 0 && c.used+mb <= c.total {
		c.add(mb)
		c.mu.Unlock()
		return nil
	}
	w := &waiter{mb: mb, ready: make(chan struct{})}
	el := c.waiters.PushBack(w)
	idled := c.idled
	c.mu.Unlock()

	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	var retry <-chan time.Time
	if c.reclaim != nil {
		t := time.NewTicker(reclaimEvery)
		defer t.Stop()
		retry = t.C
	}
	var result error = gust.Errorf(gust.KindUnavailable, gust.MsgUnavailable)
wait:
	for {
		if claim != nil && claim() {
			result = errClaimed
			break wait
		}
		select {
		case <-w.ready:
			return nil
		case <-ctx.Done():
			break wait
		case <-timeout:
			break wait
		case <-idled:
			c.mu.Lock()
			idled = c.idled
			c.mu.Unlock()
		case <-retry:
			if c.isHead(el) {
				c.reclaimFor(mb, except) // its releases grant the head
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-w.ready:
		// Granted while giving up: keep it (a claim is given back by the
		// caller's release, as an unused reservation).
		if result == errClaimed {
			c.waiters.Remove(el)
			c.add(-mb)
			c.grantLocked()
			return errClaimed
		}
		return nil
	default:
	}
	c.waiters.Remove(el)
	c.grantLocked() // the head may have changed
	return result
}

// tryAcquire reserves mb if it fits now and nobody waits.
func (c *capacity) tryAcquire(mb int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiters.Len() == 0 && c.used+mb <= c.total {
		c.add(mb)
		return true
	}
	return false
}

// reclaimFor asks reclaim for the memory mb needs beyond what is free, so
// that no more idle instances are closed than the call needs.
func (c *capacity) reclaimFor(mb int, except *entry) bool {
	c.mu.Lock()
	short := mb - (c.total - c.used)
	c.mu.Unlock()
	if short <= 0 {
		return false // it fits: it waits only for those ahead of it
	}
	return c.reclaim(short, except)
}

func (c *capacity) isHead(el *list.Element) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waiters.Front() == el
}

// add changes used by d; c.mu is held.
func (c *capacity) add(d int) {
	c.used += d
	if c.changed != nil {
		c.changed(c.used)
	}
}

func (c *capacity) release(mb int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.add(-mb)
	c.grantLocked()
}

// grantLocked wakes waiters from the head while they fit.
func (c *capacity) grantLocked() {
	for el := c.waiters.Front(); el != nil; el = c.waiters.Front() {
		w := el.Value.(*waiter)
		if c.used+w.mb > c.total {
			return
		}
		c.add(w.mb)
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
