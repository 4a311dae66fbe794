package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gust-faas/gust/internal/gust"
)

// Feed is the registration of a feed on a trigger: which provider fires it
// and how (the provider's validated configuration), and its state.
type Feed struct {
	Namespace string          `json:"namespace"`
	Trigger   string          `json:"trigger"`
	Feed      string          `json:"feed"`   // provider: "alarms/alarm", "nats/subscribe", …
	Config    json.RawMessage `json:"config"` // provider-specific
	Active    bool            `json:"active"`
	Reason    string          `json:"reason,omitempty"` // why it is not active
	Changed   int64           `json:"changed"`          // ms: last change of Active
	Created   int64           `json:"created"`          // ms
	// LastTick is the last scheduled time (ms) an alarm fired for, or the
	// time it was paused, resumed or changed; ticks are computed after it,
	// so a restart resumes there and a tick that fell in a pause is skipped.
	LastTick int64 `json:"lastTick,omitempty"`
	// TriggerUpdated is the trigger's "updated" (ms) when the feed was
	// created or last changed through it. A trigger written since may be
	// another trigger of the same name: one deleted without its feed's
	// DELETE and created again. Triggers carry no creation stamp, so this
	// is the identity a CREATE compares (see Feeds.Create).
	TriggerUpdated int64 `json:"triggerUpdated,omitempty"`

	Revision uint64 `json:"-"`
}

// Key is the feed's key in the bucket.
func (f *Feed) Key() string { return FeedKey(f.Namespace, f.Trigger) }

// FeedKey is the key of the feed of trigger ns/name.
func FeedKey(ns, trigger string) string { return token(ns) + "." + token(trigger) }

// Feeds stores feed registrations in the KV bucket "feeds" and the claims
// that make each alarm tick fire once in the bucket "feed_claims", whose
// keys expire by themselves (per-key TTL).
type Feeds struct {
	kv     jetstream.KeyValue
	claims jetstream.KeyValue
}

// OpenFeeds creates or opens the buckets.
func OpenFeeds(ctx context.Context, js jetstream.JetStream, replicas int) (*Feeds, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      "feeds",
		Description: "Gust feed registrations: which provider fires which trigger",
		History:     1,
		Replicas:    replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("feeds bucket: %w", err)
	}
	claims, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      "feed_claims",
		Description: "Gust alarm ticks claimed by a node; keys expire by themselves",
		History:     1,
		Replicas:    replicas,
		Storage:     jetstream.FileStorage,
		// Per-key TTLs need the stream's message TTLs, which this turns on
		// (shared/reference/nats.md §4).
		LimitMarkerTTL: time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("feed claims bucket: %w", err)
	}
	return &Feeds{kv: kv, claims: claims}, nil
}

func decodeFeed(e jetstream.KeyValueEntry) (*Feed, error) {
	var f Feed
	if err := json.Unmarshal(e.Value(), &f); err != nil {
		return nil, fmt.Errorf("decode feed %s: %w", e.Key(), err)
	}
	f.Revision = e.Revision()
	return &f, nil
}

// Get returns the feed of trigger ns/name, or a not-found error.
func (s *Feeds) Get(ctx context.Context, ns, trigger string) (*Feed, error) {
	e, err := s.kv.Get(ctx, FeedKey(ns, trigger))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, gust.ErrNotFound
	}
	if err != nil {
		return nil, gust.Wrap(gust.KindUnavailable, gust.MsgUnavailable, fmt.Errorf("get feed: %w", err))
	}
	return decodeFeed(e)
}

// Put writes f: created when f.Revision is 0 (a conflict when the trigger
// has a feed already), else replacing that revision (a conflict when it
// changed since). f.Revision is updated.
func (s *Feeds) Put(ctx context.Context, f *Feed) error {
	val, err := json.Marshal(f)
	if err != nil {
		return err
	}
	var rev uint64
	if f.Revision == 0 {
		rev, err = s.kv.Create(ctx, f.Key(), val)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return errHasFeed(f)
		}
	} else {
		rev, err = s.kv.Update(ctx, f.Key(), val, f.Revision)
		if isWrongRevision(err) {
			return gust.Errorf(gust.KindConflict, gust.MsgConcurrent)
		}
	}
	if err != nil {
		return gust.Wrap(gust.KindUnavailable, gust.MsgUnavailable, fmt.Errorf("put feed: %w", err))
	}
	f.Revision = rev
	return nil
}

