package app_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/app"
	"github.com/gust-faas/gust/internal/gusttest"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
)

func threeInvokers(c *app.Config) {
	c.Invokers = 3
	c.HeartbeatTTL = time.Second
	c.QueueAckWait = 2 * time.Second
}

func put(t *testing.T, n *gusttest.Node, name string, code []byte) {
	t.Helper()
	body := fmt.Sprintf(`{"exec":{"kind":"wasm","code":%q}}`, base64.StdEncoding.EncodeToString(code))
	resp := n.Do(t, "PUT", "/api/v1/namespaces/_/actions/"+name, strings.NewReader(body))
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("create %s: %d %s", name, resp.StatusCode, b)
	}
}

type record struct {
	ActivationID string
	Response     struct{ Status string }
	Annotations  []struct {
		Key   string
		Value json.RawMessage
	}
}

func (r record) invoker() string {
	for _, a := range r.Annotations {
		if a.Key == "invoker" {
			var s string
			json.Unmarshal(a.Value, &s)
			return s
		}
	}
	return ""
}

func waitFor(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Blocking activations of different actions land on different invokers
// (each action on its home), and the same action keeps its home.
func TestPlacementSpreads(t *testing.T) {
	n := gusttest.Start(t, threeInvokers)
	waitFor(t, 10*time.Second, func() bool { return len(n.Registry().Live()) == 3 }, "three invokers announced")
	code := wasmtest.Build(t, "noop")
	used := map[string]bool{}
	for i := range 12 {
		name := fmt.Sprintf("a%d", i)
		put(t, n, name, code)
		var homes []string
		for range 2 {
			resp := n.Do(t, "POST", "/api/v1/namespaces/_/actions/"+name+"?blocking=true", nil)
			var r record
			json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || r.invoker() == "" {
				t.Fatalf("invoke %s: %d %+v", name, resp.StatusCode, r)
			}
			homes = append(homes, r.invoker())
		}
		if homes[0] != homes[1] {
			t.Errorf("%s ran on %v: not on one home", name, homes)
		}
		used[homes[0]] = true
	}
	if len(used) < 2 {
		t.Errorf("12 actions all ran on %v", used)
	}
}

// An invoker that dies mid-activation loses nothing: the queued invocation
// is delivered to another invoker, and exactly one record exists.
func TestFailoverOfQueuedWork(t *testing.T) {
	n := gusttest.Start(t, threeInvokers)
	put(t, n, "slow", wasmtest.Build(t, "goreactor"))
	resp := n.Do(t, "POST", "/api/v1/namespaces/_/actions/slow", strings.NewReader(`{"sleep_ms":1500}`))
	var acc struct{ ActivationID string }
	json.NewDecoder(resp.Body).Decode(&acc)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("invoke: %d", resp.StatusCode)
	}
	// Find the invoker running it and kill it.
	var victim *app.InvokerRole
	waitFor(t, 10*time.Second, func() bool {
		for _, r := range n.Invokers {
			if r.Invoker.FreeMemory() < app.DefaultInvokerMemoryMB() {
				victim = r
				return true
			}
		}
		return false
	}, "the activation to start")
	victim.Service.Kill()

	var rec record
	waitFor(t, 30*time.Second, func() bool {
		resp := n.Do(t, "GET", "/api/v1/namespaces/_/activations/"+acc.ActivationID, nil)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
		return json.NewDecoder(resp.Body).Decode(&rec) == nil
	}, "the activation to be recorded by a surviving invoker")
	if rec.Response.Status != "success" || rec.invoker() == victim.ID || rec.invoker() == "" {
		t.Fatalf("record: status %q on %q (victim %s)", rec.Response.Status, rec.invoker(), victim.ID)
	}
	waitFor(t, 10*time.Second, func() bool { return len(n.Registry().Live()) == 2 }, "the dead invoker to be dropped")
	// Exactly one record for the activation.
	resp = n.Do(t, "GET", "/api/v1/namespaces/_/activations?name=slow&count=true", nil)
	var count struct{ Activations int }
	json.NewDecoder(resp.Body).Decode(&count)
	resp.Body.Close()
	if count.Activations != 1 {
		t.Fatalf("%d records, want 1", count.Activations)
	}
}

func TestMetricsAreTenantScoped(t *testing.T) {
	n := gusttest.Start(t)
	put(t, n, "m", wasmtest.Build(t, "noop"))
	resp := n.Do(t, "POST", "/api/v1/namespaces/_/actions/m?blocking=true", nil)
	resp.Body.Close()
	resp = n.Do(t, "GET", "/metrics", nil)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `gust_activations_total{namespace="guest",action="m",start="cold",status="success"} 1`) {
		t.Fatalf("metrics: %d\n%s", resp.StatusCode, body)
	}
	other, err := n.Keys.Ensure(t.Context(), "other", "")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", n.URL+"/metrics", nil)
	u, k, _ := strings.Cut(other.Auth(), ":")
	req.SetBasicAuth(u, k)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), `namespace="guest"`) {
		t.Fatalf("another tenant sees guest's series:\n%s", body)
	}
	resp, _ = http.Get(n.URL + "/metrics")
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous /metrics: %d", resp.StatusCode)
	}
}

// TestPlacementStepsOver: a burst of blocking calls to one action spreads
// over the invokers when its home has no room for more, rather than
// queueing there until heartbeats catch up.
func TestPlacementStepsOver(t *testing.T) {
	n := gusttest.Start(t, threeInvokers, func(c *app.Config) { c.InvokerMemoryMB = 256 })
	waitFor(t, 10*time.Second, func() bool { return len(n.Registry().Live()) == 3 }, "three invokers announced")
	put(t, n, "nap", wasmtest.Build(t, "goreactor")) // 256 MB: one at a time per invoker
	type result struct {
		status  int
		invoker string
	}
	got := make(chan result, 3)
	for range 3 {
		go func() {
			resp := n.Do(t, "POST", "/api/v1/namespaces/_/actions/nap?blocking=true", strings.NewReader(`{"sleep_ms":700}`))
			defer resp.Body.Close()
			var r record
			json.NewDecoder(resp.Body).Decode(&r)
			got <- result{resp.StatusCode, r.invoker()}
		}()
		time.Sleep(30 * time.Millisecond) // in order, well within a heartbeat
	}
	used := map[string]bool{}
	for range 3 {
		r := <-got
		if r.status != http.StatusOK {
			t.Fatalf("a call of the burst: status %d", r.status)
		}
		used[r.invoker] = true
	}
	if len(used) != 3 {
		t.Errorf("three concurrent calls ran on %v: placement did not step over a full home", used)
	}
}
