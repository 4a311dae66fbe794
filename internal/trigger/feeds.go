package trigger

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/invoker"
	"github.com/gust-faas/gust/internal/store"
)

// Feeds are the feed providers Gust runs itself. Their feed actions live in
// the published packages of the namespace whisk.system (Provision creates
// them) with the exec kind gust.ExecFeed, so clients use them exactly as
// OpenWhisk's: `wsk trigger create t --feed /whisk.system/alarms/alarm`
// invokes the action with lifecycleEvent CREATE, and the activation
// service hands such activations to Run instead of a sandbox. This keeps
// the normal invoke path (authentication, entitlement, bindings with
// default parameters, records) and needs no special route.
//
// Registrations are kept in the "feeds" bucket; every node watches it and
// runs the providers: alarms on a clock (each tick claimed by one node),
// NATS and MQTT subscriptions in queue groups (each message to one node).
type Feeds struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	fires firer

	mu      sync.Mutex
	feeds   map[string]*store.Feed // by key, from the watch
	subs    map[string]*subscription
	state   map[string]appliedState // by key: what the watch last applied (deletions kept: one small entry per feed ever seen)
	wake    chan struct{}
	retryAt time.Time // a tick failed for a passing reason: wake then
	stop    context.CancelFunc
	done    sync.WaitGroup
	ready   chan struct{} // closed when the watch delivered every feed
	applied chan struct{} // closed (and replaced) after each change the watch applied
	// subscribeFlush bounds the round trip that confirms a subscription
	// (default defaultSubscribeFlush; tests shorten it, under mu).
	subscribeFlush time.Duration
}

// firer fires triggers: a *Firer (an interface so tests can count fires).
type firer interface {
	Fire(ctx context.Context, f Fire) (string, error)
}

// Lookup finds stored activation records.
type Lookup interface {
	Get(ctx context.Context, ns, id string) (json.RawMessage, error)
}

// Config wires the feed providers.
type Config struct {
	Entities *store.Entities
	Keys     *store.Keys
	Store    *store.Feeds
	Records  Lookup     // to recognise a tick fired before a crash
	Conn     *nats.Conn // for NATS and MQTT subscriptions; nil: those feeds never fire
	// Node names this node in alarm claims; it must be stable across
	// restarts (a restarted node finishes the ticks it claimed) and unique
	// in a cluster.
	Node   string
	Logger *slog.Logger
	// Now is the clock; default time.Now. Tests drive alarms with Tick and
	// set Manual so that no timer runs.
	Now    func() time.Time
	Manual bool
}

// ClaimTTL is how long an alarm tick stays claimed: far longer than firing
// takes, so no node can claim a tick another is still firing.
const ClaimTTL = 15 * time.Minute

// ClaimStale is the age at which another node's claim of a tick that has
// not been recorded as fired is taken over: that node died (or lost the
// store) before finishing. Firing takes milliseconds, and a node retries
// a failed tick every retryDelay, so a live node finishes well within it.
const ClaimStale = time.Minute

// New returns the feed providers; Start runs them.
func New(cfg Config) *Feeds {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Feeds{cfg: cfg, log: log.With("component", "feeds"), now: now, feeds: map[string]*store.Feed{},
		subs: map[string]*subscription{}, state: map[string]appliedState{}, wake: make(chan struct{}, 1), ready: make(chan struct{}), applied: make(chan struct{}),
		subscribeFlush: defaultSubscribeFlush}
}