func errHasFeed(f *Feed) error {
	return gust.Errorf(gust.KindConflict, "The trigger /%s/%s has a feed already.", f.Namespace, f.Trigger)
}

// Create registers f as a new feed. A registration already there is
// replaced when leftover says it was left behind by an earlier trigger of
// the same name (deleted without the feed's DELETE, or whose DELETE
// failed): otherwise such a leftover would block the feed for good. A
// registration of the live trigger is a conflict: one feed per trigger.
//
// Each round creates the key, or replaces the registration read
// (compare-and-set); a write that came between (a tick the leftover
// recorded, a concurrent CREATE, a deletion) makes it look again, as
// Change does, so a busy leftover is not mistaken for a live feed.
func (s *Feeds) Create(ctx context.Context, f *Feed, leftover func(old *Feed) bool) error {
	return s.retryConflicts(ctx, func() (bool, error) {
		f.Revision = 0
		err := s.Put(ctx, f)
		if gust.KindOf(err) != gust.KindConflict {
			return false, err
		}
		old, err := s.Get(ctx, f.Namespace, f.Trigger)
		switch {
		case gust.KindOf(err) == gust.KindNotFound:
			return true, nil // deleted in between: create again
		case err != nil:
			return false, err
		case !leftover(old):
			return false, errHasFeed(f)
		}
		f.Revision = old.Revision
		err = s.Put(ctx, f)
		return gust.KindOf(err) == gust.KindConflict, err
	})
}

// FeedChange is what a Change made of a registration.
type FeedChange int

const (
	KeepFeed   FeedChange = iota // nothing to write
	PutFeed                      // write the edited registration
	DeleteFeed                   // remove it
)

// casAttempts bounds the rounds of a compare-and-set: each conflict is
// another write that succeeded, so only a storm of writes to one feed
// exhausts it.
const casAttempts = 25

// Change is every read-modify-write of a registration: it reads the feed
// of trigger ns/name, lets change edit it (or decide to delete it, or to
// leave it), and writes the result only if the registration is still the
// revision read (compare-and-set). On a conflict, another write came
// between: it reads again and change decides anew on what is there now,
// so neither write is lost. change must edit only the registration it is
// given. It returns the registration as written (or read, when kept or on
// change's error) and what was done; a missing registration is the
// not-found error, and a conflict on every round is returned as the
// conflict.
func (s *Feeds) Change(ctx context.Context, ns, trigger string, change func(cur *Feed) (FeedChange, error)) (*Feed, FeedChange, error) {
	var out *Feed
	what := KeepFeed
	err := s.retryConflicts(ctx, func() (bool, error) {
		out, what = nil, KeepFeed
		cur, err := s.Get(ctx, ns, trigger)
		if err != nil {
			return false, err
		}
		w, err := change(cur)
		switch {
		case err != nil || w == KeepFeed:
			out = cur
			return false, err
		case w == DeleteFeed:
			err = s.Delete(ctx, ns, trigger, cur.Revision)
		default:
			err = s.Put(ctx, cur)
		}
		if err == nil {
			out, what = cur, w
		}
		return gust.KindOf(err) == gust.KindConflict, err
	})
	return out, what, err
}

