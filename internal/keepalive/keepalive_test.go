package keepalive

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFixedFallbackUntilHistory(t *testing.T) {
	h := NewHybrid(HybridConfig{})
	base := time.Unix(0, 0)
	if d := h.Decide("f", 1); d != (Decision{KeepAlive: 10 * time.Minute}) {
		t.Fatalf("no history: %+v", d)
	}
	for i := 0; i < 3; i++ {
		at := base.Add(time.Duration(i) * 30 * time.Minute)
		h.Observe("f", at)
		h.Done("f", at.Add(time.Second))
	}
	if d := h.Decide("f", 1); d.PreWarm != 0 || d.KeepAlive != 10*time.Minute {
		t.Fatalf("short history: %+v", d)
	}
}

func TestHybridLearnsPeriod(t *testing.T) {
	h := NewHybrid(HybridConfig{})
	base := time.Unix(0, 0)
	for i := 0; i < 20; i++ {
		at := base.Add(time.Duration(i) * 30 * time.Minute)
		h.Observe("f", at)
		h.Done("f", at.Add(time.Second))
	}
	d := h.Decide("f", 1)
	// All idle times are 30 min: unload, pre-warm at ~27 min, keep past 31 min.
	if d.PreWarm < 25*time.Minute || d.PreWarm > 30*time.Minute {
		t.Errorf("pre-warm %v, want just under 30m", d.PreWarm)
	}
	if end := d.PreWarm + d.KeepAlive; end <= 30*time.Minute || end > 35*time.Minute {
		t.Errorf("window ends at %v, want just past 31m", end)
	}
}

func TestHybridOutOfRange(t *testing.T) {
	h := NewHybrid(HybridConfig{Range: time.Hour})
	base := time.Unix(0, 0)
	for i := 0; i < 10; i++ {
		at := base.Add(time.Duration(i) * 2 * time.Hour)
		h.Observe("f", at)
		h.Done("f", at.Add(time.Second))
	}
	// Idle times of 2h − 1s beyond a 1-hour range: the forecast is the
	// median of the latest, pre-warm at 85% of it, for 30% of it.
	idle := 2*time.Hour - time.Second
	if d := h.Decide("f", 1); d.PreWarm != idle*85/100 || d.KeepAlive != idle*30/100 {
		t.Fatalf("idle times beyond the range: %+v", d)
	}
	if d := h.Decide("f", 2); d != (Decision{KeepAlive: 10 * time.Minute}) {
		t.Fatalf("rank 2 without history: %+v, want the fallback", d)
	}
}

// TestHybridRanks: concurrent calls give each rank its own idle times. A
// function called every 30 minutes with bursts of two: rank 1 learns the
// period; rank 2, freed first in each burst, waits as long but is kept no
// longer than the fallback and never unloaded for a pre-warm.
func TestHybridRanks(t *testing.T) {
	h := NewHybrid(HybridConfig{})
	base := time.Unix(0, 0)
	for i := 0; i < 20; i++ {
		at := base.Add(time.Duration(i) * 30 * time.Minute)
		h.Observe("f", at)
		h.Observe("f", at.Add(time.Second)) // a second, concurrent call
		h.Done("f", at.Add(2*time.Second))  // frees rank 2
		h.Done("f", at.Add(3*time.Second))  // frees rank 1
	}
	d1 := h.Decide("f", 1)
	if d1.PreWarm < 25*time.Minute || d1.PreWarm+d1.KeepAlive <= 30*time.Minute {
		t.Errorf("rank 1: %+v, want a window around 30m", d1)
	}
	if d2 := h.Decide("f", 2); d2.PreWarm != 0 || d2.KeepAlive != 10*time.Minute {
		t.Errorf("rank 2: %+v, want kept from the call's end, capped at the 10m fallback", d2)
	}
	if d := h.Decide("f", MaxRank+5); d != (Decision{KeepAlive: 10 * time.Minute}) {
		t.Errorf("a rank never seen: %+v, want the fallback", d)
	}
}

// A timer-like function every 30 minutes: a fixed 10-minute keep-alive
// cold-starts every call; the hybrid policy learns the period and keeps an
// instance loaded only around the expected arrival.
func TestReplaySynthetic(t *testing.T) {
	var calls []Call
	for i := 0; i < 48; i++ {
		calls = append(calls, Call{Func: "timer", Start: time.Duration(i) * 30 * time.Minute, Duration: time.Second})
	}
	fixed := Replay(calls, Fixed{KeepAlive: 10 * time.Minute}, 128)
	hybrid := Replay(calls, NewHybrid(HybridConfig{}), 128)
	if fixed.ColdStarts != 48 {
		t.Errorf("fixed: %d cold starts, want 48", fixed.ColdStarts)
	}
	if hybrid.ColdStarts >= 10 {
		t.Errorf("hybrid: %d cold starts, want only the learning phase", hybrid.ColdStarts)
	}
	// A 30-minute fixed keep-alive is warm too, but holds memory the whole time.
	long := Replay(calls, Fixed{KeepAlive: 31 * time.Minute}, 128)
	if hybrid.IdleMemSecs >= long.IdleMemSecs/2 {
		t.Errorf("hybrid idle %0.f MB·s, fixed-31m %0.f MB·s: want far less", hybrid.IdleMemSecs, long.IdleMemSecs)
	}
}

