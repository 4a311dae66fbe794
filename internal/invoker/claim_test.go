package invoker

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
	"github.com/gust-faas/gust/internal/sandbox/wasm"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
)

// gate wraps the real wasm backend so that a test can hold a call in
// Invoke before the backend takes its instance (the window where two
// Admits could claim one idle instance), and see when its Taken ran.
type gate struct {
	sandbox.Backend
	hold    atomic.Bool   // calls entering Invoke wait for open
	entered chan struct{} // a held call entered Invoke
	open    chan struct{} // closed: held calls go on
	taken   chan struct{} // one per Taken the backend called
}

type gatedFn struct {
	sandbox.Function
	sandbox.InstancePool
	g *gate
}

func (g *gate) Prepare(ctx context.Context, spec sandbox.Spec) (sandbox.Function, error) {
	f, err := g.Backend.Prepare(ctx, spec)
	if err != nil {
		return nil, err
	}
	return gatedFn{f, f.(sandbox.InstancePool), g}, nil
}

func (f gatedFn) Invoke(ctx context.Context, call sandbox.Call) (*sandbox.Result, error) {
	if f.g.hold.Load() {
		f.g.entered <- struct{}{}
		<-f.g.open
	}
	if taken := call.Taken; taken != nil {
		call.Taken = func() { taken(); f.g.taken <- struct{}{} }
	}
	return f.Function.Invoke(ctx, call)
}

func gatedInvoker(t *testing.T, memMB int) (*Invoker, *gate) {
	t.Helper()
	b, err := wasm.New(wasm.Config{CacheDir: wasmtest.CacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{Backend: b, entered: make(chan struct{}), open: make(chan struct{}), taken: make(chan struct{}, 16)}
	inv := New(Config{Backends: []sandbox.Backend{g}, KeepAlive: steady{KeepAlive: time.Hour}, MemoryMB: memMB, ID: "t"})
	t.Cleanup(func() { inv.Close(context.Background()); b.Close(context.Background()) })
	return inv, g
}

// TestClaimHeldUntilTaken: a call admitted on the one idle instance keeps
// its claim while it runs but has not taken the instance yet, so a second
// call cannot claim the same instance; the second, with no memory left,
// is shed, rather than admitted to wait for memory nobody reserved.
func TestClaimHeldUntilTaken(t *testing.T) {
	inv, g := gatedInvoker(t, 256) // one instance of 256 MB
	code := wasmtest.Build(t, "goreactor")
	if _, err := admitRun(t, inv, sleeperJob(code, "a", 0), time.Second); err != nil {
		t.Fatal(err)
	}
	first := sleeperJob(code, "a", 0)
	release, err := inv.Admit(context.Background(), first, time.Second)
	if err != nil {
		t.Fatalf("a call with a's instance idle: %v", err)
	}
	g.hold.Store(true)
	done := make(chan *gust.Activation)
	go func() {
		defer release()
		done <- inv.Run(context.Background(), first)
	}()
	<-g.entered // in Invoke, the instance still idle
	g.hold.Store(false)

	second := sleeperJob(code, "a", 0)
	if rel, err := inv.Admit(context.Background(), second, 50*time.Millisecond); err == nil {
		rel()
		t.Errorf("a second call was admitted on the instance the first is about to take")
	} else if gust.KindOf(err) != gust.KindUnavailable {
		t.Errorf("second call: %v, want 503", err)
	}
	close(g.open)
	if act := <-done; startOf(act) != "warm" || act.Response.StatusCode != gust.StatusSuccess {
		t.Errorf("the first call: %s %v, want a warm success", startOf(act), act.Response)
	}
	if n := len(g.taken); n != 1 {
		t.Errorf("Taken ran %d times for the claimed call, want once", n)
	}
	// Its instance idle again: the next call claims it.
	if act, err := admitRun(t, inv, second, 50*time.Millisecond); err != nil || startOf(act) != "warm" {
		t.Errorf("a call after the first ended: %v %s, want warm", err, startOf(act))
	}
}

// TestClaimEndsWhenTaken: a claimed call that holds its instance is busy,
// no longer counted on an idle one, so another idle instance of the
// function can be claimed while it runs (and no more than that one).
func TestClaimEndsWhenTaken(t *testing.T) {
	inv, g := gatedInvoker(t, 512) // two instances of 256 MB
	code := wasmtest.Build(t, "goreactor")
	var wg sync.WaitGroup
	for range 2 { // two at once: two instances, both idle after
		wg.Go(func() {
			if act, err := admitRun(t, inv, sleeperJob(code, "a", 100), time.Second); err != nil || startOf(act) != "cold" {
				t.Errorf("growing to two instances: %v %s", err, startOf(act))
			}
		})
	}
	wg.Wait()
	long := sleeperJob(code, "a", 500)
	release, err := inv.Admit(context.Background(), long, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan struct{})
	defer func() { <-ran }() // before the backend closes
	go func() {
		defer close(ran)
		defer release()
		inv.Run(context.Background(), long)
	}()
	// Wait until it holds its instance: one of the two left idle.
	inv.mu.Lock()
	e := inv.lru.Front().Value.(*entry)
	inv.mu.Unlock()
	for deadline := time.Now().Add(5 * time.Second); e.fn.(sandbox.InstancePool).Idle() != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the claimed call did not take an instance")
		}
	}
	if n := len(g.taken); n != 1 {
		t.Errorf("Taken ran %d times for the claimed call, want once", n)
	}
	next := sleeperJob(code, "a", 0)
	rel, err := inv.Admit(context.Background(), next, 50*time.Millisecond)
	if err != nil {
		t.Fatalf("a call with one of two instances busy and the other idle: %v, want it admitted", err)
	}
	defer rel()
	if rel2, err := inv.Admit(context.Background(), sleeperJob(code, "a", 0), 50*time.Millisecond); err == nil {
		rel2()
		t.Errorf("a third call was admitted with the one idle instance claimed and no memory free")
	}
	if act := inv.Run(context.Background(), next); startOf(act) != "warm" {
		t.Errorf("the call admitted on the idle instance started %s, want warm", startOf(act))
	}
}
