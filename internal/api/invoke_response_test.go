package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/gust-faas/gust/internal/gusttest"
)

// TestBlockingInvokeResponse pins the bytes of a blocking invoke's answer
// without result=true: the activation as encoding/json writes it (compact,
// HTML escaped, OpenWhisk's field order), the same record GET
// .../activations/{id} returns, with application/json and the status of
// the outcome; result=true answers the bare result.
func TestBlockingInvokeResponse(t *testing.T) {
	n := gusttest.Start(t)
	wsk := evWsk(t, n, n.Auth, "_")
	evPutWasm(t, wsk, "echo", "echo")
	evPutWasm(t, wsk, "fail", "error")

	params := `{"html":"<b>&amp;</b>","sep":"a` + "\u2028" + `b","n":[1, 2]}`
	for _, c := range []struct {
		name   string
		status int
		body   string
	}{
		{"echo", http.StatusOK, params},
		{"fail", http.StatusBadGateway, `{}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := evCall(t, n, n.Auth, "POST", "/api/v1/namespaces/_/actions/"+c.name+"?blocking=true", c.body)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(r.body, &m); err != nil {
				t.Fatalf("not a JSON object: %v: %s", err, r.body)
			}
			// What encoding/json writes for the same value: compact and
			// HTML escaped (json.Compact leaves the escapes as they are).
			var compact bytes.Buffer
			if err := json.Compact(&compact, r.body); err != nil || !bytes.Equal(compact.Bytes(), r.body) {
				t.Errorf("body is not compact JSON: %s", r.body)
			}
			if bytes.ContainsAny(r.body, "<>&\u2028") {
				t.Errorf("HTML characters or separators not escaped: %s", r.body)
			}
			var id string
			if err := json.Unmarshal(m["activationId"], &id); err != nil || id != r.header.Get("X-Gust-Activation-Id") {
				t.Fatalf("activationId %s, header %q", m["activationId"], r.header.Get("X-Gust-Activation-Id"))
			}
			evActivation(t, n, n.Auth, id) // waits until stored
			stored := evCall(t, n, n.Auth, "GET", "/api/v1/namespaces/_/activations/"+id, nil)
			if !bytes.Equal(stored.body, r.body) {
				t.Errorf("invoke answered\n%s\nGET answers\n%s", r.body, stored.body)
			}
			if c.name == "echo" {
				var result map[string]any
				if err := json.Unmarshal(m["response"], &struct {
					Result *map[string]any `json:"result"`
				}{&result}); err != nil || result["html"] != "<b>&amp;</b>" || result["sep"] != "a\u2028b" {
					t.Errorf("result %s", m["response"])
				}
			}

			r = evCall(t, n, n.Auth, "POST", "/api/v1/namespaces/_/actions/"+c.name+"?blocking=true&result=true", c.body)
			if r.status != c.status || r.header.Get("Content-Type") != "application/json" {
				t.Fatalf("result=true: %s %q", r, r.header.Get("Content-Type"))
			}
			var res map[string]any
			if err := json.Unmarshal(r.body, &res); err != nil {
				t.Fatalf("result=true: %v: %s", err, r.body)
			}
			if _, ok := res["activationId"]; ok {
				t.Errorf("result=true answered the record: %s", r.body)
			}
		})
	}
}
