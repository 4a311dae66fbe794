package wasm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
	"github.com/gust-faas/gust/internal/sandbox/sandboxtest"
	"github.com/gust-faas/gust/internal/sandbox/wasm"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
)

// BenchmarkInvoke measures whole calls through the backend. Each "wazero"
// sub-benchmark is the same-run baseline: the same guest driven by bare
// wazero, so the difference is the backend's own cost per call.
func BenchmarkInvoke(b *testing.B) {
	env := sandboxtest.Env("0123456789abcdef0123456789abcdef")
	for _, bc := range []struct {
		name, fixture, params string
	}{
		{"CCommandNoop", "noop", `{}`},
		{"CCommandHello", "hello", `{"name":"bench"}`},
		{"CReactor", "creactor", `{}`},
		{"GoReactorNoop", "gonoop", `{}`},
		{"GoReactorHello", "goreactor", `{"name":"bench"}`},
		{"GoCommandHello", "gohello", `{"name":"bench"}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := prepare(b, newBackend(b, wasm.Config{}), wasmtest.Build(b, bc.fixture), sandboxtest.Limits())
			call := sandbox.Call{Params: json.RawMessage(bc.params), Env: env}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				res, err := f.Invoke(ctx, call)
				if err != nil || res.Status != gust.StatusSuccess {
					b.Fatalf("%v %v", err, res)
				}
			}
		})
	}

	b.Run("CCommandNoop/wazero", func(b *testing.B) {
		rt, compiled := bareRuntime(b, wasmtest.Build(b, "noop"))
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			var out bytes.Buffer
			cfg := wazero.NewModuleConfig().WithName("").WithStdin(bytes.NewReader([]byte(`{}`))).WithStdout(&out).WithStderr(io.Discard)
			mod, err := rt.InstantiateModule(ctx, compiled, cfg) // runs _start
			if err != nil {
				b.Fatal(err)
			}
			mod.Close(ctx)
		}
	})
	b.Run("GoReactorNoop/wazero", func(b *testing.B) {
		rt, compiled := bareRuntime(b, wasmtest.Build(b, "gonoop"))
		ctx := context.Background()
		mod, err := rt.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize"))
		if err != nil {
			b.Fatal(err)
		}
		alloc, handle := mod.ExportedFunction("gust_alloc"), mod.ExportedFunction("gust_handle")
		stack := []uint64{64}
		if err := alloc.CallWithStack(ctx, stack); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			stack[0] = 2
			if err := handle.CallWithStack(ctx, stack); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func bareRuntime(b *testing.B, code []byte) (wazero.Runtime, wazero.CompiledModule) {
	ctx := context.Background()
	cache, err := wazero.NewCompilationCacheWithDir(wasmtest.CacheDir(b))
	if err != nil {
		b.Fatal(err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache).WithCloseOnContextDone(true))
	b.Cleanup(func() { rt.Close(ctx); cache.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	compiled, err := rt.CompileModule(ctx, code)
	if err != nil {
		b.Fatal(err)
	}
	return rt, compiled
}
