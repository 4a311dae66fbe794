package bench

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// series is one row of the table in the making: a scenario (and variant)
// at one concurrency, measured over one or more rounds.
type series struct {
	scenario string
	variant  string
	conc     int
	rounds   []figures
	// base is the same-run baseline. When paired, base was measured beside
	// this series in every round and ratios are taken round by round;
	// otherwise they are ratios of medians.
	base   *series
	paired bool
	// link names the baseline of a series measured once, before its
	// baseline perhaps: resolved into base when the report is made.
	link *link
	note string
	// unit, when set, makes the series one of values (MB, %, GB·s) rather
	// than of latencies and rates: the row's figure is the value.
	unit string
}

// link names a series.
type link struct {
	scenario, variant string
	conc              int
}

// baseLabel names the baseline of s: its scenario (unless it is the same
// as the row's), its variant, and its concurrency when it differs.
func (s *series) baseLabel() string {
	b := s.base
	var parts []string
	if b.scenario != s.scenario {
		parts = append(parts, b.scenario)
	}
	if b.variant != "" {
		parts = append(parts, b.variant)
	}
	if b.conc != s.conc {
		parts = append(parts, fmt.Sprintf("c=%d", b.conc))
	}
	return strings.Join(parts, " ")
}

// metric reads one figure of a round, in the unit the report uses.
type metric func(figures) float64

var (
	p50Of  metric = func(f figures) float64 { return us(f.p50) }
	p99Of  metric = func(f figures) float64 { return us(f.p99) }
	tputOf metric = func(f figures) float64 { return f.tput }
	cpuOf  metric = func(f figures) float64 { return us(f.cpu) }
	valOf  metric = func(f figures) float64 { return f.value }
)

func (s *series) median(m metric) float64 {
	xs := make([]float64, len(s.rounds))
	for i, f := range s.rounds {
		xs[i] = m(f)
	}
	return median(xs)
}

// ratios returns the per-round ratios of metric m to the baseline: one per
// round when paired, else the single ratio of medians. It returns nil when
// there is no baseline or a side was not measured. A paired series may
// have fewer rounds than its floor (a scenario run with fewer rounds): the
// rounds of both start at the first, so round i pairs with round i.
func (s *series) ratios(m metric) []float64 {
	b := s.base
	if b == nil || len(b.rounds) == 0 || len(s.rounds) == 0 {
		return nil
	}
	if !s.paired || len(b.rounds) < len(s.rounds) {
		if r := ratio(s.median(m), b.median(m)); r > 0 {
			return []float64{r}
		}
		return nil
	}
	var out []float64
	for i := range s.rounds {
		if r := ratio(m(s.rounds[i]), m(b.rounds[i])); r > 0 {
			out = append(out, r)
		}
	}
	return out
}

// row summarises the series.
func (s *series) row() Row {
	r := Row{Scenario: s.scenario, Variant: s.variant, Concurrency: s.conc, Available: true,
		Rounds: len(s.rounds), Note: s.note}
	var firstErr error
	for _, f := range s.rounds {
		r.Ops += f.ops
		r.Errors += f.errs
		if firstErr == nil {
			firstErr = f.err
		}
		if len(s.rounds) > 1 {
			r.PerRound = append(r.PerRound, Figures{P50: round2(p50Of(f)), P99: round2(p99Of(f)), Throughput: round2(f.tput), CPU: round2(cpuOf(f)),
				Value: round3(f.value)})
		}
	}
	if firstErr != nil && r.Note == "" {
		r.Note = "first error: " + firstErr.Error()
	}
	r.P50, r.P99, r.Throughput, r.CPU = round2(s.median(p50Of)), round2(s.median(p99Of)), round2(s.median(tputOf)), round2(s.median(cpuOf))
	if s.unit != "" {
		r.Value, r.Unit = round3(s.median(valOf)), s.unit
	}
	if s.base != nil {
		rt := Ratios{
			P50:        round3(median(s.ratios(p50Of))),
			P99:        round3(median(s.ratios(p99Of))),
			Throughput: round3(median(s.ratios(tputOf))),
			CPU:        round3(median(s.ratios(cpuOf))),
		}
		if s.unit != "" {
			rt.Value = round3(median(s.ratios(valOf)))
		}
		if rt != (Ratios{}) {
			r.Baseline, r.Ratio = s.baseLabel(), &rt
		}
	}
	return r
}

// Metrics a bar can be checked on.
const (
	metricP50Ratio        = "p50_ratio"
	metricThroughputRatio = "throughput_ratio"
	metricP50             = "p50_us"
	metricValueRatio      = "value_ratio"
)

// bar is a performance bar of the issue, for the rows it names.
type bar struct {
	scenario string
	variant  string
	conc     int // 0: any
	text     string
	metric   string
	atMost   bool
	strict   bool // the value must stay strictly below (atMost) or above the limit
	limit    float64
}

