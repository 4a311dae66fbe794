package store

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gust-faas/gust/internal/gust"
)

func openFeeds(t *testing.T) *Feeds {
	t.Helper()
	b := startBroker(t, t.TempDir())
	s, err := OpenFeeds(context.Background(), b.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFeedsCreateLeftoverBusy: a leftover that is written again between
// Create's read and its compare-and-set (a tick it records) is still
// replaced, however often that happens, rather than being taken for the
// live trigger's feed.
func TestFeedsCreateLeftoverBusy(t *testing.T) {
	ctx := context.Background()
	s := openFeeds(t)
	if err := s.Put(ctx, &Feed{Namespace: "ns", Trigger: "t", Feed: "alarms/alarm", TriggerUpdated: 1}); err != nil {
		t.Fatal(err)
	}
	const busy = 6 // more rounds than the old loop's 3 attempts
	calls := 0
	leftover := func(old *Feed) bool {
		calls++
		if calls <= busy {
			// The leftover records a tick after this read.
			cp := *old
			cp.LastTick++
			if err := s.Put(ctx, &cp); err != nil {
				t.Fatal(err)
			}
		}
		return old.TriggerUpdated != 2
	}
	f := &Feed{Namespace: "ns", Trigger: "t", Feed: "alarms/interval", TriggerUpdated: 2}
	if err := s.Create(ctx, f, leftover); err != nil {
		t.Fatalf("create over a busy leftover: %v (after %d reads)", err, calls)
	}
	got, err := s.Get(ctx, "ns", "t")
	if err != nil || got.Feed != "alarms/interval" || got.TriggerUpdated != 2 || got.Revision != f.Revision {
		t.Fatalf("stored %+v, %v; want the new feed at revision %d", got, err, f.Revision)
	}
	// A registration of the live trigger is refused.
	err = s.Create(ctx, &Feed{Namespace: "ns", Trigger: "t", Feed: "alarms/alarm", TriggerUpdated: 2}, func(old *Feed) bool { return old.TriggerUpdated != 2 })
	if gust.KindOf(err) != gust.KindConflict || !strings.Contains(err.Error(), "has a feed already") {
		t.Fatalf("second feed on the live trigger: %v", err)
	}
}

// TestFeedsCreateConcurrent: of concurrent CREATEs for one trigger, over
// nothing or over a leftover, exactly one registers; the others are told
// the trigger has a feed already.
func TestFeedsCreateConcurrent(t *testing.T) {
	ctx := context.Background()
	s := openFeeds(t)
	for _, withLeftover := range []bool{false, true} {
		name := "fresh"
		if withLeftover {
			name = "left"
			if err := s.Put(ctx, &Feed{Namespace: "ns", Trigger: name, Feed: "alarms/alarm", TriggerUpdated: 1}); err != nil {
				t.Fatal(err)
			}
		}
		const n = 8
		var wins, refused atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f := &Feed{Namespace: "ns", Trigger: name, Feed: "alarms/interval", TriggerUpdated: 2}
				err := s.Create(ctx, f, func(old *Feed) bool { return old.TriggerUpdated != 2 })
				switch {
				case err == nil:
					wins.Add(1)
				case strings.Contains(err.Error(), "has a feed already"):
					refused.Add(1)
				default:
					t.Errorf("create: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 || refused.Load() != n-1 {
			t.Errorf("leftover %v: %d registered, %d refused; want 1 and %d", withLeftover, wins.Load(), refused.Load(), n-1)
		}
	}
}

// TestFeedsChangeLosesNoWrite: concurrent read-modify-writes of one
// registration all land.
func TestFeedsChangeLosesNoWrite(t *testing.T) {
	ctx := context.Background()
	s := openFeeds(t)
	if err := s.Put(ctx, &Feed{Namespace: "ns", Trigger: "t", Feed: "alarms/alarm"}); err != nil {
		t.Fatal(err)
	}
	const workers, each = 4, 10
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				_, what, err := s.Change(ctx, "ns", "t", func(cur *Feed) (FeedChange, error) {
					cur.LastTick++
					return PutFeed, nil
				})
				if err != nil || what != PutFeed {
					t.Errorf("change: %v, %v", what, err)
				}
			}
		}()
	}
	wg.Wait()
	got, err := s.Get(ctx, "ns", "t")
	if err != nil || got.LastTick != workers*each {
		t.Fatalf("after %d changes: %+v, %v", workers*each, got, err)
	}
	if _, _, err := s.Change(ctx, "ns", "nope", func(*Feed) (FeedChange, error) { return PutFeed, nil }); gust.KindOf(err) != gust.KindNotFound {
		t.Fatalf("change of a missing feed: %v", err)
	}
	if _, what, err := s.Change(ctx, "ns", "t", func(*Feed) (FeedChange, error) { return DeleteFeed, nil }); err != nil || what != DeleteFeed {
		t.Fatalf("delete: %v, %v", what, err)
	}
	if _, err := s.Get(ctx, "ns", "t"); gust.KindOf(err) != gust.KindNotFound {
		t.Fatalf("after delete: %v", err)
	}
}
