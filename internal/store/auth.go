package store

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gust-faas/gust/internal/gust"
)

// Identity is an authenticated caller: a subject acting in one namespace.
type Identity struct {
	Subject   string           `json:"subject"`
	Namespace string           `json:"namespace"`
	UUID      string           `json:"uuid"`
	Key       string           `json:"key"`
	Admin     bool             `json:"admin,omitempty"`  // may manage namespaces and their limits
	Limits    *NamespaceLimits `json:"limits,omitempty"` // overrides of the system throttles
}

// NamespaceLimits overrides a namespace's throttles; nil fields keep the
// system's values.
type NamespaceLimits struct {
	InvocationsPerMinute  *int `json:"invocationsPerMinute,omitempty"`
	ConcurrentInvocations *int `json:"concurrentInvocations,omitempty"`
	FiresPerMinute        *int `json:"firesPerMinute,omitempty"`
}

// Effective returns the system limits with the namespace's overrides.
func (id *Identity) Effective(sys gust.SystemLimits) gust.SystemLimits {
	if id == nil || id.Limits == nil {
		return sys
	}
	if v := id.Limits.InvocationsPerMinute; v != nil {
		sys.InvocationsPerMinute = *v
	}
	if v := id.Limits.ConcurrentInvocations; v != nil {
		sys.ConcurrentInvocations = *v
	}
	if v := id.Limits.FiresPerMinute; v != nil {
		sys.FiresPerMinute = *v
	}
	return sys
}

// Auth returns "uuid:key".
func (id *Identity) Auth() string { return id.UUID + ":" + id.Key }

// KeyLength is the length OpenWhisk requires of the key half of a credential.
const KeyLength = 64

// Keys stores namespace credentials in the KV bucket "auth", keyed by UUID,
// read through a cache kept current by a watch.
type Keys struct {
	kv  jetstream.KeyValue
	log *slog.Logger

	mu     sync.RWMutex
	byUUID map[string]*Identity
	byNS   map[string]*Identity

	stop context.CancelFunc
	done chan struct{}
}

// OpenKeys creates or opens the bucket and loads the cache.
func OpenKeys(ctx context.Context, js jetstream.JetStream, replicas int, log *slog.Logger) (*Keys, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      "auth",
		Description: "Gust namespaces and their API keys",
		History:     1,
		Replicas:    replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("auth bucket: %w", err)
	}
	k := &Keys{kv: kv, log: log, byUUID: map[string]*Identity{}, byNS: map[string]*Identity{}, done: make(chan struct{})}
	wctx, cancel := context.WithCancel(context.Background())
	k.stop = cancel
	w, err := kv.WatchAll(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch auth: %w", err)
	}
	ready := make(chan struct{})
	go func() {
		defer close(k.done)
		defer w.Stop()
		once := sync.OnceFunc(func() { close(ready) })
		defer once()
		for e := range w.Updates() {
			if e == nil {
				once()
				continue
			}
			k.apply(e)
		}
	}()
	select {
	case <-ready:
	case <-ctx.Done():
		cancel()
		return nil, ctx.Err()
	}
	return k, nil
}

func (k *Keys) apply(e jetstream.KeyValueEntry) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if old, ok := k.byUUID[e.Key()]; ok {
		delete(k.byNS, old.Namespace)
		delete(k.byUUID, e.Key())
	}
	if e.Operation() != jetstream.KeyValuePut {
		return
	}
	var id Identity
	if err := json.Unmarshal(e.Value(), &id); err != nil {
		k.log.Error("skip undecodable key", "uuid", e.Key(), "err", err)
		return
	}
	k.byUUID[id.UUID] = &id
	k.byNS[id.Namespace] = &id
}

// Close stops the watch.
func (k *Keys) Close() {
	k.stop()
	<-k.done
}

// Authenticate returns the identity of the credential "uuid:key".
func (k *Keys) Authenticate(uuid, key string) (*Identity, bool) {
	k.mu.RLock()
	id, ok := k.byUUID[uuid]
	k.mu.RUnlock()
	if !ok || subtle.ConstantTimeCompare([]byte(id.Key), []byte(key)) != 1 {
		return nil, false
	}
	return id, true
}

// ByNamespace returns the identity that owns ns.
func (k *Keys) ByNamespace(ns string) (*Identity, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	id, ok := k.byNS[ns]
	return id, ok
}

// Namespaces lists every namespace.
func (k *Keys) Namespaces() []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]string, 0, len(k.byNS))
	for ns := range k.byNS {
		out = append(out, ns)
	}
	return out
}

