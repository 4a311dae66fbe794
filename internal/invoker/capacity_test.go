package invoker

import (
	"context"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/metrics"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
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

// TestReclaimOnlyWhatIsShort: a call that needs more than is free asks
// for its shortfall to be reclaimed, not its whole size.
func TestReclaimOnlyWhatIsShort(t *testing.T) {
	c := newCapacity(512)
	var asked []int
	c.reclaim = func(need int, _ *entry) bool { asked = append(asked, need); return false }
	ctx := context.Background()
	if err := c.acquire(ctx, 384, 0, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.acquire(ctx, 256, 10*time.Millisecond, nil, nil); gust.KindOf(err) != gust.KindUnavailable {
		t.Fatalf("256 MB with 128 free and nothing reclaimed: %v", err)
	}
	if len(asked) == 0 || asked[0] != 128 {
		t.Fatalf("reclaim asked for %v MB, want 128 first (256 needed, 128 free)", asked)
	}
	asked = nil
	if err := c.acquire(ctx, 128, 0, nil, nil); err != nil || len(asked) != 0 {
		t.Fatalf("128 MB with 128 free: %v, reclaim asked for %v", err, asked)
	}
}

// TestReclaimKeepsWhatIsFree: with part of the room already free, making
// room for a call closes only the idle instances it lacks.
func TestReclaimKeepsWhatIsFree(t *testing.T) {
	reg := metrics.New()
	inv := budgetInvoker(t, 512, steady{KeepAlive: time.Hour}, reg)
	code := wasmtest.Build(t, "goreactor")
	job := func(name string, mb int) *Job {
		j := sleeperJob(code, name, 0)
		j.Action.Limits.Memory = mb
		return j
	}
	// b (128 MB) idle, then a (256 MB) idle: 128 MB free.
	for _, j := range []*Job{job("b", 128), job("a", 256)} {
		if act, err := admitRun(t, inv, j, time.Second); err != nil || act.Response.StatusCode != gust.StatusSuccess {
			t.Fatalf("%s: %v %v", j.Action.Name, err, act)
		}
	}
	// c needs 256: closing b, the least recently used, is enough.
	if act, err := admitRun(t, inv, job("c", 256), time.Second); err != nil || act.Response.StatusCode != gust.StatusSuccess {
		t.Fatalf("c: %v %v", err, act)
	}
	if n := reg.Value("gust_invoker_instance_trims_total", "t", "room"); n != 1 {
		t.Errorf("%v instances closed for room, want 1 (b's 128 MB with 128 MB free)", n)
	}
	if act, err := admitRun(t, inv, job("a", 256), 10*time.Millisecond); err != nil || startOf(act) != "warm" {
		t.Errorf("a after c: %v %s, want its instance kept, warm", err, startOf(act))
	}
}
