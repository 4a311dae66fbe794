package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkWebAction measures a GET of a warm wasm web action (.http, the
// webecho fixture returning a fixed body) beside a bare net/http GET
// handler in the same run, one request of each per iteration, and reports
// the p50 and p99 of both and their ratios: the floor is what any Go HTTP
// round trip on this machine costs, so the ratio is the platform's own
// share. The same action's authenticated blocking invoke (result only) is
// measured too, so the cost of the web layer itself shows apart from the
// sandbox's.
func BenchmarkWebAction(b *testing.B) {
	n := startWebNode(b)
	n.result("bench", map[string]any{"body": "ok"}, nil)
	floor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		_, _ = w.Write([]byte("ok"))
	}))
	defer floor.Close()
	webURL := n.URL + "/api/v1/web/guest/default/bench"

	invokeURL := n.URL + "/api/v1/namespaces/_/actions/bench?blocking=true&result=true"
	uuid, key, _ := strings.Cut(n.Auth, ":")

	client := &http.Client{}
	get := func(method, url, want string) time.Duration {
		req, _ := http.NewRequest(method, url, nil)
		if method == "POST" {
			req.SetBasicAuth(uuid, key)
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if resp.StatusCode != 200 || string(body) != want {
			b.Fatalf("%s %s: %d %q", method, url, resp.StatusCode, body)
		}
		return d
	}
	const result = `{"body":"ok"}`
	for range 100 { // warm: compiled module cached, connections open
		get("GET", webURL, "ok")
		get("GET", floor.URL, "ok")
		get("POST", invokeURL, result)
	}
	web := make([]time.Duration, 0, b.N)
	bare := make([]time.Duration, 0, b.N)
	invoke := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		bare = append(bare, get("GET", floor.URL, "ok"))
		web = append(web, get("GET", webURL, "ok"))
		invoke = append(invoke, get("POST", invokeURL, result))
	}
	b.StopTimer()
	webP50, bareP50 := percentile(web, 50), percentile(bare, 50)
	webP99, bareP99 := percentile(web, 99), percentile(bare, 99)
	b.ReportMetric(float64(webP50.Microseconds()), "web-p50-µs")
	b.ReportMetric(float64(webP99.Microseconds()), "web-p99-µs")
	b.ReportMetric(float64(bareP50.Microseconds()), "floor-p50-µs")
	b.ReportMetric(float64(bareP99.Microseconds()), "floor-p99-µs")
	b.ReportMetric(float64(webP50)/float64(bareP50), "ratio-p50")
	b.ReportMetric(float64(webP99)/float64(bareP99), "ratio-p99")
	b.ReportMetric(float64(percentile(invoke, 50).Microseconds()), "invoke-p50-µs")
	b.ReportMetric(float64(percentile(invoke, 99).Microseconds()), "invoke-p99-µs")
}

// percentile returns the p-th percentile of d (nearest rank).
func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100 // rank ceil(n·p/100), 1-based
	return s[max(i-1, 0)]
}
