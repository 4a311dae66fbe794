package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gust-faas/gust/internal/gust"
)

// Route is one operation of a managed API: a verb on a path relative to the
// API's base path, served by a web action.
type Route struct {
	RelPath      string `json:"relPath"`      // "/books/{id}": {name} segments are path parameters
	Verb         string `json:"verb"`         // upper case: "GET"
	Action       string `json:"action"`       // the web action, fully qualified: "/ns/pkg/name"
	ResponseType string `json:"responseType"` // web action extension without the dot: "json", "http"
}

// API is the managed API of one base path in a namespace (what `wsk api
// create` builds, one route at a time, or replaces whole from a swagger
// document).
type API struct {
	Namespace string          `json:"namespace"`
	BasePath  string          `json:"basePath"` // "/hello"
	Name      string          `json:"name"`     // apiName; defaults to the base path
	Routes    []Route         `json:"routes"`
	Swagger   json.RawMessage `json:"swagger,omitempty"` // a document given whole, kept as given
	Updated   int64           `json:"updated"`           // epoch ms

	Revision uint64 `json:"-"`
	deleted  bool   // a tombstone: keeps a lagging watch from resurrecting a deleted API
}

// Routes stores managed APIs in the KV bucket "routes", one key per
// namespace and base path, read through a cache kept current by a watch:
// every request to a managed API looks its namespace up.
type Routes struct {
	kv  jetstream.KeyValue
	log *slog.Logger

	mu   sync.RWMutex
	apis map[string]*API // by KV key

	stop context.CancelFunc
	done chan struct{}
}

// OpenRoutes creates or opens the bucket and loads the cache.
func OpenRoutes(ctx context.Context, js jetstream.JetStream, replicas int, log *slog.Logger) (*Routes, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      "routes",
		Description: "Gust managed APIs: routes from HTTP paths to web actions",
		History:     1,
		Replicas:    replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("routes bucket: %w", err)
	}
	rs := &Routes{kv: kv, log: log, apis: map[string]*API{}, done: make(chan struct{})}
	wctx, cancel := context.WithCancel(context.Background())
	rs.stop = cancel
	w, err := kv.WatchAll(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch routes: %w", err)
	}
	ready := make(chan struct{})
	go func() {
		defer close(rs.done)
		defer w.Stop()
		once := sync.OnceFunc(func() { close(ready) })
		defer once()
		for e := range w.Updates() {
			if e == nil {
				once() // the initial values are loaded
				continue
			}
			rs.apply(e)
		}
	}()
	select {
	case <-ready:
	case <-ctx.Done():
		cancel()
		return nil, ctx.Err()
	}
	return rs, nil
}

func (rs *Routes) apply(e jetstream.KeyValueEntry) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if cur, ok := rs.apis[e.Key()]; ok && cur.Revision >= e.Revision() {
		return // the writer already applied this or a newer revision
	}
	if e.Operation() != jetstream.KeyValuePut {
		rs.apis[e.Key()] = &API{Revision: e.Revision(), deleted: true}
		return
	}
	var api API
	if err := json.Unmarshal(e.Value(), &api); err != nil {
		rs.log.Error("skip undecodable route", "key", e.Key(), "err", err)
		return
	}
	api.Revision = e.Revision()
	rs.apis[e.Key()] = &api
}

// Close stops the watch.
func (rs *Routes) Close() {
	rs.stop()
	<-rs.done
}

// routeKey is the KV key of a base path: the base path is escaped into one
// token, since its slashes cannot be part of a key.
func routeKey(ns, basePath string) string {
	return token(ns) + "." + token(basePath)
}

// Get returns the API at basePath in ns. The result is shared: callers must
// not change it.
func (rs *Routes) Get(ns, basePath string) (*API, bool) {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	api, ok := rs.apis[routeKey(ns, basePath)]
	if !ok || api.deleted {
		return nil, false
	}
	return api, true
}

// List returns the APIs of ns sorted by base path. The results are shared.
func (rs *Routes) List(ns string) []*API {
	prefix := token(ns) + "."
	rs.mu.RLock()
	var out []*API
	for k, api := range rs.apis {
		if strings.HasPrefix(k, prefix) && !api.deleted {
			out = append(out, api)
		}
	}
	rs.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].BasePath < out[j].BasePath })
	return out
}

// Put writes api. With rev 0 it creates and fails with a conflict when the
// base path exists; otherwise it replaces revision rev and fails with a
// conflict when someone else wrote in between, so concurrent `api create`
// calls adding operations to one base path cannot lose each other's.
func (rs *Routes) Put(ctx context.Context, api *API, rev uint64) (*API, error) {
	key := routeKey(api.Namespace, api.BasePath)
	val, err := json.Marshal(api)
	if err != nil {
		return nil, fmt.Errorf("encode route: %w", err)
	}
	var newRev uint64
	if rev == 0 {
		newRev, err = rs.kv.Create(ctx, key, val)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return nil, gust.Errorf(gust.KindConflict, gust.MsgConcurrent)
		}
	} else {
		newRev, err = rs.kv.Update(ctx, key, val, rev)
		if isWrongRevision(err) {
			return nil, gust.Errorf(gust.KindConflict, gust.MsgConcurrent)
		}
	}
	if err != nil {
		return nil, gust.Wrap(gust.KindUnavailable, gust.MsgUnavailable, fmt.Errorf("put route %s: %w", key, err))
	}
	stored := *api
	stored.Revision = newRev
	rs.mu.Lock()
	if cur, ok := rs.apis[key]; !ok || cur.Revision < newRev {
		rs.apis[key] = &stored
	}
	rs.mu.Unlock()
	return &stored, nil
}

// Delete removes the API at basePath in ns if it is still at revision rev.
func (rs *Routes) Delete(ctx context.Context, ns, basePath string, rev uint64) error {
	key := routeKey(ns, basePath)
	err := rs.kv.Delete(ctx, key, jetstream.LastRevision(rev))
	if isWrongRevision(err) {
		return gust.Errorf(gust.KindConflict, gust.MsgConcurrent)
	}
	if err != nil {
		return gust.Wrap(gust.KindUnavailable, gust.MsgUnavailable, fmt.Errorf("delete route %s: %w", key, err))
	}
	rs.mu.Lock()
	if cur, ok := rs.apis[key]; !ok || cur.Revision <= rev {
		rs.apis[key] = &API{Revision: rev, deleted: true}
	}
	rs.mu.Unlock()
	return nil
}
