// Package scheduler places activations on invokers. Invokers announce
// themselves and their free memory with heartbeats in a KV bucket whose
// entries expire; the API side picks, per activation, the action's home
// invoker by rendezvous hashing and steps to the next one when the home is
// full, so warm instances are found and load spreads.
package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Heartbeat is what an invoker announces.
type Heartbeat struct {
	ID       string   `json:"id"`
	MemoryMB int      `json:"memoryMB"`
	FreeMB   int      `json:"freeMB"`
	Kinds    []string `json:"kinds"`
	At       int64    `json:"at"` // epoch ms
}

// Registry keeps the set of live invokers from the "invokers" bucket. An
// entry expires TTL after its last heartbeat; the expiry marker reaches the
// watch, so a dead invoker is dropped within TTL.
type Registry struct {
	kv  jetstream.KeyValue
	log *slog.Logger

	mu   sync.RWMutex
	live map[string]Heartbeat

	stop context.CancelFunc
	done chan struct{}
}

// DefaultTTL is how long an invoker stays listed after its last heartbeat;
// heartbeats go every TTL/3 (JetStream's TTL precision is about a second).
const DefaultTTL = 3 * time.Second

// OpenRegistry creates or opens the bucket and follows it.
func OpenRegistry(ctx context.Context, js jetstream.JetStream, replicas int, ttl time.Duration, log *slog.Logger) (*Registry, error) {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         "invokers",
		Description:    "Gust invoker heartbeats",
		History:        1,
		TTL:            ttl,
		LimitMarkerTTL: ttl,
		Storage:        jetstream.MemoryStorage,
		Replicas:       replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("invokers bucket: %w", err)
	}
	r := &Registry{kv: kv, log: log, live: map[string]Heartbeat{}, done: make(chan struct{})}
	wctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	w, err := kv.WatchAll(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch invokers: %w", err)
	}
	ready := make(chan struct{})
	go func() {
		defer close(r.done)
		defer w.Stop()
		once := sync.OnceFunc(func() { close(ready) })
		defer once()
		for e := range w.Updates() {
			if e == nil {
				once()
				continue
			}
			r.apply(e)
		}
	}()
	select {
	case <-ready:
	case <-ctx.Done():
		cancel()
		return nil, ctx.Err()
	}
	return r, nil
}

func (r *Registry) apply(e jetstream.KeyValueEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		if _, ok := r.live[e.Key()]; ok {
			r.log.Info("invoker left", "invoker", e.Key())
		}
		delete(r.live, e.Key())
		return
	}
	var hb Heartbeat
	if err := json.Unmarshal(e.Value(), &hb); err != nil {
		r.log.Warn("skip undecodable heartbeat", "key", e.Key(), "err", err)
		return
	}
	if _, ok := r.live[hb.ID]; !ok {
		r.log.Info("invoker joined", "invoker", hb.ID, "memoryMB", hb.MemoryMB)
	}
	r.live[hb.ID] = hb
}

// Close stops following the bucket.
func (r *Registry) Close() {
	r.stop()
	<-r.done
}

// Count returns how many invokers are live, without copying them.
func (r *Registry) Count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.live)
}

// Live returns the live invokers, sorted by id.
func (r *Registry) Live() []Heartbeat {
	r.mu.RLock()
	out := make([]Heartbeat, 0, len(r.live))
	for _, hb := range r.live {
		out = append(out, hb)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Announce writes one heartbeat.
func (r *Registry) Announce(ctx context.Context, hb Heartbeat) error {
	hb.At = time.Now().UnixMilli()
	b, err := json.Marshal(hb)
	if err != nil {
		return err
	}
	if _, err := r.kv.Put(ctx, hb.ID, b); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	r.mu.Lock()
	r.live[hb.ID] = hb
	r.mu.Unlock()
	return nil
}

// Leave removes an invoker at once (a graceful stop).
func (r *Registry) Leave(ctx context.Context, id string) error {
	r.mu.Lock()
	delete(r.live, id)
	r.mu.Unlock()
	return r.kv.Delete(ctx, id)
}

// Heartbeats announces hb() every interval until ctx ends, then leaves;
// when die is closed it stops without leaving, as a crashed invoker would,
// and the entry expires.
func (r *Registry) Heartbeats(ctx context.Context, die <-chan struct{}, interval time.Duration, hb func() Heartbeat) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := r.Announce(ctx, hb()); err != nil && ctx.Err() == nil {
			r.log.Warn("heartbeat failed", "err", err)
		}
		select {
		case <-die:
			return
		case <-ctx.Done():
			lctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = r.Leave(lctx, hb().ID)
			cancel()
			return
		case <-t.C:
		}
	}
}

// Pick chooses an invoker for an activation of the action identified by
// key that needs memMB of kind: the invoker with the highest rendezvous
// score for key that runs kind and has memMB free, or, when none has room,
// the home invoker itself (it queues). ok is false when no live invoker
// runs kind.
//
// Rendezvous hashing keeps an action on the same invoker while the set of
// invokers is stable, and moves only the actions of an invoker that left.
func Pick(live []Heartbeat, key string, memMB int, kind string) (id string, ok bool) {
	type scored struct {
		hb    Heartbeat
		score uint64
	}
	cands := make([]scored, 0, len(live))
	for _, hb := range live {
		if !runs(hb, kind) {
			continue
		}
		cands = append(cands, scored{hb, score(key, hb.ID)})
	}
	if len(cands) == 0 {
		return "", false
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].score > cands[j].score })
	for _, c := range cands {
		if c.hb.FreeMB >= memMB {
			return c.hb.ID, true
		}
	}
	return cands[0].hb.ID, true
}

func runs(hb Heartbeat, kind string) bool {
	for _, k := range hb.Kinds {
		if k == kind {
			return true
		}
	}
	return false
}

func score(key, id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write([]byte(id))
	// fnv's low bits mix poorly for similar inputs; finish with a mixer.
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	return x
}
