package trigger

import (
	"sync"
	"time"

	"github.com/gust-faas/gust/internal/gust"
)

// minuteCounter enforces a namespace's firesPerMinute as OpenWhisk does: a
// count per calendar minute, per API node.
type minuteCounter struct {
	mu sync.Mutex
	ns map[string]*count
}

type count struct {
	minute int64
	n      int
}

func newMinuteCounter() *minuteCounter { return &minuteCounter{ns: map[string]*count{}} }

// admit counts one fire of ns at now, refusing it with OpenWhisk's 429
// text when the minute's allowance is used up. A limit of 0 or less is no
// limit.
func (m *minuteCounter) admit(ns string, perMinute int, now time.Time) error {
	if perMinute <= 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.ns[ns]
	if !ok {
		c = &count{}
		m.ns[ns] = c
	}
	if minute := now.Unix() / 60; minute != c.minute {
		c.minute, c.n = minute, 0
	}
	if c.n >= perMinute {
		return gust.Errorf(gust.KindThrottled, "Too many requests in the last minute (count: %d, allowed: %d).", c.n, perMinute)
	}
	c.n++
	return nil
}
