package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gust-faas/gust/internal/gust"
)

// Entity types sharing a namespace's key space.
const (
	TypeAction  = "action"
	TypePackage = "package"
	TypeTrigger = "trigger"
	TypeRule    = "rule"
)

// inlineCodeMax is the largest code kept inside the entity record; larger
// code goes to the object store so KV values stay small.
const inlineCodeMax = 256 << 10

// Record is one stored entity.
type Record struct {
	Type    string          `json:"type"`
	Doc     json.RawMessage `json:"doc"`               // the entity as the API returns it (large code moved out)
	Digest  string          `json:"digest,omitempty"`  // hex SHA-256 of the decoded code, for caches
	CodeRef string          `json:"codeRef,omitempty"` // object holding the exec code when moved out
	Updated int64           `json:"updated"`

	Path     gust.Path `json:"-"`
	Revision uint64    `json:"-"`
	deleted  bool      // a tombstone: keeps a lagging watch from resurrecting a deleted entity

	once   sync.Once
	action *gust.Action
	err    error
}

// Action decodes the record as an action. The result is shared: callers
// must copy it before changing it.
func (r *Record) Action() (*gust.Action, error) {
	r.once.Do(func() {
		var a gust.Action
		if err := json.Unmarshal(r.Doc, &a); err != nil {
			r.err = fmt.Errorf("decode action %s: %w", r.Path, err)
			return
		}
		r.action = &a
	})
	return r.action, r.err
}

// Entities stores entities in the KV bucket "entities", read through an
// in-memory cache kept current by a watch.
type Entities struct {
	kv   jetstream.KeyValue
	code jetstream.ObjectStore
	// js and codeStream (the code object store's stream) let CollectCode
	// remove an object only if it is unchanged since it was judged.
	js         jetstream.JetStream
	codeStream jetstream.Stream
	log        *slog.Logger

	mu    sync.RWMutex
	cache map[string]*Record // by entity key
	// names holds, per namespace and activation tag, the record names of
	// every action and trigger this cache has seen (deleted ones too: their
	// records outlive them), so that Activations.Get can look records up by
	// exact subject.
	names map[string]map[uint16][]string

	stop context.CancelFunc
	done chan struct{}

	// beforeRemove, when set (by tests), runs in CollectCode after it has
	// decided to remove an object and just before it does.
	beforeRemove func(name string)
}

// OpenEntities creates or opens the buckets and loads the cache.
func OpenEntities(ctx context.Context, js jetstream.JetStream, replicas int, log *slog.Logger) (*Entities, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      "entities",
		Description: "Gust entities: actions, packages, triggers, rules",
		History:     1,
		Replicas:    replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("entities bucket: %w", err)
	}
	code, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      codeBucket,
		Description: "Gust function code too large for an entity record",
		Replicas:    replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("code object store: %w", err)
	}
	codeStream, err := js.Stream(ctx, codeStreamName)
	if err != nil {
		return nil, fmt.Errorf("code object store stream: %w", err)
	}
	e := &Entities{kv: kv, code: code, js: js, codeStream: codeStream, log: log, cache: make(map[string]*Record), names: make(map[string]map[uint16][]string), done: make(chan struct{})}
	wctx, cancel := context.WithCancel(context.Background())
	e.stop = cancel
	w, err := kv.WatchAll(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch entities: %w", err)
	}
	// The watch first replays every current value, then a nil entry marks
	// that the cache is complete.
	ready := make(chan struct{})
	go e.follow(w, ready)
	select {
	case <-ready:
	case <-ctx.Done():
		cancel()
		return nil, ctx.Err()
	}
	return e, nil
}

func (e *Entities) follow(w jetstream.KeyWatcher, ready chan struct{}) {
	defer close(e.done)
	defer w.Stop()
	readyOnce := sync.OnceFunc(func() { close(ready) })
	for entry := range w.Updates() {
		if entry == nil {
			readyOnce()
			continue
		}
		e.apply(entry)
	}
	readyOnce()
}

