//go:build linux

package process

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
	"github.com/gust-faas/gust/internal/sandbox/sandboxtest"
)

// takenCall invokes f with a Taken hook and returns the result, how many
// times the hook ran, and f's Idle when it first ran.
func takenCall(t *testing.T, f sandbox.Function, params string) (res *sandbox.Result, taken, idle int) {
	t.Helper()
	var mu sync.Mutex
	idle = -1
	res, err := f.Invoke(t.Context(), sandbox.Call{Params: json.RawMessage(params), Env: sandboxtest.Env(gust.NewActivationID(time.Now())), Taken: func() {
		n := f.(sandbox.InstancePool).Idle()
		mu.Lock()
		defer mu.Unlock()
		if taken++; taken == 1 {
			idle = n
		}
	}})
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	wantStatus(t, res, gust.StatusSuccess)
	mu.Lock()
	defer mu.Unlock()
	return res, taken, idle
}

// checkTaken makes a call and checks that Taken ran once, with Idle at
// idle by then: the instance the call got is no longer counted idle.
func checkTaken(t *testing.T, f sandbox.Function, params string, start sandbox.Start, idle int) {
	t.Helper()
	res, n, got := takenCall(t, f, params)
	if res.Start != start || n != 1 || got != idle {
		t.Errorf("%s call (want %s): Taken ran %d times with %d idle, want once with %d", res.Start, start, n, got, idle)
	}
}

// TestTaken: Taken runs once per call on every path that gives the call a
// worker, and only once that worker is out of what Idle counts (the pool,
// the zygote's spare, a concurrent worker's free slots).
func TestTaken(t *testing.T) {
	t.Run("Python", func(t *testing.T) {
		b := newBackend(t, Config{})
		f := prepare(t, b, KindPython, pyZygoteProbe, limits(0)).(*function)
		checkTaken(t, f, `{}`, sandbox.StartCold, 0)
		checkTaken(t, f, `{}`, sandbox.StartWarm, 0) // its one idle worker
		for _, w := range f.pool.evict(time.Now().Add(time.Hour)) {
			w.destroy()
		}
		if err := f.Prewarm(t.Context()); err != nil {
			t.Fatal(err)
		}
		checkTaken(t, f, `{}`, sandbox.StartPrewarmed, 0)
	})
	t.Run("PythonForked", func(t *testing.T) {
		b := newBackend(t, Config{})
		f := prepare(t, b, KindPython, pyZygoteProbe, limits(0)).(*function)
		withZygote(t, f, `{"sleep":0.2}`)
		spare(t, f, false)
		if n := f.Idle(); n != 1 {
			t.Fatalf("Idle %d with only the zygote's spare, want 1", n)
		}
		checkTaken(t, f, `{}`, sandbox.StartPrewarmed, 0) // the spare, taken before Taken
		for _, w := range f.pool.evict(time.Now().Add(time.Hour)) {
			w.destroy()
		}
		spare(t, f, true) // no spare: a new fork
		checkTaken(t, f, `{}`, sandbox.StartPrewarmed, 0)
	})
	t.Run("PythonStemCell", func(t *testing.T) {
		b := newBackend(t, Config{StemCells: 1})
		waitCells(t, b, KindPython, 1)
		f := prepare(t, b, KindPython, pyZygoteProbe, limits(0))
		checkTaken(t, f, `{}`, sandbox.StartPrewarmed, 0)
	})
	t.Run("NodeConcurrent", func(t *testing.T) {
		b := newBackend(t, Config{})
		if b.reasons[KindNode] != "" {
			sandboxtest.Unavailable(t, "%s", b.reasons[KindNode])
		}
		l := limits(0)
		l.Concurrency = 4
		f := prepare(t, b, KindNode, nodeConcurrent, l)
		checkTaken(t, f, `{"n":1,"ms":1}`, sandbox.StartCold, 0)
		checkTaken(t, f, `{"n":2,"ms":1}`, sandbox.StartWarm, 3) // a slot taken, 3 free
		// Calls that wait for another's worker to start take a slot of it.
		f.(*function).trimMuxes(func(int, time.Time) bool { return true }, 0)
		var wg sync.WaitGroup
		for i := range 3 {
			wg.Go(func() {
				_, n, _ := takenCall(t, f, `{"n":`+string(rune('3'+i))+`,"ms":300}`)
				if n != 1 {
					t.Errorf("Taken ran %d times, want once", n)
				}
			})
		}
		wg.Wait()
	})
}