// bars are the bars of issue 7, and those of the events (5) and scheduling
// (4) issues the bench can check. The latency bar is taken at c=1 and the
// throughput bar at c=50, where the prototype of shared/reference/hotpath.md
// measured them. Issue 4's keep-alive bar ("fewer cold starts than a fixed
// 10-minute keep-alive with less idle memory·time") is a conjunction: it
// is checked as its two halves, each on its own row, and is met when both are.
var bars = []bar{
	{scenario: "invoke-wasm-c", conc: 1, text: "p50 ≤ 2× floor-http", metric: metricP50Ratio, atMost: true, limit: 2},
	{scenario: "invoke-wasm-reactor", conc: 1, text: "p50 ≤ 2× floor-http", metric: metricP50Ratio, atMost: true, limit: 2},
	{scenario: "invoke-wasm-c", conc: 50, text: "req/s ≥ 0.5× floor-http", metric: metricThroughputRatio, limit: 0.5},
	{scenario: "invoke-wasm-reactor", conc: 50, text: "req/s ≥ 0.5× floor-http", metric: metricThroughputRatio, limit: 0.5},
	{scenario: "web-action-reactor", conc: 1, text: "p50 ≤ 2× floor-http", metric: metricP50Ratio, atMost: true, limit: 2},
	{scenario: "cold-wasm", variant: variantInstanceC, text: "p50 ≤ 0.1 ms", metric: metricP50, atMost: true, limit: 100},
	{scenario: "mqtt-publish", variant: variantMQTTWasm, conc: 1, text: "p50 ≤ 1 ms to a warm wasm result", metric: metricP50, atMost: true, limit: 1000},
	{scenario: "trace-replay", variant: variantHybridCold, text: "fewer cold starts than fixed:10m", metric: metricValueRatio, atMost: true, strict: true, limit: 1},
	{scenario: "trace-replay", variant: variantHybridIdle, text: "less idle memory·time than fixed:10m", metric: metricValueRatio, atMost: true, strict: true, limit: 1},
	{scenario: "trace-replay", variant: variantSynthHybridApp, text: "fewer cold starts than fixed:10m", metric: metricValueRatio, atMost: true, strict: true, limit: 1},
	{scenario: "trace-replay", variant: variantSynthHybridAll, text: "fewer cold starts than fixed:10m", metric: metricValueRatio, atMost: true, strict: true, limit: 1},
	{scenario: "trace-replay", variant: variantSynthHybridIdle, text: "less idle memory·time than fixed:10m", metric: metricValueRatio, atMost: true, strict: true, limit: 1},
}

// barFor returns the bar that applies to s, if any.
func barFor(s *series) *bar {
	for i, b := range bars {
		if b.scenario == s.scenario && b.variant == s.variant && (b.conc == 0 || b.conc == s.conc) {
			return &bars[i]
		}
	}
	return nil
}

// check evaluates b on s. It returns nil when the figure was not measured
// (e.g. no baseline).
func (b *bar) check(s *series) *BarCheck {
	var xs []float64
	switch b.metric {
	case metricP50Ratio:
		xs = s.ratios(p50Of)
	case metricThroughputRatio:
		xs = s.ratios(tputOf)
	case metricP50:
		for _, f := range s.rounds {
			xs = append(xs, p50Of(f))
		}
	case metricValueRatio:
		xs = s.ratios(valOf)
	}
	if len(xs) == 0 {
		return nil
	}
	meets := func(v float64) bool {
		switch {
		case b.atMost && b.strict:
			return v < b.limit
		case b.atMost:
			return v <= b.limit
		case b.strict:
			return v > b.limit
		}
		return v >= b.limit
	}
	c := &BarCheck{Bar: b.text, Metric: b.metric, Limit: b.limit, AtMost: b.atMost, Strict: b.strict,
		Value: median(xs), Min: math.Inf(1), Max: math.Inf(-1), Unanimous: true}
	c.Met = meets(c.Value)
	for _, x := range xs {
		c.Min, c.Max = min(c.Min, x), max(c.Max, x)
		if meets(x) != c.Met {
			c.Unanimous = false
		}
	}
	c.Value, c.Min, c.Max = round3(c.Value), round3(c.Min), round3(c.Max)
	return c
}

// rows turns the series into the report's rows, checking the bars.
func rows(all []*series) []Row {
	out := make([]Row, 0, len(all))
	for _, s := range all {
		r := s.row()
		if b := barFor(s); b != nil {
			r.Bar = b.check(s)
		}
		out = append(out, r)
	}
	return out
}

// round2 and round3 keep two and three decimals: the JSON carries no
// false precision.
func round2(x float64) float64 { return math.Round(x*100) / 100 }
func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// elapsedSince is time.Since in seconds, rounded to 0.1 s.
func elapsedSince(t time.Time) float64 {
	return math.Round(time.Since(t).Seconds()*10) / 10
}