// Start follows the registrations and runs the providers until Close.
func (f *Feeds) Start(ctx context.Context, fires firer) error {
	f.fires = fires
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f.stop = cancel
	events, err := f.cfg.Store.Watch(wctx)
	if err != nil {
		cancel()
		return err
	}
	f.done.Add(1)
	go f.follow(wctx, events)
	select {
	case <-f.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	if !f.cfg.Manual {
		f.done.Add(1)
		go f.alarmLoop(wctx)
	}
	return nil
}

// Store returns the registrations' store.
func (f *Feeds) Store() *store.Feeds { return f.cfg.Store }

// Close stops the providers.
func (f *Feeds) Close() {
	if f.stop != nil {
		f.stop()
	}
	f.done.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, s := range f.subs {
		s.stop()
		delete(f.subs, k)
	}
}

// Backoff of a subscription sync that failed: the first retry comes soon
// (a connection back after a blip), later ones spread out while it lasts.
const (
	syncRetryFirst = 100 * time.Millisecond
	syncRetryMax   = 30 * time.Second
)

// syncRetry is a failed subscription sync waiting to be tried again.
type syncRetry struct {
	at    time.Time
	delay time.Duration // the wait before at; doubled after each failure
}

// follow applies registration changes: the alarm loop recomputes its
// wake-up, subscriptions start or stop. A subscription that could not
// start (or be confirmed) is tried again with a backoff until it starts
// or its registration changes: nothing else would make this node listen,
// and a lifecycle event repeated by the caller writes nothing.
func (f *Feeds) follow(ctx context.Context, events <-chan *store.FeedEvent) {
	defer f.done.Done()
	readyOnce := sync.OnceFunc(func() { close(f.ready) })
	defer readyOnce()
	retries := map[string]syncRetry{}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		var retryC <-chan time.Time
		if len(retries) > 0 {
			var first time.Time
			for _, r := range retries {
				if first.IsZero() || r.at.Before(first) {
					first = r.at
				}
			}
			timer.Reset(time.Until(first)) // real time: tests freeze the feeds' clock
			retryC = timer.C
		}
		select {
		case ev, ok := <-events:
			timer.Stop()
			if !ok {
				return
			}
			if ev == nil {
				readyOnce()
				continue
			}
			delete(retries, ev.Key) // the registration changed: sync it anew
			if err := f.apply(ctx, ev); err != nil && f.retryable(err) {
				retries[ev.Key] = syncRetry{at: time.Now().Add(syncRetryFirst), delay: syncRetryFirst}
			}
		case <-retryC:
			now := time.Now()
			for key, r := range retries {
				if r.at.After(now) {
					continue
				}
				if err := f.resync(ctx, key); err != nil && f.retryable(err) {
					r.delay = min(2*r.delay, syncRetryMax)
					retries[key] = syncRetry{at: time.Now().Add(r.delay), delay: r.delay}
				} else {
					delete(retries, key)
				}
			}
		case <-ctx.Done():
			return
		}
	}
}

// apply applies one registration change and returns the subscription's error.
func (f *Feeds) apply(ctx context.Context, ev *store.FeedEvent) error {
	f.mu.Lock()
	tickOnly := ev.Feed != nil && onlyLastTick(f.feeds[ev.Key], ev.Feed)
	if ev.Feed == nil {
		delete(f.feeds, ev.Key)
	} else {
		f.feeds[ev.Key] = ev.Feed
	}
	f.mu.Unlock()
	err := f.syncSubscription(ctx, ev.Key, ev.Feed)
	if err != nil {
		f.log.Error("feed subscription failed; will retry", "feed", ev.Key, "err", err)
	}
	f.mu.Lock()
	st := f.state[ev.Key]
	if ev.Feed == nil {
		st.deleted, st.err = true, nil // rev stays: the revision the deletion removed, or older
	} else {
		st = appliedState{rev: ev.Feed.Revision, err: err}
	}
	f.state[ev.Key] = st
	f.appliedLocked()
	f.mu.Unlock()
	if tickOnly {
		// A tick recorded (by this node or another): the alarm loop's
		// timer already stands at or before the next tick, and a tick
		// already recorded fires nowhere again. Waking would only
		// recompute what it knows.
		return err
	}
	select {
	case f.wake <- struct{}{}:
	default:
	}
	return err
}