func (e *Entities) apply(entry jetstream.KeyValueEntry) {
	key := entry.Key()
	e.mu.Lock()
	defer e.mu.Unlock()
	if cur, ok := e.cache[key]; ok && cur.Revision >= entry.Revision() {
		return // the writer already applied this or a newer revision
	}
	if entry.Operation() != jetstream.KeyValuePut {
		e.cache[key] = &Record{Revision: entry.Revision(), deleted: true}
		return
	}
	rec, err := decodeRecord(key, entry.Value(), entry.Revision())
	if err != nil {
		e.log.Error("skip undecodable entity", "key", key, "err", err)
		return
	}
	e.set(key, rec)
}

// set caches rec; e.mu is held.
func (e *Entities) set(key string, rec *Record) {
	e.cache[key] = rec
	if rec.Type != TypeAction && rec.Type != TypeTrigger {
		return
	}
	// An activation is recorded under its action's "[pkg/]name" (see
	// activationName) or its trigger's name.
	name := rec.Path.Name
	if rec.Path.Package != "" {
		name = rec.Path.Package + "/" + name
	}
	byTag := e.names[rec.Path.Namespace]
	if byTag == nil {
		byTag = make(map[uint16][]string)
		e.names[rec.Path.Namespace] = byTag
	}
	tag := gust.ActivationTag(name)
	if !slices.Contains(byTag[tag], name) {
		byTag[tag] = append(byTag[tag], name)
	}
}

// RecordNames returns the names under which activation records of
// namespace ns with the given tag may be stored (gust.ActivationIDTag).
func (e *Entities) RecordNames(ns string, tag uint16) []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return slices.Clone(e.names[ns][tag])
}

func decodeRecord(key string, value []byte, rev uint64) (*Record, error) {
	p, ok := pathOfKey(key)
	if !ok {
		return nil, fmt.Errorf("bad entity key %q", key)
	}
	var rec Record
	if err := json.Unmarshal(value, &rec); err != nil {
		return nil, err
	}
	rec.Path, rec.Revision = p, rev
	return &rec, nil
}

// Close stops the watch.
func (e *Entities) Close() {
	e.stop()
	<-e.done
}

// Get returns the entity at p, or a not-found error.
func (e *Entities) Get(p gust.Path) (*Record, error) {
	e.mu.RLock()
	rec, ok := e.cache[entityKey(p)]
	e.mu.RUnlock()
	if !ok || rec.deleted {
		return nil, gust.ErrNotFound
	}
	return rec, nil
}

// GetType returns the entity at p if it has type typ; an entity of another
// type under that name is a conflict, as OpenWhisk reports it.
func (e *Entities) GetType(p gust.Path, typ string) (*Record, error) {
	rec, err := e.Get(p)
	if err != nil {
		return nil, err
	}
	if rec.Type != typ {
		return nil, gust.Errorf(gust.KindConflict, gust.MsgOtherColl)
	}
	return rec, nil
}

// List returns the entities of type typ in namespace ns, newest first.
// With pkg set, only that package's entities; with allPkgs, entities in
// every package too (OpenWhisk's namespace-wide action list).
func (e *Entities) List(ns, typ, pkg string, allPkgs bool) []*Record {
	e.mu.RLock()
	var out []*Record
	for _, rec := range e.cache {
		if rec.deleted || rec.Type != typ || rec.Path.Namespace != ns {
			continue
		}
		if pkg != "" && rec.Path.Package != pkg {
			continue
		}
		if pkg == "" && !allPkgs && rec.Path.Package != "" {
			continue
		}
		out = append(out, rec)
	}
	e.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Updated != out[j].Updated {
			return out[i].Updated > out[j].Updated
		}
		return out[i].Path.Rel(false) < out[j].Path.Rel(false)
	})
	return out
}

