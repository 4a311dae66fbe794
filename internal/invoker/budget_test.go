package invoker

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/keepalive"
	"github.com/gust-faas/gust/internal/metrics"
	"github.com/gust-faas/gust/internal/sandbox"
	"github.com/gust-faas/gust/internal/sandbox/wasm"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
)

// budgetInvoker is an invoker of memMB over real wasm.
func budgetInvoker(t *testing.T, memMB int, p keepalive.Policy, reg *metrics.Registry) *Invoker {
	t.Helper()
	b, err := wasm.New(wasm.Config{CacheDir: wasmtest.CacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	inv := New(Config{Backends: []sandbox.Backend{b}, KeepAlive: p, MemoryMB: memMB, SweepEvery: 10 * time.Millisecond, ID: "t", Metrics: reg})
	t.Cleanup(func() { inv.Close(context.Background()); b.Close(context.Background()) })
	return inv
}

// sleeperJob is a call of the goreactor fixture as action name (256 MB),
// sleeping ms.
func sleeperJob(code []byte, name string, ms int) *Job {
	a := &gust.Action{Namespace: "guest", Name: name, Version: "0.0.1", Exec: gust.Exec{Kind: "wasm"}, Limits: gust.DefaultActionLimits()}
	params, _ := json.Marshal(map[string]int{"sleep_ms": ms})
	return &Job{ActivationID: gust.NewActivationID(time.Now()), Namespace: "guest", Action: a, Digest: "d-" + name,
		Code: func(context.Context) ([]byte, error) { return code, nil }, Params: params, Received: time.Now()}
}

// admitRun admits and runs job as the activation service does.
func admitRun(t *testing.T, inv *Invoker, job *Job, wait time.Duration) (*gust.Activation, error) {
	t.Helper()
	release, err := inv.Admit(context.Background(), job, wait)
	if err != nil {
		return nil, err
	}
	defer release()
	return inv.Run(context.Background(), job), nil
}

// TestIdleInstancesHoldMemory: an idle warm instance keeps its memory
// reserved; a call of another function that needs room closes it, and
// a call that an idle instance of its own function serves needs none.
func TestIdleInstancesHoldMemory(t *testing.T) {
	reg := metrics.New()
	inv := budgetInvoker(t, 512, steady{KeepAlive: time.Hour}, reg)
	code := wasmtest.Build(t, "goreactor")
	mem := func() float64 { return reg.Value("gust_invoker_memory_reserved_mb", "t") }

	// Two concurrent calls of a: two instances, 512 MB, all of it.
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if act, err := admitRun(t, inv, sleeperJob(code, "a", 100), time.Second); err != nil || act.Response.StatusCode != gust.StatusSuccess {
				t.Errorf("a: %v %v", err, act)
			}
		}()
	}
	wg.Wait()
	if m := mem(); m != 512 {
		t.Fatalf("after two concurrent calls, %v MB held, want 512 (two idle instances)", m)
	}
	if f := inv.FreeMemory(); f != 512 {
		t.Errorf("FreeMemory %d, want 512: idle instances can be closed for room", f)
	}
	// A warm call of a needs no room.
	act, err := admitRun(t, inv, sleeperJob(code, "a", 0), 10*time.Millisecond)
	if err != nil || startOf(act) != "warm" {
		t.Fatalf("warm call of a with the budget full of a's idle instances: %v %s", err, startOf(act))
	}
	// b needs an instance: one of a's idle ones is closed for it.
	act, err = admitRun(t, inv, sleeperJob(code, "b", 0), 100*time.Millisecond)
	if err != nil || act.Response.StatusCode != gust.StatusSuccess || startOf(act) != "cold" {
		t.Fatalf("b with the budget full of idle instances: %v %v", err, act)
	}
	if n := reg.Value("gust_invoker_instance_trims_total", "t", "room"); n != 1 {
		t.Errorf("%v instances closed for room, want 1", n)
	}
	if m := mem(); m != 512 {
		t.Errorf("after b, %v MB held, want 512 (one instance of a, one of b)", m)
	}
	if n := reg.Value("gust_invoker_instances", "t"); n != 2 {
		t.Errorf("%v live instances, want 2", n)
	}
}

