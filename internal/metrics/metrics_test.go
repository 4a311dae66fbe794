package metrics

import (
	"strings"
	"sync"
	"testing"
)

func TestWrite(t *testing.T) {
	r := New()
	c := r.Counter("gust_activations_total", "Activations run.", "namespace", "action", "start")
	g := r.Gauge("gust_invoker_memory_used_mb", "Memory reserved.", "invoker")
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() { defer wg.Done(); c.Inc("guest", "hello", "warm") }()
	}
	wg.Wait()
	c.Inc("other", "x\"y", "cold")
	g.Set(256, "n-0")
	g.Add(-56, "n-0")
	var b strings.Builder
	if err := r.Write(&b, nil); err != nil {
		t.Fatal(err)
	}
	want := `# HELP gust_activations_total Activations run.
# TYPE gust_activations_total counter
gust_activations_total{namespace="guest",action="hello",start="warm"} 100
gust_activations_total{namespace="other",action="x\"y",start="cold"} 1
# HELP gust_invoker_memory_used_mb Memory reserved.
# TYPE gust_invoker_memory_used_mb gauge
gust_invoker_memory_used_mb{invoker="n-0"} 200
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	r.Write(&b, func(l map[string]string) bool { ns, ok := l["namespace"]; return !ok || ns == "guest" })
	if strings.Contains(b.String(), "other") {
		t.Errorf("filter leaked another namespace:\n%s", b.String())
	}
	if r.Value("gust_activations_total", "guest", "hello", "warm") != 100 {
		t.Error("Value")
	}
}
