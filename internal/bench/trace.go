package bench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/keepalive"
)

// traceSample is the Azure Functions 2021 sample, relative to the root of
// the checkout: the traces are kept beside it, in ../shared/traces.
const traceSample = "../shared/traces/azure2021/Azure2021_200.csv"

// synthDists are the distributions of the full 2019 trace, from which the
// synthetic trace is drawn (keepalive.Synth).
const synthDists = "../shared/traces/azure2019-cdfs"

// Variants of trace-replay: the sample, then the synthetic trace.
const (
	variantFixedCold       = "fixed:10m, cold starts"
	variantHybridCold      = "hybrid, cold starts"
	variantFixedIdle       = "fixed:10m, idle memory·time"
	variantHybridIdle      = "hybrid, idle memory·time"
	variantSynthFixedApp   = "2019 synthetic, fixed:10m, median app's cold starts"
	variantSynthHybridApp  = "2019 synthetic, hybrid, median app's cold starts"
	variantSynthFixedAll   = "2019 synthetic, fixed:10m, cold starts"
	variantSynthHybridAll  = "2019 synthetic, hybrid, cold starts"
	variantSynthFixedIdle  = "2019 synthetic, fixed:10m, idle memory·time"
	variantSynthHybridIdle = "2019 synthetic, hybrid, idle memory·time"
)

// synthApps and synthSpan size the synthetic trace: big enough for every
// kind of app to show, small enough to replay in about a second.
const (
	synthApps = 200
	synthSpan = 48 * time.Hour
)

// traceReplay replays the trace sample against the keep-alive policies a
// node can be started with (--keep-alive fixed:10m and hybrid, parsed by
// keepalive.Parse as the node does) and reports the share of calls that
// found no warm instance and the memory·time of loaded idle instances,
// each instance holding OpenWhisk's default action memory. The replay runs
// on a virtual clock (keepalive.Replay), so it takes milliseconds and
// compressing the trace and the keep-alive by the same factor k, as issue 4
// asks, gives the same figures: it is reported with k = 1.
func (r *runner) traceReplay() error {
	path, ok := inCheckout(traceSample, false)
	if !ok {
		r.markUnavailable("trace-replay", "the Azure Functions 2021 sample ("+traceSample+" from the root of the checkout) was not found")
		return nil
	}
	r.prog.printf("trace-replay")
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	calls, err := keepalive.ReadAzure2021(f)
	if err != nil {
		return err
	}
	if len(calls) == 0 {
		return fmt.Errorf("%s: no calls", path)
	}
	mem := gust.DefaultActionLimits().Memory
	res := map[string]keepalive.Result{}
	for _, setting := range []string{"fixed:10m", "hybrid"} {
		p, err := keepalive.Parse(setting)
		if err != nil {
			return err
		}
		res[setting] = keepalive.Replay(calls, p, float64(mem))
	}
	fixed, hybrid := res["fixed:10m"], res["hybrid"]
	cold := func(variant string, x keepalive.Result, base *series) *series {
		return r.add(&series{scenario: "trace-replay", variant: variant, unit: "%", base: base,
			rounds: []figures{{value: x.ColdPercent(), ops: int64(x.Calls)}},
			note:   fmt.Sprintf("%d of %d calls (%s)", x.ColdStarts, x.Calls, x.Policy)})
	}
	idle := func(variant string, x keepalive.Result, base *series) *series {
		return r.add(&series{scenario: "trace-replay", variant: variant, unit: "GB·s", base: base,
			rounds: []figures{{value: x.IdleMemSecs / 1024, ops: int64(x.Calls)}},
			note:   fmt.Sprintf("%d MB per loaded instance", mem)})
	}
	cold(variantHybridCold, hybrid, cold(variantFixedCold, fixed, nil))
	idle(variantHybridIdle, hybrid, idle(variantFixedIdle, fixed, nil))

	if err := r.synthReplay(mem); err != nil {
		return err
	}

	funcs := map[string]bool{}
	var end time.Duration
	for _, c := range calls {
		funcs[c.Func] = true
		end = max(end, c.Start+c.Duration)
	}
	r.tools = append(r.tools, Tool{Name: "trace", Path: path, Note: fmt.Sprintf(
		"Azure Functions 2021 sample: %d calls of %d functions over %.0f min, replayed on a virtual clock (k = 1); Shahrad et al., USENIX ATC 2020, CC-BY-4.0",
		len(calls), len(funcs), end.Minutes())})
	return nil
}

// synthReplay replays a synthetic trace drawn from the 2019 distributions,
// which, unlike the 21-minute sample, is long enough for the policies to
// differ in cold starts. Cold starts are reported per app (the median app's
// share, as the paper reports them) and over all calls.
func (r *runner) synthReplay(mem int) error {
	dir, ok := inCheckout(synthDists, true)
	if !ok {
		r.tools = append(r.tools, Tool{Name: "trace-2019", Note: "not found (" + synthDists + " from the root of the checkout): the synthetic replay did not run"})
		return nil
	}
	synth, err := keepalive.LoadSynth2019(dir)
	if err != nil {
		return err
	}
	calls := synth.Generate(synthApps, synthSpan, rand.New(rand.NewPCG(2020, 7)))
	res := map[string]keepalive.Result{}
	for _, setting := range []string{"fixed:10m", "hybrid"} {
		p, err := keepalive.Parse(setting)
		if err != nil {
			return err
		}
		res[setting] = keepalive.Replay(calls, p, float64(mem))
	}
	fixed, hybrid := res["fixed:10m"], res["hybrid"]
	add := func(variant, unit string, v float64, note string, base *series) *series {
		return r.add(&series{scenario: "trace-replay", variant: variant, unit: unit, base: base,
			rounds: []figures{{value: v, ops: int64(len(calls))}}, note: note})
	}
	app := func(x keepalive.Result) float64 { return x.FuncColdPercent(0.5) }
	about := fmt.Sprintf("%d apps over %.0f h, %d calls", synthApps, synthSpan.Hours(), len(calls))
	add(variantSynthHybridApp, "%", app(hybrid), "", add(variantSynthFixedApp, "%", app(fixed), about, nil))
	add(variantSynthHybridAll, "%", hybrid.ColdPercent(), fmt.Sprintf("%d of %d calls", hybrid.ColdStarts, hybrid.Calls),
		add(variantSynthFixedAll, "%", fixed.ColdPercent(), fmt.Sprintf("%d of %d calls", fixed.ColdStarts, fixed.Calls), nil))
	add(variantSynthHybridIdle, "GB·s", hybrid.IdleMemSecs/1024, "", add(variantSynthFixedIdle, "GB·s", fixed.IdleMemSecs/1024, fmt.Sprintf("%d MB per loaded instance", mem), nil))
	r.tools = append(r.tools, Tool{Name: "trace-2019", Path: dir, Note: "synthetic trace drawn from the 2019 distributions (invocations a day, inter-arrival CV, execution time; keepalive.Synth), seed 2020"})
	return nil
}
