package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gust-faas/gust/internal/api"
	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/gusttest"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
)

// BenchmarkInvokeHandler measures the whole in-process handler path of a
// blocking invoke (auth, lookup, parameter merge, throttle, the wasm call,
// the activation record handed to the store, the response) on a real node,
// with no network in between (result only, the whole activation record,
// and as a web action), beside a baseline handler that only reads
// the body and answers {} (what floor-http pays above the network).
func BenchmarkInvokeHandler(b *testing.B) {
	limits := gust.DefaultLimits()
	limits.InvocationsPerMinute, limits.ConcurrentInvocations = 1<<30, 1<<20
	n := gusttest.Start(b, gusttest.WithLimits(limits))
	h := api.New(api.Config{Entities: n.Entities, Keys: n.Keys, Activations: n.Activations, Invoker: n.Service,
		Runtimes: n.Invoker, Limits: limits})
	uuid, key, _ := strings.Cut(n.Auth, ":")
	serve := func(h http.Handler, method, path string, body []byte) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, bytes.NewReader(body))
		r.SetBasicAuth(uuid, key)
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	create := func(name, fixture string, annotations ...map[string]any) string {
		body, _ := json.Marshal(map[string]any{"exec": map[string]any{"kind": "wasm",
			"code": base64.StdEncoding.EncodeToString(wasmtest.Build(b, fixture))}, "annotations": annotations})
		if w := serve(h, "PUT", "/api/v1/namespaces/_/actions/"+name, body); w.Code != http.StatusOK {
			b.Fatalf("create %s: %d %s", name, w.Code, w.Body)
		}
		return "/api/v1/namespaces/_/actions/" + name + "?blocking=true&result=true"
	}
	params := []byte(`{"name":"bench"}`)
	run := func(h http.Handler, path string) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if w := serve(h, "POST", path, params); w.Code != http.StatusOK {
					b.Fatalf("POST %s: %d %s", path, w.Code, w.Body)
				}
			}
		}
	}
	b.Run("baseline", run(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}), "/api/v1/namespaces/_/actions/noop?blocking=true&result=true"))
	noop := create("noop", "noop")
	b.Run("wasm-c-command", run(h, noop))
	// Without result=true the whole activation record is the response.
	b.Run("wasm-c-command-activation", run(h, strings.TrimSuffix(noop, "&result=true")))
	b.Run("wasm-go-reactor", run(h, create("gonoop", "gonoop")))
	// The same action as a web action (GET, .json): the web layer resolves
	// the action (web-export, annotations), then the activation service
	// resolves it again; "resolve" is what one resolution costs.
	create("noopweb", "noop", map[string]any{"key": "web-export", "value": true})
	b.Run("wasm-c-command-web", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if w := serve(h, "GET", "/api/v1/web/guest/default/noopweb.json", nil); w.Code != http.StatusOK || w.Body.String() != "{}" {
				b.Fatalf("web: %d %s", w.Code, w.Body)
			}
		}
	})
	b.Run("resolve", func(b *testing.B) {
		b.ReportAllocs()
		p := gust.Path{Namespace: "guest", Name: "noopweb"}
		for b.Loop() {
			if _, err := n.Entities.ResolveAction(p, "guest"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
