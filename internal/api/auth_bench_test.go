package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/broker"
	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/store"
)

// BenchmarkAuthLookup measures the first steps of every API call: HTTP
// Basic authentication from the key cache and the action's lookup in the
// entity cache (decoded once per record), beside a baseline of the least
// those steps can cost: decoding the header and two map lookups.
func BenchmarkAuthLookup(b *testing.B) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	br, err := broker.Start(ctx, broker.Config{DataDir: b.TempDir(), Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(br.Close)
	keys, err := store.OpenKeys(ctx, br.JS, 1, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(keys.Close)
	ents, err := store.OpenEntities(ctx, br.JS, 1, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ents.Close)
	id, err := keys.Ensure(ctx, "guest", "")
	if err != nil {
		b.Fatal(err)
	}
	p := gust.Path{Namespace: "guest", Name: "hello"}
	doc, _ := json.Marshal(gust.Action{Namespace: "guest", Name: "hello", Version: "0.0.1",
		Exec: gust.Exec{Kind: "wasm", Binary: true}, Limits: gust.DefaultActionLimits(),
		Parameters: gust.KeyValues{}.Set("greeting", "hi"), Annotations: gust.KeyValues{}.Set("exec", "wasm")})
	if _, err := ents.Put(ctx, p, &store.Record{Type: store.TypeAction, Doc: doc}, 0); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := ents.GetType(p, store.TypeAction); err == nil {
			break
		} else if time.Now().After(deadline) {
			b.Fatal(err)
		}
	}
	s := New(Config{Entities: ents, Keys: keys, Limits: gust.DefaultLimits(), Logger: log})
	r := httptest.NewRequest("POST", "/api/v1/namespaces/_/actions/hello?blocking=true", strings.NewReader(`{}`))
	r.SetBasicAuth(id.UUID, id.Key)

	b.Run("auth", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.authenticate(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("lookup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rec, err := s.cfg.Entities.GetType(p, store.TypeAction)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := rec.Action(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("auth+lookup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.authenticate(r); err != nil {
				b.Fatal(err)
			}
			rec, err := s.cfg.Entities.GetType(p, store.TypeAction)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := rec.Action(); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Baseline: the same header decoded and two lookups in plain maps.
	creds := map[string]string{id.UUID: id.Key}
	actions := map[string]*gust.Action{"guest/hello": {Name: "hello"}}
	b.Run("baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, payload, _ := strings.Cut(r.Header.Get("Authorization"), " ")
			raw, err := base64.StdEncoding.DecodeString(payload)
			if err != nil {
				b.Fatal(err)
			}
			uuid, key, _ := strings.Cut(string(raw), ":")
			if creds[uuid] != key || actions[p.Namespace+"/"+p.Name] == nil {
				b.Fatal("not found")
			}
		}
	})
}