// Put writes rec at p. With rev 0 it creates and fails with a conflict when
// the name is taken; otherwise it replaces revision rev and fails with a
// conflict when someone else wrote in between. Code is the exec code to
// store beside the record (nil when the entity has none); code over the
// inline limit goes to the object store first, so nothing is half-stored:
// an orphaned object is harmless, a record pointing at nothing is not.
func (e *Entities) Put(ctx context.Context, p gust.Path, rec *Record, rev uint64) (*Record, error) {
	key := entityKey(p)
	val, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode entity: %w", err)
	}
	var newRev uint64
	if rev == 0 {
		newRev, err = e.kv.Create(ctx, key, val)
		if errors.Is(err, jetstream.ErrKeyExists) {
			if cur, gerr := e.Get(p); gerr == nil && cur.Type != rec.Type {
				return nil, gust.Errorf(gust.KindConflict, gust.MsgOtherColl)
			}
			return nil, gust.Errorf(gust.KindConflict, gust.MsgExists)
		}
	} else {
		newRev, err = e.kv.Update(ctx, key, val, rev)
		if isWrongRevision(err) {
			return nil, gust.Errorf(gust.KindConflict, gust.MsgConcurrent)
		}
	}
	if err != nil {
		return nil, gust.Wrap(gust.KindUnavailable, gust.MsgUnavailable, fmt.Errorf("put entity %s: %w", key, err))
	}
	stored, err := decodeRecord(key, val, newRev)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	if cur, ok := e.cache[key]; !ok || cur.Revision < newRev {
		e.set(key, stored)
	}
	e.mu.Unlock()
	return stored, nil
}

// isWrongRevision reports a compare-and-set that lost: the key's revision
// moved on (code 10071; replicated streams answer 10164).
func isWrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Delete removes the entity at p if it is still at revision rev.
func (e *Entities) Delete(ctx context.Context, p gust.Path, rev uint64) error {
	key := entityKey(p)
	err := e.kv.Delete(ctx, key, jetstream.LastRevision(rev))
	if isWrongRevision(err) {
		return gust.Errorf(gust.KindConflict, gust.MsgConcurrent)
	}
	if err != nil {
		return gust.Wrap(gust.KindUnavailable, gust.MsgUnavailable, fmt.Errorf("delete entity %s: %w", key, err))
	}
	e.mu.Lock()
	if cur, ok := e.cache[key]; !ok || cur.Revision <= rev {
		e.cache[key] = &Record{Revision: rev, deleted: true}
	}
	e.mu.Unlock()
	return nil
}

// Digest returns the hex SHA-256 of code.
func Digest(code []byte) string {
	sum := sha256.Sum256(code)
	return hex.EncodeToString(sum[:])
}

// StoreCode moves exec code that is too large for a record to the object
// store. It returns the reference to keep in the record ("" when the code
// stays inline).
func (e *Entities) StoreCode(ctx context.Context, code string) (string, error) {
	if len(code) <= inlineCodeMax {
		return "", nil
	}
	// Objects are named by digest, so actions with the same code share one.
	// It is written even when it exists: that makes it new again, so that
	// CollectCode, which removes only old unreferenced objects, cannot take
	// it between this write and the record's.
	ref := Digest([]byte(code))
	if _, err := e.code.Put(ctx, jetstream.ObjectMeta{Name: ref}, bytes.NewReader([]byte(code))); err != nil {
		return "", gust.Wrap(gust.KindUnavailable, gust.MsgUnavailable, fmt.Errorf("store code: %w", err))
	}
	return ref, nil
}

// The layout of the "code" object store's stream (NATS ADR-20, the same
// in every client): one meta message per object name, rolled up, and the
// chunks of each version under that version's NUID.
// The names derive from the bucket's, so they cannot drift apart.
const (
	codeBucket      = "code"
	codeStreamName  = "OBJ_" + codeBucket
	codeMetaPrefix  = "$O." + codeBucket + ".M."
	codeChunkPrefix = "$O." + codeBucket + ".C."
)