// resync tries again the subscription of the registration key holds now,
// and records the outcome as that revision's.
func (f *Feeds) resync(ctx context.Context, key string) error {
	f.mu.Lock()
	rec := f.feeds[key]
	f.mu.Unlock()
	if rec == nil {
		return nil // deleted: its event stopped what there was
	}
	err := f.syncSubscription(ctx, key, rec)
	if err != nil {
		f.log.Warn("feed subscription failed again; will retry", "feed", key, "err", err)
	} else {
		f.log.Info("feed subscription started after failing", "feed", key)
	}
	f.mu.Lock()
	if st := f.state[key]; st.rev == rec.Revision && !st.deleted {
		st.err = err
		f.state[key] = st
		f.appliedLocked()
	}
	f.mu.Unlock()
	return err
}

// appliedLocked wakes the lifecycle events waiting for the watch (awaitApplied).
func (f *Feeds) appliedLocked() {
	close(f.applied)
	f.applied = make(chan struct{})
}

// onlyLastTick reports whether next differs from prev in LastTick (and
// revision) alone.
func onlyLastTick(prev, next *store.Feed) bool {
	if prev == nil || prev.LastTick == next.LastTick {
		return false
	}
	a, b := *prev, *next
	a.LastTick, a.Revision, b.LastTick, b.Revision = 0, 0, 0, 0
	return a.Namespace == b.Namespace && a.Trigger == b.Trigger && a.Feed == b.Feed && bytes.Equal(a.Config, b.Config) &&
		a.Active == b.Active && a.Reason == b.Reason && a.Changed == b.Changed && a.Created == b.Created &&
		a.TriggerUpdated == b.TriggerUpdated
}

// appliedState is what this node's watch last applied for a key.
type appliedState struct {
	rev     uint64 // revision of the last write applied (kept by a deletion)
	deleted bool   // the last change applied was a deletion
	err     error  // the subscription of rev could not be started
}

// appliedWait bounds how long a lifecycle event waits for this node to
// apply the registration it wrote; far more than a watch and a flush take.
const appliedWait = 10 * time.Second

// cleanupWait bounds the removal of a registration whose CREATE failed.
const cleanupWait = 5 * time.Second

// awaitApplied waits until this node's watch applied the write of key at
// revision rev (deleted: the deletion of that revision) and returns the
// subscription's error, so that a subscription is live on the server when
// CREATE answers and gone when DELETE or PAUSE does: a message published
// right after the answer is neither lost nor fired. Other nodes catch up
// on their own. A write superseded by a later one is applied as that one.
func (f *Feeds) awaitApplied(ctx context.Context, key string, rev uint64, deleted bool) error {
	timeout := time.NewTimer(appliedWait)
	defer timeout.Stop()
	for {
		f.mu.Lock()
		st, applied := f.state[key], f.applied
		f.mu.Unlock()
		switch {
		case st.rev > rev, st.rev == rev && st.deleted:
			return nil // applied, and superseded or deleted since
		case st.rev == rev && !deleted && st.err != nil:
			return gust.Wrap(gust.KindUnavailable, "The feed could not subscribe; try again.", st.err)
		case st.rev == rev && !deleted:
			return nil
		}
		select {
		case <-applied:
		case <-timeout.C:
			return gust.Wrap(gust.KindUnavailable, gust.MsgUnavailable, fmt.Errorf("feed %s: revision %d not applied within %s", key, rev, appliedWait))
		case <-ctx.Done():
			// The caller went away (or its deadline passed): a request
			// error, not an internal one.
			return gust.Wrap(gust.KindUnavailable, "The feed was not confirmed before the request ended; try again.", fmt.Errorf("feed %s: %w", key, ctx.Err()))
		}
	}
}

// subscribes reports whether feed is a subscription feed, whose CREATE
// answers only once it listens.
func subscribes(feed string) bool { return feed == feedNATS || feed == feedMQTT }

// params are a feed action's arguments.
type params map[string]json.RawMessage

// feedError is a failure of a feed action, reported as its result.
func feedError(format string, args ...any) error {
	return gust.Errorf(gust.KindInvalid, format, args...)
}

// msgTriggerAuth is the alarms package's text for a trigger the key may not use.
const msgTriggerAuth = "Trigger authentication request failed."

