package bench

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/scheduler"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i + 1)
	}
	tests := []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{"none", nil, 50, 0},
		{"one", []time.Duration{7}, 99, 7},
		{"p50 of 100", hundred, 50, 50},
		{"p99 of 100", hundred, 99, 99},
		{"p100 of 100", hundred, 100, 100},
		{"tiny p", hundred, 0.001, 1},
		{"p50 of 2", []time.Duration{1, 2}, 50, 1},
		{"p99 of 3", []time.Duration{1, 2, 3}, 99, 3},
	}
	for _, tc := range tests {
		if got := percentile(tc.samples, tc.p); got != tc.want {
			t.Errorf("%s: percentile(p%v) = %v, want %v", tc.name, tc.p, got, tc.want)
		}
	}
}

func TestMedian(t *testing.T) {
	in := []float64{3, 1, 2}
	if got := median(in); got != 2 {
		t.Errorf("median odd = %v, want 2", got)
	}
	if !reflect.DeepEqual(in, []float64{3, 1, 2}) {
		t.Errorf("median modified its input: %v", in)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median even = %v, want 2.5", got)
	}
	if got := median(nil); got != 0 {
		t.Errorf("median none = %v, want 0", got)
	}
}

func TestSummarize(t *testing.T) {
	f := summarize([]time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond}, time.Second)
	if f.ops != 3 || f.p50 != 2*time.Millisecond || f.p99 != 3*time.Millisecond || f.tput != 3 {
		t.Errorf("summarize = %+v", f)
	}
}

func TestClosedLoop(t *testing.T) {
	boom := errors.New("boom")
	n := 0
	f := closedLoop(context.Background(), 1, 30*time.Millisecond, func(context.Context, int) error {
		n++
		time.Sleep(100 * time.Microsecond)
		if n%2 == 0 {
			return boom
		}
		return nil
	})
	if f.ops == 0 || f.errs == 0 || f.p50 <= 0 || f.p99 < f.p50 || f.tput <= 0 || !errors.Is(f.err, boom) {
		t.Errorf("closedLoop = %+v", f)
	}
	if f.ops+f.errs != int64(n) {
		t.Errorf("ops %d + errors %d != calls %d", f.ops, f.errs, n)
	}
	// Workers run at once: 4 workers that each take 20ms end in about 20ms.
	start := time.Now()
	f = closedLoop(context.Background(), 4, time.Millisecond, func(context.Context, int) error {
		time.Sleep(20 * time.Millisecond)
		return nil
	})
	if f.ops != 4 || time.Since(start) > 500*time.Millisecond {
		t.Errorf("4 workers: %d ops in %v", f.ops, time.Since(start))
	}
}

func fig(p50us, p99us, tput, cpuUS float64) figures {
	return figures{p50: time.Duration(p50us * 1000), p99: time.Duration(p99us * 1000), tput: tput,
		cpu: time.Duration(cpuUS * 1000), ops: int64(tput)}
}

