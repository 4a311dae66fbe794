package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/openwhisk-client-go/whisk"

	"github.com/gust-faas/gust/internal/app"
	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/gusttest"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
)

// webEcho builds the webecho fixture (internal/sandbox/wasm/wasmtest/
// testdata/c/webecho.c): with a "result" parameter it returns that value,
// else it echoes its input as a .http response body.
func webEcho(t testing.TB) []byte {
	t.Helper()
	return wasmtest.BuildC(t, filepath.Join("..", "sandbox", "wasm", "wasmtest", "testdata", "c", "webecho.c"), false)
}

// webNode is a node with helpers to create actions and send web requests.
type webNode struct {
	*gusttest.Node
	t    testing.TB
	code string // the webecho module, base64
}

func startWebNode(t testing.TB, opts ...gusttest.Option) *webNode {
	t.Helper()
	code := base64.StdEncoding.EncodeToString(webEcho(t))
	return &webNode{Node: gusttest.Start(t, opts...), t: t, code: code}
}

// kv is an OpenWhisk key/value list in JSON.
func kv(m map[string]any) []map[string]any {
	out := []map[string]any{}
	for k, v := range m {
		out = append(out, map[string]any{"key": k, "value": v})
	}
	return out
}

// action creates (or replaces) the webecho action name with bound params
// and annotations; web-export is true unless annotations say otherwise.
func (n *webNode) action(name string, params, annotations map[string]any) {
	n.t.Helper()
	n.actionAs(n.Auth, name, params, annotations)
}

// actionAs is action in the namespace of the credentials auth ("uuid:key").
func (n *webNode) actionAs(auth, name string, params, annotations map[string]any) {
	n.t.Helper()
	ann := map[string]any{"web-export": true}
	for k, v := range annotations {
		ann[k] = v
	}
	n.put(auth, "/api/v1/namespaces/_/actions/"+name+"?overwrite=true", map[string]any{
		"exec":        map[string]any{"kind": "wasm", "code": n.code},
		"parameters":  kv(params),
		"annotations": kv(ann),
	})
}

// put PUTs doc as JSON with the credentials auth and fails unless it is 200.
func (n *webNode) put(auth, path string, doc any) {
	n.t.Helper()
	body, _ := json.Marshal(doc)
	r := n.send("PUT", path, bytes.NewReader(body), map[string]string{"Authorization": basicAuth(auth), "Content-Type": "application/json"})
	if r.status != 200 {
		n.t.Fatalf("PUT %s: %d %s", path, r.status, r.body)
	}
}

// namespace creates namespace ns and returns its credentials.
func (n *webNode) namespace(ns string) string {
	n.t.Helper()
	id, err := n.Keys.Ensure(context.Background(), ns, "")
	if err != nil {
		n.t.Fatal(err)
	}
	return id.Auth()
}

// basicAuth is the Authorization header of the credentials "uuid:key".
func basicAuth(auth string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(auth))
}

// result creates a web action that returns result.
func (n *webNode) result(name string, result any, annotations map[string]any) {
	n.t.Helper()
	n.action(name, map[string]any{"result": result}, annotations)
}

// webResp is a response read whole.
type webResp struct {
	status int
	header http.Header
	body   []byte
}

