package trigger

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gust-faas/gust/internal/broker"
	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/store"
)

// fakeFires counts fires and keeps the trigger activations they made, as
// the activation store would.
type fakeFires struct {
	mu     sync.Mutex
	ids    []string
	store  map[string]bool
	fail   error // returned (after nothing was recorded) when set
	getErr error // returned by Get when set: the record store failing
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
	if f.getErr != nil {
		return nil, f.getErr
	}
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
	conn    *nats.Conn                // the nodes' connection for subscription feeds
	clock   atomic.Pointer[time.Time] // the nodes' clock once set (at); else created
}

// now is the nodes' clock: the time feed actions run at.
func (w *alarmWorld) now() time.Time {
	if t := w.clock.Load(); t != nil {
		return *t
	}
	return w.created
}

// at sets the nodes' clock.
func (w *alarmWorld) at(t time.Time) { w.clock.Store(&t) }

func newAlarmWorld(t *testing.T) *alarmWorld {
	t.Helper()
	w, _ := newWorld(t, broker.Config{})
	return w
}

// newWorld is newAlarmWorld on a server started with cfg.
func newWorld(t *testing.T, cfg broker.Config) (*alarmWorld, *broker.Broker) {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	cfg.DataDir, cfg.Logger = t.TempDir(), log
	b, err := broker.Start(ctx, cfg)
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
	w.putTrigger(1)
	return w, b
}

// putTrigger creates the trigger guest/tick, written at updated (ms).
func (w *alarmWorld) putTrigger(updated int64) {
	w.t.Helper()
	doc, _ := json.Marshal(gust.Trigger{Namespace: "guest", Name: "tick", Version: "0.0.1", Updated: updated})
	rec := &store.Record{Type: store.TypeTrigger, Doc: doc, Updated: updated}
	if _, err := w.ents.Put(context.Background(), gust.Path{Namespace: "guest", Name: "tick"}, rec, 0); err != nil {
		w.t.Fatal(err)
	}
}

// deleteTrigger deletes guest/tick as the REST API does: the feed is not told.
func (w *alarmWorld) deleteTrigger() {
	w.t.Helper()
	p := gust.Path{Namespace: "guest", Name: "tick"}
	rec, err := w.ents.Get(p)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.ents.Delete(context.Background(), p, rec.Revision); err != nil {
		w.t.Fatal(err)
	}
}

// node starts a feed-provider node driven by Tick.
func (w *alarmWorld) node(name string) *Feeds {
	w.t.Helper()
	f := New(Config{Entities: w.ents, Keys: w.keys, Store: w.feeds, Records: w.fires, Node: name, Manual: true,
		Now: w.now, Conn: w.conn})
	if err := f.Start(context.Background(), w.fires); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(f.Close)
	return f
}

// create registers an alarm through the feed action's CREATE.
func (w *alarmWorld) create(f *Feeds, feed string, p map[string]any) {
	w.t.Helper()
	if err := w.event(f, feed, "CREATE", p); err != nil {
		w.t.Fatal(err)
	}
}