// retryConflicts runs round until it says not to go again (again false),
// at most casAttempts times; round's last error is returned. Writers that
// collided would collide again in lockstep: a short random pause between
// rounds spreads them.
func (s *Feeds) retryConflicts(ctx context.Context, round func() (again bool, err error)) error {
	for attempt := 1; ; attempt++ {
		again, err := round()
		if !again {
			return err
		}
		if attempt == casAttempts {
			if err == nil {
				err = gust.Errorf(gust.KindConflict, gust.MsgConcurrent)
			}
			return err
		}
		select {
		case <-time.After(time.Duration(1+rand.IntN(attempt)) * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Delete removes the feed of trigger ns/name; a missing one is no error.
// With rev > 0 it removes only that revision (a conflict when the feed
// changed since, e.g. was replaced).
func (s *Feeds) Delete(ctx context.Context, ns, trigger string, rev uint64) error {
	var opts []jetstream.KVDeleteOpt
	if rev > 0 {
		opts = append(opts, jetstream.LastRevision(rev))
	}
	err := s.kv.Delete(ctx, FeedKey(ns, trigger), opts...)
	switch {
	case err == nil || errors.Is(err, jetstream.ErrKeyNotFound):
		return nil
	case isWrongRevision(err):
		return gust.Errorf(gust.KindConflict, gust.MsgConcurrent)
	}
	return gust.Wrap(gust.KindUnavailable, gust.MsgUnavailable, fmt.Errorf("delete feed: %w", err))
}

// FeedEvent is a change seen by Watch: a feed written, or (Feed nil) the
// feed under Key deleted. A nil *FeedEvent marks the end of the initial
// values.
type FeedEvent struct {
	Key  string
	Feed *Feed
}

// Watch sends every feed, then a nil event, then every change, until ctx
// ends; then it closes the channel.
func (s *Feeds) Watch(ctx context.Context) (<-chan *FeedEvent, error) {
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch feeds: %w", err)
	}
	out := make(chan *FeedEvent, 64)
	go func() {
		defer close(out)
		defer w.Stop()
		for {
			var e jetstream.KeyValueEntry
			var ok bool
			select {
			case e, ok = <-w.Updates():
			case <-ctx.Done():
				return
			}
			if !ok {
				return
			}
			var ev *FeedEvent
			switch {
			case e == nil:
			case e.Operation() != jetstream.KeyValuePut:
				ev = &FeedEvent{Key: e.Key()}
			default:
				f, err := decodeFeed(e)
				if err != nil {
					continue
				}
				ev = &FeedEvent{Key: e.Key(), Feed: f}
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// claim is the value of a claim: the node that made it, and when (ms, by
// that node's clock, which is the clock ticks are scheduled by).
type claim struct {
	Node string `json:"node"`
	At   int64  `json:"at"`
}

func decodeClaim(e jetstream.KeyValueEntry) claim {
	var c claim
	if json.Unmarshal(e.Value(), &c) != nil || c.Node == "" {
		// Written before claims carried their time: just the node's name.
		c = claim{Node: string(e.Value()), At: e.Created().UnixMilli()}
	}
	return c
}

// Claim claims key for owner at now, for ttl. It returns true when this
// call made the claim, or when owner made it before (a restart of the
// same node), or when another node's claim is older than stale: that node
// died, or lost the store, before finishing, and the claim is taken over
// so the tick is not lost. Taking over removes exactly the claim that was
// read (compare-and-set on its revision) and then claims anew, so of any
// number of nodes one wins. Otherwise (a live claim of another node) false.
func (s *Feeds) Claim(ctx context.Context, key, owner string, now time.Time, ttl, stale time.Duration) (bool, error) {
	val, err := json.Marshal(claim{Node: owner, At: now.UnixMilli()})
	if err != nil {
		return false, err
	}
	for attempt := 0; attempt < 2; attempt++ {
		_, err := s.claims.Create(ctx, key, val, jetstream.KeyTTL(ttl))
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return false, fmt.Errorf("claim %s: %w", key, err)
		}
		e, err := s.claims.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, nil // expired, or being taken over by another node
		}
		if err != nil {
			return false, fmt.Errorf("read claim %s: %w", key, err)
		}
		c := decodeClaim(e)
		if c.Node == owner {
			return true, nil
		}
		if attempt > 0 || now.Sub(time.UnixMilli(c.At)) < stale {
			return false, nil
		}
		// The purge marker expires like a claim, so nothing is left behind.
		err = s.claims.Purge(ctx, key, jetstream.LastRevision(e.Revision()), jetstream.PurgeTTL(ttl))
		if isWrongRevision(err) {
			return false, nil // another node took it over first
		}
		if err != nil {
			return false, fmt.Errorf("take over claim %s: %w", key, err)
		}
	}
	return false, nil
}
