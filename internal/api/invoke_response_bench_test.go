package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gust-faas/gust/internal/gust"
)

// BenchmarkWriteActivation measures writing a blocking invoke's activation
// record: writeActivation (its AppendJSON bytes as they are) beside
// writeJSON (json.Marshal, which calls the same encoder and then compacts
// and copies its output), the way it was written before.
func BenchmarkWriteActivation(b *testing.B) {
	a := &gust.Activation{
		Namespace: "guest", Name: "hello", Subject: "guest", ActivationID: "0123456789abcdef0123456789abcdef",
		Start: 1764000000000, End: 1764000000005, Duration: 5,
		Response: gust.Response{Result: json.RawMessage(`{"greeting":"Hello, bench!","n":[1,2,3]}`)},
		Logs:     []string{}, Version: "0.0.1",
		Annotations: gust.KeyValues{}.Set("limits", gust.DefaultActionLimits()).Set("path", "guest/hello").
			Set("kind", "wasm").Set("timeout", false).Set("waitTime", 3).Set("initTime", 1),
	}
	w := httptest.NewRecorder()
	for _, c := range []struct {
		name  string
		write func() error
	}{
		{"writeJSON", func() error { return writeJSON(w, http.StatusOK, a) }},
		{"writeActivation", func() error { return writeActivation(w, http.StatusOK, a) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w.Body.Reset()
				if err := c.write(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
