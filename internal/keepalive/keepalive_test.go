package keepalive

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFixedFallbackUntilHistory(t *testing.T) {
	h := NewHybrid(HybridConfig{})
	base := time.Unix(0, 0)
	if d := h.Decide("f"); d != (Decision{KeepAlive: 10 * time.Minute}) {
		t.Fatalf("no history: %+v", d)
	}
	for i := 0; i < 3; i++ {
		at := base.Add(time.Duration(i) * 30 * time.Minute)
		h.Observe("f", at)
		h.Done("f", at.Add(time.Second))
	}
	if d := h.Decide("f"); d.PreWarm != 0 || d.KeepAlive != 10*time.Minute {
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
	d := h.Decide("f")
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
	if d := h.Decide("f"); d.PreWarm != 0 || d.KeepAlive != time.Hour {
		t.Fatalf("idle times beyond the range: %+v", d)
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
