package trigger

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestParseCloudEvent(t *testing.T) {
	h := http.Header{}
	h.Set("Content-Type", "application/cloudevents+json; charset=utf-8")
	got, err := ParseCloudEvent(h, []byte(`{"specversion":"1.0","id":"1","source":"urn:x","type":"t","time":"2024-01-01T00:00:00Z","ext1":7,"data":{"a":1}}`))
	if err != nil || string(got) != `{"data":{"a":1},"ext1":7,"id":"1","source":"urn:x","specversion":"1.0","time":"2024-01-01T00:00:00Z","type":"t"}` {
		t.Fatalf("structured: %s %v", got, err)
	}
	h = http.Header{}
	h.Set("Content-Type", "application/octet-stream")
	for k, v := range map[string]string{"ce-specversion": "1.0", "ce-id": "2", "ce-source": "/s", "ce-type": "t", "ce-note": "a%20b"} {
		h.Set(k, v)
	}
	got, err = ParseCloudEvent(h, []byte{0, 1, 2})
	if err != nil || string(got) != `{"data_base64":"AAEC","datacontenttype":"application/octet-stream","id":"2","note":"a b","source":"/s","specversion":"1.0","type":"t"}` {
		t.Fatalf("binary: %s %v", got, err)
	}
	for _, body := range []string{
		`{"specversion":"1.0","id":"1","source":"s","type":"t","data":1,"data_base64":"AA=="}`,
		`{"specversion":"1.0","id":"1","source":"s","type":"t","Bad":1}`,
		`{"specversion":"1.0","id":"1","source":"s","type":"t","x":{"nested":true}}`,
		`{"specversion":"1.0","id":1,"source":"s","type":"t"}`,
		`{"specversion":"1.0","id":"1","source":"s","type":"t","dataschema":"relative"}`,
		`{"specversion":"1.0","id":"1","source":"s","type":"t"} {}`,
	} {
		h := http.Header{"Content-Type": {ceStructured}}
		if _, err := ParseCloudEvent(h, []byte(body)); err == nil {
			t.Errorf("accepted %s", body)
		}
	}
}

// FuzzCloudEvent checks that whatever a sender posts, an accepted event
// becomes a JSON object of parameters with the required attributes.
func FuzzCloudEvent(f *testing.F) {
	f.Add(ceStructured, "", `{"specversion":"1.0","id":"1","source":"s","type":"t","data":{"a":1}}`)
	f.Add("application/json", "1.0", `{"a":1}`)
	f.Add("text/plain", "1.0", "hello")
	f.Add("", "1.0", "\x00\xff")
	f.Fuzz(func(t *testing.T, contentType, specversion, body string) {
		h := http.Header{}
		h.Set("Content-Type", contentType)
		if specversion != "" {
			h.Set("ce-specversion", specversion)
			h.Set("ce-id", "id")
			h.Set("ce-source", "src")
			h.Set("ce-type", "type")
		}
		out, err := ParseCloudEvent(h, []byte(body))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "The CloudEvent is not valid: ") {
				t.Fatalf("error without the reason prefix: %v", err)
			}
			return
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("parameters are not a JSON object: %s", out)
		}
		for _, k := range ceRequired {
			if s, _ := m[k].(string); s == "" {
				t.Fatalf("accepted without %s: %s", k, out)
			}
		}
	})
}
