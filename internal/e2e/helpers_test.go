package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/openwhisk-client-go/whisk"

	"github.com/gust-faas/gust/internal/app"
	"github.com/gust-faas/gust/internal/gusttest"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
)

// env is one running node and the clients that talk to it.
type env struct {
	t    testing.TB
	node *gusttest.Node
	wsk  *whisk.Client
}

// start starts a node that stops when the test ends. The node runs no
// stem cells of the process runtimes: this suite runs wasm actions only,
// and spawning sandboxed interpreters costs seconds of CPU and of every
// shutdown (which waits for cells still starting). startDefault keeps
// them, for the tests of shutdown and restart.
func start(t testing.TB, opts ...gusttest.Option) *env {
	t.Helper()
	return startDefault(t, append([]gusttest.Option{noStemCells}, opts...)...)
}

// startDefault starts a node configured as `gust up` is.
func startDefault(t testing.TB, opts ...gusttest.Option) *env {
	t.Helper()
	n := gusttest.Start(t, opts...)
	return &env{t: t, node: n, wsk: newWhisk(t, n.URL, n.Auth)}
}

func noStemCells(c *app.Config) { c.StemCells = -1 }

// newWhisk returns an openwhisk-client-go client for the node at url. The
// client builds its base URL as Host + "/api", then adds "/v1/namespaces/…".
// It gets its own http.Client: with Insecure set it replaces the client's
// transport, which must not be http.DefaultClient's.
func newWhisk(t testing.TB, url, auth string) *whisk.Client {
	t.Helper()
	c, err := whisk.NewClient(&http.Client{Timeout: time.Minute}, &whisk.Config{
		Host: url, AuthToken: auth, Namespace: "_", Insecure: true,
	})
	if err != nil {
		t.Fatalf("whisk.NewClient: %v", err)
	}
	if got, want := c.BaseURL.String(), url+"/api"; got != want {
		t.Fatalf("whisk client base URL = %s, want %s", got, want)
	}
	return c
}

// rawClient is used for raw HTTP; it never follows redirects, so what the
// server answered is what the test sees.
var rawClient = &http.Client{
	Timeout:       time.Minute,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// reply is a raw HTTP answer, read whole.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) String() string {
	b := r.body
	if len(b) > 300 {
		b = append(b[:300:300], "…"...)
	}
	return http.StatusText(r.status) + " " + string(b)
}

// decode decodes the body as JSON into v.
func (r reply) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body is not the JSON expected (%v): %s", err, r)
	}
}

// object decodes the body as a JSON object.
func (r reply) object(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.decode(t, &m)
	return m
}

// request sends method path with the credential auth ("" for none) and a
// body: nil, a []byte or string sent as is, or a value encoded as JSON.
func request(t testing.TB, base, auth, method, path string, body any, hdr ...string) reply {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		uuid, key, _ := strings.Cut(auth, ":")
		req.SetBasicAuth(uuid, key)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := rawClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: data}
}

// do sends an authenticated request as the guest namespace.
func (e *env) do(method, path string, body any, hdr ...string) reply {
	e.t.Helper()
	return request(e.t, e.node.URL, e.node.Auth, method, path, body, hdr...)
}

// want checks the status of r.
func want(t testing.TB, r reply, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r)
	}
}

// wantError checks that r is an OpenWhisk error: the status, a JSON body
// with both "error" and "code", code equal to the X-Request-ID header, and
// an error message containing each of msgs.
func wantError(t testing.TB, r reply, status int, msgs ...string) string {
	t.Helper()
	want(t, r, status)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body map[string]any
	r.decode(t, &body)
	msg, ok := body["error"].(string)
	if !ok {
		t.Fatalf("error body has no string \"error\": %s", r)
	}
	code, ok := body["code"].(string)
	if !ok || code == "" {
		t.Fatalf("error body has no string \"code\": %s", r)
	}
	if rid := r.header.Get("X-Request-ID"); code != rid {
		t.Errorf("code %q differs from X-Request-ID %q", code, rid)
	}
	if len(body) != 2 {
		t.Errorf("error body has fields besides error and code: %s", r)
	}
	for _, m := range msgs {
		if !strings.Contains(msg, m) {
			t.Errorf("error %q does not contain %q", msg, m)
		}
	}
	return msg
}