// event invokes the feed action feed ("alarms/interval") with a lifecycle
// event for guest/tick.
func (w *alarmWorld) event(f *Feeds, feed, event string, p map[string]any) error {
	w.t.Helper()
	args := map[string]any{"authKey": w.guest.Auth(), "triggerName": "/_/tick", "lifecycleEvent": event}
	for k, v := range p {
		args[k] = v
	}
	raw, _ := json.Marshal(args)
	path, _ := gust.ParsePath("/whisk.system/"+feed, "_")
	_, err := f.lifecycle(context.Background(), path, raw)
	return err
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
	if mine, err := w.feeds.Claim(ctx, key+"."+itoa(minute(2).UnixMilli()), "n1", minute(2), ClaimTTL, ClaimStale); err != nil || !mine {
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

// TestAlarmRestartsAfterPauseAndUpdate checks that a tick that fell in a
// pause, or under the schedule an UPDATE replaced, does not fire when the
// alarm resumes: PAUSE, UNPAUSE and UPDATE schedule afresh from now.
func TestAlarmRestartsAfterPauseAndUpdate(t *testing.T) {
	type step struct {
		event string          // a lifecycle event at the offset, or "" for a tick
		p     map[string]any  // the event's parameters
		at    time.Duration   // after creation
		fires []time.Duration // the ticks the tick fires (after creation)
	}
	for _, c := range []struct {
		name, feed string
		p          map[string]any
		steps      []step
	}{
		{"pause", feedInterval, map[string]any{"minutes": 1}, []step{
			{at: time.Minute, fires: []time.Duration{time.Minute}},
			{event: "PAUSE", at: 70 * time.Second},
			{at: 2*time.Minute + time.Second}, // paused
			{event: "UNPAUSE", at: 2*time.Minute + 30*time.Second},
			{at: 2*time.Minute + 31*time.Second}, // the tick of minute 2 fell in the pause
			{at: 3 * time.Minute, fires: []time.Duration{3 * time.Minute}},
		}},
		{"update interval", feedInterval, map[string]any{"minutes": 10}, []step{
			{event: "UPDATE", p: map[string]any{"minutes": 1}, at: 5*time.Minute + 30*time.Second},
			{at: 5*time.Minute + 31*time.Second},
			{at: 6 * time.Minute, fires: []time.Duration{6 * time.Minute}},
		}},
		{"update cron", feedAlarm, map[string]any{"cron": "0 * * * *"}, []step{
			{event: "UPDATE", p: map[string]any{"cron": "*/5 * * * *"}, at: 7*time.Minute + 30*time.Second},
			{at: 7*time.Minute + 31*time.Second},
			{at: 10 * time.Minute, fires: []time.Duration{10 * time.Minute}},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newAlarmWorld(t)
			ctx := context.Background()
			w.created = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
			n := w.node("n1")
			w.create(n, c.feed, c.p)
			waitFor(t, func() bool { return len(n.alarms()) == 1 })
			key := w.feed().Key()
			var want []string
			for _, s := range c.steps {
				now := w.created.Add(s.at)
				if s.event != "" {
					w.at(now)
					if err := w.event(n, c.feed, s.event, s.p); err != nil {
						t.Fatalf("%s: %v", s.event, err)
					}
					rev := w.feed().Revision
					waitFor(t, func() bool {
						n.mu.Lock()
						defer n.mu.Unlock()
						return n.feeds[key].Revision == rev
					})
					continue
				}
				n.Tick(ctx, now)
				for _, d := range s.fires {
					want = append(want, TickActivationID(key, w.created.Add(d)))
				}
				if got := w.fires.fired(); !slices.Equal(got, want) {
					t.Fatalf("after a tick at +%s: fired %v, want %v", s.at, got, want)
				}
			}
		})
	}
}

// TestAlarmRecordCheckFails checks that a tick whose record cannot be
// looked up is not taken for one that never fired: it waits for the store.
func TestAlarmRecordCheckFails(t *testing.T) {
	w := newAlarmWorld(t)
	ctx := context.Background()
	w.created = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	n := w.node("n1")
	w.create(n, feedInterval, map[string]any{"minutes": 1})
	waitFor(t, func() bool { return len(n.alarms()) == 1 })
	for _, err := range []error{
		gust.Errorf(gust.KindUnavailable, gust.MsgUnavailable),
		context.DeadlineExceeded,
	} {
		w.fires.mu.Lock()
		w.fires.getErr = err
		w.fires.mu.Unlock()
		n.Tick(ctx, w.created.Add(time.Minute))
		if got := w.fires.fired(); len(got) != 0 {
			t.Fatalf("fired while the record store answered %v: %v", err, got)
		}
	}
	if next := n.nextWake(w.created.Add(time.Minute)); next.IsZero() || next.After(w.created.Add(time.Minute+retryDelay)) {
		t.Errorf("no retry soon: next wake %s", next)
	}
	w.fires.mu.Lock()
	w.fires.getErr = nil
	w.fires.mu.Unlock()
	n.Tick(ctx, w.created.Add(time.Minute+retryDelay))
	n.Tick(ctx, w.created.Add(time.Minute+2*retryDelay))
	if got := w.fires.fired(); len(got) != 1 || got[0] != TickActivationID(w.feed().Key(), w.created.Add(time.Minute)) {
		t.Fatalf("after the store came back: %v", got)
	}
}

// TestFeedDeleteChecksFeed checks that DELETE through one feed's action
// does not remove another feed's registration.
func TestFeedDeleteChecksFeed(t *testing.T) {
	w := newAlarmWorld(t)
	n := w.node("n1")
	w.create(n, feedInterval, map[string]any{"minutes": 1})
	for _, c := range []struct {
		feed   string
		refuse bool
	}{
		{feedMQTT, true},
		{feedNATS, true},
		{feedAlarm, true},
		{feedInterval, false},
		{feedInterval, false}, // a feed already gone: still success
	} {
		err := w.event(n, c.feed, "DELETE", nil)
		if c.refuse {
			if err == nil || !strings.Contains(err.Error(), "could not find trigger /guest/tick in the "+c.feed+" feed") {
				t.Errorf("DELETE through %s: %v", c.feed, err)
			}
			if _, err := w.feeds.Get(context.Background(), "guest", "tick"); err != nil {
				t.Fatalf("DELETE through %s removed the alarm: %v", c.feed, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("DELETE through %s: %v", c.feed, err)
		}
		if _, err := w.feeds.Get(context.Background(), "guest", "tick"); gust.KindOf(err) != gust.KindNotFound {
			t.Errorf("after DELETE through %s: %v", c.feed, err)
		}
	}
}

// TestFeedCreateReplacesLeftover checks that a registration left behind by
// a trigger deleted without its feed's DELETE does not block the feed of
// the trigger created again, while a second feed on a live trigger is
// still refused.
func TestFeedCreateReplacesLeftover(t *testing.T) {
	w := newAlarmWorld(t)
	ctx := context.Background()
	w.created = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	n := w.node("n1")
	w.create(n, feedInterval, map[string]any{"minutes": 1})
	first := w.feed()
	if err := w.event(n, feedAlarm, "CREATE", map[string]any{"cron": "* * * * *"}); err == nil || !strings.Contains(err.Error(), "has a feed already") {
		t.Fatalf("a second feed on a live trigger: %v", err)
	}

	// The trigger is deleted as the REST API does (no DELETE to the feed),
	// then created again, with a feed.
	w.deleteTrigger()
	if err := w.event(n, feedInterval, "CREATE", map[string]any{"minutes": 2}); err == nil {
		t.Fatal("CREATE for a missing trigger succeeded")
	}
	w.putTrigger(2)
	w.at(w.created.Add(30 * time.Second))
	if err := w.event(n, feedInterval, "CREATE", map[string]any{"minutes": 5}); err != nil {
		t.Fatalf("CREATE after the trigger was created again: %v", err)
	}
	second := w.feed()
	if second.Revision == first.Revision || second.Created != w.created.Add(30*time.Second).UnixMilli() ||
		!strings.Contains(string(second.Config), `"minutes":5`) || second.TriggerUpdated != 2 {
		t.Fatalf("the leftover was not replaced: %+v", second)
	}
	// The new registration is the live trigger's: a second one is refused.
	if err := w.event(n, feedInterval, "CREATE", map[string]any{"minutes": 7}); err == nil || !strings.Contains(err.Error(), "has a feed already") {
		t.Fatalf("a second feed on the re-created trigger: %v", err)
	}

	// The replaced alarm ticks on its own schedule, from its creation.
	waitFor(t, func() bool { a := n.alarms(); return len(a) == 1 && a[0].Revision == second.Revision })
	n.Tick(ctx, w.created.Add(3*time.Minute))
	if got := w.fires.fired(); len(got) != 0 {
		t.Fatalf("the leftover's schedule fired: %v", got)
	}
	n.Tick(ctx, w.created.Add(5*time.Minute+30*time.Second))
	if got := w.fires.fired(); len(got) != 1 || got[0] != TickActivationID(second.Key(), w.created.Add(5*time.Minute+30*time.Second)) {
		t.Fatalf("the new alarm: %v", got)
	}
}

// TestAlarmClaimOfDeadNodeTakenOver checks that a tick claimed by a node
// that died before firing it still fires, once, on another node.
func TestAlarmClaimOfDeadNodeTakenOver(t *testing.T) {
	w := newAlarmWorld(t)
	ctx := context.Background()
	w.created = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	n1, n2, n3 := w.node("n1"), w.node("n2"), w.node("n3")
	w.create(n1, feedInterval, map[string]any{"minutes": 5})
	waitFor(t, func() bool { return len(n2.alarms()) == 1 && len(n3.alarms()) == 1 })
	key := w.feed().Key()
	due := w.created.Add(5 * time.Minute)

	// n1 claims the tick, as fireTick does first, and dies.
	if mine, err := w.feeds.Claim(ctx, key+"."+itoa(due.UnixMilli()), "n1", due, ClaimTTL, ClaimStale); err != nil || !mine {
		t.Fatal(mine, err)
	}
	n1.Close()

	// While the claim is young, it is n1's tick.
	for _, n := range []*Feeds{n2, n3} {
		n.Tick(ctx, due.Add(ClaimStale/2))
	}
	if got := w.fires.fired(); len(got) != 0 {
		t.Fatalf("a live claim was taken over: %v", got)
	}
	// Past the bound, the other nodes take it over together: one fires.
	var wg sync.WaitGroup
	for _, n := range []*Feeds{n2, n3, n2, n3} {
		wg.Add(1)
		go func() { defer wg.Done(); n.Tick(ctx, due.Add(ClaimStale+time.Second)) }()
	}
	wg.Wait()
	if got := w.fires.fired(); len(got) != 1 || got[0] != TickActivationID(key, due) {
		t.Fatalf("the dead node's tick: %v", got)
	}
	if w.feed().LastTick != due.UnixMilli() {
		t.Fatalf("the tick was not recorded: %d", w.feed().LastTick)
	}
	for _, n := range []*Feeds{n2, n3} {
		n.Tick(ctx, due.Add(2*ClaimStale))
	}
	if got := w.fires.fired(); len(got) != 1 {
		t.Fatalf("fired again: %v", got)
	}
}

// TestFeedConcurrentChanges checks that changes racing each other on
// several nodes all take effect: lifecycle events do not fail on the
// revision another write moved, and no write is lost.
func TestFeedConcurrentChanges(t *testing.T) {
	w := newAlarmWorld(t)
	ctx := context.Background()
	w.created = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	nodes := []*Feeds{w.node("n1"), w.node("n2"), w.node("n3")}
	w.create(nodes[0], feedInterval, map[string]any{"minutes": 1})
	before := w.feed()

	// Eight UPDATEs at once: every one answers success and is written.
	const updates = 8
	errs := make(chan error, updates)
	var wg sync.WaitGroup
	for i := range updates {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- w.event(nodes[i%len(nodes)], feedInterval, "UPDATE", map[string]any{"trigger_payload": map[string]any{"n": i}})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("UPDATE racing others: %v", err)
		}
	}
	// The bucket holds only this key: its revision counts the writes.
	if after := w.feed(); after.Revision-before.Revision != updates {
		t.Errorf("%d of %d updates written", after.Revision-before.Revision, updates)
	}

	// A PAUSE racing ticks being recorded on every node: it answers
	// success and sticks.
	rec := w.feed()
	var pauseErr error
	for i := 1; i <= 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i%len(nodes)].markFired(ctx, rec, w.created.Add(time.Duration(i)*time.Minute))
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); pauseErr = w.event(nodes[1], feedInterval, "PAUSE", nil) }()
	wg.Wait()
	if pauseErr != nil {
		t.Errorf("PAUSE racing ticks: %v", pauseErr)
	}
	if cur := w.feed(); cur.Active || cur.Reason != "paused" {
		t.Errorf("after PAUSE: active %v, reason %q", cur.Active, cur.Reason)
	}
}

