package activation

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gust"
)

func TestThrottle(t *testing.T) {
	now := time.Unix(6000, 0)
	th := NewThrottle()
	th.now = func() time.Time { return now }
	for i := 0; i < 3; i++ {
		if err := th.admit("a", 3, 10); err != nil {
			t.Fatal(err)
		}
		th.release("a")
	}
	err := th.admit("a", 3, 10)
	if gust.KindOf(err) != gust.KindThrottled || !strings.Contains(err.Error(), "Too many requests in the last minute (count: 3, allowed: 3).") {
		t.Fatalf("4th call in a minute: %v", err)
	}
	if err := th.admit("b", 3, 10); err != nil {
		t.Fatalf("another namespace is throttled too: %v", err)
	}
	now = now.Add(time.Minute)
	if err := th.admit("a", 3, 10); err != nil {
		t.Fatalf("next minute: %v", err)
	}
	if err := th.admit("a", 0, 1); gust.KindOf(err) != gust.KindThrottled || !strings.Contains(err.Error(), "Too many concurrent requests in flight (count: 1, allowed: 1).") {
		t.Fatalf("concurrency: %v", err)
	}
	th.release("a")
	if err := th.admit("a", 0, 1); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

// TestThrottleAcquire: queued work counts against the concurrency limit
// only, waits for a slot at the limit, and gives up when told to stop.
func TestThrottleAcquire(t *testing.T) {
	th := NewThrottle()
	if err := th.admitRate("a", 2); err != nil {
		t.Fatal(err)
	}
	if got := th.inflight("a"); got != 0 {
		t.Fatalf("a queued call holds %d slots, want 0", got)
	}
	if err := th.admit("a", 0, 1); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- th.acquire(t.Context(), "a", 1) }()
	select {
	case err := <-got:
		t.Fatalf("acquire at the limit returned at once: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	th.release("a")
	if err := <-got; err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	if n := th.inflight("a"); n != 1 {
		t.Fatalf("in flight %d, want 1", n)
	}
	ctx, cancel := context.WithCancel(t.Context())
	go func() { got <- th.acquire(ctx, "a", 1) }()
	cancel()
	if err := <-got; err == nil {
		t.Fatal("acquire did not give up when its context ended")
	}
	if n := th.inflight("a"); n != 1 {
		t.Fatalf("a cancelled acquire left %d in flight, want 1", n)
	}
	// The rate counts queued calls too.
	if err := th.admitRate("a", 2); gust.KindOf(err) != gust.KindThrottled {
		t.Fatalf("third call in a minute with a limit of 2: %v", err)
	}
}

// TestThrottleReleaseAllocs: taking and giving back a slot that no one
// waits for allocates nothing; it happens on every invocation.
func TestThrottleReleaseAllocs(t *testing.T) {
	th := NewThrottle()
	if n := testing.AllocsPerRun(1000, func() {
		if err := th.admit("a", 0, 1); err != nil {
			t.Fatal(err)
		}
		th.release("a")
	}); n != 0 {
		t.Errorf("admit and release allocate %.1f times", n)
	}
}

// TestThrottleReleaseWakesEveryWaiter: a release wakes all that wait for
// a slot, whichever namespace they wait for, and each gets one once free.
func TestThrottleReleaseWakesEveryWaiter(t *testing.T) {
	th := NewThrottle()
	for _, ns := range []string{"a", "b"} {
		if err := th.admit(ns, 0, 1); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan string, 4)
	for _, ns := range []string{"a", "a", "b", "b"} {
		go func() {
			if err := th.acquire(t.Context(), ns, 1); err != nil {
				t.Error(err)
			}
			got <- ns
		}()
	}
	time.Sleep(20 * time.Millisecond) // let them wait
	for range 2 {
		th.release("a")
		th.release("b")
		for range 2 {
			select {
			case <-got:
			case <-time.After(5 * time.Second):
				t.Fatal("a waiter was not woken by a release")
			}
		}
	}
}

func BenchmarkThrottleRelease(b *testing.B) {
	th := NewThrottle()
	b.ReportAllocs()
	for b.Loop() {
		if err := th.admit("a", 0, 1); err != nil {
			b.Fatal(err)
		}
		th.release("a")
	}
}

// TestRateCounter: the firesPerMinute counter refuses with the same 429
// text as the invocation rate, per namespace, and starts again each
// calendar minute.
func TestRateCounter(t *testing.T) {
	r := NewRateCounter()
	now := time.Unix(6000, 0) // the start of a minute
	for i := 0; i < 2; i++ {
		if err := r.Admit("a", 2, now.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	err := r.Admit("a", 2, now.Add(59*time.Second))
	if gust.KindOf(err) != gust.KindThrottled || err.Error() != "Too many requests in the last minute (count: 2, allowed: 2)." {
		t.Fatalf("3rd in a minute: %v", err)
	}
	if err := r.Admit("b", 2, now); err != nil {
		t.Fatalf("another namespace is throttled too: %v", err)
	}
	if err := r.Admit("a", 2, now.Add(time.Minute)); err != nil {
		t.Fatalf("next minute: %v", err)
	}
	for i := 0; i < 100; i++ {
		if err := r.Admit("c", 0, now); err != nil {
			t.Fatalf("no limit: %v", err)
		}
	}
	if _, counted := r.ns["c"]; counted {
		t.Error("a namespace without a limit is counted")
	}
}
