package keepalive

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The 2021 trace sample is 21 minutes long: most of its calls are first
// calls, which no policy keeps warm, so it cannot tell policies apart. A
// synthetic trace drawn from the distributions of the full 14-day 2019
// trace (shared/traces/azure2019-cdfs) can: per app, invocations a day,
// the coefficient of variation of its inter-arrival times, and the
// execution time.

// CDF is an empirical cumulative distribution: values and F(value),
// increasing.
type CDF struct {
	x, f []float64
}

// ReadCDF reads "value,F(value)[,count]" lines; a header line and blank
// lines are skipped.
func ReadCDF(r io.Reader) (CDF, error) {
	var c CDF
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		fields := strings.Split(line, ",")
		if len(fields) < 2 {
			return CDF{}, fmt.Errorf("cdf line %d: want value,F(value)", n)
		}
		x, err1 := strconv.ParseFloat(strings.TrimSpace(fields[0]), 64)
		f, err2 := strconv.ParseFloat(strings.TrimSpace(fields[1]), 64)
		if err1 != nil || err2 != nil {
			if n == 1 && len(c.x) == 0 {
				continue // a header
			}
			return CDF{}, fmt.Errorf("cdf line %d: %q is not two numbers", n, line)
		}
		// !(f >= 0 && f <= 1) also refuses NaN, which every comparison passes.
		if math.IsNaN(x) || math.IsInf(x, 0) || !(f >= 0 && f <= 1) || (len(c.x) > 0 && (x < c.x[len(c.x)-1] || f < c.f[len(c.f)-1])) {
			return CDF{}, fmt.Errorf("cdf line %d: %q does not increase within [0, 1]", n, line)
		}
		c.x, c.f = append(c.x, x), append(c.f, f)
	}
	if err := sc.Err(); err != nil {
		return CDF{}, fmt.Errorf("read cdf: %w", err)
	}
	if len(c.x) == 0 {
		return CDF{}, fmt.Errorf("cdf: no values")
	}
	return c, nil
}

// Quantile returns the value at probability u in [0, 1], interpolating
// between the table's points.
func (c CDF) Quantile(u float64) float64 {
	i := sort.SearchFloat64s(c.f, u)
	switch {
	case i == 0:
		return c.x[0]
	case i >= len(c.f):
		return c.x[len(c.x)-1]
	}
	f0, f1 := c.f[i-1], c.f[i]
	if f1 == f0 {
		return c.x[i]
	}
	// Clamped: rounding can put the interpolation just past x[i] (0,.7 and
	// 5,.9 give 5.000000000000001 at .9), above the table's largest value.
	q := c.x[i-1] + (c.x[i]-c.x[i-1])*(u-f0)/(f1-f0)
	return min(max(q, c.x[i-1]), c.x[i])
}

// Synth draws traces from the 2019 distributions.
type Synth struct {
	Invokes  CDF // invocations per app per day
	CV       CDF // coefficient of variation of an app's inter-arrival times
	ExecTime CDF // mean execution time of a function, ms
	// MaxPerDay caps an app's rate, to bound the trace's size: apps invoked
	// more often than every few seconds are warm under any policy.
	MaxPerDay float64
}

// LoadSynth2019 reads the 2019 distributions from dir (the folder
// azure2019-cdfs of the traces: invokesCDF.csv, CVs.csv, execTimeCDF.csv).
func LoadSynth2019(dir string) (Synth, error) {
	read := func(name string) (CDF, error) {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return CDF{}, err
		}
		defer f.Close()
		c, err := ReadCDF(f)
		if err != nil {
			return CDF{}, fmt.Errorf("%s: %w", name, err)
		}
		return c, nil
	}
	var s Synth
	var err error
	if s.Invokes, err = read("invokesCDF.csv"); err != nil {
		return Synth{}, err
	}
	if s.CV, err = read("CVs.csv"); err != nil {
		return Synth{}, err
	}
	if s.ExecTime, err = read("execTimeCDF.csv"); err != nil {
		return Synth{}, err
	}
	return s, nil
}

// Generate returns the calls of apps apps over span, by start. Each app is
// one function (half the apps in the trace have one), starting at a random
// phase; its inter-arrival times have the drawn mean and CV: periodic with
// jitter near 0, gamma up to 1, a two-phase hyperexponential above.
func (s Synth) Generate(apps int, span time.Duration, rng *rand.Rand) []Call {
	maxPerDay := s.MaxPerDay
	if maxPerDay <= 0 {
		maxPerDay = 20_000
	}
	var calls []Call
	for a := range apps {
		perDay := math.Min(math.Max(s.Invokes.Quantile(rng.Float64()), 1), maxPerDay)
		mean := 24 * time.Hour.Seconds() / perDay
		cv := s.CV.Quantile(rng.Float64())
		exec := time.Duration(math.Max(s.ExecTime.Quantile(rng.Float64()), 1) * float64(time.Millisecond))
		fn := "app" + strconv.Itoa(a)
		t := rng.Float64() * mean
		for t < span.Seconds() {
			calls = append(calls, Call{Func: fn, Start: time.Duration(t * float64(time.Second)), Duration: exec})
			t += interArrival(rng, mean, cv)
		}
	}
	sort.SliceStable(calls, func(i, j int) bool { return calls[i].Start < calls[j].Start })
	return calls
}

// interArrival draws a gap (seconds) with the given mean and coefficient
// of variation.
func interArrival(rng *rand.Rand, mean, cv float64) float64 {
	switch {
	case cv < 0.05: // a timer: the period with a little jitter
		return math.Max(mean*(1+cv*rng.NormFloat64()), mean/100)
	case cv <= 1: // gamma with shape 1/cv²
		k := 1 / (cv * cv)
		return gamma(rng, k) * mean / k
	default: // balanced two-phase hyperexponential
		c2 := cv * cv
		p := 0.5 * (1 + math.Sqrt((c2-1)/(c2+1)))
		if rng.Float64() < p {
			return rng.ExpFloat64() * mean / (2 * p)
		}
		return rng.ExpFloat64() * mean / (2 * (1 - p))
	}
}

// gamma draws from Gamma(k, 1) (Marsaglia and Tsang; k ≥ 1 here).
func gamma(rng *rand.Rand, k float64) float64 {
	d := k - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := rng.Float64()
		if math.Log(u) < 0.5*x*x+d-d*v+d*math.Log(v) {
			return d * v
		}
	}
}
