package keepalive

import (
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"time"
)

// Call is one invocation of a trace.
type Call struct {
	Func     string
	Start    time.Duration // from the trace start
	Duration time.Duration
}

// ReadAzure2021 reads the Azure Functions 2021 trace format
// (app,func,end_timestamp,duration; seconds), returning calls by start.
func ReadAzure2021(r io.Reader) ([]Call, error) {
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read trace: %w", err)
	}
	if len(rows) == 0 || len(rows[0]) < 4 || rows[0][2] != "end_timestamp" {
		return nil, fmt.Errorf("read trace: want header app,func,end_timestamp,duration")
	}
	calls := make([]Call, 0, len(rows)-1)
	for i, row := range rows[1:] {
		end, err1 := strconv.ParseFloat(row[2], 64)
		dur, err2 := strconv.ParseFloat(row[3], 64)
		if err1 != nil || err2 != nil || dur < 0 || end < dur {
			return nil, fmt.Errorf("read trace: bad row %d: %v", i+2, row)
		}
		calls = append(calls, Call{
			Func:     row[0] + "/" + row[1],
			Start:    time.Duration((end - dur) * float64(time.Second)),
			Duration: time.Duration(dur * float64(time.Second)),
		})
	}
	sort.SliceStable(calls, func(i, j int) bool { return calls[i].Start < calls[j].Start })
	return calls, nil
}

// Result is what a replay measured.
type Result struct {
	Policy      string
	Calls       int
	ColdStarts  int
	IdleMemSecs float64 // MB·s of memory held by loaded, idle instances
	// Per function: its calls and its cold starts, for the per-function
	// view the paper reports (FuncColdPercent).
	FuncCalls, FuncColdStarts map[string]int
}

// FuncColdPercent returns the cold-start percentage of the function at
// quantile q (0.5: the median function) of the functions' percentages.
func (r Result) FuncColdPercent(q float64) float64 {
	pct := make([]float64, 0, len(r.FuncCalls))
	for fn, n := range r.FuncCalls {
		pct = append(pct, 100*float64(r.FuncColdStarts[fn])/float64(n))
	}
	if len(pct) == 0 {
		return 0
	}
	slices.Sort(pct)
	return pct[min(int(q*float64(len(pct))), len(pct)-1)]
}

// ColdPercent is the share of calls that found no warm instance.
func (r Result) ColdPercent() float64 {
	if r.Calls == 0 {
		return 0
	}
	return 100 * float64(r.ColdStarts) / float64(r.Calls)
}

// instance is one simulated instance of a function.
type instance struct {
	busyFrom  time.Duration // start of its latest call
	busyUntil time.Duration // end of its latest call
	freedAt   time.Duration // when that end was taken (busyUntil once taken)
	loadFrom  time.Duration // loaded (warm) in [loadFrom, loadUntil)
	loadUntil time.Duration
}

// Replay runs calls against policy in virtual time, each instance holding
// memMB while loaded, and counts cold starts and idle memory·time. Events
// are taken in time order, as a live invoker sees them: an arrival takes a
// loaded idle instance of its function or starts one (a cold start), and
// at a call's end the policy decides that instance's window, knowing which
// other instances are busy then: the instance's rank is one more than
// that number, and the policy decides per rank (see MaxRank). Time is virtual, so a compressed
// replay is the same replay with every duration (the trace's and the
// policy's) divided by k.
func Replay(calls []Call, policy Policy, memMB float64) Result {
	res := Result{Policy: policy.Name(), Calls: len(calls), FuncCalls: map[string]int{}, FuncColdStarts: map[string]int{}}
	pools := map[string][]*instance{}
	var last time.Duration
	for _, c := range calls {
		if e := c.Start + c.Duration; e > last {
			last = e
		}
	}
	idle := func(in *instance, upTo time.Duration) float64 {
		// Loaded time from the end of its last call to upTo.
		from := max(in.busyUntil, in.loadFrom)
		to := min(in.loadUntil, upTo)
		if to <= from {
			return 0
		}
		return (to - from).Seconds() * memMB
	}
	// Ends of calls not yet taken, in time order.
	type ending struct {
		fn string
		in *instance
		at time.Duration
	}
	var ends []ending
	end := func(e ending) {
		// The instance's rank: one above the function's instances still
		// busy at its end.
		rank := 1
		for _, other := range pools[e.fn] {
			if other != e.in && other.busyFrom <= e.at && e.at < other.busyUntil {
				rank++
			}
		}
		policy.Done(e.fn, time.Time{}.Add(e.at))
		d := policy.Decide(e.fn, rank)
		e.in.loadFrom, e.in.loadUntil = e.at+d.PreWarm, e.at+d.PreWarm+d.KeepAlive
		e.in.freedAt = e.at
	}
	for _, c := range calls {
		for len(ends) > 0 && ends[0].at <= c.Start {
			end(ends[0])
			ends = ends[1:]
		}
		policy.Observe(c.Func, time.Time{}.Add(c.Start))
		// The most recently freed loaded instance, as a live pool takes it.
		var use *instance
		for _, in := range pools[c.Func] {
			if in.busyUntil <= c.Start && in.loadFrom <= c.Start && c.Start < in.loadUntil && (use == nil || in.freedAt > use.freedAt) {
				use = in
			}
		}
		res.FuncCalls[c.Func]++
		if use == nil {
			res.ColdStarts++
			res.FuncColdStarts[c.Func]++
			use = &instance{}
			pools[c.Func] = append(pools[c.Func], use)
		} else {
			res.IdleMemSecs += idle(use, c.Start)
		}
		done := c.Start + c.Duration
		use.busyFrom, use.busyUntil = c.Start, done
		// Busy until its end is taken; then the policy decides.
		use.loadFrom, use.loadUntil = done, done
		i := sort.Search(len(ends), func(i int) bool { return ends[i].at > done })
		ends = append(ends, ending{})
		copy(ends[i+1:], ends[i:])
		ends[i] = ending{c.Func, use, done}
	}
	for _, e := range ends {
		end(e)
	}
	for _, pool := range pools {
		for _, in := range pool {
			res.IdleMemSecs += idle(in, last)
		}
	}
	return res
}

// Scale divides every duration of calls by k (time compression).
func Scale(calls []Call, k float64) []Call {
	out := make([]Call, len(calls))
	for i, c := range calls {
		out[i] = Call{Func: c.Func, Start: time.Duration(float64(c.Start) / k), Duration: time.Duration(float64(c.Duration) / k)}
	}
	return out
}
