package bench

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// figures are what one measurement produced.
type figures struct {
	p50, p99 time.Duration
	tput     float64       // operations per second
	cpu      time.Duration // process CPU (user+system) per operation; 0 when not measured
	ops      int64         // operations completed without error
	errs     int64
	err      error   // the first error, when errs > 0
	value    float64 // the figure of a series of values (its unit is the series')
}

// op is one operation of a closed-loop load: an HTTP request, a NATS
// request, a store read. worker is the caller's index in [0, c).
type op func(ctx context.Context, worker int) error

// closedLoop runs fn from c workers, each starting its next operation as
// soon as the last one ended, for d, and measures every operation's
// latency. Operations in flight at the deadline finish and count;
// throughput is operations over the time until the last one ended.
// Latencies are kept as sorted samples, so percentiles are exact.
func closedLoop(ctx context.Context, c int, d time.Duration, fn op) figures {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lats := make([][]time.Duration, c)
	var errs atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	cpu0, cpuOK := processCPU()
	start := time.Now()
	deadline := start.Add(d)
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				if err := fn(ctx, w); err != nil {
					if ctx.Err() != nil {
						break
					}
					errs.Add(1)
					once.Do(func() { firstErr = err })
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			lats[w] = lat
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, _ := processCPU()
	all := slices.Concat(lats...)
	f := summarize(all, elapsed)
	f.errs, f.err = errs.Load(), firstErr
	if cpuOK && f.ops > 0 {
		f.cpu = (cpu1 - cpu0) / time.Duration(f.ops)
	}
	return f
}

// summarize computes the figures of latency samples taken over elapsed.
// It sorts lat in place.
func summarize(lat []time.Duration, elapsed time.Duration) figures {
	slices.Sort(lat)
	f := figures{ops: int64(len(lat)), p50: percentile(lat, 50), p99: percentile(lat, 99)}
	if elapsed > 0 {
		f.tput = float64(len(lat)) / elapsed.Seconds()
	}
	return f
}

// percentile returns the p-th percentile (0 < p ≤ 100) of sorted samples
// by the nearest-rank method: the smallest sample that at least p% of the
// samples do not exceed. It returns 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	return sorted[min(max(rank, 1), n)-1]
}

// median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none. xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// ratio returns a/b, or 0 when either side was not measured.
func ratio(a, b float64) float64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	return a / b
}