var fixtures sync.Map // name -> base64 code

// fixture returns the base64 code of a wasmtest fixture.
func fixture(t testing.TB, name string) string {
	t.Helper()
	if c, ok := fixtures.Load(name); ok {
		return c.(string)
	}
	c := base64.StdEncoding.EncodeToString(wasmtest.Build(t, name))
	fixtures.Store(name, c)
	return c
}

// wasmExec is an exec of kind wasm running the named fixture.
func wasmExec(t testing.TB, name string) map[string]any {
	return map[string]any{"kind": "wasm", "code": fixture(t, name)}
}

// putAction creates (or overwrites) action name running fixture, with
// extra fields merged into the PUT body (e.g. "limits").
func (e *env) putAction(name, fixtureName string, extra map[string]any) map[string]any {
	e.t.Helper()
	body := map[string]any{"exec": wasmExec(e.t, fixtureName)}
	for k, v := range extra {
		body[k] = v
	}
	r := e.do("PUT", "/api/v1/namespaces/_/actions/"+name+"?overwrite=true", body)
	want(e.t, r, http.StatusOK)
	return r.object(e.t)
}

// invoke runs action name blocking and returns the reply.
func (e *env) invoke(name string, params any) reply {
	e.t.Helper()
	return e.do("POST", "/api/v1/namespaces/_/actions/"+name+"?blocking=true", params)
}

// activation reads a finished activation record by id.
func (e *env) activation(id string) map[string]any {
	e.t.Helper()
	r := e.do("GET", "/api/v1/namespaces/_/activations/"+id, nil)
	want(e.t, r, http.StatusOK)
	return r.object(e.t)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v", what, within)
		}
		time.Sleep(delay)
	}
}

// waitActivation polls until the activation id is readable and returns it.
func (e *env) waitActivation(id string) map[string]any {
	e.t.Helper()
	var rec map[string]any
	eventually(e.t, 20*time.Second, "activation "+id+" recorded", func() bool {
		r := e.do("GET", "/api/v1/namespaces/_/activations/"+id, nil)
		if r.status == http.StatusNotFound {
			return false
		}
		want(e.t, r, http.StatusOK)
		rec = r.object(e.t)
		return true
	})
	return rec
}

// annotation returns the value of key in a decoded annotations list.
func annotation(t testing.TB, entity map[string]any, key string) (any, bool) {
	t.Helper()
	list, ok := entity["annotations"].([]any)
	if !ok {
		t.Fatalf("no annotations array in %v", entity)
	}
	for _, e := range list {
		kv := e.(map[string]any)
		if kv["key"] == key {
			return kv["value"], true
		}
	}
	return nil, false
}

// field walks a path of object keys in a decoded JSON value.
func field(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// wskError returns the HTTP status and the server's "error" message of an
// API error from the whisk client (0 and the client's text for others).
func wskError(t testing.TB, err error) (status int, msg string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error from the whisk client")
	}
	var we *whisk.WskError
	if !errors.As(err, &we) {
		t.Fatalf("error %T %v is not a *whisk.WskError", err, err)
	}
	var er *whisk.ErrorResponse
	if errors.As(we.RootErr, &er) {
		if er.Code == nil {
			t.Errorf("API error without code: %v", er)
		}
		m, _ := (*er.ErrMsg).(string)
		return er.Response.StatusCode, m
	}
	return 0, we.Error()
}

// num reads a JSON number decoded as float64 or json.Number.
func num(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// jsonEqual compares two decoded JSON values.
func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}