func TestRatios(t *testing.T) {
	floor := &series{scenario: "floor-http", conc: 1, rounds: []figures{fig(50, 100, 10000, 20), fig(100, 200, 5000, 40), fig(60, 120, 8000, 25)}}
	gust := &series{scenario: "invoke-wasm-c", conc: 1, base: floor, paired: true,
		rounds: []figures{fig(100, 300, 5000, 60), fig(150, 300, 4000, 80), fig(90, 240, 6000, 50)}}
	// Paired: per-round ratios 2, 1.5, 1.5 (p50); their median.
	if got := gust.ratios(p50Of); !reflect.DeepEqual(got, []float64{2, 1.5, 1.5}) {
		t.Errorf("paired p50 ratios = %v", got)
	}
	r := gust.row()
	want := Ratios{P50: 1.5, P99: 2, Throughput: 0.75, CPU: 2}
	if r.Ratio == nil || *r.Ratio != want {
		t.Errorf("row ratios = %+v, want %+v", r.Ratio, want)
	}
	if r.Baseline != "floor-http" || r.P50 != 100 || r.Throughput != 5000 || r.Rounds != 3 || len(r.PerRound) != 3 {
		t.Errorf("row = %+v", r)
	}
	// Unpaired: the ratio of medians.
	gust.paired = false
	if got := gust.ratios(p50Of); len(got) != 1 || got[0] != 100.0/60 {
		t.Errorf("unpaired p50 ratios = %v, want [%v]", got, 100.0/60)
	}
	// A figure not measured on either side yields no ratio.
	cold := &series{scenario: "cold-wasm", conc: 1, base: floor, rounds: []figures{fig(30, 40, 0, 0)}}
	if got := cold.ratios(tputOf); got != nil {
		t.Errorf("ratio of an unmeasured figure = %v", got)
	}
	if r := cold.row(); r.Ratio.Throughput != 0 || r.Ratio.P50 == 0 || r.Baseline != "floor-http" {
		t.Errorf("cold row = %+v %+v", r, r.Ratio)
	}
	if got := (&series{scenario: "x", rounds: []figures{fig(1, 1, 1, 1)}}).ratios(p50Of); got != nil {
		t.Errorf("ratios without a baseline = %v", got)
	}
	exec := &series{scenario: "floor-exec", variant: "/bin/true", conc: 1}
	if got := (&series{scenario: "cold-wasm", conc: 1, base: exec}).baseLabel(); got != "floor-exec /bin/true" {
		t.Errorf("baseLabel = %q", got)
	}
	if got := (&series{scenario: "async-invoke", conc: 10, base: floor}).baseLabel(); got != "floor-http c=1" {
		t.Errorf("baseLabel = %q", got)
	}
}

func TestBars(t *testing.T) {
	floor := &series{scenario: "floor-http", conc: 50, rounds: []figures{fig(50, 100, 10000, 20), fig(50, 100, 10000, 20), fig(50, 100, 10000, 20)}}
	tput := func(xs ...float64) *series {
		s := &series{scenario: "invoke-wasm-reactor", conc: 50, base: floor, paired: true}
		for _, x := range xs {
			s.rounds = append(s.rounds, fig(100, 200, x, 50))
		}
		return s
	}
	tests := []struct {
		name           string
		s              *series
		met, unanimous bool
		value          float64
	}{
		{"throughput met", tput(6000, 5500, 7000), true, true, 0.6},
		{"throughput missed", tput(4000, 3000, 4500), false, true, 0.4},
		{"throughput split", tput(6000, 4000, 5500), true, false, 0.55},
		{"cold met", &series{scenario: "cold-wasm", variant: variantInstanceC, conc: 1, rounds: []figures{fig(35, 80, 0, 0)}}, true, true, 35},
		{"cold missed", &series{scenario: "cold-wasm", variant: variantInstanceC, conc: 1, rounds: []figures{fig(120, 200, 0, 0)}}, false, true, 120},
	}
	for _, tc := range tests {
		b := barFor(tc.s)
		if b == nil {
			t.Fatalf("%s: no bar", tc.name)
		}
		c := b.check(tc.s)
		if c == nil || c.Met != tc.met || c.Unanimous != tc.unanimous || c.Value != tc.value {
			t.Errorf("%s: check = %+v, want met %v unanimous %v value %v", tc.name, c, tc.met, tc.unanimous, tc.value)
		}
	}
	p50 := &series{scenario: "invoke-wasm-c", conc: 1, base: floor, paired: true, rounds: []figures{fig(150, 0, 0, 0), fig(90, 0, 0, 0), fig(101, 0, 0, 0)}}
	if c := barFor(p50).check(p50); c.Met || c.Unanimous || c.Min != 1.8 || c.Max != 3 || !c.AtMost || c.Limit != 2 {
		t.Errorf("p50 bar = %+v", c)
	}
	if b := barFor(&series{scenario: "invoke-wasm-c", conc: 10}); b != nil {
		t.Errorf("a bar applies at c=10: %+v", b)
	}
	if c := barFor(p50).check(&series{scenario: "invoke-wasm-c", conc: 1, rounds: []figures{fig(1, 1, 1, 1)}}); c != nil {
		t.Errorf("a ratio bar without a baseline = %+v", c)
	}
}

