// Package keepalive decides how long an idle function instance stays warm.
//
// Two policies: Fixed keeps every instance for a fixed time after its last
// call (OpenWhisk keeps idle containers 10 minutes). Hybrid is the hybrid
// histogram policy of Shahrad et al., "Serverless in the Wild" (USENIX ATC
// 2020): it learns each function's idle times in a histogram and, when the
// histogram is representative, unloads the instance right after a call and
// loads it again shortly before the next call is expected (the pre-warm
// window, the 5th percentile of idle times) for as long as calls usually
// take to come (up to the 99th percentile). With too little or too spread
// history it falls back to the fixed policy.
package keepalive

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// Decision says what to do with an instance once a call ended: unload it
// and load it again after PreWarm (0: keep it loaded), then keep it loaded
// for KeepAlive.
type Decision struct {
	PreWarm   time.Duration
	KeepAlive time.Duration
}

// Ranks: a function's instances are reused most recently freed first, so
// the instance freed when its function's busy instances dropped from r to
// r−1 is the one the next rise to r busy instances takes. It has rank r:
// rank 1 serves calls one at a time, rank 2 and up serve bursts, and each
// rank waits for its next call far longer than the one below it. Policies
// decide per rank.

// MaxRank is the highest rank policies tell apart; instances above it
// share its decisions.
const MaxRank = 8

// Policy decides keep-alive per function. It is safe for concurrent use.
type Policy interface {
	// Observe records a call of fn arriving at t.
	Observe(fn string, t time.Time)
	// Done records a call of fn ending at t.
	Done(fn string, t time.Time)
	// Decide returns the decision for an instance of fn of the given rank
	// (1 and up) once it became idle.
	Decide(fn string, rank int) Decision
	// Name identifies the policy in reports.
	Name() string
}

// Fixed keeps instances for a fixed time.
type Fixed struct{ KeepAlive time.Duration }

func (f Fixed) Observe(string, time.Time)   {}
func (f Fixed) Done(string, time.Time)      {}
func (f Fixed) Decide(string, int) Decision { return Decision{KeepAlive: f.KeepAlive} }
func (f Fixed) Name() string                { return "fixed-" + f.KeepAlive.String() }

// HybridConfig tunes the hybrid histogram policy. The defaults are the
// paper's: 1-minute bins over 4 hours, 5th/99th percentiles, 10% margin.
// When replaying a trace compressed k times, divide BinWidth, Range and
// Fallback by k too.
type HybridConfig struct {
	BinWidth   time.Duration // default 1 minute
	Range      time.Duration // longest idle time tracked; default 4 hours
	Fallback   time.Duration // fixed keep-alive while history is short; default 10 minutes
	MinSamples int           // idle times needed before trusting the histogram; default 5
	// MaxOutOfRange is the share of idle times beyond Range above which the
	// histogram is not used. The paper forecasts the next idle time with
	// ARIMA there; Gust takes the median of the last few idle times beyond
	// Range as the forecast, and pre-warms at 85% of it for 30% of it, as
	// the paper does with its forecast. Default 0.5.
	MaxOutOfRange float64
	// MinCV is the coefficient of variation of the bin counts below which the
	// histogram is too flat to predict anything. Default 2, as in the paper.
	MinCV float64
}

// Hybrid is the hybrid histogram policy.
type Hybrid struct {
	cfg HybridConfig
	mu  sync.Mutex
	fns map[string]*history
}

// history is what the policy knows of one function: its busy instances
// and, per rank, when that rank's instance was last freed and the idle
// times it saw.
type history struct {
	busy   int
	freed  [MaxRank]time.Time // when the instance of each rank was last freed
	byRank [MaxRank]*idleTimes
}

type idleTimes struct {
	bins  []int
	total int             // idle times recorded, in range or not
	out   int             // idle times beyond Range
	long  []time.Duration // the latest idle times beyond Range (at most outKept)
}

// outKept is how many idle times beyond Range the forecast looks at.
const outKept = 5

func rankIndex(rank int) int { return min(max(rank, 1), MaxRank) - 1 }

// NewHybrid returns a hybrid policy.
func NewHybrid(cfg HybridConfig) *Hybrid {
	if cfg.BinWidth <= 0 {
		cfg.BinWidth = time.Minute
	}
	if cfg.Range <= 0 {
		cfg.Range = 4 * time.Hour
	}
	if cfg.Fallback <= 0 {
		cfg.Fallback = 10 * time.Minute
	}
	if cfg.MinSamples <= 0 {
		cfg.MinSamples = 5
	}
	if cfg.MaxOutOfRange <= 0 {
		cfg.MaxOutOfRange = 0.5
	}
	if cfg.MinCV <= 0 {
		cfg.MinCV = 2
	}
	return &Hybrid{cfg: cfg, fns: map[string]*history{}}
}

func (h *Hybrid) Name() string { return "hybrid-histogram" }