func (r webResp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// errorText returns the "error" of an OpenWhisk error body.
func (r webResp) errorText() string {
	var e struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	if json.Unmarshal(r.body, &e) != nil || e.Code == "" {
		return "<not an error body: " + string(r.body) + ">"
	}
	return e.Error
}

// send sends a request to the node; header "Authorization" may be given
// raw, or as "guest" for the guest credentials.
func (n *webNode) send(method, path string, body io.Reader, header map[string]string) webResp {
	n.t.Helper()
	req, err := http.NewRequest(method, n.URL+path, body)
	if err != nil {
		n.t.Fatal(err)
	}
	for k, v := range header {
		if k == "Authorization" && v == "guest" {
			uuid, key, _ := strings.Cut(n.Auth, ":")
			req.SetBasicAuth(uuid, key)
			continue
		}
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		n.t.Fatal(err)
	}
	return webResp{status: resp.StatusCode, header: resp.Header, body: b}
}

// echoed sends a request to an echo action (.http) and returns the
// parameters the action received.
func (n *webNode) echoed(method, path string, body io.Reader, header map[string]string) map[string]any {
	n.t.Helper()
	r := n.send(method, path, body, header)
	if r.status != 200 {
		n.t.Fatalf("%s %s: %d %s", method, path, r.status, r.body)
	}
	return r.json(n.t)
}

func TestWebInput(t *testing.T) {
	n := startWebNode(t)
	n.action("echo", map[string]any{"bound": "b"}, nil)
	n.action("fixed", map[string]any{"name": "fixed"}, map[string]any{"final": true})
	n.action("raw", nil, map[string]any{"raw-http": true})
	const echo = "/api/v1/web/guest/default/echo"
	bin := []byte{0, 1, 2, 0xff, 0xfe}

	tests := []struct {
		name, method, path string
		body               string
		header             map[string]string
		want               map[string]any // expected parameters (JSON values)
		absent             []string       // parameters that must not be there
	}{
		{name: "query", method: "GET", path: echo + "?name=Jane&n=1&n=2",
			want:   map[string]any{"name": "Jane", "n": "2", "bound": "b", "__ow_method": "get", "__ow_path": ""},
			absent: []string{"__ow_user", "__ow_query", "__ow_body"}},
		{name: "json body over query", method: "POST", path: echo + "?name=Jane", body: `{"name":"Bob","k":{"a":[1]}}`,
			header: map[string]string{"Content-Type": "application/json"},
			want:   map[string]any{"name": "Bob", "k": map[string]any{"a": []any{1.0}}, "__ow_method": "post"}},
		{name: "json body overrides bound param", method: "POST", path: echo, body: `{"bound":"x"}`,
			header: map[string]string{"Content-Type": "application/json"}, want: map[string]any{"bound": "x"}},
		{name: "json+ family", method: "PUT", path: echo, body: `{"a":1}`,
			header: map[string]string{"Content-Type": "application/vnd.api+json"}, want: map[string]any{"a": 1.0, "__ow_method": "put"}},
		{name: "json array body", method: "POST", path: echo, body: `[1,"x"]`,
			header: map[string]string{"Content-Type": "application/json"}, want: map[string]any{"__ow_body": []any{1.0, "x"}}},
		{name: "json string body", method: "POST", path: echo, body: `"s"`,
			header: map[string]string{"Content-Type": "application/json"}, want: map[string]any{"__ow_body": "s"}},
		{name: "empty json body", method: "POST", path: echo,
			header: map[string]string{"Content-Type": "application/json"}, absent: []string{"__ow_body"}},
		{name: "form body", method: "POST", path: echo + "?name=q", body: "name=Ann&x=1",
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, want: map[string]any{"name": "Ann", "x": "1"}},
		{name: "text body", method: "PATCH", path: echo, body: "hello",
			header: map[string]string{"Content-Type": "text/plain"}, want: map[string]any{"__ow_body": "hello", "__ow_method": "patch"}},
		{name: "binary body", method: "POST", path: echo, body: string(bin),
			header: map[string]string{"Content-Type": "application/octet-stream"}, want: map[string]any{"__ow_body": base64.StdEncoding.EncodeToString(bin)}},
		{name: "body without content type is binary", method: "DELETE", path: echo, body: "abc",
			want: map[string]any{"__ow_body": base64.StdEncoding.EncodeToString([]byte("abc")), "__ow_method": "delete"}},
		{name: "rest path", method: "GET", path: echo + ".http/a/b%20c", want: map[string]any{"__ow_path": "/a/b%20c"}},
		{name: "rest path without extension", method: "GET", path: echo + "/x", want: map[string]any{"__ow_path": "/x"}},
		{name: "authenticated caller", method: "GET", path: echo, header: map[string]string{"Authorization": "guest"},
			want: map[string]any{"__ow_user": "guest"}},
		{name: "wrong credentials are anonymous", method: "GET", path: echo, header: map[string]string{"Authorization": "Basic eDp5"},
			absent: []string{"__ow_user"}},
		{name: "final params: others allowed", method: "GET", path: "/api/v1/web/guest/default/fixed?other=1",
			want: map[string]any{"name": "fixed", "other": "1"}},
		{name: "raw query", method: "GET", path: "/api/v1/web/guest/default/raw?a=1&b=x%20y",
			want: map[string]any{"__ow_query": "a=1&b=x%20y", "__ow_body": ""}, absent: []string{"a", "b"}},
		{name: "raw json is base64", method: "POST", path: "/api/v1/web/guest/default/raw", body: `{"a":1}`,
			header: map[string]string{"Content-Type": "application/json"},
			want:   map[string]any{"__ow_body": base64.StdEncoding.EncodeToString([]byte(`{"a":1}`))}, absent: []string{"a"}},
		{name: "raw text", method: "POST", path: "/api/v1/web/guest/default/raw", body: "a=1",
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, want: map[string]any{"__ow_body": "a=1"}, absent: []string{"a"}},
		{name: "raw binary", method: "PUT", path: "/api/v1/web/guest/default/raw", body: string(bin),
			header: map[string]string{"Content-Type": "image/png"}, want: map[string]any{"__ow_body": base64.StdEncoding.EncodeToString(bin)}},
		{name: "raw may set reserved names", method: "GET", path: "/api/v1/web/guest/default/raw?__ow_method=x",
			want: map[string]any{"__ow_method": "get", "__ow_query": "__ow_method=x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			got := n.echoed(tt.method, tt.path, body, tt.header)
			for k, want := range tt.want {
				if g, _ := json.Marshal(got[k]); string(g) != mustJSON(want) {
					t.Errorf("%s = %s, want %s", k, g, mustJSON(want))
				}
			}
			for _, k := range tt.absent {
				if v, ok := got[k]; ok {
					t.Errorf("%s = %v, want absent", k, v)
				}
			}
		})
	}

	t.Run("headers", func(t *testing.T) {
		got := n.echoed("GET", echo, nil, map[string]string{"X-Custom-Thing": "v", "Authorization": "guest"})
		h, _ := got["__ow_headers"].(map[string]any)
		if h["x-custom-thing"] != "v" || h["host"] == nil || h["user-agent"] == nil {
			t.Errorf("__ow_headers = %v", h)
		}
		if _, ok := h["authorization"]; ok {
			t.Error("the caller's Gust credentials were passed to the action")
		}
		for _, auth := range []string{"Bearer tok", "Basic eDp5"} {
			got = n.echoed("GET", echo, nil, map[string]string{"Authorization": auth})
			if h, _ := got["__ow_headers"].(map[string]any); h["authorization"] != auth {
				t.Errorf("the action's own credentials %q were not passed through: %v", auth, h)
			}
		}
	})

	rejected := []struct{ name, method, path, body, ctype string }{
		{"final param in query", "GET", "/api/v1/web/guest/default/fixed?name=x", "", ""},
		{"final param in body", "POST", "/api/v1/web/guest/default/fixed", `{"name":"x"}`, "application/json"},
		{"final param in form", "POST", "/api/v1/web/guest/default/fixed", "name=x", "application/x-www-form-urlencoded"},
		{"reserved in query", "GET", echo + "?__ow_method=x", "", ""},
		{"reserved in body", "POST", echo, `{"__ow_body":1}`, "application/json"},
		{"reserved user", "GET", echo + "?__ow_user=admin", "", ""},
	}
	for _, tt := range rejected {
		t.Run(tt.name, func(t *testing.T) {
			r := n.send(tt.method, tt.path, strings.NewReader(tt.body), map[string]string{"Content-Type": tt.ctype})
			if r.status != 400 || r.errorText() != "Request defines parameters that are not allowed (e.g., reserved properties)." {
				t.Errorf("got %d %s", r.status, r.body)
			}
		})
	}
	t.Run("malformed json", func(t *testing.T) {
		r := n.send("POST", echo, strings.NewReader(`{"a":`), map[string]string{"Content-Type": "application/json"})
		if r.status != 400 || !strings.HasPrefix(r.errorText(), "The request content was malformed:") {
			t.Errorf("got %d %s", r.status, r.body)
		}
	})
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestWebOutput(t *testing.T) {
	n := startWebNode(t)
	png := []byte{0x89, 'P', 'N', 'G', 0, 1, 2, 3, 0xff}
	tests := []struct {
		name   string
		result any
		ext    string // with the rest path, e.g. ".json/a"
		status int
		ctype  string // "" = none expected
		body   string
		err    string // OpenWhisk error text, when the answer is an error
		header map[string][]string
	}{
		// .http
		{name: "http full", result: map[string]any{"statusCode": 201, "headers": map[string]any{"X-A": "1", "X-N": 5, "X-B": true, "Set-Cookie": []any{"a=1", "b=2"}}, "body": "<b>hi</b>"},
			ext: "", status: 201, ctype: "text/html; charset=UTF-8", body: "<b>hi</b>",
			header: map[string][]string{"X-A": {"1"}, "X-N": {"5"}, "X-B": {"true"}, "Set-Cookie": {"a=1", "b=2"}}},
		{name: "http explicit ext", result: map[string]any{"body": "x"}, ext: ".http", status: 200, ctype: "text/html; charset=UTF-8", body: "x"},
		{name: "status as string", result: map[string]any{"statusCode": "404", "body": "nope"}, ext: ".http", status: 404, body: "nope"},
		{name: "status with zero fraction", result: map[string]any{"statusCode": 202.0, "body": "a"}, ext: ".http", status: 202, body: "a"},
		{name: "no body is 204", result: map[string]any{"headers": map[string]any{"X-A": "1"}}, ext: ".http", status: 204, header: map[string][]string{"X-A": {"1"}}},
		// OpenWhisk answers an absent, null and empty string body alike: no
		// entity, 204 unless the action chose a status (§6 "204 if no body").
		{name: "empty body is 204", result: map[string]any{"body": "", "headers": map[string]any{"Content-Type": "text/plain"}}, ext: ".http", status: 204},
		{name: "null body is 204", result: map[string]any{"body": nil}, ext: ".http", status: 204},
		{name: "empty body with a status", result: map[string]any{"body": "", "statusCode": 200}, ext: ".http", status: 200},
		{name: "redirect", result: map[string]any{"statusCode": 302, "headers": map[string]any{"Location": "https://example.com/"}}, ext: ".http", status: 302,
			header: map[string][]string{"Location": {"https://example.com/"}}},
		{name: "json body", result: map[string]any{"body": map[string]any{"a": 1}}, ext: ".http", status: 200, ctype: "application/json", body: `{"a":1}`},
		{name: "json array body", result: map[string]any{"body": []any{1, 2}, "statusCode": 400}, ext: ".http", status: 400, ctype: "application/json", body: `[1,2]`},
		{name: "json family body pretty", result: map[string]any{"body": map[string]any{"a": 1}, "headers": map[string]any{"content-type": "application/vnd.api+json"}},
			ext: ".http", status: 200, ctype: "application/vnd.api+json; charset=UTF-8", body: "{\n  \"a\": 1\n}"},
		{name: "binary body decoded", result: map[string]any{"body": base64.StdEncoding.EncodeToString(png), "headers": map[string]any{"Content-Type": "image/png"}},
			ext: ".http", status: 200, ctype: "image/png", body: string(png)},
		{name: "base64 json decoded", result: map[string]any{"body": base64.StdEncoding.EncodeToString([]byte(`{"x":true}`)), "headers": map[string]any{"Content-Type": "application/json"}},
			ext: ".http", status: 200, ctype: "application/json", body: `{"x":true}`},
		{name: "plain json string kept", result: map[string]any{"body": `{"x":1}`, "headers": map[string]any{"Content-Type": "application/json"}},
			ext: ".http", status: 200, ctype: "application/json", body: `{"x":1}`},
		{name: "text type gets charset", result: map[string]any{"body": "hi", "headers": map[string]any{"Content-Type": "text/plain"}},
			ext: ".http", status: 200, ctype: "text/plain; charset=UTF-8", body: "hi"},
		{name: "framing headers dropped", result: map[string]any{"body": "hello", "headers": map[string]any{"Content-Length": "1", "Connection": "close"}},
			ext: ".http", status: 200, body: "hello"},
		{name: "action sets CORS", result: map[string]any{"body": "c", "headers": map[string]any{"Access-Control-Allow-Origin": "https://a.example"}},
			ext: ".http", status: 200, body: "c", header: map[string][]string{"Access-Control-Allow-Origin": {"https://a.example"}}},
		{name: "binary body not base64", result: map[string]any{"body": "not base64!", "headers": map[string]any{"Content-Type": "image/png"}},
			ext: ".http", status: 400, err: "Response type in header did not match generated content type."},
		{name: "object body with html type", result: map[string]any{"body": map[string]any{}, "headers": map[string]any{"Content-Type": "text/html"}},
			ext: ".http", status: 400, err: "Response type in header did not match generated content type."},
		{name: "unknown content type", result: map[string]any{"body": "x", "headers": map[string]any{"Content-Type": "bogus"}},
			ext: ".http", status: 400, err: "Response did not specify a known content-type."},
		{name: "http array result", result: []any{1}, ext: ".http", status: 400, err: "Response is not valid 'message/http'."},
		{name: "fractional status", result: map[string]any{"statusCode": 200.5}, ext: ".http", status: 400, err: "Response is not valid 'message/http'."},
		{name: "bad status string", result: map[string]any{"statusCode": "abc"}, ext: ".http", status: 400, err: "Response is not valid 'message/http'."},
		{name: "status out of range", result: map[string]any{"statusCode": 99}, ext: ".http", status: 400, err: "Response is not valid 'message/http'."},
		{name: "bool status", result: map[string]any{"statusCode": true}, ext: ".http", status: 400, err: "Response is not valid 'message/http'."},
		{name: "headers not object", result: map[string]any{"headers": "x"}, ext: ".http", status: 400, err: "Response is not valid 'message/http'."},
		{name: "null header value", result: map[string]any{"headers": map[string]any{"X": nil}}, ext: ".http", status: 400, err: "Response is not valid 'message/http'."},
		{name: "header with newline", result: map[string]any{"headers": map[string]any{"X": "a\r\nB: c"}}, ext: ".http", status: 400, err: "Response is not valid 'message/http'."},
		// .json
		{name: "json object", result: map[string]any{"a": 1}, ext: ".json", status: 200, ctype: "application/json", body: `{"a":1}`},
		{name: "json array", result: []any{1, "x"}, ext: ".json", status: 200, ctype: "application/json", body: `[1,"x"]`},
		{name: "json projection", result: map[string]any{"a": map[string]any{"b": 1}}, ext: ".json/a", status: 200, ctype: "application/json", body: `{"b":1}`},
		{name: "json projection not object", result: map[string]any{"a": map[string]any{"b": 1}}, ext: ".json/a/b", status: 400, err: "Response is not valid 'application/json'."},
		{name: "json projection missing", result: map[string]any{"a": 1}, ext: ".json/zz", status: 404, err: "Response does not include requested property."},
		// .html
		{name: "html body", result: map[string]any{"body": "<p>x</p>", "html": "no"}, ext: ".html", status: 200, ctype: "text/html; charset=UTF-8", body: "<p>x</p>"},
		{name: "html field", result: map[string]any{"html": "<p>y</p>"}, ext: ".html", status: 200, ctype: "text/html; charset=UTF-8", body: "<p>y</p>"},
		{name: "html projection", result: map[string]any{"msg": "<i>m</i>"}, ext: ".html/msg", status: 200, body: "<i>m</i>"},
		{name: "html not string", result: map[string]any{"body": 1}, ext: ".html", status: 400, err: "Response is not valid 'text/html'."},
		// A missing field is 400 for .html and .svg but 404 for .text: that is
		// what OpenWhisk's controller answers (resultAsHtml, resultAsText).
		{name: "html missing", result: map[string]any{"x": 1}, ext: ".html", status: 400, err: "Response is not valid 'text/html'."},
		{name: "html null body wins over html", result: map[string]any{"body": nil, "html": "<p/>"}, ext: ".html", status: 400, err: "Response is not valid 'text/html'."},
		// .svg
		{name: "svg field", result: map[string]any{"svg": "<svg/>"}, ext: ".svg", status: 200, ctype: "image/svg+xml", body: "<svg/>"},
		{name: "svg missing", result: map[string]any{}, ext: ".svg", status: 400, err: "Response is not valid 'image/svg+xml'."},
		// .text
		{name: "text field", result: map[string]any{"text": "plain"}, ext: ".text", status: 200, ctype: "text/plain; charset=UTF-8", body: "plain"},
		{name: "text object pretty", result: map[string]any{"body": map[string]any{"a": 1}}, ext: ".text", status: 200, body: "{\n  \"a\": 1\n}"},
		{name: "text number", result: map[string]any{"body": 3}, ext: ".text", status: 200, body: "3"},
		{name: "text array result", result: []any{true}, ext: ".text", status: 200, body: "[\n  true\n]"},
		{name: "text missing", result: map[string]any{"x": 1}, ext: ".text", status: 404, err: "Response does not include requested property."},
		{name: "text null body wins over text", result: map[string]any{"body": nil, "text": "t"}, ext: ".text", status: 200, body: "null"},
		{name: "text projection", result: map[string]any{"response": map[string]any{"name": "Jane"}}, ext: ".text/response/name", status: 200, body: "Jane"},
		// errors
		{name: "application error rendered", result: map[string]any{"error": map[string]any{"statusCode": 409, "body": "taken"}}, ext: ".http", status: 409, body: "taken"},
		{name: "application error as json", result: map[string]any{"error": map[string]any{"why": "x"}}, ext: ".json", status: 200, body: `{"why":"x"}`},
		{name: "application error string as http", result: map[string]any{"error": "boom"}, ext: ".http", status: 400, err: "Response is not valid 'message/http'."},
		{name: "developer error", result: "not an object", ext: ".json", status: 400, err: "There was an error processing your request."},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "out" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + string(rune('a'+i/26))
			n.result(name, tt.result, nil)
			r := n.send("GET", "/api/v1/web/guest/default/"+name+tt.ext, nil, nil)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.err != "" {
				if got := r.errorText(); got != tt.err {
					t.Errorf("error %q, want %q", got, tt.err)
				}
				return
			}
			if r.header.Get("X-Gust-Activation-Id") == "" || r.header.Get("X-Gust-Activation-Id") != r.header.Get("x-openwhisk-activation-id") {
				t.Errorf("activation id headers: %v", r.header)
			}
			if got := r.header.Get("Content-Type"); tt.ctype != "" && got != tt.ctype {
				t.Errorf("Content-Type %q, want %q", got, tt.ctype)
			}
			if string(r.body) != tt.body {
				t.Errorf("body %q, want %q", r.body, tt.body)
			}
			for k, want := range tt.header {
				if got := r.header.Values(k); mustJSON(got) != mustJSON(want) {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestWebHead(t *testing.T) {
	n := startWebNode(t)
	n.result("h", map[string]any{"body": "hello", "headers": map[string]any{"X-A": "1"}}, nil)
	r := n.send("HEAD", "/api/v1/web/guest/default/h", nil, nil)
	if r.status != 200 || len(r.body) != 0 || r.header.Get("X-A") != "1" {
		t.Errorf("HEAD: %d %v %q", r.status, r.header, r.body)
	}
	if r := n.send("TRACE", "/api/v1/web/guest/default/h", nil, nil); r.status != 405 {
		t.Errorf("TRACE: %d %s", r.status, r.body)
	}
}

func TestWebAccess(t *testing.T) {
	n := startWebNode(t)
	n.action("open", nil, nil)
	n.action("hidden", nil, map[string]any{"web-export": false})
	n.action("plain", nil, map[string]any{"web-export": nil})
	n.action("authed", nil, map[string]any{"require-whisk-auth": true})
	n.action("secret", nil, map[string]any{"require-whisk-auth": "s3cret"})
	n.action("numsecret", nil, map[string]any{"require-whisk-auth": 12345})
	n.action("notsecret", nil, map[string]any{"require-whisk-auth": false})
	const web = "/api/v1/web/guest/default/"
	tests := []struct {
		name, path string
		header     map[string]string
		status     int
	}{
		{"exported", web + "open", nil, 200},
		{"web-export false", web + "hidden", nil, 404},
		{"no web-export", web + "plain", nil, 404},
		{"missing action", web + "nothere", nil, 404},
		{"missing namespace", "/api/v1/web/nobody/default/open", nil, 404},
		{"missing package", "/api/v1/web/guest/nopkg/open", nil, 404},
		{"too short", "/api/v1/web/guest/default", nil, 404},
		{"bad name", "/api/v1/web/guest/default/%20x", nil, 404},
		{"auth true without credentials", web + "authed", nil, 401},
		{"auth true with credentials", web + "authed", map[string]string{"Authorization": "guest"}, 200},
		{"auth true with wrong credentials", web + "authed", map[string]string{"Authorization": "Basic eDp5"}, 401},
		{"secret header", web + "secret", map[string]string{"X-Require-Whisk-Auth": "s3cret"}, 200},
		{"secret header wrong", web + "secret", map[string]string{"X-Require-Whisk-Auth": "nope"}, 401},
		{"secret missing", web + "secret", nil, 401},
		{"secret not satisfied by credentials", web + "secret", map[string]string{"Authorization": "guest"}, 401},
		{"numeric secret", web + "numsecret", map[string]string{"X-Require-Whisk-Auth": "12345"}, 200},
		{"require false", web + "notsecret", nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := n.send("GET", tt.path, nil, tt.header)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.status == 404 && r.errorText() != "The requested resource does not exist." {
				t.Errorf("404 text: %s", r.body)
			}
		})
	}

	t.Run("activation in the owner's namespace", func(t *testing.T) {
		ctx := context.Background()
		other, err := n.Keys.Ensure(ctx, "other", "")
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("GET", n.URL+web+"authed", nil)
		req.SetBasicAuth(other.UUID, other.Key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if resp.StatusCode != 200 || got["__ow_user"] != "other" {
			t.Fatalf("call as other: %d %v", resp.StatusCode, got)
		}
		id := resp.Header.Get("X-Gust-Activation-Id")
		ar := n.Do(t, "GET", "/api/v1/namespaces/_/activations/"+id, nil)
		defer ar.Body.Close()
		var act map[string]any
		_ = json.NewDecoder(ar.Body).Decode(&act)
		if ar.StatusCode != 200 || act["namespace"] != "guest" || act["name"] != "authed" {
			t.Errorf("activation %s: %d %v", id, ar.StatusCode, act)
		}
	})

	t.Run("action in a package", func(t *testing.T) {
		n.put(n.Auth, "/api/v1/namespaces/_/packages/pkg", map[string]any{})
		n.action("pkg/inpkg", nil, nil)
		if r := n.send("GET", "/api/v1/web/guest/pkg/inpkg.json", nil, nil); r.status != 200 {
			t.Errorf("packaged web action: %d %s", r.status, r.body)
		}
		if r := n.send("GET", "/api/v1/web/guest/default/inpkg.json", nil, nil); r.status != 404 {
			t.Errorf("packaged action reached through default: %d", r.status)
		}
	})

	t.Run("get action returns the real namespace", func(t *testing.T) {
		resp := n.Do(t, "GET", "/api/v1/namespaces/_/actions/open?code=false", nil)
		defer resp.Body.Close()
		var a map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&a)
		if a["namespace"] != "guest" {
			t.Errorf("namespace = %v, want guest (clients build web URLs from it)", a["namespace"])
		}
	})
}

func TestWebCORS(t *testing.T) {
	n := startWebNode(t)
	n.action("echo", nil, map[string]any{"require-whisk-auth": true})
	n.action("custom", nil, map[string]any{"web-custom-options": true, "require-whisk-auth": true})
	const web = "/api/v1/web/guest/default/"

	r := n.send("OPTIONS", web+"echo", nil, nil)
	if r.status != 200 || len(r.body) != 0 || r.header.Get("X-Gust-Activation-Id") != "" {
		t.Errorf("OPTIONS: %d %q %v (no action run, no credentials needed)", r.status, r.body, r.header)
	}
	want := map[string]string{
		"Access-Control-Allow-Origin":  "*",
		"Access-Control-Allow-Methods": "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH",
		"Access-Control-Allow-Headers": "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent",
	}
	for k, v := range want {
		if got := r.header.Get(k); got != v {
			t.Errorf("OPTIONS %s = %q, want %q", k, got, v)
		}
	}
	r = n.send("OPTIONS", web+"echo", nil, map[string]string{"Access-Control-Request-Headers": "X-Foo, Content-Type"})
	if got := r.header.Get("Access-Control-Allow-Headers"); got != "X-Foo, Content-Type" {
		t.Errorf("requested headers not allowed back: %q", got)
	}
	r = n.send("GET", web+"echo", nil, map[string]string{"Authorization": "guest"})
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("GET: %d, CORS %v", r.status, r.header)
	}
	r = n.send("GET", web+"echo", nil, nil)
	if r.status != 401 || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("errors carry CORS headers too: %d %v", r.status, r.header)
	}

	// web-custom-options: OPTIONS reaches the action, without credentials,
	// and the platform adds no CORS headers.
	r = n.send("OPTIONS", web+"custom", nil, nil)
	if r.status != 200 || r.json(t)["__ow_method"] != "options" || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("custom OPTIONS: %d %v %s", r.status, r.header, r.body)
	}
	if r := n.send("GET", web+"custom", nil, nil); r.status != 401 {
		t.Errorf("custom GET without credentials: %d", r.status)
	}
	// The REST API's own CORS answer does not apply to web actions.
	if r := n.send("OPTIONS", "/api/v1/web/guest/default/nothere", nil, nil); r.status != 404 {
		t.Errorf("OPTIONS of a missing web action: %d", r.status)
	}
}

func TestWebNotReadyAndLimits(t *testing.T) {
	n := startWebNode(t, func(c *app.Config) {
		c.Limits = gust.DefaultLimits()
		c.Limits.MaxBlockingWait = 200 // ms
		c.Limits.MaxPayloadSize = 64 << 10
	})
	sleep := base64.StdEncoding.EncodeToString(wasmtest.Build(t, "sleep"))
	body, _ := json.Marshal(map[string]any{
		"exec":        map[string]any{"kind": "wasm", "code": sleep},
		"limits":      map[string]any{"timeout": 1000},
		"annotations": kv(map[string]any{"web-export": true}),
	})
	resp := n.Do(t, "PUT", "/api/v1/namespaces/_/actions/slow", bytes.NewReader(body))
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("create slow: %d", resp.StatusCode)
	}
	r := n.send("GET", "/api/v1/web/guest/default/slow", nil, nil)
	if r.status != 202 || r.errorText() != "Response not yet ready." || r.header.Get("x-openwhisk-activation-id") == "" {
		t.Errorf("slow: %d %v %s", r.status, r.header, r.body)
	}

	n.action("echo", map[string]any{"pad": strings.Repeat("p", 40<<10)}, nil)
	big := strings.Repeat("x", 64<<10+1)
	for _, tt := range []struct {
		name string
		body io.Reader
	}{
		{"content length", strings.NewReader(big)},
		{"chunked", io.MultiReader(strings.NewReader(big))}, // no length: sent chunked
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := n.send("POST", "/api/v1/web/guest/default/echo", tt.body, map[string]string{"Content-Type": "text/plain"})
			if r.status != 413 || !strings.HasPrefix(r.errorText(), "Request larger than allowed") {
				t.Errorf("got %d %s", r.status, r.body)
			}
		})
	}
	t.Run("binary body within the limit", func(t *testing.T) {
		// The limit is on the body as sent; base64 for the action makes a
		// binary body a third larger, which must not make it too large.
		// The web layer checks the raw body (runWeb) and tells the
		// activation service so (activation.Request.PayloadChecked).
		n.action("small", map[string]any{"k": "v"}, nil)
		bin := bytes.Repeat([]byte{0xff, 0, 0x80}, 60<<10/3) // 60 KB, 80 KB in base64
		r := n.send("POST", "/api/v1/web/guest/default/small.json", bytes.NewReader(bin), map[string]string{"Content-Type": "application/octet-stream"})
		if r.status != 200 {
			t.Errorf("binary body of %d bytes, limit %d: %d %.200s", len(bin), 64<<10, r.status, r.body)
		}
	})
	t.Run("with bound parameters", func(t *testing.T) {
		r := n.send("POST", "/api/v1/web/guest/default/echo", strings.NewReader(strings.Repeat("y", 30<<10)), map[string]string{"Content-Type": "text/plain"})
		if r.status != 413 {
			t.Errorf("body plus bound parameters over the payload limit: %d %.200s", r.status, r.body)
		}
	})
}