// CollectCode removes stored code that no entity refers to any more and
// that is older than grace (a write in progress is younger), and returns
// how many objects it removed. Every node may run it: removal is
// idempotent.
//
// It cannot remove code that an action comes to refer to meanwhile.
// Every record that refers to an object was written after a StoreCode of
// it or copies the reference of one that was (an update keeping its
// code), and StoreCode always rewrites the object. So a record missing
// from the references taken here is one whose StoreCode is either younger
// than grace (kept), or still to come: then it rewrites the object's meta
// message, and removeCode's removal is a compare-and-set on that
// message's sequence, which then fails (kept), or the rewrite lands after
// the removal and stores the object anew. A plain ObjectStore.Delete
// would not do: it removes whatever version is there when it runs.
func (e *Entities) CollectCode(ctx context.Context, grace time.Duration) (int, error) {
	cutoff := time.Now().Add(-grace)
	infos, err := e.code.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("list code: %w", err)
	}
	used := map[string]bool{}
	e.mu.RLock()
	for _, rec := range e.cache {
		if !rec.deleted && rec.CodeRef != "" {
			used[rec.CodeRef] = true
		}
	}
	e.mu.RUnlock()
	removed := 0
	for _, info := range infos {
		if used[info.Name] || info.Deleted || info.ModTime.After(cutoff) {
			continue
		}
		ok, err := e.removeCode(ctx, info.Name, cutoff)
		if err != nil {
			return removed, err
		}
		if ok {
			removed++
		}
	}
	return removed, nil
}

// removeCode removes object name if its current version is older than
// cutoff, and reports whether it did. The version is read afresh (the
// listing may be stale) and the delete marker replaces exactly that
// version, so a StoreCode in between wins.
func (e *Entities) removeCode(ctx context.Context, name string, cutoff time.Time) (bool, error) {
	subj := codeMetaPrefix + base64.URLEncoding.EncodeToString([]byte(name))
	m, err := e.codeStream.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read code %s: %w", name, err)
	}
	var info jetstream.ObjectInfo
	if err := json.Unmarshal(m.Data, &info); err != nil {
		return false, fmt.Errorf("decode code %s: %w", name, err)
	}
	if info.Deleted || info.NUID == "" || m.Time.After(cutoff) {
		return false, nil
	}
	if e.beforeRemove != nil {
		e.beforeRemove(name)
	}
	info.Deleted = true
	info.Size, info.Chunks, info.Digest, info.ModTime = 0, 0, "", time.Time{}
	data, err := json.Marshal(info)
	if err != nil {
		return false, fmt.Errorf("encode code %s: %w", name, err)
	}
	marker := &nats.Msg{Subject: subj, Data: data, Header: nats.Header{}}
	marker.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	if _, err := e.js.PublishMsg(ctx, marker, jetstream.WithExpectLastSequencePerSubject(m.Sequence)); err != nil {
		if isWrongRevision(err) {
			return false, nil // stored again since: in use
		}
		return false, fmt.Errorf("remove code %s: %w", name, err)
	}
	// Only the removed version's chunks: a later StoreCode has its own.
	if err := e.codeStream.Purge(ctx, jetstream.WithPurgeSubject(codeChunkPrefix+info.NUID)); err != nil {
		return true, fmt.Errorf("remove chunks of code %s: %w", name, err)
	}
	return true, nil
}

// LoadCode returns code stored under ref.
func (e *Entities) LoadCode(ctx context.Context, ref string) (string, error) {
	b, err := e.code.GetBytes(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("load code %s: %w", ref, err)
	}
	return string(b), nil
}

// Namespaces lists the namespaces that own at least one entity.
func (e *Entities) Namespaces() []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	seen := map[string]bool{}
	for _, r := range e.cache {
		if r.deleted {
			continue
		}
		seen[r.Path.Namespace] = true
	}
	out := make([]string, 0, len(seen))
	for ns := range seen {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}
