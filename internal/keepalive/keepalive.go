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

// Policy decides keep-alive per function. It is safe for concurrent use.
type Policy interface {
	// Observe records a call of fn arriving at t.
	Observe(fn string, t time.Time)
	// Done records a call of fn ending at t.
	Done(fn string, t time.Time)
	// Decide returns the decision for fn's instance after a call ended.
	Decide(fn string) Decision
	// Name identifies the policy in reports.
	Name() string
}

// Fixed keeps instances for a fixed time.
type Fixed struct{ KeepAlive time.Duration }

func (f Fixed) Observe(string, time.Time) {}
func (f Fixed) Done(string, time.Time)    {}
func (f Fixed) Decide(string) Decision    { return Decision{KeepAlive: f.KeepAlive} }
func (f Fixed) Name() string              { return "fixed-" + f.KeepAlive.String() }

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
	// histogram is not used (the paper switches to ARIMA there; Gust keeps the
	// instance for the whole Range instead). Default 0.5.
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

type history struct {
	last  time.Time // end of the latest call that ended
	bins  []int
	total int // idle times recorded, in range or not
	out   int // idle times beyond Range
}

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

// Observe records the idle time from the end of fn's latest finished call
// to this arrival: how long an instance that just became free would have
// waited. (Arrival-to-arrival gaps mislead for long calls that overlap.)
func (h *Hybrid) Observe(fn string, t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hist := h.historyLocked(fn)
	if !hist.last.IsZero() && !t.Before(hist.last) {
		idle := t.Sub(hist.last)
		hist.total++
		if bin := int(idle / h.cfg.BinWidth); bin < len(hist.bins) {
			hist.bins[bin]++
		} else {
			hist.out++
		}
	}
}

// Done records the end of a call.
func (h *Hybrid) Done(fn string, t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if hist := h.historyLocked(fn); t.After(hist.last) {
		hist.last = t
	}
}

func (h *Hybrid) historyLocked(fn string) *history {
	hist, ok := h.fns[fn]
	if !ok {
		hist = &history{bins: make([]int, int(h.cfg.Range/h.cfg.BinWidth))}
		h.fns[fn] = hist
	}
	return hist
}

// Decide applies the histogram when it is representative.
func (h *Hybrid) Decide(fn string) Decision {
	h.mu.Lock()
	defer h.mu.Unlock()
	fallback := Decision{KeepAlive: h.cfg.Fallback}
	hist, ok := h.fns[fn]
	if !ok || hist.total < h.cfg.MinSamples {
		return fallback
	}
	if float64(hist.out)/float64(hist.total) > h.cfg.MaxOutOfRange {
		return Decision{KeepAlive: h.cfg.Range}
	}
	if cv(hist.bins) < h.cfg.MinCV {
		return fallback
	}
	inRange := hist.total - hist.out
	head := percentileBin(hist.bins, inRange, 0.05)
	tail := percentileBin(hist.bins, inRange, 0.99)
	// The paper widens the window by 10% on each side.
	pre := time.Duration(float64(time.Duration(head)*h.cfg.BinWidth) * 0.9)
	end := time.Duration(float64(time.Duration(tail+1)*h.cfg.BinWidth) * 1.1)
	return Decision{PreWarm: pre, KeepAlive: end - pre}
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