// TestWebMethodsByExtension crosses every verb with every extension: the
// verb reaches the action as __ow_method, a body sent with it arrives, and
// each extension renders the echo's result its way.
func TestWebMethodsByExtension(t *testing.T) {
	n := startWebNode(t)
	n.action("echo", nil, nil) // its result: {"statusCode":200,"headers":{...},"body":<its input>}
	const echo = "/api/v1/web/guest/default/echo"

	// input decodes what the action received from each extension's answer.
	exts := []struct {
		path  string // extension and rest path
		ctype string
		input func(t *testing.T, body []byte) map[string]any
	}{
		{".http", "application/json", func(t *testing.T, b []byte) map[string]any { return decodeObject(t, b) }},
		{"", "application/json", func(t *testing.T, b []byte) map[string]any { return decodeObject(t, b) }},
		{".json", "application/json", func(t *testing.T, b []byte) map[string]any {
			in, _ := decodeObject(t, b)["body"].(map[string]any)
			return in
		}},
		{".text", "text/plain; charset=UTF-8", func(t *testing.T, b []byte) map[string]any { return decodeObject(t, b) }},
		// .html and .svg need a string: project the one that tells the verb.
		{".html/body/__ow_method", "text/html; charset=UTF-8", func(t *testing.T, b []byte) map[string]any {
			return map[string]any{"__ow_method": string(b)}
		}},
		{".svg/body/__ow_method", "image/svg+xml", func(t *testing.T, b []byte) map[string]any {
			return map[string]any{"__ow_method": string(b)}
		}},
	}
	for _, method := range []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"} {
		for _, ext := range exts {
			t.Run(method+" "+ext.path, func(t *testing.T) {
				var body io.Reader
				hdr := map[string]string{}
				withBody := method != "GET" && method != "HEAD"
				if withBody {
					body = strings.NewReader(`{"sent":"` + method + `"}`)
					hdr["Content-Type"] = "application/json"
				}
				r := n.send(method, echo+ext.path+"?q=1", body, hdr)
				if r.status != 200 || r.header.Get("Content-Type") != ext.ctype {
					t.Fatalf("status %d, Content-Type %q: %s", r.status, r.header.Get("Content-Type"), r.body)
				}
				if r.header.Get("Access-Control-Allow-Origin") != "*" || r.header.Get("X-Gust-Activation-Id") == "" {
					t.Errorf("headers: %v", r.header)
				}
				if method == "HEAD" {
					if len(r.body) != 0 {
						t.Errorf("HEAD answered a body: %q", r.body)
					}
					return
				}
				in := ext.input(t, r.body)
				if in["__ow_method"] != strings.ToLower(method) {
					t.Errorf("__ow_method = %v, want %q", in["__ow_method"], strings.ToLower(method))
				}
				if !strings.Contains(ext.path, "/") {
					if in["q"] != "1" {
						t.Errorf("query parameter q = %v", in["q"])
					}
					if withBody && in["sent"] != method {
						t.Errorf("body field sent = %v, want %q", in["sent"], method)
					}
				}
			})
		}
	}
}

