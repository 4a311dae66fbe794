package activation

import (
	"context"
	"sync"
	"time"

	"github.com/gust-faas/gust/internal/gust"
)

// Throttle enforces a namespace's invocationsPerMinute and
// concurrentInvocations as OpenWhisk does: a count per calendar minute and
// a count of activations running. Counts are per node, as in OpenWhisk,
// which divides its limits among controllers; the services of one process
// share one Throttle, so that an activation is counted and released in the
// same place whichever of them runs it.
//
// A blocking call is counted against both limits when it is accepted. A
// non-blocking one is counted against the rate when it is accepted and
// against the concurrency when a queue worker starts it: a namespace at
// its limit finds its queued work waiting for a slot, not refused, and a
// retry or a redelivery takes and returns its own slot.
type Throttle struct {
	mu  sync.Mutex
	now func() time.Time
	ns  map[string]*nsCount
	// freed is closed when a slot is released. It is made only when
	// someone waits (nil otherwise), so a release no one waits for, the
	// common case, allocates nothing.
	freed chan struct{}
}

type nsCount struct {
	rate     minuteCount
	inflight int
}

// minuteCount is a count per calendar minute, as OpenWhisk counts both
// invocationsPerMinute and firesPerMinute: Throttle and RateCounter share
// it so that the two limits count and refuse alike.
type minuteCount struct {
	minute int64 // unix minute of n
	n      int
}

// at starts a new count when now is in another minute.
func (c *minuteCount) at(now time.Time) {
	if m := now.Unix() / 60; m != c.minute {
		c.minute, c.n = m, 0
	}
}

// full refuses one more with OpenWhisk's 429 text when the minute's
// allowance is used up; a limit of 0 or less is no limit.
func (c *minuteCount) full(perMinute int) error {
	if perMinute > 0 && c.n >= perMinute {
		return rateError(c.n, perMinute)
	}
	return nil
}

// RateCounter enforces a per-minute limit per namespace and nothing else:
// the trigger service's firesPerMinute. Counts are per node, as in
// OpenWhisk.
type RateCounter struct {
	mu sync.Mutex
	ns map[string]*minuteCount
}

// NewRateCounter returns an empty counter.
func NewRateCounter() *RateCounter { return &RateCounter{ns: map[string]*minuteCount{}} }

// Admit counts one request of ns at now, refusing it with OpenWhisk's 429
// text when the minute's allowance is used up. A limit of 0 or less is no
// limit (and counts nothing).
func (r *RateCounter) Admit(ns string, perMinute int, now time.Time) error {
	if perMinute <= 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.ns[ns]
	if !ok {
		c = &minuteCount{}
		r.ns[ns] = c
	}
	c.at(now)
	if err := c.full(perMinute); err != nil {
		return err
	}
	c.n++
	return nil
}

// NewThrottle returns an empty throttle.
func NewThrottle() *Throttle {
	return &Throttle{now: time.Now, ns: map[string]*nsCount{}}
}

func (t *Throttle) counts(ns string) *nsCount {
	c, ok := t.ns[ns]
	if !ok {
		c = &nsCount{}
		t.ns[ns] = c
	}
	c.rate.at(t.now())
	return c
}

// admit counts one activation of ns that runs now against both limits,
// refusing it with OpenWhisk's 429 texts; release must be called once it
// ends.
func (t *Throttle) admit(ns string, perMinute, concurrent int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.counts(ns)
	if err := c.rate.full(perMinute); err != nil {
		return err
	}
	if concurrent > 0 && c.inflight >= concurrent {
		return gust.Errorf(gust.KindThrottled, "Too many concurrent requests in flight (count: %d, allowed: %d).", c.inflight, concurrent)
	}
	c.rate.n++
	c.inflight++
	return nil
}

// admitRate counts one invocation of ns against the rate only: a queued
// one, which takes a concurrency slot when a worker starts it (acquire).
func (t *Throttle) admitRate(ns string, perMinute int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.counts(ns)
	if err := c.rate.full(perMinute); err != nil {
		return err
	}
	c.rate.n++
	return nil
}

func rateError(count, allowed int) error {
	return gust.Errorf(gust.KindThrottled, "Too many requests in the last minute (count: %d, allowed: %d).", count, allowed)
}

func (t *Throttle) release(ns string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.ns[ns]; ok && c.inflight > 0 {
		c.inflight--
		if t.freed != nil {
			close(t.freed)
			t.freed = nil
		}
	}
}

// tryAcquire takes a concurrency slot of ns for queued work if one is free.
func (t *Throttle) tryAcquire(ns string, concurrent int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.counts(ns)
	if concurrent <= 0 || c.inflight < concurrent {
		c.inflight++
		return true
	}
	return false
}

// acquire takes a concurrency slot of ns for queued work, waiting for one
// while the namespace is at its limit, until ctx ends.
func (t *Throttle) acquire(ctx context.Context, ns string, concurrent int) error {
	for {
		t.mu.Lock()
		c := t.counts(ns)
		if concurrent <= 0 || c.inflight < concurrent {
			c.inflight++
			t.mu.Unlock()
			return nil
		}
		if t.freed == nil {
			t.freed = make(chan struct{})
		}
		freed := t.freed
		t.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// inflight returns how many activations of ns hold a concurrency slot.
func (t *Throttle) inflight(ns string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.ns[ns]; ok {
		return c.inflight
	}
	return 0
}