func TestReplayConcurrentCallsNeedInstances(t *testing.T) {
	calls := []Call{{"f", 0, time.Second}, {"f", 500 * time.Millisecond, time.Second}, {"f", 3 * time.Second, time.Second}}
	r := Replay(calls, Fixed{KeepAlive: time.Minute}, 1)
	if r.ColdStarts != 2 {
		t.Fatalf("cold starts %d, want 2 (one per overlapping call)", r.ColdStarts)
	}
}

func TestReadAzure2021Errors(t *testing.T) {
	for _, in := range []string{"", "a,b,c\n", "app,func,end_timestamp,duration\nx,y,1,z\n", "app,func,end_timestamp,duration\nx,y,1,2\n"} {
		if _, err := ReadAzure2021(strings.NewReader(in)); err == nil {
			t.Errorf("accepted %q", in)
		}
	}
}

func FuzzReadAzure2021(f *testing.F) {
	f.Add("app,func,end_timestamp,duration\na,b,2.5,1.0\n")
	f.Add("app,func,end_timestamp,duration\na,b,x,1\n")
	f.Fuzz(func(t *testing.T, in string) {
		calls, err := ReadAzure2021(strings.NewReader(in))
		if err != nil {
			return
		}
		for i := 1; i < len(calls); i++ {
			if calls[i].Start < calls[i-1].Start {
				t.Fatal("calls not sorted by start")
			}
		}
		Replay(calls, NewHybrid(HybridConfig{}), 1)
	})
}

