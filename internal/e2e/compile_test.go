package e2e

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"github.com/gust-faas/gust/internal/app"
)

// compileCounter counts the wasm backend's "compiled module" debug events.
type compileCounter struct {
	mu sync.Mutex
	n  int
}

func (c *compileCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *compileCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "wasm: compiled module" {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
	}
	return nil
}
func (c *compileCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *compileCounter) WithGroup(string) slog.Handler      { return c }
func (c *compileCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestCompiledAtCreate: an action's module is compiled when the action is
// created or its code changes, with the limits it runs with, so the first
// invoke does not compile it again. (The count comes from the wasm
// backend's debug event "wasm: compiled module".)
func TestCompiledAtCreate(t *testing.T) {
	cc := &compileCounter{}
	e := start(t, func(c *app.Config) { c.Logger = slog.New(cc) })
	for _, c := range []struct {
		name   string
		extra  map[string]any
		update map[string]any
	}{
		{"defaults", nil, map[string]any{"exec": wasmExec(t, "hello"), "limits": map[string]any{"timeout": 3000}}},
		{"limits", map[string]any{"limits": map[string]any{"memory": 128, "timeout": 1000, "logs": 1}}, map[string]any{"exec": wasmExec(t, "hello"), "limits": map[string]any{"memory": 512}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := map[string]any{"exec": wasmExec(t, "noop")}
			for k, v := range c.extra {
				body[k] = v
			}
			before := cc.count()
			want(t, e.do("PUT", actionsPath+c.name, body), http.StatusOK)
			n := cc.count()
			if n == before {
				t.Fatal("no compile event at create: did the wasm backend's debug message change?")
			}
			want(t, e.invoke(c.name, nil), http.StatusOK)
			if got := cc.count(); got != n {
				t.Errorf("the first invoke compiled the module again (%d compiles, %d at create)", got, n)
			}
			want(t, e.do("PUT", actionsPath+c.name+"?overwrite=true", c.update), http.StatusOK)
			n = cc.count()
			want(t, e.invoke(c.name, nil), http.StatusOK)
			if got := cc.count(); got != n {
				t.Errorf("the first invoke after an update compiled the module again (%d compiles, %d at update)", got, n)
			}
		})
	}
}
