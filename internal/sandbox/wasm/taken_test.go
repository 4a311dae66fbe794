package wasm_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
	"github.com/gust-faas/gust/internal/sandbox/wasm"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
)

// takenCall invokes f with a Taken hook and returns the result, how many
// times the hook ran, and f's idle instances when it first ran.
func takenCall(t *testing.T, f sandbox.Function) (res *sandbox.Result, taken, idle int) {
	t.Helper()
	idle = -1
	res, err := f.Invoke(t.Context(), sandbox.Call{Params: json.RawMessage(`{}`), Taken: func() {
		if taken++; taken == 1 {
			idle = f.(sandbox.InstancePool).Idle()
		}
	}})
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if res.Status != gust.StatusSuccess {
		t.Fatalf("status %v: %s", res.Status, res.Result)
	}
	return res, taken, idle
}

// TestTaken: Taken runs once per call on every path that gets an
// instance, and only once the instance is out of the pool: an idle
// instance a caller counts on is never still counted idle after it.
func TestTaken(t *testing.T) {
	b := newBackend(t, wasm.Config{})
	check := func(t *testing.T, f sandbox.Function, start sandbox.Start) {
		t.Helper()
		res, taken, idle := takenCall(t, f)
		if res.Start != start || taken != 1 || idle != 0 {
			t.Errorf("%s call (want %s): Taken ran %d times with %d idle, want once with 0", res.Start, start, taken, idle)
		}
	}
	t.Run("Reactor", func(t *testing.T) {
		f := prepare(t, b, wasmtest.Build(t, "creactor"), limits(nil))
		check(t, f, sandbox.StartCold)
		if n := f.(sandbox.InstancePool).Idle(); n != 1 {
			t.Fatalf("%d idle after a call, want 1", n)
		}
		check(t, f, sandbox.StartWarm) // the one idle instance taken
		if err := f.(sandbox.Prewarmer).Prewarm(t.Context()); err != nil {
			t.Fatal(err)
		}
		f.(sandbox.InstancePool).Trim(func(pos int, _ time.Time) bool { return pos > 1 }, 0) // only the prewarmed one left
		check(t, f, sandbox.StartPrewarmed)
	})
	t.Run("Command", func(t *testing.T) {
		f := prepare(t, b, wasmtest.Build(t, "hello"), limits(nil))
		check(t, f, sandbox.StartCold)
		check(t, f, sandbox.StartCold)
	})
}
