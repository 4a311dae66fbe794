package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	// LastTick is the last scheduled time (ms) an alarm fired for; a
	// restart resumes after it.
	LastTick int64 `json:"lastTick,omitempty"`

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
			return gust.Errorf(gust.KindConflict, "The trigger /%s/%s has a feed already.", f.Namespace, f.Trigger)
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

// Delete removes the feed of trigger ns/name; a missing one is no error.
func (s *Feeds) Delete(ctx context.Context, ns, trigger string) error {
	if err := s.kv.Delete(ctx, FeedKey(ns, trigger)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return gust.Wrap(gust.KindUnavailable, gust.MsgUnavailable, fmt.Errorf("delete feed: %w", err))
	}
	return nil
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

// Claim claims key for owner for ttl: true when this call made the claim,
// or when owner made it before (a restart of the same node); false when
// another owner holds it.
func (s *Feeds) Claim(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	_, err := s.claims.Create(ctx, key, []byte(owner), jetstream.KeyTTL(ttl))
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return false, fmt.Errorf("claim %s: %w", key, err)
	}
	e, err := s.claims.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil // expired in between: the tick is long past
	}
	if err != nil {
		return false, fmt.Errorf("read claim %s: %w", key, err)
	}
	return string(e.Value()) == owner, nil
}
