package trigger

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/broker"
	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/store"
)

// fakeFires counts fires and keeps the trigger activations they made, as
// the activation store would.
type fakeFires struct {
	mu    sync.Mutex
	ids   []string
	store map[string]bool
	fail  error // returned (after nothing was recorded) when set
}

func (f *fakeFires) Fire(_ context.Context, req Fire) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return "", f.fail
	}
	f.ids = append(f.ids, req.ActivationID)
	f.store[req.ActivationID] = true
	return req.ActivationID, nil
}

func (f *fakeFires) Get(_ context.Context, _, id string) (json.RawMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.store[id] {
		return json.RawMessage("{}"), nil
	}
	return nil, gust.ErrNotFound
}

func (f *fakeFires) fired() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ids...)
}

// alarmWorld is a NATS server with the stores, a trigger and its feed,
// shared by several feed-provider nodes.
type alarmWorld struct {
	t       *testing.T
	feeds   *store.Feeds
	ents    *store.Entities
	keys    *store.Keys
	guest   *store.Identity
	fires   *fakeFires
	created time.Time
}

func newAlarmWorld(t *testing.T) *alarmWorld {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	b, err := broker.Start(ctx, broker.Config{DataDir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	w := &alarmWorld{t: t, fires: &fakeFires{store: map[string]bool{}}}
	if w.ents, err = store.OpenEntities(ctx, b.JS, 1, log); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.ents.Close)
	if w.keys, err = store.OpenKeys(ctx, b.JS, 1, log); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.keys.Close)
	if w.feeds, err = store.OpenFeeds(ctx, b.JS, 1); err != nil {
		t.Fatal(err)
	}
	if w.guest, err = w.keys.Ensure(ctx, "guest", ""); err != nil {
		t.Fatal(err)
	}
	doc, _ := json.Marshal(gust.Trigger{Namespace: "guest", Name: "tick", Version: "0.0.1"})
	if _, err := w.ents.Put(ctx, gust.Path{Namespace: "guest", Name: "tick"}, &store.Record{Type: store.TypeTrigger, Doc: doc}, 0); err != nil {
		t.Fatal(err)
	}
	return w
}

// node starts a feed-provider node driven by Tick.
func (w *alarmWorld) node(name string) *Feeds {
	w.t.Helper()
	f := New(Config{Entities: w.ents, Keys: w.keys, Store: w.feeds, Records: w.fires, Node: name, Manual: true,
		Now: func() time.Time { return w.created }})
	if err := f.Start(context.Background(), w.fires); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(f.Close)
	return f
}

// create registers an alarm through the feed action's CREATE.
func (w *alarmWorld) create(f *Feeds, feed string, p map[string]any) {
	w.t.Helper()
	p["authKey"], p["triggerName"], p["lifecycleEvent"] = w.guest.Auth(), "/_/tick", "CREATE"
	raw, _ := json.Marshal(p)
	path, _ := gust.ParsePath("/whisk.system/"+feed, "_")
	if _, err := f.lifecycle(context.Background(), path, raw); err != nil {
		w.t.Fatal(err)
	}
}

func (w *alarmWorld) feed() *store.Feed {
	w.t.Helper()
	rec, err := w.feeds.Get(context.Background(), "guest", "tick")
	if err != nil {
		w.t.Fatal(err)
	}
	return rec
}

func TestAlarmTickFiresOnceAcrossNodes(t *testing.T) {
	w := newAlarmWorld(t)
	w.created = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	n1, n2, n3 := w.node("n1"), w.node("n2"), w.node("n3")
	w.create(n1, feedAlarm, map[string]any{"cron": "*/10 * * * * *", "trigger_payload": "hi"})
	waitFor(t, func() bool { return len(n1.alarms()) == 1 && len(n2.alarms()) == 1 && len(n3.alarms()) == 1 })

	// Three nodes tick at the same instant, many times: one fire per tick.
	ctx := context.Background()
	for i := 1; i <= 5; i++ {
		now := w.created.Add(time.Duration(i)*10*time.Second + 300*time.Millisecond)
		var wg sync.WaitGroup
		for _, n := range []*Feeds{n1, n2, n3, n1, n2, n3} {
			wg.Add(1)
			go func() { defer wg.Done(); n.Tick(ctx, now) }()
		}
		wg.Wait()
		if got := w.fires.fired(); len(got) != i {
			t.Fatalf("after tick %d: %d fires %v", i, len(got), got)
		}
		due := w.created.Add(time.Duration(i) * 10 * time.Second)
		if got := w.fires.fired()[i-1]; got != TickActivationID(w.feed().Key(), due) {
			t.Fatalf("tick %d fired as %s", i, got)
		}
		if last := w.feed().LastTick; last != due.UnixMilli() {
			t.Fatalf("last tick %d, want %d", last, due.UnixMilli())
		}
	}
}