func decodeObject(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object (%v): %s", err, b)
	}
	return m
}

// TestWebPackages reaches web actions in packages and through bindings:
// the parameters bound on the way apply (package < binding < action <
// request) and final protects all of them.
func TestWebPackages(t *testing.T) {
	n := startWebNode(t)
	n.put(n.Auth, "/api/v1/namespaces/_/packages/pkg", map[string]any{
		"parameters": kv(map[string]any{"p": "pkg", "over": "pkg", "who": "pkg"})})
	n.action("pkg/echo", map[string]any{"a": "act", "who": "act"}, nil)
	n.action("pkg/fixed", map[string]any{"a": "act"}, map[string]any{"final": true})
	n.action("pkg/hidden", nil, map[string]any{"web-export": false})
	n.put(n.Auth, "/api/v1/namespaces/_/packages/bnd", map[string]any{
		"binding": map[string]any{"namespace": "guest", "name": "pkg"}, "parameters": kv(map[string]any{"b": "bnd", "over": "bnd"})})

	const web = "/api/v1/web/guest/"
	tests := []struct {
		name, path string
		status     int
		want       map[string]any // parameters the action received
		binding    string         // the activation's "binding" annotation, JSON; "-" for none; "" not checked
	}{
		{name: "in its package", path: web + "pkg/echo.http?q=1", status: 200,
			want: map[string]any{"p": "pkg", "over": "pkg", "who": "act", "a": "act", "q": "1"}, binding: "-"},
		{name: "through a binding", path: web + "bnd/echo.http", status: 200,
			want: map[string]any{"p": "pkg", "b": "bnd", "over": "bnd", "who": "act", "a": "act"}, binding: `"guest/bnd"`},
		{name: "request over bound", path: web + "bnd/echo.http?over=req&who=req", status: 200,
			want: map[string]any{"over": "req", "who": "req", "b": "bnd"}},
		{name: "binding json", path: web + "bnd/echo.json", status: 200},
		{name: "final: others allowed", path: web + "bnd/fixed.http?other=1", status: 200,
			want: map[string]any{"other": "1", "a": "act", "b": "bnd", "p": "pkg"}},
		{name: "final protects the action's", path: web + "bnd/fixed.http?a=x", status: 400},
		{name: "final protects the binding's", path: web + "bnd/fixed.http?b=x", status: 400},
		{name: "final protects the package's", path: web + "pkg/fixed.http?p=x", status: 400},
		{name: "not exported through a binding", path: web + "bnd/hidden", status: 404},
		{name: "missing through a binding", path: web + "bnd/nothere", status: 404},
		{name: "missing package", path: web + "nopkg/echo", status: 404},
		{name: "packaged action through default", path: web + "default/echo", status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := n.send("GET", tt.path, nil, nil)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.status == 400 && r.errorText() != gust.MsgReservedParam {
				t.Errorf("error %s", r.body)
			}
			if tt.status == 404 && r.errorText() != gust.MsgNotFound {
				t.Errorf("404 text: %s", r.body)
			}
			if tt.status != 200 {
				return
			}
			got := r.json(t)
			for k, want := range tt.want {
				if got[k] != want {
					t.Errorf("%s = %v, want %v", k, got[k], want)
				}
			}
			if tt.binding == "" {
				return
			}
			act := n.activation(t, n.Auth, r.header.Get("X-Gust-Activation-Id"))
			b, ok := act.Annotations.Get("binding")
			if tt.binding == "-" && ok || tt.binding != "-" && string(b) != tt.binding {
				t.Errorf("binding annotation %s, want %s", b, tt.binding)
			}
		})
	}

	// openwhisk-client-go has no call for web actions, but builds their
	// URLs (what `wsk action get --url` prints) and sends any request.
	t.Run("openwhisk-client-go", func(t *testing.T) {
		wsk, err := whisk.NewClient(http.DefaultClient, &whisk.Config{Host: n.URL, AuthToken: n.Auth, Namespace: "_"})
		if err != nil {
			t.Fatal(err)
		}
		a, _, err := wsk.Actions.Get("pkg/echo", false)
		if err != nil {
			t.Fatal(err)
		}
		u, err := a.ActionURL(n.URL, "/api", "v1", "pkg")
		if want := n.URL + web + "pkg/echo"; err != nil || u != want {
			t.Fatalf("ActionURL = %q, %v; want %q", u, err, want)
		}
		rel, _ := url.Parse("web/guest/bnd/echo.http?q=2")
		req, err := wsk.NewRequestUrl("POST", rel, map[string]any{"sent": "wsk"}, false, true, whisk.EncodeBodyAsJson, false)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if _, err := wsk.Do(req, &got, whisk.ExitWithSuccessOnTimeout); err != nil {
			t.Fatal(err)
		}
		if got["sent"] != "wsk" || got["q"] != "2" || got["b"] != "bnd" || got["__ow_method"] != "post" {
			t.Errorf("through a binding with openwhisk-client-go: %v", got)
		}
	})
}