// ParseAuth splits and validates "uuid:key".
func ParseAuth(s string) (uuid, key string, err error) {
	uuid, key, ok := strings.Cut(s, ":")
	if !ok || uuid == "" || len(key) != KeyLength || strings.ContainsAny(uuid, ". *>") {
		return "", "", fmt.Errorf("credentials must have the form UUID:KEY with a %d-character key", KeyLength)
	}
	return uuid, key, nil
}

// Ensure makes ns exist with the credential auth ("uuid:key"); an empty auth
// keeps the namespace's current key or generates one. It returns the
// namespace's identity.
func (k *Keys) Ensure(ctx context.Context, ns, auth string) (*Identity, error) {
	return k.ensure(ctx, ns, auth, false)
}

// EnsureAdmin is Ensure for the administrator's namespace.
func (k *Keys) EnsureAdmin(ctx context.Context, ns, auth string) (*Identity, error) {
	return k.ensure(ctx, ns, auth, true)
}

// Create makes a new namespace with a generated credential; an existing
// namespace is a conflict.
func (k *Keys) Create(ctx context.Context, ns string) (*Identity, error) {
	if err := gust.ValidateName("namespace", ns); err != nil {
		return nil, err
	}
	if _, ok := k.ByNamespace(ns); ok {
		return nil, gust.Errorf(gust.KindConflict, "The namespace %s already exists.", ns)
	}
	return k.ensure(ctx, ns, "", false)
}

// SetLimits replaces the namespace's limit overrides.
func (k *Keys) SetLimits(ctx context.Context, ns string, l *NamespaceLimits) (*Identity, error) {
	cur, ok := k.ByNamespace(ns)
	if !ok {
		return nil, gust.ErrNotFound
	}
	id := *cur
	id.Limits = l
	return &id, k.put(ctx, &id)
}

func (k *Keys) put(ctx context.Context, id *Identity) error {
	val, err := json.Marshal(id)
	if err != nil {
		return err
	}
	if _, err := k.kv.Put(ctx, id.UUID, val); err != nil {
		return fmt.Errorf("store key of %s: %w", id.Namespace, err)
	}
	k.mu.Lock()
	if old, ok := k.byNS[id.Namespace]; ok {
		delete(k.byUUID, old.UUID)
	}
	k.byUUID[id.UUID] = id
	k.byNS[id.Namespace] = id
	k.mu.Unlock()
	return nil
}

func (k *Keys) ensure(ctx context.Context, ns, auth string, admin bool) (*Identity, error) {
	if err := gust.ValidateName("namespace", ns); err != nil {
		return nil, err
	}
	cur, exists := k.ByNamespace(ns)
	if auth == "" {
		if exists && cur.Admin == admin {
			return cur, nil
		}
		if exists {
			auth = cur.Auth()
		} else {
			auth = NewAuth()
		}
	}
	uuid, key, err := ParseAuth(auth)
	if err != nil {
		return nil, err
	}
	if cur, ok := k.ByNamespace(ns); ok && cur.UUID != uuid {
		// The namespace changes credentials: drop the old ones.
		if err := k.kv.Delete(ctx, cur.UUID); err != nil {
			return nil, fmt.Errorf("replace key of %s: %w", ns, err)
		}
	}
	k.mu.RLock()
	other, taken := k.byUUID[uuid]
	k.mu.RUnlock()
	if taken && other.Namespace != ns {
		return nil, fmt.Errorf("the UUID %s already belongs to namespace %s", uuid, other.Namespace)
	}
	id := &Identity{Subject: ns, Namespace: ns, UUID: uuid, Key: key, Admin: admin}
	if exists {
		id.Limits = cur.Limits
	}
	return id, k.put(ctx, id)
}

// Remove deletes the namespace's credential.
func (k *Keys) Remove(ctx context.Context, ns string) error {
	id, ok := k.ByNamespace(ns)
	if !ok {
		return gust.ErrNotFound
	}
	if err := k.kv.Delete(ctx, id.UUID); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("remove key of %s: %w", ns, err)
	}
	k.mu.Lock()
	delete(k.byUUID, id.UUID)
	delete(k.byNS, ns)
	k.mu.Unlock()
	return nil
}

// NewAuth generates a credential the way OpenWhisk does: a random UUIDv4
// and 64 random alphanumerics.
func NewAuth() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	uuid := fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	key := make([]byte, KeyLength)
	var r [KeyLength]byte
	_, _ = rand.Read(r[:])
	for i := range key {
		key[i] = alphabet[int(r[i])%len(alphabet)]
	}
	return uuid + ":" + string(key)
}