// TestAlarmCronTimezone checks that a cron alarm ticks in its timezone,
// as the alarm feed's parameters say, not in UTC.
func TestAlarmCronTimezone(t *testing.T) {
	w := newAlarmWorld(t)
	ctx := context.Background()
	w.created = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC) // 07:00 in New York
	n := w.node("n1")
	w.create(n, feedAlarm, map[string]any{"cron": "0 9 * * *", "timezone": "America/New_York"})
	waitFor(t, func() bool { return len(n.alarms()) == 1 })
	n.Tick(ctx, w.created.Add(time.Hour+59*time.Minute)) // 13:59 UTC, 08:59 there
	if got := w.fires.fired(); len(got) != 0 {
		t.Fatalf("fired before 09:00 in New York: %v", got)
	}
	nine := time.Date(2030, 1, 1, 14, 0, 0, 0, time.UTC) // 09:00 EST
	n.Tick(ctx, nine.Add(time.Second))
	if got := w.fires.fired(); len(got) != 1 || got[0] != TickActivationID(w.feed().Key(), nine) {
		t.Fatalf("the tick of 09:00 in New York: %v", got)
	}
}

// TestAlarmTickRecordDoesNotWake checks that the alarm loop is not woken
// by a tick's record (its own write): only by changes that move ticks.
func TestAlarmTickRecordDoesNotWake(t *testing.T) {
	w := newAlarmWorld(t)
	ctx := context.Background()
	w.created = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	n := w.node("n1")
	w.create(n, feedInterval, map[string]any{"minutes": 1})
	key := w.feed().Key()
	applied := func(rev uint64) func() bool {
		return func() bool { n.mu.Lock(); defer n.mu.Unlock(); return n.state[key].rev == rev }
	}
	// The watch wakes the loop just after applying the CREATE: wait for
	// that wake, then take it (Manual: no loop drains it).
	waitFor(t, func() bool { return len(n.wake) == 1 })
	<-n.wake
	n.Tick(ctx, w.created.Add(time.Minute))
	first := w.feed().Revision
	// A later record, applied after the first: the watch applies changes
	// in order, so once it is applied the first one's wake, had there been
	// one, is in the channel.
	n.Tick(ctx, w.created.Add(2*time.Minute))
	if w.feed().Revision == first {
		t.Fatal("the second tick was not recorded")
	}
	waitFor(t, applied(w.feed().Revision))
	if len(n.wake) != 0 {
		t.Error("a tick's record woke the alarm loop")
	}
	if err := w.event(n, feedInterval, "UPDATE", map[string]any{"minutes": 2}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(n.wake) == 1 }) // an UPDATE wakes it
}