// TestWebSharedPackages reaches an action of another namespace's published
// package through a binding of the caller's namespace: the URL names the
// binding's namespace, which runs the action and records the activation.
func TestWebSharedPackages(t *testing.T) {
	n := startWebNode(t)
	other := n.namespace("other")
	n.put(n.Auth, "/api/v1/namespaces/_/packages/shared", map[string]any{"publish": true,
		"parameters": kv(map[string]any{"owner": "guest"})})
	n.action("shared/echo", nil, nil)
	n.action("shared/secret", nil, map[string]any{"require-whisk-auth": "s3cret"})
	n.action("shared/hidden", nil, map[string]any{"web-export": false})
	n.put(other, "/api/v1/namespaces/_/packages/mine", map[string]any{
		"binding": map[string]any{"namespace": "guest", "name": "shared"}, "parameters": kv(map[string]any{"who": "other"})})

	tests := []struct {
		name, path string
		header     map[string]string
		status     int
		ns         string // namespace of the activation
	}{
		{"through the caller's binding", "/api/v1/web/other/mine/echo", nil, 200, "other"},
		{"the owner's own URL", "/api/v1/web/guest/shared/echo", nil, 200, "guest"},
		{"the owner's secret still asked", "/api/v1/web/other/mine/secret", nil, 401, ""},
		{"the owner's secret given", "/api/v1/web/other/mine/secret", map[string]string{"X-Require-Whisk-Auth": "s3cret"}, 200, "other"},
		{"not exported", "/api/v1/web/other/mine/hidden", nil, 404, ""},
		{"no such package in the caller's namespace", "/api/v1/web/other/shared/echo", nil, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := n.send("GET", tt.path, nil, tt.header)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.status != 200 {
				return
			}
			got := r.json(t)
			if got["owner"] != "guest" || tt.ns == "other" && got["who"] != "other" {
				t.Errorf("bound parameters: %v", got)
			}
			auth := n.Auth
			if tt.ns == "other" {
				auth = other
			}
			if act := n.activation(t, auth, r.header.Get("X-Gust-Activation-Id")); act.Namespace != tt.ns {
				t.Errorf("activation recorded in %q, want %q", act.Namespace, tt.ns)
			}
		})
	}

	// Unpublishing cuts the binding off, as for invokes.
	n.put(n.Auth, "/api/v1/namespaces/_/packages/shared?overwrite=true", map[string]any{"publish": false})
	if r := n.send("GET", "/api/v1/web/other/mine/echo", nil, nil); r.status != 404 || r.errorText() != gust.MsgNotFound {
		t.Errorf("through a binding to an unpublished package: %d %s", r.status, r.body)
	}
}

// activation reads the activation id with the credentials auth.
func (n *webNode) activation(t *testing.T, auth, id string) *gust.Activation {
	t.Helper()
	r := n.send("GET", "/api/v1/namespaces/_/activations/"+id, nil, map[string]string{"Authorization": basicAuth(auth)})
	if r.status != 200 {
		t.Fatalf("activation %s: %d %s", id, r.status, r.body)
	}
	var act gust.Activation
	if err := json.Unmarshal(r.body, &act); err != nil {
		t.Fatal(err)
	}
	return &act
}
