package invoker_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/invoker"
	"github.com/gust-faas/gust/internal/sandbox"
	"github.com/gust-faas/gust/internal/sandbox/wasm"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
	"github.com/gust-faas/gust/internal/store"
)

// BenchmarkRun measures the invoker's share of an activation (function
// lookup, keep-alive bookkeeping, the __OW_* environment, the record and
// its annotations) around a no-op wasm call, beside a baseline of the same
// call made on the prepared function directly.
func BenchmarkRun(b *testing.B) {
	ctx := context.Background()
	for _, fixture := range []string{"noop", "gonoop"} {
		code := wasmtest.Build(b, fixture)
		backend, err := wasm.New(wasm.Config{CacheDir: wasmtest.CacheDir(b), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = backend.Close(context.Background()) })
		inv := invoker.New(invoker.Config{Backends: []sandbox.Backend{backend}})
		b.Cleanup(func() { inv.Close(context.Background()) })
		a := &gust.Action{Namespace: "guest", Name: fixture, Version: "0.0.1", Limits: gust.DefaultActionLimits(),
			Exec: gust.Exec{Kind: wasm.Kind, Binary: true}}
		digest := store.Digest(code)
		if err := inv.Prepare(ctx, a, digest, code); err != nil {
			b.Fatal(err)
		}
		params := json.RawMessage(`{"name":"bench"}`)
		b.Run(fixture+"/run", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				job := &invoker.Job{ActivationID: gust.NewActivationID(time.Now()), Namespace: "guest", Subject: "guest",
					Action: a, Digest: digest, Params: params, Received: time.Now(),
					Code: func(context.Context) ([]byte, error) { return code, nil }}
				if act := inv.Run(ctx, job); act.Response.StatusCode != gust.StatusSuccess {
					b.Fatalf("status %v: %s", act.Response.StatusCode, act.Response.Result)
				}
			}
		})
		// Admit and release of a call that a warm instance serves, as the
		// activation service does before each Run.
		b.Run(fixture+"/admit-warm", func(b *testing.B) {
			b.ReportAllocs()
			job := &invoker.Job{ActivationID: gust.NewActivationID(time.Now()), Namespace: "guest", Subject: "guest",
				Action: a, Digest: digest, Params: params, Code: func(context.Context) ([]byte, error) { return code, nil }}
			inv.Run(ctx, job) // a warm instance
			for b.Loop() {
				release, err := inv.Admit(ctx, job, time.Second)
				if err != nil {
					b.Fatal(err)
				}
				release()
			}
		})
		fn, err := backend.Prepare(ctx, sandbox.Spec{Kind: wasm.Kind, Code: code, Digest: digest,
			Limits: sandbox.Limits{MemoryMB: a.Limits.Memory, Timeout: time.Minute, LogBytes: 10 << 20, ResultBytes: 1 << 20}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = fn.Close(context.Background()) })
		b.Run(fixture+"/baseline", func(b *testing.B) {
			b.ReportAllocs()
			env := map[string]string{"__OW_ACTIVATION_ID": gust.NewActivationID(time.Now())}
			for b.Loop() {
				if res, err := fn.Invoke(ctx, sandbox.Call{Params: params, Env: env}); err != nil || res.Status != gust.StatusSuccess {
					b.Fatalf("invoke: %v %v", res, err)
				}
			}
		})
	}
}
