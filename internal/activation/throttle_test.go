package activation

import (
	"strings"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gust"
)

func TestThrottle(t *testing.T) {
	now := time.Unix(6000, 0)
	th := newThrottle()
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
