package invoker

import (
	"context"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gust"
)

func TestCapacity(t *testing.T) {
	c := newCapacity(512)
	ctx := context.Background()
	if err := c.acquire(ctx, 1024, 0, nil, nil); gust.KindOf(err) != gust.KindUnavailable {
		t.Fatalf("oversized: %v", err)
	}
	if err := c.acquire(ctx, 256, 0, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.acquire(ctx, 256, 0, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.acquire(ctx, 128, 10*time.Millisecond, nil, nil); gust.KindOf(err) != gust.KindUnavailable {
		t.Fatalf("full: %v", err)
	}
	got := make(chan error, 2)
	go func() { got <- c.acquire(ctx, 512, 0, nil, nil) }() // first in line
	for c.waitersLen() == 0 {
		time.Sleep(time.Millisecond)
	}
	go func() { got <- c.acquire(ctx, 128, 0, nil, nil) }() // must not overtake it
	for c.waitersLen() < 2 {
		time.Sleep(time.Millisecond)
	}
	c.release(256)
	select {
	case err := <-got:
		t.Fatalf("a waiter was served with only 256 MB free: %v", err)
	default:
	}
	c.release(256)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if c.free() != 0 {
		t.Fatalf("free %d, want 0", c.free())
	}
	c.release(512)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if c.free() != 384 {
		t.Fatalf("free %d, want 384", c.free())
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.acquire(cctx, 512, 0, nil, nil); gust.KindOf(err) != gust.KindUnavailable {
		t.Fatalf("cancelled wait: %v", err)
	}
}

func (c *capacity) waitersLen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waiters.Len()
}
