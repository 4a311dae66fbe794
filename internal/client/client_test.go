package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gust"
)

const testAuth = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP"

// request is what the fake server saw of one call.
type request struct {
	Method, Path, Query, Auth, ContentType, Body string
}

// reply is what the fake server answers.
type reply struct {
	status int
	body   string
	header map[string]string
}

// fakeAPI is an HTTP server on 127.0.0.1 that records requests and answers
// canned replies. It stands at the boundary only: it checks what the client
// sends and how it reads answers, not the server's behaviour.
type fakeAPI struct {
	mu    sync.Mutex
	reqs  []request
	reply reply
	srv   *httptest.Server
}

func newFake(t *testing.T, r reply) (*fakeAPI, *Client) {
	t.Helper()
	f := &fakeAPI{reply: r}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, request{
			Method: req.Method, Path: req.URL.EscapedPath(), Query: req.URL.RawQuery,
			Auth: req.Header.Get("Authorization"), ContentType: req.Header.Get("Content-Type"), Body: string(b),
		})
		rp := f.reply
		f.mu.Unlock()
		for k, v := range rp.header {
			w.Header().Set(k, v)
		}
		if rp.status == 0 {
			rp.status = http.StatusOK
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rp.status)
		io.WriteString(w, rp.body)
	}))
	t.Cleanup(f.srv.Close)
	c, err := New(Config{APIHost: f.srv.URL, Auth: testAuth})
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

// only returns the one request the server saw.
func (f *fakeAPI) only(t *testing.T) request {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) != 1 {
		t.Fatalf("server saw %d requests, want 1: %+v", len(f.reqs), f.reqs)
	}
	return f.reqs[0]
}

func (r request) check(t *testing.T, method, path, query string) {
	t.Helper()
	if r.Method != method || r.Path != path || r.Query != query {
		t.Errorf("request = %s %s?%s, want %s %s?%s", r.Method, r.Path, r.Query, method, path, query)
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(testAuth))
	if r.Auth != want {
		t.Errorf("Authorization = %q, want %q", r.Auth, want)
	}
}

// checkBody compares JSON bodies semantically.
func (r request) checkBody(t *testing.T, want string) {
	t.Helper()
	if r.ContentType != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", r.ContentType)
	}
	var got, exp any
	if err := json.Unmarshal([]byte(r.Body), &got); err != nil {
		t.Fatalf("body %q: %v", r.Body, err)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatal(err)
	}
	g, _ := json.Marshal(got)
	e, _ := json.Marshal(exp)
	if string(g) != string(e) {
		t.Errorf("body = %s, want %s", g, e)
	}
}

func TestNewAPIHost(t *testing.T) {
	for _, tc := range []struct{ host, want string }{
		{"openwhisk.example", "https://openwhisk.example/api/v1/namespaces"},
		{"httpbin.example:8443", "https://httpbin.example:8443/api/v1/namespaces"},
		{"http://127.0.0.1:3233", "http://127.0.0.1:3233/api/v1/namespaces"},
		{"http://127.0.0.1:3233/", "http://127.0.0.1:3233/api/v1/namespaces"},
		{"https://gw.example/gust/", "https://gw.example/gust/api/v1/namespaces"},
	} {
		c, err := New(Config{APIHost: tc.host})
		if err != nil {
			t.Errorf("New(%q): %v", tc.host, err)
			continue
		}
		if got := c.url([]string{"namespaces"}, nil).String(); got != tc.want {
			t.Errorf("New(%q) URL = %s, want %s", tc.host, got, tc.want)
		}
	}
	for _, bad := range []string{"", "  ", "ftp://x", "http://"} {
		if _, err := New(Config{APIHost: bad}); err == nil {
			t.Errorf("New(%q) succeeded, want an error", bad)
		}
	}
}