// Run answers one invocation of a feed action: the lifecycle events
// CREATE, READ, UPDATE, DELETE, PAUSE and UNPAUSE. It is the activation
// service's runner for kind gust.ExecFeed.
func (f *Feeds) Run(ctx context.Context, job *invoker.Job) *gust.Activation {
	start := time.Now()
	a := job.Action
	result, err := f.lifecycle(ctx, a.Path(), job.Params)
	status := gust.StatusSuccess
	if err != nil {
		result, status = gust.ErrorResult(gust.MessageOf(err)), gust.StatusApplicationError
		if k := gust.KindOf(err); k == gust.KindInternal || k == gust.KindUnavailable {
			f.log.Error("feed action failed", "action", a.Path().String(), "err", err)
			status = gust.StatusInternalError
		}
	}
	end := time.Now()
	kv := gust.KeyValues{}.Set("limits", a.Limits).Set("path", a.Path().Rel(true)).Set("kind", a.Exec.Kind).Set("timeout", false)
	if job.CausedBy != "" {
		kv = kv.Set("causedBy", job.CausedBy)
	}
	if !job.Received.IsZero() {
		kv = kv.Set("waitTime", start.Sub(job.Received).Milliseconds())
	}
	if job.Binding != "" {
		kv = kv.Set("binding", job.Binding)
	}
	return &gust.Activation{
		Namespace: job.Namespace, Name: a.Name, Subject: job.Subject, ActivationID: job.ActivationID, Cause: job.Cause,
		Start: start.UnixMilli(), End: end.UnixMilli(), Duration: end.Sub(start).Milliseconds(),
		Response: gust.Response{StatusCode: status, Result: result}, Logs: []string{},
		Version: a.Version, Publish: a.Publish, Annotations: kv,
	}
}

