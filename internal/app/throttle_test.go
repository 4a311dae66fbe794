package app_test

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gusttest"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
)

// TestQueuedWorkHonoursConcurrency: with several invokers in one process,
// queued invocations take their namespace's concurrency slot where they
// run and give it back there. A burst above the limit all completes,
// never more than the limit at a time, every attempt is the first (waiting
// for a slot is not a failed delivery), and no slot leaks: a blocking call
// afterwards is admitted.
func TestQueuedWorkHonoursConcurrency(t *testing.T) {
	lim := gusttest.TestLimits()
	lim.ConcurrentInvocations = 2
	n := gusttest.Start(t, threeInvokers, gusttest.WithLimits(lim))
	put(t, n, "nap", wasmtest.Build(t, "goreactor"))

	const calls = 8
	ids := make([]string, calls)
	for i := range ids {
		resp := n.Do(t, "POST", "/api/v1/namespaces/_/actions/nap", strings.NewReader(`{"sleep_ms":150}`))
		var acc struct{ ActivationID string }
		json.NewDecoder(resp.Body).Decode(&acc)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted || acc.ActivationID == "" {
			t.Fatalf("queued call %d: status %d", i, resp.StatusCode)
		}
		ids[i] = acc.ActivationID
	}
	type span struct{ start, end int64 }
	var spans []span
	for _, id := range ids {
		var rec struct {
			Start, End  int64
			Response    struct{ Status string }
			Annotations []struct {
				Key   string
				Value json.RawMessage
			}
		}
		waitFor(t, 30*time.Second, func() bool {
			resp := n.Do(t, "GET", "/api/v1/namespaces/_/activations/"+id, nil)
			defer resp.Body.Close()
			return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&rec) == nil
		}, "queued activation "+id+" to be recorded")
		if rec.Response.Status != "success" {
			t.Errorf("%s: status %q", id, rec.Response.Status)
		}
		for _, a := range rec.Annotations {
			if a.Key == "attempts" {
				t.Errorf("%s was attempted %s times: waiting for a slot counted as a delivery", id, a.Value)
			}
		}
		spans = append(spans, span{rec.Start, rec.End})
	}
	// The most activations running at once, from the records' own times.
	type edge struct {
		at    int64
		delta int
	}
	var edges []edge
	for _, s := range spans {
		edges = append(edges, edge{s.start, +1}, edge{s.end, -1})
	}
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at != edges[j].at {
			return edges[i].at < edges[j].at
		}
		return edges[i].delta < edges[j].delta // an end before a start at the same ms
	})
	most, cur := 0, 0
	for _, e := range edges {
		cur += e.delta
		most = max(most, cur)
	}
	if most > lim.ConcurrentInvocations {
		t.Errorf("%d activations ran at once, limit %d", most, lim.ConcurrentInvocations)
	}
	if most < 2 {
		t.Errorf("at most %d ran at once: the limit of 2 was never used", most)
	}
	// Every slot came back.
	for i := range lim.ConcurrentInvocations + 1 {
		resp := n.Do(t, "POST", "/api/v1/namespaces/_/actions/nap?blocking=true", strings.NewReader(`{"sleep_ms":1}`))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("blocking call %d after the burst: %d (a slot leaked?)", i, resp.StatusCode)
		}
	}
}