func TestSelectScenarios(t *testing.T) {
	names := func(ss []scenario) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.name)
		}
		return out
	}
	tests := []struct {
		in   []string
		want []string
	}{
		{[]string{"invoke-wasm-c"}, []string{"floor-http", "invoke-wasm-c"}},
		{[]string{"activation-store", "floor-http"}, []string{"floor-http", "floor-nats", "activation-store"}},
		{[]string{"cold-wasm", "cold-wasm"}, []string{"floor-http", "floor-exec", "cold-wasm"}},
		{[]string{"cold-process", "invoke-python"}, []string{"floor-http", "floor-exec", "invoke-python", "cold-process"}},
		{[]string{"trigger-fire"}, []string{"floor-http", "trigger-fire"}},
		{[]string{"trace-replay", "density"}, []string{"density", "trace-replay"}},
		{nil, scenarioNames()},
	}
	for _, tc := range tests {
		got, err := selectScenarios(tc.in)
		if err != nil || !reflect.DeepEqual(names(got), tc.want) {
			t.Errorf("selectScenarios(%v) = %v, %v; want %v", tc.in, names(got), err, tc.want)
		}
	}
	if _, err := selectScenarios([]string{"nope"}); err == nil || !strings.Contains(err.Error(), "invoke-wasm-c") {
		t.Errorf("unknown scenario: err = %v, want the list of names", err)
	}
	for _, s := range catalogue {
		for _, n := range s.needs {
			if _, ok := lookup(n); !ok {
				t.Errorf("%s needs %s, which is not a scenario", s.name, n)
			}
		}
	}
}

func TestParseFlags(t *testing.T) {
	opt, err := parseFlags(nil, io.Discard)
	if err != nil || opt.duration != 600*time.Millisecond || opt.rounds != 5 || !reflect.DeepEqual(opt.conc, []int{1, 10, 50}) ||
		!reflect.DeepEqual(opt.storeSizes, []int{10_000, 100_000}) {
		t.Fatalf("defaults = %+v, %v", opt, err)
	}
	opt, err = parseFlags([]string{"--scenario", "a", "--scenario=b", "--concurrency", "50,1,1", "--store-records", "100000,1000",
		"--duration", "2s", "--json", "-", "--apihost", "127.0.0.1:1", "--auth", "u:k"}, io.Discard)
	if err != nil || !reflect.DeepEqual(opt.scenarios, []string{"a", "b"}) || !reflect.DeepEqual(opt.conc, []int{50, 1}) ||
		!reflect.DeepEqual(opt.storeSizes, []int{1000, 100_000}) || opt.duration != 2*time.Second || opt.json != "-" || opt.auth != "u:k" {
		t.Errorf("parsed = %+v, %v", opt, err)
	}
	for _, bad := range [][]string{
		{"--concurrency", "0"}, {"--concurrency", "1,x"}, {"--duration", "0s"}, {"--rounds", "0"},
		{"--auth", "u:k"}, {"extra"}, {"--store-records", "5"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%v) succeeded", bad)
		}
	}
	var help bytes.Buffer
	if _, err := parseFlags([]string{"--help"}, &help); !errors.Is(err, flag.ErrHelp) || !strings.Contains(help.String(), "trace-replay") {
		t.Errorf("--help: %v\n%s", err, help.String())
	}
	if _, err := externalTarget("127.0.0.1:3233", ""); err == nil {
		t.Error("--apihost without --auth accepted")
	}
	if tg, err := externalTarget("example.test:443/", "u:k"); err != nil || tg.base != "https://example.test:443" {
		t.Errorf("externalTarget = %+v, %v", tg, err)
	}
}

