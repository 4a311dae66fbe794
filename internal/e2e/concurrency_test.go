package e2e

import (
	"net/http"
	"sync"
	"testing"

	"github.com/gust-faas/gust/internal/sandbox/process"
)

// TestActionConcurrency: a nodejs:20 action with limits.concurrency 4
// serves 4 calls at once on one instance, which holds the memory of one
// instance in the invoker's budget.
func TestActionConcurrency(t *testing.T) {
	e := procStart(t, process.KindNode)
	code := `const worker = Math.random();
async function main(p) { await new Promise(r => setTimeout(r, 300)); return { worker }; }`
	want(t, e.do("PUT", "/api/v1/namespaces/_/actions/many", map[string]any{
		"exec": map[string]any{"kind": "nodejs:20", "code": code}, "limits": map[string]any{"concurrency": 4, "memory": 256}}), http.StatusOK)
	r := e.do("PUT", "/api/v1/namespaces/_/actions/toomany?overwrite=true", map[string]any{
		"exec": map[string]any{"kind": "nodejs:20", "code": code}, "limits": map[string]any{"concurrency": 101}})
	wantError(t, r, http.StatusBadRequest, "concurrency 101 is outside the allowed range of 1 to 100.")

	workers := map[any]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			r := e.do("POST", "/api/v1/namespaces/_/actions/many?blocking=true&result=true", map[string]any{})
			if r.status != http.StatusOK {
				t.Errorf("call: %s", r)
				return
			}
			mu.Lock()
			workers[r.object(t)["worker"]]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(workers) != 1 {
		t.Errorf("4 calls at a concurrency of 4 ran on %d instances: %v", len(workers), workers)
	}
	inv := string(e.node.Invokers[0].ID)
	if n, mb := e.node.Metrics.Value("gust_invoker_instances", inv), e.node.Metrics.Value("gust_invoker_memory_reserved_mb", inv); n != 1 || mb != 256 {
		t.Errorf("%v live instances holding %v MB, want 1 and 256", n, mb)
	}
}