// lifecycle handles one lifecycle event of the feed action at path.
func (f *Feeds) lifecycle(ctx context.Context, path gust.Path, raw json.RawMessage) (json.RawMessage, error) {
	var p params
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, feedError("the feed parameters must be a JSON object")
	}
	feed := path.Package + "/" + path.Name
	if path.Namespace != SystemNamespace || feeds[feed] == nil {
		return nil, feedError("%s is not a feed of this platform", path)
	}
	var event, triggerName, authKey string
	for k, dst := range map[string]*string{"lifecycleEvent": &event, "triggerName": &triggerName, "authKey": &authKey} {
		if v, ok := p[k]; ok {
			if json.Unmarshal(v, dst) != nil {
				return nil, feedError("the %s parameter must be a string", k)
			}
			delete(p, k)
		}
	}
	if event == "" {
		event = "CREATE"
	}
	if authKey == "" {
		return nil, feedError("no authKey parameter was provided")
	}
	if triggerName == "" {
		return nil, feedError("no trigger name parameter was provided")
	}
	uuid, key, _ := strings.Cut(authKey, ":")
	id, ok := f.cfg.Keys.Authenticate(uuid, key)
	if !ok {
		return nil, feedError(msgTriggerAuth)
	}
	tp, err := gust.ParsePath(triggerName, id.Namespace)
	if err != nil || tp.Package != "" || tp.Namespace != id.Namespace {
		return nil, feedError(msgTriggerAuth)
	}
	now := f.now()
	switch strings.ToUpper(event) {
	case "CREATE":
		trec, err := f.cfg.Entities.GetType(tp, store.TypeTrigger)
		if err != nil {
			return nil, feedError(msgTriggerAuth)
		}
		cfg, err := feeds[feed].configure(feed, tp.Namespace, p, nil, now)
		if err != nil {
			return nil, err
		}
		rec := &store.Feed{Namespace: tp.Namespace, Trigger: tp.Name, Feed: feed, Config: cfg, Active: true,
			Changed: now.UnixMilli(), Created: now.UnixMilli(), TriggerUpdated: trec.Updated}
		// A registration made for the trigger as it is now is a second feed
		// on it (refused); one made for an earlier write of the trigger is
		// left over from a trigger deleted without its feed's DELETE (the
		// REST API's delete, a DELETE that failed) and is replaced.
		leftover := func(old *store.Feed) bool { return old.TriggerUpdated != trec.Updated }
		if err := f.cfg.Store.Create(ctx, rec, leftover); err != nil {
			return nil, err
		}
		// An alarm is run by whichever node claims its ticks: only a
		// subscription waits.
		if err := f.awaitSubscription(ctx, rec, false); err != nil {
			// Not listening: the caller must not believe it is. Only this
			// registration is removed (compare-and-set), not a newer one;
			// also when the caller went away (its ctx is done), else the
			// registration would stay.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupWait)
			derr := f.cfg.Store.Delete(dctx, tp.Namespace, tp.Name, rec.Revision)
			cancel()
			if derr != nil {
				f.log.Warn("feed not removed after its subscription failed", "feed", rec.Key(), "err", derr)
			}
			return nil, err
		}
		return success()
	case "READ":
		rec, err := f.registration(ctx, tp, feed)
		if err != nil {
			return nil, err
		}
		return json.Marshal(readView(rec))
	case "UPDATE":
		rec, _, err := f.cfg.Store.Change(ctx, tp.Namespace, tp.Name, func(cur *store.Feed) (store.FeedChange, error) {
			if cur.Feed != feed {
				return store.KeepFeed, errNoFeed(tp, feed)
			}
			cfg, err := feeds[feed].configure(feed, tp.Namespace, p, cur.Config, now)
			if err != nil {
				return store.KeepFeed, err
			}
			cur.Config = cfg
			f.restart(cur, tp, now)
			return store.PutFeed, nil
		})
		if err != nil {
			return nil, missingAs(err, tp, feed)
		}
		if err := f.awaitSubscription(ctx, rec, false); err != nil {
			return nil, err
		}
		return success()
	case "DELETE":
		// Deleting what is not there succeeds: `trigger delete` must not
		// be stuck behind a feed that is already gone.
		rec, _, err := f.cfg.Store.Change(ctx, tp.Namespace, tp.Name, func(cur *store.Feed) (store.FeedChange, error) {
			if cur.Feed != feed { // a DELETE through another feed's action must not remove it
				return store.KeepFeed, errNoFeed(tp, feed)
			}
			return store.DeleteFeed, nil
		})
		if gust.KindOf(err) == gust.KindNotFound {
			return success()
		}
		if err != nil {
			return nil, err
		}
		if err := f.awaitSubscription(ctx, rec, true); err != nil {
			return nil, err
		}
		return success()
	case "PAUSE", "UNPAUSE":
		active := strings.EqualFold(event, "UNPAUSE")
		rec, _, err := f.cfg.Store.Change(ctx, tp.Namespace, tp.Name, func(cur *store.Feed) (store.FeedChange, error) {
			if cur.Feed != feed {
				return store.KeepFeed, errNoFeed(tp, feed)
			}
			if cur.Active == active {
				return store.KeepFeed, nil
			}
			cur.Active, cur.Reason, cur.Changed = active, "", now.UnixMilli()
			if !active {
				cur.Reason = "paused"
			}
			f.restart(cur, tp, now)
			return store.PutFeed, nil
		})
		if err != nil {
			return nil, missingAs(err, tp, feed)
		}
		// Also when nothing was written (already so): a caller repeating
		// an UNPAUSE that failed must hear whether this node listens now.
		if err := f.awaitSubscription(ctx, rec, false); err != nil {
			return nil, err
		}
		return success()
	}
	return nil, feedError("unsupported lifecycleEvent")
}

// registration reads the feed of trigger tp, which must be of kind feed.
func (f *Feeds) registration(ctx context.Context, tp gust.Path, feed string) (*store.Feed, error) {
	rec, err := f.cfg.Store.Get(ctx, tp.Namespace, tp.Name)
	if err == nil && rec.Feed != feed {
		return nil, errNoFeed(tp, feed)
	}
	if err != nil {
		return nil, missingAs(err, tp, feed)
	}
	return rec, nil
}