// goldenReport is a report with fixed figures: the JSON schema's golden file.
func goldenReport() *Report {
	floor := &series{scenario: "floor-http", conc: 1, rounds: []figures{fig(50, 100, 10000, 20), fig(60, 120, 9000, 22)}}
	wasmC := &series{scenario: "invoke-wasm-c", conc: 1, base: floor, paired: true,
		rounds: []figures{fig(90, 200, 6000, 50), fig(150, 260, 5000, 60)}}
	exec := &series{scenario: "floor-exec", variant: "/bin/true", conc: 1, rounds: []figures{fig(700, 900, 1400, 0)}}
	cold := &series{scenario: "cold-wasm", variant: variantInstanceC, conc: 1, base: exec, rounds: []figures{fig(35, 60, 25000, 40)}}
	bare := &series{scenario: "density", variant: floorPython, unit: "MB", rounds: []figures{{value: 9.5, ops: 1}}, note: "108 per GiB"}
	py := &series{scenario: "density", variant: "python:3, per idle warm instance", unit: "MB", base: bare, rounds: []figures{{value: 19, ops: 10}}, note: "54 per GiB"}
	fixed := &series{scenario: "trace-replay", variant: variantFixedCold, unit: "%", rounds: []figures{{value: 24.6, ops: 199}}}
	hybrid := &series{scenario: "trace-replay", variant: variantHybridCold, unit: "%", base: fixed, rounds: []figures{{value: 20.1, ops: 199}}, note: "40 of 199 calls"}
	rows := append(rows([]*series{floor, wasmC, exec, cold, bare, py, fixed, hybrid}), Row{Scenario: "sequence", Reason: "sequences are not supported yet"})
	rows[1].Errors, rows[1].Note = 1, "first error: status 502"
	return &Report{
		Schema: Schema, Date: "2026-11-23T12:00:00Z", Commit: "0123456789abcdef0123456789abcdef01234567",
		Machine: Machine{Cores: 2, CPU: "Test CPU", Kernel: "6.1.0", OS: "linux", Arch: "amd64", Go: "go1.26.8",
			LoadStart: "0.50 0.40 0.30", LoadEnd: "1.90 0.80 0.45"},
		Target: "in-process node at http://127.0.0.1:1 (temporary data directory)",
		Settings: Settings{DurationS: 1, Rounds: 2, Concurrency: []int{1}, Scenarios: []string{"floor-http", "invoke-wasm-c", "floor-exec", "cold-wasm", "density", "trace-replay", "sequence"},
			Shorter: []string{"trigger-fire", "placement"}, ShorterRounds: 1, ShorterDurationS: 0.5},
		Tools:    []Tool{{Name: "python3", Path: "/usr/bin/python3", Resolved: "/usr/bin/python3.11", Version: "Python 3.11.2", Note: "empty environment"}},
		Results:  rows,
		ElapsedS: 12.5,
	}
}

func TestReportJSONGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := writeJSON(&buf, goldenReport()); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.golden.json")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("JSON differs from %s (run with -update after an intended change):\n%s", golden, buf.String())
	}
}

func TestTable(t *testing.T) {
	var buf bytes.Buffer
	writeTable(&buf, goldenReport())
	out := buf.String()
	for _, want := range []string{
		"machine: 2 cores (Test CPU), linux 6.1.0 amd64, go1.26.8, load average 0.50 0.40 0.30 at start, 1.90 0.80 0.45 at end",
		"tool: python3 /usr/bin/python3 -> /usr/bin/python3.11 (Python 3.11.2); empty environment",
		"p50 ≤ 2× floor-http", "MISSED (rounds disagree) 1 errors", "p50 ≤ 0.1 ms", "met",
		"(trigger-fire, placement: 1 round(s) of 500ms);",
		"not available:", "sequence", "note: invoke-wasm-c c=1: first error: status 502",
		"scenario      variant                           value    baseline                ×value  bar                               result  note",
		"python:3, per idle warm instance  19.0 MB  floor: python3 asleep   2.00", "54 per GiB",
		"20.1%    fixed:10m, cold starts  0.82    fewer cold starts than fixed:10m  met     40 of 199 calls",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "note: density") {
		t.Errorf("a value row's note is printed below the table too:\n%s", out)
	}
}

