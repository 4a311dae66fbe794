package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSmoke runs a short `gust bench` against its own node and checks that
// every figure of the table is there and positive. It needs clang for the
// C module: without it the test is skipped, except in CI.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node and measures for seconds")
	}
	out := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	args := []string{"--duration", "1s", "--scenario", "invoke-wasm-c", "--concurrency", "1", "--json", out}
	if err := Main(t.Context(), args, &stdout, &stderr); err != nil {
		t.Fatalf("gust bench %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	find := func(name string) Row {
		for _, r := range rep.Results {
			if r.Scenario == name {
				return r
			}
		}
		t.Fatalf("no result for %s:\n%s", name, b)
		return Row{}
	}
	if r := find("invoke-wasm-c"); !r.Available {
		if os.Getenv("CI") == "" && strings.Contains(r.Reason, "clang") {
			t.Skip(r.Reason)
		}
		t.Fatalf("invoke-wasm-c not available: %s", r.Reason)
	}
	if rep.Schema != Schema || rep.Machine.Cores < 1 || rep.Machine.Go == "" || rep.Commit == "" || rep.Settings.Rounds != 5 {
		t.Errorf("report header: %+v", rep)
	}
	for _, name := range []string{"floor-http", "invoke-wasm-c"} {
		r := find(name)
		if r.Concurrency != 1 || r.Rounds != 5 || r.Ops <= 0 || r.Errors != 0 || r.P50 <= 0 || r.P99 < r.P50 || r.Throughput <= 0 || r.CPU <= 0 {
			t.Errorf("%s: a figure is missing: %+v", name, r)
		}
	}
	r := find("invoke-wasm-c")
	if r.Baseline != "floor-http" || r.Ratio == nil || r.Ratio.P50 <= 0 || r.Ratio.P99 <= 0 || r.Ratio.Throughput <= 0 || r.Ratio.CPU <= 0 {
		t.Errorf("invoke-wasm-c ratios: %+v %+v", r, r.Ratio)
	}
	if r.Bar == nil || r.Bar.Limit != 2 || r.Bar.Value != r.Ratio.P50 {
		t.Errorf("invoke-wasm-c bar: %+v", r.Bar)
	}
	table := stdout.String()
	for _, want := range []string{"invoke-wasm-c", "floor-http", "p50 ≤ 2× floor-http", "machine:", "tool: clang"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if !strings.Contains(stderr.String(), "round 5/5") {
		t.Errorf("no progress on stderr:\n%s", stderr.String())
	}
}
