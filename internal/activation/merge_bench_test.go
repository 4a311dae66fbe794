package activation_test

import (
	"encoding/json"
	"testing"

	"github.com/gust-faas/gust/internal/activation"
	"github.com/gust-faas/gust/internal/gust"
)

// BenchmarkMergeParams measures the parameter merge of every invoke, for an
// action without parameters (the body is only validated) and with five
// (decoded, merged, encoded again), beside baselines of the least each
// case needs with encoding/json: validating the body, and decoding and
// encoding a map of the merged size.
func BenchmarkMergeParams(b *testing.B) {
	body := json.RawMessage(`{"name":"bench","count":3,"tags":["a","b"]}`)
	bare := &gust.Action{Namespace: "guest", Name: "bare"}
	bound := &gust.Action{Namespace: "guest", Name: "bound", Parameters: gust.KeyValues{}.
		Set("greeting", "hello").Set("limit", 10).Set("region", "eu-west").
		Set("options", map[string]bool{"verbose": false}).Set("owner", "ops")}
	merge := func(a *gust.Action) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := activation.MergeParams(a, body, 1<<20); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("no-params", merge(bare))
	b.Run("five-params", merge(bound))
	b.Run("baseline/valid", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !json.Valid(body) {
				b.Fatal("invalid")
			}
		}
	})
	merged, _ := activation.MergeParams(bound, body, 1<<20)
	b.Run("baseline/decode+encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(merged, &m); err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