// errNoFeed is the answer for a trigger without a feed of kind feed.
func errNoFeed(tp gust.Path, feed string) error {
	return feedError("could not find trigger %s in the %s feed", tp, feed)
}

// missingAs turns a missing registration into errNoFeed.
func missingAs(err error, tp gust.Path, feed string) error {
	if gust.KindOf(err) == gust.KindNotFound {
		return errNoFeed(tp, feed)
	}
	return err
}

// restart makes an alarm schedule afresh from now after a PAUSE, UNPAUSE
// or UPDATE: ticks are computed after LastTick, so without this a tick
// that fell in the pause (or under the old schedule) would fire at once.
// The feed was also addressed through the trigger as it is now, which
// makes it that trigger's (see TriggerUpdated).
func (f *Feeds) restart(rec *store.Feed, tp gust.Path, now time.Time) {
	if strings.HasPrefix(rec.Feed, "alarms/") {
		rec.LastTick = now.UnixMilli()
	}
	if trec, err := f.cfg.Entities.GetType(tp, store.TypeTrigger); err == nil {
		rec.TriggerUpdated = trec.Updated
	}
}

// awaitSubscription waits until this node applied the write (or, deleted,
// the deletion) of subscription feed rec: see awaitApplied. Alarms, and a
// registration that was not there, have nothing to wait for.
func (f *Feeds) awaitSubscription(ctx context.Context, rec *store.Feed, deleted bool) error {
	if rec == nil || !subscribes(rec.Feed) {
		return nil
	}
	return f.awaitApplied(ctx, rec.Key(), rec.Revision, deleted)
}

func success() (json.RawMessage, error) { return json.RawMessage(`{"status":"success"}`), nil }

// readView is a READ's answer, in the alarms package's shape.
func readView(rec *store.Feed) map[string]any {
	cfg := feeds[rec.Feed].read(rec.Feed, rec.Config)
	cfg["name"], cfg["namespace"] = rec.Trigger, rec.Namespace
	changed := time.UnixMilli(rec.Changed).UTC()
	status := map[string]any{"active": rec.Active, "dateChanged": rec.Changed, "dateChangedISO": changed.Format(time.RFC3339)}
	if rec.Reason != "" {
		status["reason"] = map[string]string{"kind": "AUTO", "message": rec.Reason}
	}
	return map[string]any{"config": cfg, "status": status}
}

// provider is one kind of feed.
type provider struct {
	// configure validates a CREATE (old nil) or UPDATE and returns the
	// configuration to store.
	configure func(feed, ns string, p params, old json.RawMessage, now time.Time) (json.RawMessage, error)
	read      func(feed string, cfg json.RawMessage) map[string]any
}

// feedParam documents a parameter (the "parameters" annotation of the action).
type feedParam struct {
	Name        string `json:"name"`
	Required    bool   `json:"required"`
	Description string `json:"description"`
}

var alarmProvider = &provider{
	configure: func(feed, _ string, p params, old json.RawMessage, now time.Time) (json.RawMessage, error) {
		var prev *alarmConfig
		if old != nil {
			prev = &alarmConfig{}
			if err := json.Unmarshal(old, prev); err != nil {
				return nil, fmt.Errorf("stored alarm: %w", err)
			}
		}
		c, err := configureAlarm(feed, p, prev, now)
		if err != nil {
			return nil, err
		}
		return json.Marshal(c)
	},
	read: func(feed string, raw json.RawMessage) map[string]any {
		var c alarmConfig
		_ = json.Unmarshal(raw, &c) // written by configure
		return c.read(feed)
	},
}

// feeds are the providers by feed action ("package/action" in whisk.system).
var feeds = map[string]*provider{
	feedAlarm:    alarmProvider,
	feedInterval: alarmProvider,
	feedOnce:     alarmProvider,
	feedNATS:     subscribeProvider,
	feedMQTT:     subscribeProvider,
}