// TestReplayAzure2021 replays the real trace sample under both policies and
// logs the figures reported in the scheduling issue (run with -v).
func TestReplayAzure2021(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "traces", "azure2021", "Azure2021_200.csv")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("trace sample not found beside the checkout: %v", err)
	}
	defer f.Close()
	calls, err := ReadAzure2021(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 199 {
		t.Fatalf("read %d calls, want 199", len(calls))
	}
	for _, k := range []float64{1, 60} {
		scaled := Scale(calls, k)
		kd := func(d time.Duration) time.Duration { return time.Duration(float64(d) / k) }
		fixed := Replay(scaled, Fixed{KeepAlive: kd(10 * time.Minute)}, 256)
		hybrid := Replay(scaled, NewHybrid(HybridConfig{BinWidth: kd(time.Minute), Range: kd(4 * time.Hour), Fallback: kd(10 * time.Minute)}), 256)
		t.Logf("k=%v  %-18s cold %3d/%d (%.1f%%)  idle %.0f MB·s", k, fixed.Policy, fixed.ColdStarts, fixed.Calls, fixed.ColdPercent(), fixed.IdleMemSecs*k)
		t.Logf("k=%v  %-18s cold %3d/%d (%.1f%%)  idle %.0f MB·s", k, hybrid.Policy, hybrid.ColdStarts, hybrid.Calls, hybrid.ColdPercent(), hybrid.IdleMemSecs*k)
		if hybrid.ColdStarts > fixed.ColdStarts {
			t.Errorf("k=%v: hybrid has more cold starts (%d) than fixed (%d)", k, hybrid.ColdStarts, fixed.ColdStarts)
		}
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]string{"": "fixed-10m0s", "fixed": "fixed-10m0s", "fixed:90s": "fixed-1m30s", "hybrid": "hybrid-histogram"} {
		p, err := Parse(in)
		if err != nil || p.Name() != want {
			t.Errorf("Parse(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"fixed:-1s", "fixed:x", "hybrid:3", "lru"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestReadCDF(t *testing.T) {
	c, err := ReadCDF(strings.NewReader("length,F(x),count\n1,0.5,10\n\n3,1.0,20\n"))
	if err != nil {
		t.Fatal(err)
	}
	for u, want := range map[float64]float64{0: 1, 0.25: 1, 0.5: 1, 0.75: 2, 1: 3} {
		if got := c.Quantile(u); got != want {
			t.Errorf("Quantile(%v) = %v, want %v", u, got, want)
		}
	}
	for _, in := range []string{"", "x,y\n", "1,0.5\n0,0.6\n", "1,0.5\n2,0.4\n", "1,1.5\n", "1\n", "0,NaN\n1,1\n"} {
		if _, err := ReadCDF(strings.NewReader(in)); err == nil {
			t.Errorf("accepted %q", in)
		}
	}
}

func FuzzReadCDF(f *testing.F) {
	f.Add("1,0.1\n5,0.9,3\n")
	f.Add("a,b\n")
	f.Add("0,.7\n5,.9")  // rounding put Quantile(.9) above the largest value
	f.Add("0,NaN\n5,.9") // F = NaN passed every comparison
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ReadCDF(strings.NewReader(in))
		if err != nil {
			return
		}
		lo, hi := c.Quantile(0), c.Quantile(1)
		for _, u := range []float64{0, 0.1, 0.5, 0.9, 1} {
			if q := c.Quantile(u); q < lo || q > hi || math.IsNaN(q) {
				t.Fatalf("Quantile(%v) = %v outside [%v, %v]", u, q, lo, hi)
			}
		}
	})
}

// synth2019 reads the 2019 distributions beside the checkout.
func synth2019(t *testing.T) Synth {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "traces", "azure2019-cdfs")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("2019 trace distributions not found beside the checkout: %v", err)
	}
	s, err := LoadSynth2019(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSynthMatchesPublishedFacts checks the generator against facts of the
// full trace (shared/traces/README.md): 81.9% of apps are invoked at most
// once a minute, 41.5% at most once an hour.
func TestSynthMatchesPublishedFacts(t *testing.T) {
	s := synth2019(t)
	rng := rand.New(rand.NewPCG(1, 2))
	perMinute, perHour := 0, 0
	const apps = 20000
	for range apps {
		perDay := s.Invokes.Quantile(rng.Float64())
		if perDay <= 24*60 {
			perMinute++
		}
		if perDay <= 24 {
			perHour++
		}
	}
	if p := 100 * float64(perMinute) / apps; math.Abs(p-81.9) > 2 {
		t.Errorf("%.1f%% of apps at most once a minute, want about 81.9%%", p)
	}
	if p := 100 * float64(perHour) / apps; math.Abs(p-41.5) > 2 {
		t.Errorf("%.1f%% of apps at most once an hour, want about 41.5%%", p)
	}
	calls := s.Generate(50, 6*time.Hour, rng)
	for i := 1; i < len(calls); i++ {
		if calls[i].Start < calls[i-1].Start || calls[i].Start >= 6*time.Hour || calls[i].Duration <= 0 {
			t.Fatalf("call %d: %+v after %+v", i, calls[i], calls[i-1])
		}
	}
}

// TestReplaySynthetic2019 replays a 3-day trace of 400 apps drawn from the
// 2019 distributions against a fixed 10-minute keep-alive and the hybrid
// histogram policy (run with -v for the figures reported in the scheduling
// issue). Cold starts are counted two ways: per app, as the paper reports
// them (the share of an app's calls that were cold, across apps), and over
// all calls, where a few busy apps weigh most.
func TestReplaySynthetic2019(t *testing.T) {
	s := synth2019(t)
	calls := s.Generate(400, 72*time.Hour, rand.New(rand.NewPCG(2020, 7)))
	fixed := Replay(calls, Fixed{KeepAlive: 10 * time.Minute}, 256)
	hybrid := Replay(calls, NewHybrid(HybridConfig{}), 256)
	for _, r := range []Result{fixed, hybrid} {
		t.Logf("%-18s cold: median app %.1f%%, 3rd-quartile app %.1f%%, all calls %d/%d (%.2f%%); idle %.4g MB·s",
			r.Policy, r.FuncColdPercent(0.5), r.FuncColdPercent(0.75), r.ColdStarts, r.Calls, r.ColdPercent(), r.IdleMemSecs)
	}
	if hybrid.FuncColdPercent(0.5) >= fixed.FuncColdPercent(0.5)/2 || hybrid.ColdStarts >= fixed.ColdStarts {
		t.Errorf("hybrid cold starts: median app %.1f%% (fixed %.1f%%), all calls %d (fixed %d): want far fewer per app and fewer in all",
			hybrid.FuncColdPercent(0.5), fixed.FuncColdPercent(0.5), hybrid.ColdStarts, fixed.ColdStarts)
	}
	if hybrid.IdleMemSecs > 1.05*fixed.IdleMemSecs {
		t.Errorf("hybrid idle %.4g MB·s, fixed %.4g: want no more than 5%% above", hybrid.IdleMemSecs, fixed.IdleMemSecs)
	}
}

// FuzzParse: a --keep-alive setting is refused or gives a named policy
// whose decisions are never negative.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "fixed", "fixed:90s", "fixed:-1s", "fixed:x", "hybrid", "hybrid:3", "lru", ":1m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := Parse(in)
		if err != nil {
			return
		}
		if p.Name() == "" {
			t.Fatalf("Parse(%q): a policy without a name", in)
		}
		if d := p.Decide("f", 1); d.PreWarm < 0 || d.KeepAlive <= 0 {
			t.Fatalf("Parse(%q): first decision %+v", in, d)
		}
	})
}