func TestFormat(t *testing.T) {
	for in, want := range map[float64]string{0: "-", 3.14159: "3.14µs", 64.4: "64µs", 1234: "1.23ms", 56789: "56.8ms", 2.5e6: "2.50s"} {
		if got := fmtUS(in); got != want {
			t.Errorf("fmtUS(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[float64]string{0: "-", 42.25: "42.2/s", 873: "873/s", 32512: "32.5k/s", 1.5e6: "1.50M/s"} {
		if got := fmtRate(in); got != want {
			t.Errorf("fmtRate(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[int]string{10_000: "10k records", 1_000_000: "1M records", 1500: "1500 records"} {
		if got := countLabel(in); got != want {
			t.Errorf("countLabel(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestPerStep(t *testing.T) {
	us := time.Microsecond
	for _, tc := range []struct {
		one, n time.Duration
		steps  int
		want   time.Duration
	}{
		{100 * us, 140 * us, 5, 10 * us},
		{100 * us, 100 * us, 5, 0}, // no growth
		{100 * us, 90 * us, 5, 0},  // noise: never negative
		{0, 90 * us, 5, 0},         // not measured
		{100 * us, 200 * us, 1, 0}, // no steps to divide by
	} {
		if got := perStep(tc.one, tc.n, tc.steps); got != tc.want {
			t.Errorf("perStep(%v, %v, %d) = %v, want %v", tc.one, tc.n, tc.steps, got, tc.want)
		}
	}
}

func TestBurst(t *testing.T) {
	boom := errors.New("boom")
	b := burst(context.Background(), 50, func(_ context.Context, i int) error {
		time.Sleep(10 * time.Millisecond)
		if i%10 == 0 {
			return boom
		}
		return nil
	})
	f := b.figures()
	// All at once: 50 requests of 10ms end in about 10ms, not 500ms.
	if f.ops != 45 || f.errs != 5 || !errors.Is(f.err, boom) || f.p50 < 10*time.Millisecond || f.tput < 45/0.4 {
		t.Errorf("burst figures = %+v", f)
	}
	if last := slices.MaxFunc(b.ends, func(a, b time.Time) int { return a.Compare(b) }); last.Sub(b.start) > 400*time.Millisecond {
		t.Errorf("the burst took %v: its requests did not run at once", last.Sub(b.start))
	}
}

func TestAcceptToRecords(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	accepted := map[string]time.Time{"a": t0, "b": t0.Add(ms), "c": t0.Add(2 * ms), "d": t0}
	seen := map[string]time.Time{"a": t0.Add(5 * ms), "b": t0, "c": t0.Add(9 * ms), "x": t0.Add(time.Hour)}
	lat, last := acceptToRecords(accepted, seen)
	slices.Sort(lat)
	// b's record came before its 202 was read: 0; d was never seen; x was not accepted here.
	if !reflect.DeepEqual(lat, []time.Duration{0, 5 * ms, 7 * ms}) || !last.Equal(t0.Add(9*ms)) {
		t.Errorf("acceptToRecords = %v, %v", lat, last)
	}
}

func TestProc(t *testing.T) {
	for in, want := range map[string]int{
		"123 (gust) S 45 123 123 0 -1":          45,
		"7 (a b) c) (d) R 1 7 7 0 -1 4194560 3": 1,
	} {
		if got, ok := parsePPID([]byte(in)); !ok || got != want {
			t.Errorf("parsePPID(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "12 (x", "12 (x) S"} {
		if _, ok := parsePPID([]byte(bad)); ok {
			t.Errorf("parsePPID(%q) succeeded", bad)
		}
	}
	if got, err := parseStatmRSS([]byte("5000 300 100 10 0 200 0\n"), 4096); err != nil || got != 300*4096 {
		t.Errorf("parseStatmRSS = %d, %v", got, err)
	}
	if _, err := parseStatmRSS([]byte("5000"), 4096); err == nil {
		t.Error("parseStatmRSS of one field succeeded")
	}
	// 1 → 2 → {3, 4}, 4 → 5; 6 is elsewhere; a cycle 8 ↔ 9 ends.
	parents := map[int]int{2: 1, 3: 2, 4: 2, 5: 4, 6: 1000, 8: 9, 9: 8}
	got := descendants(parents, 2)
	slices.Sort(got)
	if !reflect.DeepEqual(got, []int{3, 4, 5}) {
		t.Errorf("descendants = %v", got)
	}
	if got := descendants(parents, 8); !reflect.DeepEqual(got, []int{9}) {
		t.Errorf("descendants of a cycle = %v", got)
	}
	// A real child of this process is found, with its memory.
	if _, err := os.Stat("/proc/self/statm"); err != nil {
		t.Skip("no /proc")
	}
	before, err := descendantsMemory("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	rss, err := bareRSS(context.Background(), "/bin/sleep", []string{"5"})
	if err != nil {
		t.Skip(err)
	}
	if rss <= 0 {
		t.Errorf("bareRSS of sleep = %d", rss)
	}
	cmd := exec.Command("/bin/sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	time.Sleep(50 * time.Millisecond)
	after, err := descendantsMemory("/proc", os.Getpid())
	if err != nil || after.procs != before.procs+1 || after.sandboxes <= before.sandboxes {
		t.Errorf("descendants before %+v, after %+v, %v", before, after, err)
	}
}

func TestHomedOn(t *testing.T) {
	live := []scheduler.Heartbeat{
		{ID: "n-0", MemoryMB: 4096, FreeMB: 4096, Kinds: []string{"wasm"}},
		{ID: "n-1", MemoryMB: 4096, FreeMB: 4096, Kinds: []string{"wasm"}},
	}
	for _, id := range []string{"n-0", "n-1"} {
		name, err := homedOn(live, "guest", "x-", id)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := scheduler.Pick(live, "/guest/"+name, 128, "wasm"); got != id {
			t.Errorf("%s: home %s, want %s", name, got, id)
		}
	}
	if _, err := homedOn(live, "guest", "x-", "n-2"); err == nil {
		t.Error("a name homed on an invoker that is not live")
	}
}

// TestRounds drives the round loop with loads of fixed figures: a load
// with fewer rounds, one measured at the first concurrency only, and
// variants with baselines of their own.
func TestRounds(t *testing.T) {
	r := newRunner(options{rounds: 5, conc: []int{1, 10}}, io.Discard)
	calls := map[string]int{}
	fixed := func(name string, vs ...variant) load {
		return load{name: name, measure: func(_ context.Context, c int) ([]variant, error) {
			calls[name]++
			out := slices.Clone(vs)
			for i := range out {
				out[i].f = fig(float64(10*c+calls[name]), 100, 1000, 1)
			}
			return out, nil
		}}
	}
	floor := fixed("floor-http", variant{})
	every := fixed("every", variant{name: "a"}, variant{name: "b", base: "a"})
	every.rounds = 3
	once := fixed("once", variant{name: "own", own: true, conc: 1000}, variant{name: "x", base: "own", conc: 1000})
	once.once, once.rounds = true, 3
	gone := load{name: "gone", measure: func(context.Context, int) ([]variant, error) {
		calls["gone"]++
		return nil, unavailable{errors.New("no second node")}
	}}
	if err := r.rounds(context.Background(), []load{floor, every, once, gone}); err != nil {
		t.Fatal(err)
	}
	if calls["floor-http"] != 10 || calls["every"] != 6 || calls["once"] != 3 || calls["gone"] != 1 {
		t.Errorf("measure calls = %v, want floor 10, every 6, once 3, gone 1", calls)
	}
	if len(r.unavailable) != 1 || r.unavailable[0].Scenario != "gone" || r.unavailable[0].Reason != "no second node" {
		t.Errorf("unavailable = %+v", r.unavailable)
	}
	bad := load{name: "bad", measure: func(context.Context, int) ([]variant, error) { return nil, errors.New("boom") }}
	if err := r.rounds(context.Background(), []load{bad}); err == nil || !strings.Contains(err.Error(), "bad at c=1: boom") {
		t.Errorf("a failing load: %v", err)
	}
	for _, c := range []int{1, 10} {
		a, b := r.find("every", "a", c), r.find("every", "b", c)
		if a == nil || b == nil || len(a.rounds) != 3 || a.base != r.find("floor-http", "", c) || b.base != a || !b.paired {
			t.Fatalf("every at c=%d: a %+v, b %+v", c, a, b)
		}
		// Paired with the floor's first three rounds.
		if got := a.ratios(p50Of); len(got) != 3 {
			t.Errorf("every at c=%d: %d ratios to the floor, want 3", c, len(got))
		}
	}
	own, x := r.find("once", "own", 1000), r.find("once", "x", 1000)
	if own == nil || x == nil || own.base != nil || x.base != own || len(x.rounds) != 3 || r.find("once", "x", 10) != nil {
		t.Errorf("once: own %+v, x %+v", own, x)
	}
	// --rounds given: every load runs them all.
	r.opt.roundsSet = true
	if n := r.roundsOf(every); n != 5 {
		t.Errorf("roundsOf with --rounds = %d, want 5", n)
	}
}

func TestValueBars(t *testing.T) {
	fixed := &series{scenario: "trace-replay", variant: variantFixedCold, unit: "%", rounds: []figures{{value: 24.6}}}
	hybrid := &series{scenario: "trace-replay", variant: variantHybridCold, unit: "%", base: fixed, rounds: []figures{{value: 24.6}}}
	// Equal is not fewer.
	if c := barFor(hybrid).check(hybrid); c == nil || c.Met || !c.Strict || c.Value != 1 {
		t.Errorf("equal cold starts: %+v", c)
	}
	hybrid.rounds[0].value = 20
	if c := barFor(hybrid).check(hybrid); c == nil || !c.Met {
		t.Errorf("fewer cold starts: %+v", c)
	}
	r := hybrid.row()
	if r.Value != 20 || r.Unit != "%" || r.Ratio == nil || r.Ratio.Value != round3(20/24.6) || r.Baseline != variantFixedCold {
		t.Errorf("value row = %+v %+v", r, r.Ratio)
	}
	mq := &series{scenario: "mqtt-publish", variant: variantMQTTWasm, conc: 1, rounds: []figures{fig(900, 2000, 0, 0), fig(1100, 2000, 0, 0), fig(950, 2000, 0, 0)}}
	if c := barFor(mq).check(mq); c == nil || !c.Met || c.Unanimous || c.Value != 950 {
		t.Errorf("mqtt bar = %+v", c)
	}
}

func TestTraceReplay(t *testing.T) {
	if _, ok := inCheckout(traceSample, false); !ok {
		t.Skip("the trace sample is not beside the checkout")
	}
	r := newRunner(options{}, io.Discard)
	if err := r.traceReplay(); err != nil {
		t.Fatal(err)
	}
	rs := rows(r.series)
	want := 4 // the sample's; and the synthetic trace's when its distributions are there
	if _, ok := inCheckout(synthDists, true); ok {
		want = 10
	}
	if len(rs) != want || len(r.unavailable) != 0 {
		t.Fatalf("%d rows, want %d: %+v, unavailable %+v", len(rs), want, rs, r.unavailable)
	}
	for _, row := range rs {
		if row.Value <= 0 || row.Unit == "" {
			t.Errorf("%s: no value: %+v", row.Variant, row)
		}
		if strings.Contains(row.Variant, "hybrid") && (row.Bar == nil || row.Ratio == nil || row.Ratio.Value <= 0) {
			t.Errorf("%s: no bar or ratio: %+v", row.Variant, row)
		}
	}
}