// Observe records a call arriving: it takes the instance of rank busy+1,
// whose idle time (since it was freed) goes into that rank's histogram.
func (h *Hybrid) Observe(fn string, t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hist := h.historyLocked(fn)
	hist.busy++
	i := rankIndex(hist.busy)
	if freed := hist.freed[i]; !freed.IsZero() && !t.Before(freed) {
		h.record(hist, i, t.Sub(freed))
	}
}

func (h *Hybrid) record(hist *history, i int, idle time.Duration) {
	it := hist.byRank[i]
	if it == nil {
		it = &idleTimes{bins: make([]int, int(h.cfg.Range/h.cfg.BinWidth))}
		hist.byRank[i] = it
	}
	it.total++
	if bin := int(idle / h.cfg.BinWidth); bin < len(it.bins) {
		it.bins[bin]++
		return
	}
	it.out++
	if len(it.long) == outKept {
		it.long = append(it.long[:0], it.long[1:]...)
	}
	it.long = append(it.long, idle)
}

// Done records a call ending: the instance of rank busy is freed.
func (h *Hybrid) Done(fn string, t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hist := h.historyLocked(fn)
	if hist.busy > 0 {
		hist.freed[rankIndex(hist.busy)] = t
		hist.busy--
	}
}

func (h *Hybrid) historyLocked(fn string) *history {
	hist, ok := h.fns[fn]
	if !ok {
		hist = &history{}
		h.fns[fn] = hist
	}
	return hist
}

// Decide applies the rank's histogram when it is representative.
func (h *Hybrid) Decide(fn string, rank int) Decision {
	h.mu.Lock()
	defer h.mu.Unlock()
	fallback := Decision{KeepAlive: h.cfg.Fallback}
	hist, ok := h.fns[fn]
	if !ok {
		return fallback
	}
	it := hist.byRank[rankIndex(rank)]
	if it == nil || it.total < h.cfg.MinSamples {
		return fallback
	}
	if float64(it.out)/float64(it.total) > h.cfg.MaxOutOfRange {
		// Calls come rarer than Range: forecast the next idle time.
		next := median(it.long)
		if rank > 1 {
			return fallback
		}
		return Decision{PreWarm: next * 85 / 100, KeepAlive: next * 30 / 100}
	}
	if cv(it.bins) < h.cfg.MinCV {
		return fallback
	}
	inRange := it.total - it.out
	head := percentileBin(it.bins, inRange, 0.05)
	tail := percentileBin(it.bins, inRange, 0.99)
	// The paper widens the window by 10% on each side.
	pre := time.Duration(float64(time.Duration(head)*h.cfg.BinWidth) * 0.9)
	end := time.Duration(float64(time.Duration(tail+1)*h.cfg.BinWidth) * 1.1)
	if rank > 1 {
		// An instance made for a burst is kept from its call's end, never
		// longer than the fallback: its idle times are long and spread, and
		// their 99th percentile would hold memory for hours (measured in
		// TestReplaySynthetic2019).
		pre, end = 0, min(end, h.cfg.Fallback)
	}
	return Decision{PreWarm: pre, KeepAlive: end - pre}
}

// median returns the median of ds (0 for none).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// percentileBin returns the index of the bin holding the p-th quantile.
func percentileBin(bins []int, n int, p float64) int {
	want := int(math.Ceil(p * float64(n)))
	if want < 1 {
		want = 1
	}
	seen := 0
	for i, c := range bins {
		seen += c
		if seen >= want {
			return i
		}
	}
	return len(bins) - 1
}

// cv is the coefficient of variation of the bin counts.
func cv(bins []int) float64 {
	var sum, sq float64
	for _, c := range bins {
		sum += float64(c)
	}
	mean := sum / float64(len(bins))
	if mean == 0 {
		return 0
	}
	for _, c := range bins {
		d := float64(c) - mean
		sq += d * d
	}
	return math.Sqrt(sq/float64(len(bins))) / mean
}

// Parse reads a policy setting: "" or "fixed" (10 minutes), "fixed:DURATION",
// or "hybrid".
func Parse(s string) (Policy, error) {
	name, arg, _ := strings.Cut(s, ":")
	switch name {
	case "", "fixed":
		d := 10 * time.Minute
		if arg != "" {
			var err error
			if d, err = time.ParseDuration(arg); err != nil || d <= 0 {
				return nil, fmt.Errorf("keep-alive %q: want fixed:DURATION with a positive duration such as fixed:10m", s)
			}
		}
		return Fixed{KeepAlive: d}, nil
	case "hybrid":
		if arg != "" {
			return nil, fmt.Errorf("keep-alive %q: hybrid takes no argument", s)
		}
		return NewHybrid(HybridConfig{}), nil
	}
	return nil, fmt.Errorf("keep-alive %q: want fixed, fixed:DURATION or hybrid", s)
}
