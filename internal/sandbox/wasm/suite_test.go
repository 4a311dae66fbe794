package wasm_test

import (
	"testing"

	"github.com/gust-faas/gust/internal/sandbox/sandboxtest"
	"github.com/gust-faas/gust/internal/sandbox/wasm"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
)

// newBackend returns a Backend closed at the end of the test. It shares a
// compilation cache across test runs: Go guests take seconds to compile.
func newBackend(t testing.TB, cfg wasm.Config) *wasm.Backend {
	t.Helper()
	if cfg.CacheDir == "" {
		cfg.CacheDir = wasmtest.CacheDir(t)
	}
	b, err := wasm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(t.Context()); err != nil {
			t.Errorf("Backend.Close: %v", err)
		}
	})
	return b
}

func TestConformance(t *testing.T) {
	t.Run("CCommand", func(t *testing.T) {
		sandboxtest.Run(t, newBackend(t, wasm.Config{}), sandboxtest.Fixtures{
			Kind:       wasm.Kind,
			Hello:      wasmtest.Build(t, "hello"),
			Logs:       wasmtest.Build(t, "logs"),
			AppError:   wasmtest.Build(t, "error"),
			Loop:       wasmtest.Build(t, "loop"),
			MemoryBomb: wasmtest.Build(t, "membomb"),
			BigResult:  wasmtest.Build(t, "bigresult"),
			Env:        wasmtest.Build(t, "env"),
			Invalid:    []byte("\x00asm but not really"),
		})
	})
	t.Run("GoCommand", func(t *testing.T) {
		hello := wasmtest.Build(t, "gohello")
		sandboxtest.Run(t, newBackend(t, wasm.Config{}), sandboxtest.Fixtures{
			Kind:       wasm.Kind,
			Hello:      hello,
			Env:        hello,
			MemoryBomb: wasmtest.Build(t, "gomembomb"),
			Invalid:    []byte("package main"), // Go source is not a module
		})
	})
	t.Run("GoReactor", func(t *testing.T) {
		reactor := wasmtest.Build(t, "goreactor")
		sandboxtest.Run(t, newBackend(t, wasm.Config{}), sandboxtest.Fixtures{
			Kind:  wasm.Kind,
			Hello: reactor,
			Env:   reactor,
		})
	})
}
