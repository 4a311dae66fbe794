package trigger

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/store"
)

// Alarms fire each scheduled tick exactly once, whatever the number of
// nodes and restarts:
//
//  1. A node claims tick T of feed F by creating the key F.T in the claims
//     bucket (first writer wins; the key expires after ClaimTTL). Another
//     node's claim means it is that node's tick, unless it is older than
//     ClaimStale: then that node died before finishing, and the claim is
//     taken over (compare-and-set, one node wins). This node's own claim
//     (from before a restart) means finish it.
//  2. The trigger activation's id is derived from F and T, and so are the
//     ids of the rules' activations. If a record with that id exists, the
//     tick was fired before a crash and is not fired again; the work queue
//     recognises the rules' activations by id as well. Only a record known
//     to be missing fires the tick: a lookup that fails is retried.
//  3. The tick is recorded as F's LastTick. Ticks are computed after
//     LastTick, so a restart resumes where the cluster left off, firing a
//     missed tick once (only the latest when several were missed).

// alarmLoop wakes at the next tick of any alarm, or when registrations
// change, and fires what is due.
func (f *Feeds) alarmLoop(ctx context.Context) {
	defer f.done.Done()
	for {
		now := f.now()
		f.Tick(ctx, now)
		wait := time.Minute // also bounds the effect of clock jumps
		if next := f.nextWake(now); !next.IsZero() {
			wait = min(wait, max(next.Sub(f.now()), 0))
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-f.wake:
			timer.Stop()
		case <-ctx.Done():
			timer.Stop()
			return
		}
	}
}

