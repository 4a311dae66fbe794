package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
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
	args := []string{"--duration", "1s", "--scenario", "invoke-wasm-c", "--scenario", "trace-replay", "--concurrency", "1", "--json", out}
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
	// The trace sample lives beside the checkout, not in it.
	if r := find("trace-replay"); !r.Available && !strings.Contains(r.Reason, "not found") {
		t.Errorf("trace-replay not available: %s", r.Reason)
	} else if r.Available {
		n := 0
		for _, r := range rep.Results {
			if r.Scenario != "trace-replay" {
				continue
			}
			n++
			if r.Value <= 0 || r.Unit == "" || r.Ops <= 0 {
				t.Errorf("trace-replay %s: a figure is missing: %+v", r.Variant, r)
			}
			if strings.Contains(r.Variant, "hybrid") && (r.Ratio == nil || r.Ratio.Value <= 0 || r.Bar == nil || r.Baseline == "") {
				t.Errorf("trace-replay %s: no ratio or bar: %+v", r.Variant, r)
			}
		}
		want := 4 // the 2021 sample's rows, and the synthetic trace's when its distributions are there
		if _, ok := inCheckout(synthDists, true); ok {
			want = 10
		}
		if n != want {
			t.Errorf("trace-replay: %d rows, want %d", n, want)
		}
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
	for _, want := range []string{"invoke-wasm-c", "floor-http", "p50 ≤ 2× floor-http", "machine:", "tool: clang", "trace-replay"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if !strings.Contains(stderr.String(), "round 5/5") {
		t.Errorf("no progress on stderr:\n%s", stderr.String())
	}
}

// TestSmokeEvents runs the event and scheduling scenarios that need the
// bench's node briefly (one round of 50 ms) and checks that each row has
// its figures, baseline and ratio.
func TestSmokeEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node and measures for seconds")
	}
	var stdout, stderr bytes.Buffer
	args := []string{"--duration", "50ms", "--rounds", "1", "--concurrency", "1", "--json", "-",
		"--scenario", "trigger-fire", "--scenario", "sequence", "--scenario", "mqtt-publish"}
	if err := Main(t.Context(), args, &stdout, &stderr); err != nil {
		t.Fatalf("gust bench %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"trigger-fire": {variantInvokeNB, variantFire, variantInvokeRec, variantFireRec},
		"sequence":     {variantComponent, variantSeq1, variantSeq5, variantPerStep},
		"mqtt-publish": {variantMQTTFloor, variantMQTTWasm, variantMQTTPython},
	}
	for _, r := range rep.Results {
		if !r.Available {
			// Python may be missing here (no sandbox support): said so.
			if r.Scenario == "mqtt-publish" && strings.HasPrefix(r.Reason, variantMQTTPython) {
				want["mqtt-publish"] = slices.DeleteFunc(want["mqtt-publish"], func(v string) bool { return v == variantMQTTPython })
				continue
			}
			t.Errorf("%s not available: %s", r.Scenario, r.Reason)
		}
	}
	for scenario, variants := range want {
		for _, v := range variants {
			i := slices.IndexFunc(rep.Results, func(r Row) bool { return r.Scenario == scenario && r.Variant == v })
			if i < 0 {
				t.Errorf("%s %s: no row", scenario, v)
				continue
			}
			r := rep.Results[i]
			if v == variantPerStep && r.P50 == 0 && strings.HasPrefix(r.Note, "within the noise") {
				continue // a brief round may not tell one step from the noise: said so
			}
			if r.Ops <= 0 || r.Errors != 0 || r.P50 <= 0 {
				t.Errorf("%s %s: a figure is missing: %+v", scenario, v, r)
			}
			if v != variantMQTTFloor && (r.Baseline == "" || r.Ratio == nil || r.Ratio.P50 <= 0) {
				t.Errorf("%s %s: no baseline or ratio: %+v", scenario, v, r)
			}
		}
	}
	if i := slices.IndexFunc(rep.Results, func(r Row) bool { return r.Variant == variantMQTTWasm }); i >= 0 && rep.Results[i].Bar == nil {
		t.Errorf("mqtt-publish: the 1 ms bar was not checked: %+v", rep.Results[i])
	}
}