func TestPutAction(t *testing.T) {
	f, c := newFake(t, reply{body: `{"namespace":"guest","name":"hello","exec":{"kind":"wasm","binary":true},"limits":{"timeout":60000,"memory":256,"logs":10,"concurrency":1},"version":"0.0.1","publish":false,"annotations":[],"parameters":[],"updated":1}`})
	mem := 512
	a, err := c.PutAction(context.Background(), "hello", ActionPut{
		Exec:        &gust.Exec{Kind: "wasm", Code: "AGFzbQ==", Binary: true},
		Parameters:  gust.KeyValues{{Key: "n", Value: json.RawMessage("1")}},
		Annotations: gust.KeyValues{{Key: "web-export", Value: json.RawMessage("true")}},
		Limits:      &gust.LimitsPatch{Memory: &mem},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "hello" || a.Exec.Kind != "wasm" || a.Limits.Memory != 256 {
		t.Errorf("action = %+v", a)
	}
	r := f.only(t)
	r.check(t, "PUT", "/api/v1/namespaces/_/actions/hello", "overwrite=false")
	r.checkBody(t, `{"exec":{"kind":"wasm","code":"AGFzbQ==","binary":true},
		"parameters":[{"key":"n","value":1}],"annotations":[{"key":"web-export","value":true}],
		"limits":{"memory":512}}`)
}

func TestPutActionUpdateOmitsAbsentFields(t *testing.T) {
	f, c := newFake(t, reply{body: `{"name":"hello"}`})
	if _, err := c.PutAction(context.Background(), "pkg/hello", ActionPut{}, true); err != nil {
		t.Fatal(err)
	}
	r := f.only(t)
	r.check(t, "PUT", "/api/v1/namespaces/_/actions/pkg/hello", "overwrite=true")
	r.checkBody(t, `{}`)
}

func TestEntityPathEscaping(t *testing.T) {
	f, c := newFake(t, reply{body: `{}`})
	ctx := context.Background()
	if _, err := c.GetAction(ctx, "/my ns/my pkg/a b@c&d", false); err != nil {
		t.Fatal(err)
	}
	f.only(t).check(t, "GET", "/api/v1/namespaces/my%20ns/actions/my%20pkg/a%20b@c&d", "code=false")

	if err := c.DeleteAction(ctx, "../x"); err == nil {
		t.Error("DeleteAction(../x) succeeded, want an invalid name error")
	}
	if _, err := c.GetAction(ctx, "/ns/a/b/c", true); err == nil {
		t.Error("GetAction with four segments succeeded, want an error")
	}
}

func TestNamespaceInConfig(t *testing.T) {
	f, _ := newFake(t, reply{body: `[]`})
	c, err := New(Config{APIHost: f.srv.URL, Auth: testAuth, Namespace: "guest"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListActions(context.Background(), ListOptions{Limit: 30}); err != nil {
		t.Fatal(err)
	}
	f.only(t).check(t, "GET", "/api/v1/namespaces/guest/actions", "limit=30&skip=0")
}

func TestGetAction(t *testing.T) {
	f, c := newFake(t, reply{body: `{"namespace":"guest","name":"hello","exec":{"kind":"python:3","code":"def main(a): return a","binary":false}}`})
	a, err := c.GetAction(context.Background(), "/guest/hello", true)
	if err != nil {
		t.Fatal(err)
	}
	if a.Exec.Code != "def main(a): return a" {
		t.Errorf("code = %q", a.Exec.Code)
	}
	f.only(t).check(t, "GET", "/api/v1/namespaces/guest/actions/hello", "code=true")
}

func TestListActions(t *testing.T) {
	f, c := newFake(t, reply{body: `[{"namespace":"guest","name":"b","exec":{"binary":false},"annotations":[{"key":"exec","value":"wasm"}]},{"namespace":"guest/pkg","name":"a"}]`})
	as, err := c.ListActions(context.Background(), ListOptions{Limit: 5, Skip: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 2 || as[0].Name != "b" || as[1].Namespace != "guest/pkg" {
		t.Errorf("actions = %+v", as)
	}
	f.only(t).check(t, "GET", "/api/v1/namespaces/_/actions", "limit=5&skip=10")
}

func TestCountActions(t *testing.T) {
	f, c := newFake(t, reply{body: `{"actions":12}`})
	n, err := c.CountActions(context.Background())
	if err != nil || n != 12 {
		t.Fatalf("CountActions = %d, %v; want 12", n, err)
	}
	f.only(t).check(t, "GET", "/api/v1/namespaces/_/actions", "count=true")
}

func TestDeleteAction(t *testing.T) {
	f, c := newFake(t, reply{body: `{"name":"hello"}`})
	if err := c.DeleteAction(context.Background(), "hello"); err != nil {
		t.Fatal(err)
	}
	r := f.only(t)
	r.check(t, "DELETE", "/api/v1/namespaces/_/actions/hello", "")
	if r.Body != "" {
		t.Errorf("DELETE sent a body: %q", r.Body)
	}
}

func TestAPIError(t *testing.T) {
	f, c := newFake(t, reply{status: 409, body: `{"error":"resource already exists","code":"abc"}`})
	_, err := c.PutAction(context.Background(), "hello", ActionPut{Exec: &gust.Exec{Kind: "wasm"}}, false)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *Error", err, err)
	}
	if e.Status != 409 || e.Message != "resource already exists" || e.Code != "abc" {
		t.Errorf("error = %+v", e)
	}
	if got, want := e.Error(), "resource already exists (code abc)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	f.only(t)
}

func TestNonJSONError(t *testing.T) {
	for _, tc := range []struct {
		status     int
		body, want string
	}{
		{502, "<html><body>Bad Gateway</body></html>", "Bad Gateway (HTTP status 502)"},
		{503, "", "Service Unavailable (HTTP status 503)"},
		{500, "upstream reset", "upstream reset (HTTP status 500)"},
		{404, `{"error":"The requested resource does not exist."}`, "The requested resource does not exist. (HTTP status 404)"},
	} {
		_, c := newFake(t, reply{status: tc.status, body: tc.body})
		_, err := c.ListNamespaces(context.Background())
		var e *Error
		if !errors.As(err, &e) || e.Status != tc.status || err.Error() != tc.want {
			t.Errorf("status %d body %q: err = %v, want %q", tc.status, tc.body, err, tc.want)
		}
	}
}

func TestListNamespacesAndLimits(t *testing.T) {
	f, c := newFake(t, reply{body: `["guest"]`})
	ns, err := c.ListNamespaces(context.Background())
	if err != nil || len(ns) != 1 || ns[0] != "guest" {
		t.Fatalf("ListNamespaces = %v, %v", ns, err)
	}
	f.only(t).check(t, "GET", "/api/v1/namespaces", "")

	f, c = newFake(t, reply{body: `{"invocationsPerMinute":60}`})
	l, err := c.GetLimits(context.Background())
	if err != nil || string(l) != `{"invocationsPerMinute":60}` {
		t.Fatalf("GetLimits = %s, %v", l, err)
	}
	f.only(t).check(t, "GET", "/api/v1/namespaces/_/limits", "")
}

func TestInvoke(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	activation := `{"activationId":"` + id + `","response":{"status":"application error","success":false,"result":{"error":"boom"}}}`
	for _, tc := range []struct {
		name       string
		opts       InvokeOpts
		params     string
		reply      reply
		wantQuery  string
		wantBody   string
		wantStatus int
		wantErr    bool
	}{
		{
			name: "non-blocking", params: `{"name":"world"}`,
			reply:     reply{status: 202, body: `{"activationId":"` + id + `"}`},
			wantQuery: "blocking=false&result=false", wantBody: `{"name":"world"}`, wantStatus: 202,
		},
		{
			name: "blocking result with timeout", opts: InvokeOpts{Blocking: true, Result: true, Timeout: 1500 * time.Millisecond},
			reply:     reply{status: 200, body: `{"greeting":"hi"}`, header: map[string]string{"x-openwhisk-activation-id": id}},
			wantQuery: "blocking=true&result=true&timeout=1500", wantBody: `{}`, wantStatus: 200,
		},
		{
			name: "application error is an outcome", opts: InvokeOpts{Blocking: true},
			reply:     reply{status: 502, body: activation, header: map[string]string{"x-openwhisk-activation-id": id}},
			wantQuery: "blocking=true&result=false", wantBody: `{}`, wantStatus: 502,
		},
		{
			name: "error result without header is an outcome", opts: InvokeOpts{Blocking: true, Result: true},
			reply:     reply{status: 502, body: `{"error":"boom"}`},
			wantQuery: "blocking=true&result=true", wantBody: `{}`, wantStatus: 502,
		},
		{
			name: "platform error", opts: InvokeOpts{Blocking: true},
			reply:     reply{status: 502, body: `{"error":"no invoker","code":"tx1"}`},
			wantQuery: "blocking=true&result=false", wantBody: `{}`, wantStatus: 502, wantErr: true,
		},
		{
			name:      "throttled",
			reply:     reply{status: 429, body: `{"error":"Too many requests","code":"tx2"}`},
			wantQuery: "blocking=false&result=false", wantBody: `{}`, wantStatus: 429, wantErr: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, c := newFake(t, tc.reply)
			var params json.RawMessage
			if tc.params != "" {
				params = json.RawMessage(tc.params)
			}
			status, body, gotID, err := c.Invoke(context.Background(), "hello", params, tc.opts)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if status != tc.wantStatus || string(body) != tc.reply.body {
				t.Errorf("Invoke = %d %s, want %d %s", status, body, tc.wantStatus, tc.reply.body)
			}
			if !tc.wantErr && tc.name != "error result without header is an outcome" && gotID != id {
				t.Errorf("activation id = %q, want %q", gotID, id)
			}
			r := f.only(t)
			r.check(t, "POST", "/api/v1/namespaces/_/actions/hello", tc.wantQuery)
			r.checkBody(t, tc.wantBody)
		})
	}
}

func TestListActivations(t *testing.T) {
	f, c := newFake(t, reply{body: `[
		{"namespace":"guest","name":"hello","activationId":"a1","start":10,"end":20,"duration":10,"statusCode":1,"annotations":[{"key":"kind","value":"wasm"}]},
		{"namespace":"guest","name":"hello","activationId":"a0","start":5,"response":{"status":"action developer error","success":false,"result":{}}}]`})
	as, err := c.ListActivations(context.Background(), ActivationListOptions{
		Name: "pkg/hello", Since: time.UnixMilli(5), Upto: time.UnixMilli(1700000000000), Limit: 0, Skip: 2, Docs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 2 || as[0].ActivationID != "a1" || as[0].Duration != 10 {
		t.Fatalf("activations = %+v", as)
	}
	if as[0].Status() != gust.StatusApplicationError || as[1].Status() != gust.StatusDeveloperError {
		t.Errorf("statuses = %v, %v", as[0].Status(), as[1].Status())
	}
	f.only(t).check(t, "GET", "/api/v1/namespaces/_/activations", "docs=true&limit=0&name=pkg%2Fhello&since=5&skip=2&upto=1700000000000")
}

func TestCountActivations(t *testing.T) {
	f, c := newFake(t, reply{body: `{"activations":7}`})
	n, err := c.CountActivations(context.Background(), "pkg/hello")
	if err != nil || n != 7 {
		t.Fatalf("CountActivations = %d, %v; want 7", n, err)
	}
	f.only(t).check(t, "GET", "/api/v1/namespaces/_/activations", "count=true&name=pkg%2Fhello")

	f, c = newFake(t, reply{body: `{"activations":0}`})
	if n, err := c.CountActivations(context.Background(), ""); err != nil || n != 0 {
		t.Fatalf("CountActivations(\"\") = %d, %v; want 0", n, err)
	}
	f.only(t).check(t, "GET", "/api/v1/namespaces/_/activations", "count=true")

	_, c = newFake(t, reply{body: `[]`})
	if _, err := c.CountActivations(context.Background(), ""); err == nil {
		t.Error("a list answer was read as a count")
	}
}

func TestActivationByID(t *testing.T) {
	ctx := context.Background()
	f, c := newFake(t, reply{body: `{"activationId":"a1","name":"hello","response":{"status":"success","success":true,"result":{"x":1}},"logs":["l1"]}`})
	a, err := c.GetActivation(ctx, "a1")
	if err != nil || a.ActivationID != "a1" || string(a.Response.Result) != `{"x":1}` {
		t.Fatalf("GetActivation = %+v, %v", a, err)
	}
	f.only(t).check(t, "GET", "/api/v1/namespaces/_/activations/a1", "")

	f, c = newFake(t, reply{body: `{"logs":["2024-01-01T00:00:00Z stdout: hi"]}`})
	logs, err := c.ActivationLogs(ctx, "a1")
	if err != nil || len(logs) != 1 || logs[0] != "2024-01-01T00:00:00Z stdout: hi" {
		t.Fatalf("ActivationLogs = %q, %v", logs, err)
	}
	f.only(t).check(t, "GET", "/api/v1/namespaces/_/activations/a1/logs", "")

	f, c = newFake(t, reply{body: `{"result":{"error":"x"},"success":false,"status":"application error","size":11}`})
	r, err := c.ActivationResult(ctx, "a1")
	if err != nil || r.StatusCode != gust.StatusApplicationError || string(r.Result) != `{"error":"x"}` {
		t.Fatalf("ActivationResult = %+v, %v", r, err)
	}
	f.only(t).check(t, "GET", "/api/v1/namespaces/_/activations/a1/result", "")

	if _, err := c.GetActivation(ctx, ""); err == nil {
		t.Error("GetActivation(\"\") succeeded")
	}
}

func TestWithBody(t *testing.T) {
	const body = `[{"name":"b","extra":"kept"}]`
	_, c := newFake(t, reply{body: body})
	var raw json.RawMessage
	if _, err := c.WithBody(&raw).ListActions(context.Background(), ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if string(raw) != body {
		t.Errorf("captured body = %s, want %s", raw, body)
	}
}

func TestNoAuthSendsNoHeader(t *testing.T) {
	f, _ := newFake(t, reply{body: `[]`})
	c, err := New(Config{APIHost: f.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListNamespaces(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := f.only(t); r.Auth != "" {
		t.Errorf("Authorization = %q, want none", r.Auth)
	}
}

func TestContextCancel(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(block) })
	c, err := New(Config{APIHost: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, _, err = c.Invoke(ctx, "hello", nil, InvokeOpts{Blocking: true})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
}