// alarms returns the active alarm registrations, sorted by key.
func (f *Feeds) alarms() []*store.Feed {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*store.Feed, 0, len(f.feeds))
	for _, rec := range f.feeds {
		if rec.Active && strings.HasPrefix(rec.Feed, "alarms/") {
			cp := *rec
			out = append(out, &cp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out
}

func scheduleOf(rec *store.Feed) (schedule, bool) {
	var c alarmConfig
	if err := json.Unmarshal(rec.Config, &c); err != nil {
		return schedule{}, false
	}
	return newSchedule(&c, time.UnixMilli(rec.Created)), true
}

// lastTick is the time ticks are computed after.
func lastTick(rec *store.Feed) time.Time {
	if rec.LastTick > 0 {
		return time.UnixMilli(rec.LastTick)
	}
	return time.UnixMilli(rec.Created)
}

// retryDelay is how soon a tick that failed for a passing reason is tried again.
const retryDelay = 2 * time.Second

func (f *Feeds) retrySoon() {
	f.mu.Lock()
	f.retryAt = f.now().Add(retryDelay)
	f.mu.Unlock()
}

// nextWake returns the earliest future tick of any alarm, or the time to
// retry a failed one.
func (f *Feeds) nextWake(now time.Time) time.Time {
	f.mu.Lock()
	first := f.retryAt
	f.retryAt = time.Time{}
	f.mu.Unlock()
	for _, rec := range f.alarms() {
		s, ok := scheduleOf(rec)
		if !ok {
			continue
		}
		from := now
		if l := lastTick(rec); l.After(from) {
			from = l
		}
		if n := s.nextAfter(from); !n.IsZero() && (first.IsZero() || n.Before(first)) {
			first = n
		}
	}
	return first
}

// Tick fires every alarm tick due at now. The alarm loop calls it; tests
// call it with their own clock.
func (f *Feeds) Tick(ctx context.Context, now time.Time) {
	for _, rec := range f.alarms() {
		s, ok := scheduleOf(rec)
		if !ok {
			continue
		}
		if due := s.due(lastTick(rec), now); !due.IsZero() {
			f.fireTick(ctx, rec, s, due, now)
		}
	}
}

// TickActivationID is the id of the trigger activation of feed key's tick
// at due: its time is the tick's, the rest a hash of both.
func TickActivationID(key string, due time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(due.UnixMilli())<<16)
	sum := sha256.Sum256([]byte(key + "\x00" + strconv.FormatInt(due.UnixMilli(), 10)))
	copy(b[6:], sum[:10])
	return hex.EncodeToString(b[:])
}

// fireTick fires one tick of an alarm, exactly once (see above).
func (f *Feeds) fireTick(ctx context.Context, rec *store.Feed, s schedule, due, now time.Time) {
	log := f.log.With("trigger", "/"+rec.Namespace+"/"+rec.Trigger, "tick", due.UTC().Format(time.RFC3339Nano))
	mine, err := f.cfg.Store.Claim(ctx, rec.Key()+"."+strconv.FormatInt(due.UnixMilli(), 10), f.cfg.Node, now, ClaimTTL, ClaimStale)
	if err != nil {
		log.Warn("alarm tick not claimed; will retry", "err", err)
		f.retrySoon()
		return
	}
	if !mine {
		return // another node's tick
	}
	id := TickActivationID(rec.Key(), due)
	_, err = f.cfg.Records.Get(ctx, rec.Namespace, id)
	switch {
	case err == nil:
		// Fired before a crash (ours, or the node's whose claim this
		// was): only record it.
	case gust.KindOf(err) != gust.KindNotFound:
		// Not knowing whether it fired is not "not fired": firing now
		// could fire it twice. The claim is ours: the retry finishes it.
		log.Warn("alarm tick not checked; will retry", "err", err)
		f.retrySoon()
		return
	default:
		caller, ok := f.cfg.Keys.ByNamespace(rec.Namespace)
		if !ok {
			f.deactivate(ctx, rec, "the namespace no longer exists")
			return
		}
		_, err := f.fires.Fire(ctx, Fire{
			Caller: caller, Trigger: gust.Path{Namespace: rec.Namespace, Name: rec.Trigger},
			Payload: s.cfg.Payload, ActivationID: id, Durable: true,
		})
		if err != nil {
			switch gust.KindOf(err) {
			case gust.KindNotFound, gust.KindForbidden:
				f.deactivate(ctx, rec, "the trigger no longer exists")
				return
			case gust.KindUnavailable, gust.KindInternal:
				log.Warn("alarm tick not fired; will retry", "err", err)
				f.retrySoon() // the claim is ours: the retry fires it
				return
			}
			log.Warn("alarm tick refused", "err", err) // e.g. throttled: the tick is lost, as in OpenWhisk
		}
	}
	f.markFired(ctx, rec, due)
	if len(s.cfg.Date) > 0 && s.cfg.DeleteAfterFire != "" && s.cfg.DeleteAfterFire != "false" {
		f.deleteTrigger(ctx, rec, s.cfg.DeleteAfterFire == "rules")
	}
}

// markFired records due as the feed's last tick.
func (f *Feeds) markFired(ctx context.Context, rec *store.Feed, due time.Time) {
	_, _, err := f.cfg.Store.Change(ctx, rec.Namespace, rec.Trigger, func(cur *store.Feed) (store.FeedChange, error) {
		if cur.Created != rec.Created || cur.LastTick >= due.UnixMilli() {
			return store.KeepFeed, nil // replaced, or another node recorded it
		}
		cur.LastTick = due.UnixMilli()
		return store.PutFeed, nil
	})
	if err != nil && gust.KindOf(err) != gust.KindNotFound {
		f.log.Warn("alarm tick not recorded", "feed", rec.Key(), "err", err)
	}
}

// deactivate stops a feed whose trigger cannot be fired any more, saying why.
func (f *Feeds) deactivate(ctx context.Context, rec *store.Feed, reason string) {
	f.log.Info("feed disabled", "feed", rec.Key(), "reason", reason)
	_, _, err := f.cfg.Store.Change(ctx, rec.Namespace, rec.Trigger, func(cur *store.Feed) (store.FeedChange, error) {
		if cur.Created != rec.Created || !cur.Active {
			return store.KeepFeed, nil // replaced by a feed of its own, or stopped already
		}
		cur.Active, cur.Reason, cur.Changed = false, reason, f.now().UnixMilli()
		return store.PutFeed, nil
	})
	if err != nil && gust.KindOf(err) != gust.KindNotFound {
		f.log.Warn("feed not disabled", "feed", rec.Key(), "err", err)
	}
}

// deleteTrigger deletes a fired once-alarm's trigger (deleteAfterFire),
// with its rules when asked, and the feed.
func (f *Feeds) deleteTrigger(ctx context.Context, rec *store.Feed, rules bool) {
	tp := gust.Path{Namespace: rec.Namespace, Name: rec.Trigger}
	if trec, err := f.cfg.Entities.GetType(tp, store.TypeTrigger); err == nil {
		if t, err := trec.Trigger(); err == nil && rules {
			for key := range t.Rules {
				ns, name, _ := strings.Cut(key, "/")
				rp := gust.Path{Namespace: ns, Name: name}
				if rrec, err := f.cfg.Entities.GetType(rp, store.TypeRule); err == nil {
					_ = f.cfg.Entities.Delete(ctx, rp, rrec.Revision)
				}
			}
		}
		if err := f.cfg.Entities.Delete(ctx, tp, trec.Revision); err != nil {
			f.log.Warn("trigger not deleted after firing", "trigger", tp.String(), "err", err)
		}
	}
	if err := f.cfg.Store.Delete(ctx, rec.Namespace, rec.Trigger, 0); err != nil {
		f.log.Warn("feed not deleted after firing", "feed", rec.Key(), "err", err)
	}
}