// TestBusyInstancesShed: with every instance busy, a call that needs a new
// one waits, then is shed with 503; capacity is never exceeded.
func TestBusyInstancesShed(t *testing.T) {
	reg := metrics.New()
	inv := budgetInvoker(t, 512, steady{KeepAlive: time.Hour}, reg)
	code := wasmtest.Build(t, "goreactor")
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			admitRun(t, inv, sleeperJob(code, name, 400), time.Second)
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for reg.Value("gust_invoker_activations_running", "t") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the two calls never ran")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, err := admitRun(t, inv, sleeperJob(code, "c", 0), 50*time.Millisecond)
	if gust.KindOf(err) != gust.KindUnavailable {
		t.Fatalf("third function while two instances are busy: %v, want 503", err)
	}
	if m := reg.Value("gust_invoker_memory_reserved_mb", "t"); m > 512 {
		t.Errorf("%v MB reserved of 512", m)
	}
	wg.Wait()
	// Once they are idle, c gets room by closing one.
	if _, err := admitRun(t, inv, sleeperJob(code, "c", 0), time.Second); err != nil {
		t.Fatalf("c after the others went idle: %v", err)
	}
}

// TestInstancesScaleDown: after a burst, the extra instances of a function
// that is still called now and then are closed once idle for its
// keep-alive; the function itself stays.
func TestInstancesScaleDown(t *testing.T) {
	reg := metrics.New()
	inv := budgetInvoker(t, 2048, steady{KeepAlive: 300 * time.Millisecond}, reg)
	code := wasmtest.Build(t, "goreactor")
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			admitRun(t, inv, sleeperJob(code, "a", 100), time.Second)
		}()
	}
	wg.Wait()
	if n := reg.Value("gust_invoker_instances", "t"); n != 3 {
		t.Fatalf("%v instances after a burst of 3, want 3", n)
	}
	// A trickle of calls keeps one instance (and the function) alive.
	deadline := time.Now().Add(5 * time.Second)
	for reg.Value("gust_invoker_instances", "t") > 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%v instances still live: the burst's extra instances were never closed", reg.Value("gust_invoker_instances", "t"))
		}
		if _, err := admitRun(t, inv, sleeperJob(code, "a", 0), time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := reg.Value("gust_invoker_instance_trims_total", "t", "keep-alive"); n != 2 {
		t.Errorf("%v instances trimmed by keep-alive, want 2", n)
	}
	if n := reg.Value("gust_invoker_keepalive_unloads_total", "t"); n != 0 {
		t.Errorf("the function was unloaded %v times while called", n)
	}
	if m := reg.Value("gust_invoker_memory_reserved_mb", "t"); m != 256 {
		t.Errorf("%v MB held by one idle instance, want 256", m)
	}
}

// ranked keeps rank 1 for an hour and higher ranks for 150 ms.
type ranked struct{}

func (ranked) Observe(string, time.Time) {}
func (ranked) Done(string, time.Time)    {}
func (ranked) Name() string              { return "ranked" }
func (ranked) Decide(_ string, rank int) keepalive.Decision {
	if rank == 1 {
		return keepalive.Decision{KeepAlive: time.Hour}
	}
	return keepalive.Decision{KeepAlive: 150 * time.Millisecond}
}

// TestTrimByRank: idle instances are kept by their rank's decision: the
// one the next call takes (rank 1) by its own, the burst's extra one by
// the higher rank's, shorter one.
func TestTrimByRank(t *testing.T) {
	reg := metrics.New()
	inv := budgetInvoker(t, 2048, ranked{}, reg)
	code := wasmtest.Build(t, "goreactor")
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			admitRun(t, inv, sleeperJob(code, "a", 100), time.Second)
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for reg.Value("gust_invoker_instances", "t") > 1 {
		if time.Now().After(deadline) {
			t.Fatal("the extra instance was never closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if n := reg.Value("gust_invoker_instances", "t"); n != 1 {
		t.Fatalf("%v instances, want rank 1's kept for its hour", n)
	}
	if act, err := admitRun(t, inv, sleeperJob(code, "a", 0), time.Second); err != nil || startOf(act) != "warm" {
		t.Fatalf("next call: %v %s, want the warm rank-1 instance", err, startOf(act))
	}
}
