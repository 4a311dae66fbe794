package invoker

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
	"github.com/gust-faas/gust/internal/sandbox/process"
	"github.com/gust-faas/gust/internal/sandbox/sandboxtest"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
)

// The process backend's sandboxes re-exec the test binary as their init.
func init() { process.MaybeRunInit() }

// TestClaimedInstanceKept: an idle instance that an admitted call counts
// on is neither free memory nor closed to make room for another function.
func TestClaimedInstanceKept(t *testing.T) {
	inv := budgetInvoker(t, 256, steady{KeepAlive: time.Hour}, nil)
	code := wasmtest.Build(t, "goreactor")
	if _, err := admitRun(t, inv, sleeperJob(code, "a", 0), time.Second); err != nil {
		t.Fatal(err)
	}
	if f := inv.FreeMemory(); f != 256 {
		t.Fatalf("FreeMemory %d with a's instance idle, want 256", f)
	}
	a := sleeperJob(code, "a", 0)
	release, err := inv.Admit(context.Background(), a, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if f := inv.FreeMemory(); f != 0 {
		t.Errorf("FreeMemory %d with a's only instance claimed, want 0", f)
	}
	if _, err := admitRun(t, inv, sleeperJob(code, "b", 0), 50*time.Millisecond); gust.KindOf(err) != gust.KindUnavailable {
		t.Errorf("b while a's only instance is claimed: %v, want 503 (not the claimed instance closed)", err)
	}
	if act := inv.Run(context.Background(), a); startOf(act) != "warm" {
		t.Errorf("the admitted call of a started %s, want warm on the instance it claimed", startOf(act))
	}
}

// TestFreeMemoryConcurrentWorker: a Node.js worker serving several calls
// at once holds the action's memory once; its free call slots are not
// memory, and it frees its memory only when wholly idle.
func TestFreeMemoryConcurrentWorker(t *testing.T) {
	b, err := process.New(process.Config{StemCells: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	inv := New(Config{Backends: []sandbox.Backend{b}, KeepAlive: steady{KeepAlive: time.Hour}, MemoryMB: 1024, ID: "t"})
	t.Cleanup(func() { inv.Close(context.Background()) })
	if !inv.Supports(process.KindNode) {
		sandboxtest.Unavailable(t, "%s cannot run here", process.KindNode)
	}
	src := []byte("async function main(p) { await new Promise(r => setTimeout(r, p.ms || 0)); return {ok: true}; }")
	job := func(ms int) *Job {
		a := &gust.Action{Namespace: "guest", Name: "mux", Version: "0.0.1", Exec: gust.Exec{Kind: process.KindNode}, Limits: gust.DefaultActionLimits()}
		a.Limits.Concurrency = 10
		params, _ := json.Marshal(map[string]int{"ms": ms})
		return &Job{ActivationID: gust.NewActivationID(time.Now()), Namespace: "guest", Action: a, Digest: "d-mux",
			Code: func(context.Context) ([]byte, error) { return src, nil }, Params: params}
	}
	if act, err := admitRun(t, inv, job(0), 10*time.Second); err != nil || act.Response.StatusCode != gust.StatusSuccess {
		t.Fatalf("first call: %v %v", err, act)
	}
	if f := inv.FreeMemory(); f != 1024 {
		t.Errorf("FreeMemory %d with one idle worker of 256 MB (10 call slots), want 1024", f)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		admitRun(t, inv, job(1000), 10*time.Second)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for inv.FreeMemory() == 1024 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if f := inv.FreeMemory(); f != 768 {
		t.Errorf("FreeMemory %d while the worker serves one call, want 768: its 9 free slots free no memory", f)
	}
	<-done
}