func TestAlarmExactlyOnceOverRestarts(t *testing.T) {
	w := newAlarmWorld(t)
	ctx := context.Background()
	w.created = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	n1 := w.node("n1")
	w.create(n1, feedInterval, map[string]any{"minutes": 1})
	waitFor(t, func() bool { return len(n1.alarms()) == 1 })
	key := w.feed().Key()
	minute := func(k int) time.Time { return w.created.Add(time.Duration(k) * time.Minute) }

	n1.Tick(ctx, minute(1))
	if len(w.fires.fired()) != 1 {
		t.Fatalf("first tick: %v", w.fires.fired())
	}

	// A crash after firing, before the tick was recorded: the node comes
	// back, claims its own tick again, finds the trigger activation and
	// does not fire twice; another node leaves the tick alone.
	rec := w.feed()
	rec.LastTick = 0
	if err := w.feeds.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	n1.Close()
	other, restarted := w.node("n2"), w.node("n1")
	waitFor(t, func() bool { return len(restarted.alarms()) == 1 && restarted.alarms()[0].LastTick == 0 })
	other.Tick(ctx, minute(1).Add(time.Second))
	restarted.Tick(ctx, minute(1).Add(time.Second))
	if got := w.fires.fired(); len(got) != 1 {
		t.Fatalf("a tick fired twice over a restart: %v", got)
	}
	if w.feed().LastTick != minute(1).UnixMilli() {
		t.Fatalf("the finished tick was not recorded: %d", w.feed().LastTick)
	}

	// A crash after claiming, before firing: the same node fires it when
	// it comes back.
	if mine, err := w.feeds.Claim(ctx, key+"."+itoa(minute(2).UnixMilli()), "n1", ClaimTTL); err != nil || !mine {
		t.Fatal(mine, err)
	}
	other.Tick(ctx, minute(2))
	if len(w.fires.fired()) != 1 {
		t.Fatalf("another node fired a claimed tick: %v", w.fires.fired())
	}
	restarted.Tick(ctx, minute(2))
	if got := w.fires.fired(); len(got) != 2 || got[1] != TickActivationID(key, minute(2)) {
		t.Fatalf("claimed tick not fired by its node: %v", got)
	}

	// A firing that fails for a passing reason is retried, once.
	w.fires.mu.Lock()
	w.fires.fail = gust.Errorf(gust.KindUnavailable, gust.MsgUnavailable)
	w.fires.mu.Unlock()
	restarted.Tick(ctx, minute(3))
	w.fires.mu.Lock()
	w.fires.fail = nil
	w.fires.mu.Unlock()
	waitFor(t, func() bool { return restarted.alarms()[0].LastTick == minute(2).UnixMilli() })
	restarted.Tick(ctx, minute(3).Add(time.Second))
	restarted.Tick(ctx, minute(3).Add(2*time.Second))
	if got := w.fires.fired(); len(got) != 3 {
		t.Fatalf("retried tick: %v", got)
	}

	// All nodes down for ten minutes: the missed ticks fire once, as the
	// latest of them.
	waitFor(t, func() bool { return restarted.alarms()[0].LastTick == minute(3).UnixMilli() })
	restarted.Tick(ctx, minute(13).Add(30*time.Second))
	other.Tick(ctx, minute(13).Add(30*time.Second))
	if got := w.fires.fired(); len(got) != 4 || got[3] != TickActivationID(key, minute(13)) {
		t.Fatalf("missed ticks: %v", got)
	}
}

func TestAlarmOnceDeletesTrigger(t *testing.T) {
	w := newAlarmWorld(t)
	ctx := context.Background()
	w.created = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	n := w.node("n1")
	w.create(n, feedOnce, map[string]any{"date": "2030-01-01T12:05:00Z", "deleteAfterFire": "true"})
	waitFor(t, func() bool { return len(n.alarms()) == 1 })
	n.Tick(ctx, w.created.Add(4*time.Minute))
	if len(w.fires.fired()) != 0 {
		t.Fatal("fired early")
	}
	n.Tick(ctx, w.created.Add(6*time.Minute))
	if len(w.fires.fired()) != 1 {
		t.Fatalf("once: %v", w.fires.fired())
	}
	if _, err := w.ents.Get(gust.Path{Namespace: "guest", Name: "tick"}); err == nil {
		t.Error("trigger not deleted after firing")
	}
	if _, err := w.feeds.Get(ctx, "guest", "tick"); err == nil {
		t.Error("feed not deleted after firing")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
