package invoker

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/keepalive"
	"github.com/gust-faas/gust/internal/metrics"
	"github.com/gust-faas/gust/internal/sandbox"
	"github.com/gust-faas/gust/internal/sandbox/wasm"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
)

// steady is a keep-alive policy with one fixed decision, to drive the
// invoker's scale-to-zero and pre-warm paths deterministically.
type steady keepalive.Decision

func (s steady) Observe(string, time.Time)             {}
func (s steady) Done(string, time.Time)                {}
func (s steady) Decide(string, int) keepalive.Decision { return keepalive.Decision(s) }
func (s steady) Name() string                          { return "steady" }

func newTestInvoker(t *testing.T, p keepalive.Policy, reg *metrics.Registry) *Invoker {
	t.Helper()
	// A compile cache shared across runs: compiling a Go guest under -race takes long.
	b, err := wasm.New(wasm.Config{CacheDir: wasmtest.CacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	inv := New(Config{Backends: []sandbox.Backend{b}, KeepAlive: p, SweepEvery: 10 * time.Millisecond, ID: "t", Metrics: reg})
	t.Cleanup(func() { inv.Close(context.Background()); b.Close(context.Background()) })
	return inv
}

func reactorJob(t *testing.T, code []byte) *Job {
	a := &gust.Action{Namespace: "guest", Name: "r", Version: "0.0.1", Exec: gust.Exec{Kind: "wasm"}, Limits: gust.DefaultActionLimits()}
	return &Job{ActivationID: gust.NewActivationID(time.Now()), Namespace: "guest", Action: a, Digest: "d",
		Code: func(context.Context) ([]byte, error) { return code, nil }, Params: json.RawMessage(`{}`), Received: time.Now()}
}

func startOf(act *gust.Activation) string {
	raw, _ := act.Annotations.Get("start")
	var s string
	json.Unmarshal(raw, &s)
	return s
}

func countOf(t *testing.T, act *gust.Activation) int {
	var v struct{ Count int }
	if err := json.Unmarshal(act.Response.Result, &v); err != nil {
		t.Fatalf("result %s: %v", act.Response.Result, err)
	}
	return v.Count
}

func TestScaleToZero(t *testing.T) {
	reg := metrics.New()
	inv := newTestInvoker(t, steady{KeepAlive: 150 * time.Millisecond}, reg)
	job := reactorJob(t, wasmtest.Build(t, "goreactor"))
	first := inv.Run(context.Background(), job)
	second := inv.Run(context.Background(), job)
	if startOf(first) != "cold" || startOf(second) != "warm" || countOf(t, second) != 2 {
		t.Fatalf("warm reuse: %s %s count %d", startOf(first), startOf(second), countOf(t, second))
	}
	deadline := time.Now().Add(5 * time.Second)
	for reg.Value("gust_invoker_keepalive_unloads_total", "t") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("idle function never unloaded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	third := inv.Run(context.Background(), job)
	if startOf(third) != "cold" || countOf(t, third) != 1 {
		t.Fatalf("after scale to zero: %s count %d, want a fresh instance", startOf(third), countOf(t, third))
	}
}

func TestPrewarm(t *testing.T) {
	reg := metrics.New()
	inv := newTestInvoker(t, steady{PreWarm: 100 * time.Millisecond, KeepAlive: 5 * time.Second}, reg)
	job := reactorJob(t, wasmtest.Build(t, "goreactor"))
	inv.Run(context.Background(), job)
	deadline := time.Now().Add(5 * time.Second)
	// Unloaded right after the call, prepared again at the pre-warm time.
	for reg.Value("gust_invoker_prewarms_total", "t") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("never pre-warmed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if reg.Value("gust_invoker_keepalive_unloads_total", "t") < 1 {
		t.Fatal("not unloaded before the pre-warm window")
	}
	next := inv.Run(context.Background(), job)
	if startOf(next) != "prewarmed" || countOf(t, next) != 1 {
		t.Fatalf("call after pre-warm: start %s count %d", startOf(next), countOf(t, next))
	}
	if v, ok := next.Annotations.Get("initTime"); ok {
		t.Errorf("call after pre-warm has initTime %s: its instance was initialised ahead of it", v)
	}
}

// TestNoSharedInstances: actions with the same code and limits never share
// an instance, so neither a reactor's globals: not across namespaces, and
// not between two actions of one namespace.
func TestNoSharedInstances(t *testing.T) {
	inv := newTestInvoker(t, steady{KeepAlive: time.Hour}, nil)
	code := wasmtest.Build(t, "goreactor")
	run := func(ns, name string) *gust.Activation {
		t.Helper()
		job := reactorJob(t, code)
		job.Namespace = ns
		job.Action.Namespace, job.Action.Name = ns, name
		return inv.Run(context.Background(), job)
	}
	if act := run("guest", "r"); startOf(act) != "cold" || countOf(t, act) != 1 {
		t.Fatalf("first call: %s count %d", startOf(act), countOf(t, act))
	}
	for _, c := range []struct{ ns, name string }{{"other", "r"}, {"guest", "r2"}, {"guest/pkg", "r"}} {
		if act := run(c.ns, c.name); startOf(act) != "cold" || countOf(t, act) != 1 {
			t.Errorf("/%s/%s, same code as /guest/r: %s count %d, want a fresh instance of its own", c.ns, c.name, startOf(act), countOf(t, act))
		}
	}
	if act := run("guest", "r"); startOf(act) != "warm" || countOf(t, act) != 2 {
		t.Errorf("/guest/r again: %s count %d, want its own warm instance", startOf(act), countOf(t, act))
	}
}
