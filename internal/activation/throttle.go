package activation

import (
	"sync"
	"time"

	"github.com/gust-faas/gust/internal/gust"
)

// throttle enforces a namespace's invocationsPerMinute and
// concurrentInvocations as OpenWhisk does: a count per calendar minute and
// a count of activations accepted but not finished. Counts are per API
// node, as in OpenWhisk, which divides its limits among controllers.
type throttle struct {
	mu  sync.Mutex
	now func() time.Time
	ns  map[string]*nsCount
}

type nsCount struct {
	minute   int64 // unix minute of count
	count    int
	inflight int
}

func newThrottle() *throttle {
	return &throttle{now: time.Now, ns: map[string]*nsCount{}}
}

// admit counts one activation of ns against its limits, refusing it with
// OpenWhisk's 429 texts; release must be called once it ends.
func (t *throttle) admit(ns string, perMinute, concurrent int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.ns[ns]
	if !ok {
		c = &nsCount{}
		t.ns[ns] = c
	}
	if m := t.now().Unix() / 60; m != c.minute {
		c.minute, c.count = m, 0
	}
	if perMinute > 0 && c.count >= perMinute {
		return gust.Errorf(gust.KindThrottled, "Too many requests in the last minute (count: %d, allowed: %d).", c.count, perMinute)
	}
	if concurrent > 0 && c.inflight >= concurrent {
		return gust.Errorf(gust.KindThrottled, "Too many concurrent requests in flight (count: %d, allowed: %d).", c.inflight, concurrent)
	}
	c.count++
	c.inflight++
	return nil
}

func (t *throttle) release(ns string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.ns[ns]; ok && c.inflight > 0 {
		c.inflight--
	}
}
