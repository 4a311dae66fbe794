package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gusttest"
)

const (
	msgNoAuth   = "The resource requires authentication, which was not supplied with the request"
	msgBadAuth  = "The supplied authentication is invalid"
	msgNotFound = "The requested resource does not exist."
	msgMethod   = "The requested method is not allowed for this resource."
	msgTimeout  = "Timeout must be number of milliseconds up to 60000."
	actionsPath = "/api/v1/namespaces/_/actions/"
)

// TestAPIInfo: GET /api/v1 needs no credentials.
func TestAPIInfo(t *testing.T) {
	e := start(t)
	for _, path := range []string{"/api/v1", "/api/v1/"} {
		r := request(t, e.node.URL, "", "GET", path, nil)
		want(t, r, http.StatusOK)
		m := r.object(t)
		if m["description"] != "OpenWhisk API" || m["api_version"] != "1.0.0" || m["api_version_path"] != "v1" {
			t.Errorf("GET %s = %s", path, r.body)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
		if r.header.Get("X-Request-ID") == "" {
			t.Errorf("no X-Request-ID")
		}
	}
	r := request(t, e.node.URL, "", "GET", "/ping", nil)
	if want(t, r, http.StatusOK); string(r.body) != "pong" {
		t.Errorf("GET /ping = %q", r.body)
	}
}

// TestAuthentication: every route but the info ones needs valid Basic
// credentials; failures are 401 with a challenge.
func TestAuthentication(t *testing.T) {
	e := start(t)
	e.putAction("hello", "hello", nil)
	id := e.invoke("hello", nil).object(t)["activationId"].(string)
	routes := []struct{ method, path string }{
		{"GET", "/api/v1/namespaces"},
		{"GET", "/api/v1/namespaces/_/limits"},
		{"GET", "/api/v1/namespaces/_/actions"},
		{"GET", actionsPath + "hello"},
		{"PUT", actionsPath + "hello"},
		{"POST", actionsPath + "hello"},
		{"DELETE", actionsPath + "hello"},
		{"PATCH", actionsPath + "hello"},
		{"GET", "/api/v1/namespaces/_/activations"},
		{"GET", "/api/v1/namespaces/_/activations/" + id},
		{"GET", "/api/v1/namespaces/_/activations/" + id + "/logs"},
		{"GET", "/api/v1/namespaces/guest/activations/" + id + "/result"},
	}
	uuid, key, _ := strings.Cut(e.node.Auth, ":")
	basic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	bad := []struct {
		name, header, msg string
	}{
		{"none", "", msgNoAuth},
		{"wrong key", basic(uuid + ":" + strings.Repeat("x", 64)), msgBadAuth},
		{"short key", basic(uuid + ":" + key[:10]), msgBadAuth},
		{"unknown uuid", basic("nobody:" + key), msgBadAuth},
		{"no colon", basic(uuid + key), msgBadAuth},
		{"not base64", "Basic !!!", msgBadAuth},
		{"bearer", "Bearer " + key, msgBadAuth},
	}
	for _, rt := range routes {
		for _, b := range bad {
			t.Run(rt.method+" "+rt.path+" "+b.name, func(t *testing.T) {
				var hdr []string
				if b.header != "" {
					hdr = []string{"Authorization", b.header}
				}
				r := request(t, e.node.URL, "", rt.method, rt.path, nil, hdr...)
				wantError(t, r, http.StatusUnauthorized, b.msg)
				if got := r.header.Get("WWW-Authenticate"); got != `Basic realm="OpenWhisk secure realm"` {
					t.Errorf("WWW-Authenticate = %q", got)
				}
			})
		}
	}
	// Nothing was changed by the refused calls.
	want(t, e.do("GET", actionsPath+"hello", nil), http.StatusOK)
}

// TestRequestID: the error code is the request id, which is taken from the
// request unless it starts with sid_.
func TestRequestID(t *testing.T) {
	e := start(t)
	r := e.do("GET", actionsPath+"missing", nil, "X-Request-ID", "trace-42")
	if wantError(t, r, http.StatusNotFound, msgNotFound); r.header.Get("X-Request-ID") != "trace-42" {
		t.Errorf("X-Request-ID = %q, want the caller's trace-42", r.header.Get("X-Request-ID"))
	}
	r = e.do("GET", actionsPath+"missing", nil, "X-Request-ID", "sid_42")
	if wantError(t, r, http.StatusNotFound); r.header.Get("X-Request-ID") == "sid_42" {
		t.Errorf("an sid_ request id was reused")
	}
	a, b := e.do("GET", "/api/v1/namespaces", nil), e.do("GET", "/api/v1/namespaces", nil)
	if a.header.Get("X-Request-ID") == "" || a.header.Get("X-Request-ID") == b.header.Get("X-Request-ID") {
		t.Errorf("request ids %q and %q: want distinct, non-empty", a.header.Get("X-Request-ID"), b.header.Get("X-Request-ID"))
	}
}

// TestRoutingErrors: unknown routes, wrong methods and CORS.
func TestRoutingErrors(t *testing.T) {
	e := start(t)
	e.putAction("hello", "noop", nil)
	id := e.invoke("hello", nil).object(t)["activationId"].(string)

	for _, path := range []string{
		"/nothing", "/api/v1/nothing", "/api/v1/namespaces/_/nothing",
		actionsPath + "a/b/c", "/api/v1/namespaces/_/activations/" + id + "/more",
	} {
		wantError(t, e.do("GET", path, nil), http.StatusNotFound, msgNotFound)
	}
	for _, c := range []struct{ method, path string }{
		{"PATCH", actionsPath + "hello"},
		{"HEAD", actionsPath + "hello"},
		{"POST", "/api/v1/namespaces/_/activations"},
		{"DELETE", "/api/v1/namespaces/_/activations/" + id},
		{"PUT", "/api/v1/namespaces"},
		{"POST", "/api/v1/namespaces/_/actions"},
		{"DELETE", "/api/v1/namespaces/_/limits"},
	} {
		r := e.do(c.method, c.path, nil)
		if c.method == "HEAD" {
			// A HEAD answer has no body to check.
			want(t, r, http.StatusMethodNotAllowed)
			continue
		}
		wantError(t, r, http.StatusMethodNotAllowed, msgMethod)
	}
	// Still there after all that.
	want(t, e.do("GET", actionsPath+"hello", nil), http.StatusOK)

	cors := map[string]string{
		"Access-Control-Allow-Origin":  "*",
		"Access-Control-Allow-Methods": "GET, DELETE, POST, PUT, HEAD",
		"Access-Control-Allow-Headers": "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent",
	}
	for _, path := range []string{actionsPath + "hello", "/api/v1/namespaces/_/activations", "/api/v1", "/api/v1/anything"} {
		r := request(t, e.node.URL, "", "OPTIONS", path, nil)
		want(t, r, http.StatusOK)
		for k, v := range cors {
			if got := r.header.Get(k); got != v {
				t.Errorf("OPTIONS %s: %s = %q, want %q", path, k, got, v)
			}
		}
	}
	// CORS headers on ordinary answers and errors too.
	for _, r := range []reply{e.do("GET", actionsPath+"hello", nil), e.do("GET", actionsPath+"nope", nil)} {
		if r.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("no CORS header on %s", r)
		}
	}
}

// TestNamespaceUnderscore: "_" is the caller's namespace everywhere.
func TestNamespaceUnderscore(t *testing.T) {
	e := start(t)
	created := e.putAction("hello", "hello", nil)
	if created["namespace"] != "guest" {
		t.Errorf("created in %v, want guest", created["namespace"])
	}
	r := e.do("GET", "/api/v1/namespaces/guest/actions/hello", nil)
	want(t, r, http.StatusOK)
	inv := e.do("POST", "/api/v1/namespaces/guest/actions/hello?blocking=true", map[string]any{"name": "x"})
	want(t, inv, http.StatusOK)
	id := inv.object(t)["activationId"].(string)
	want(t, e.do("GET", "/api/v1/namespaces/_/activations/"+id, nil), http.StatusOK)
	want(t, e.do("GET", "/api/v1/namespaces/guest/activations/"+id, nil), http.StatusOK)
	ns := e.do("GET", "/api/v1/namespaces", nil)
	if want(t, ns, http.StatusOK); strings.TrimSpace(string(ns.body)) != `["guest"]` {
		t.Errorf("namespaces = %s, want [\"guest\"]", ns.body)
	}
	lim := e.do("GET", "/api/v1/namespaces/_/limits", nil)
	want(t, lim, http.StatusOK)
	for _, k := range []string{"invocationsPerMinute", "concurrentInvocations", "firesPerMinute", "maxActionMemory", "minActionTimeout", "maxParameterSize"} {
		if _, ok := lim.object(t)[k]; !ok {
			t.Errorf("limits lack %q: %s", k, lim.body)
		}
	}
}

// TestValidation: bad input to the action routes is a 400 (or 413) with
// OpenWhisk's message, and a failed PUT stores nothing.
func TestValidation(t *testing.T) {
	e := start(t)
	hello := fixture(t, "hello")
	junk := make([]byte, 3000)
	if _, err := rand.Read(junk); err != nil {
		t.Fatal(err)
	}
	junkCode := base64.StdEncoding.EncodeToString(append([]byte("\x00asm\x01\x00\x00\x00"), junk...))
	notWasm := base64.StdEncoding.EncodeToString(junk)
	withExec := func(extra string) string {
		return `{"exec":{"kind":"wasm","code":"` + hello + `"}` + extra + `}`
	}

	puts := []struct {
		name, path, body string
		status           int
		msgs             []string
	}{
		{"leading dash", "-bad", withExec(""), 400, nil},
		{"too long", strings.Repeat("a", 300), withExec(""), 400, []string{"longer than 256"}},
		{"trailing space", "bad%20", withExec(""), 400, nil},
		{"bad package", "-p/x", withExec(""), 400, nil},
		{"memory", "mem", withExec(`,"limits":{"memory":5000}`), 400, []string{"memory 5000 MB"}},
		{"timeout", "tmo", withExec(`,"limits":{"timeout":50}`), 400, []string{"timeout 50 milliseconds"}},
		{"logs", "logs", withExec(`,"limits":{"logs":11}`), 400, []string{"logs 11 MB"}},
		{"concurrency", "conc", withExec(`,"limits":{"concurrency":101}`), 400, []string{"concurrency 101 is outside the allowed range of 1 to 100"}},
		{"bad kind", "cobol", `{"exec":{"kind":"cobol:9","code":"x"}}`, 400,
			[]string{"The specified runtime 'cobol:9' is not supported by this platform. Valid values are: ", "wasm"}},
		{"no kind", "nokind", `{"exec":{"code":"` + hello + `"}}`, 400, nil},
		{"no code", "nocode", `{"exec":{"kind":"wasm"}}`, 400, nil},
		{"no exec", "noexec", `{"parameters":[]}`, 400, []string{"exec"}},
		{"empty body", "empty", ``, 400, []string{"exec"}},
		{"source code", "src", `{"exec":{"kind":"wasm","code":"int main() { return 0; }"}}`, 400, []string{"base64"}},
		{"not wasm", "notwasm", `{"exec":{"kind":"wasm","code":"` + notWasm + `"}}`, 400, []string{"not a valid WebAssembly module"}},
		{"broken wasm", "broken", `{"exec":{"kind":"wasm","code":"` + junkCode + `"}}`, 400, []string{"not a valid WebAssembly module"}},
		{"malformed JSON", "json", `{"exec":`, 400, []string{"The request content was malformed:"}},
		{"JSON array", "array", `[]`, 400, []string{"The request content was malformed:"}},
		{"bad parameter", "param", withExec(`,"parameters":[{"key":"","value":1}]`), 400, nil},
		{"duplicate parameter", "dup", withExec(`,"parameters":[{"key":"a","value":1},{"key":"a","value":2}]`), 400, nil},
		{"bad version", "ver", withExec(`,"version":"one"`), 400, nil},
		{"bad overwrite", "ow?overwrite=maybe", withExec(""), 400, nil},
	}
	for _, c := range puts {
		t.Run("PUT "+c.name, func(t *testing.T) {
			r := e.do("PUT", actionsPath+c.path, c.body)
			wantError(t, r, c.status, c.msgs...)
			if c.status != 400 || strings.HasPrefix(c.path, "-") || strings.Contains(c.path, "%20") || len(c.path) > 256 {
				return
			}
			name, _, _ := strings.Cut(c.path, "?")
			wantError(t, e.do("GET", actionsPath+name, nil), http.StatusNotFound, msgNotFound)
		})
	}

	t.Run("default kind", func(t *testing.T) {
		r := e.do("PUT", actionsPath+"dflt", `{"exec":{"kind":"wasm:default","code":"`+hello+`"}}`)
		want(t, r, http.StatusOK)
		a := r.object(t)
		if k := field(a, "exec", "kind"); k != "wasm" {
			t.Errorf("kind wasm:default stored as %v, want wasm", k)
		}
		if v, _ := annotation(t, a, "exec"); v != "wasm" {
			t.Errorf("exec annotation %v", v)
		}
		if k := field(e.do("GET", actionsPath+"dflt?code=false", nil).object(t), "exec", "kind"); k != "wasm" {
			t.Errorf("stored kind %v", k)
		}
	})

	t.Run("failed update keeps the action", func(t *testing.T) {
		e.putAction("keep", "hello", nil)
		before := e.do("GET", actionsPath+"keep", nil).object(t)
		for _, body := range []string{
			`{"limits":{"memory":5000}}`,
			`{"exec":{"kind":"wasm","code":"` + notWasm + `"}}`,
			`{"exec":{"kind":"cobol:9","code":"x"}}`,
			`{"version":"x"}`,
		} {
			wantError(t, e.do("PUT", actionsPath+"keep?overwrite=true", body), http.StatusBadRequest)
		}
		after := e.do("GET", actionsPath+"keep", nil).object(t)
		if after["version"] != before["version"] || field(after, "exec", "code") != hello || field(after, "limits", "memory") != field(before, "limits", "memory") {
			t.Errorf("failed updates changed the action: %v -> %v", before["version"], after["version"])
		}
		want(t, e.invoke("keep", nil), http.StatusOK)
	})

	e.putAction("hello", "hello", nil)
	calls := []struct {
		name, method, path string
		body               any
		status             int
		msgs               []string
	}{
		{"array body", "POST", actionsPath + "hello?blocking=true", `[1,2]`, 400, []string{"The request content was malformed:"}},
		{"string body", "POST", actionsPath + "hello?blocking=true", `"x"`, 400, nil},
		{"malformed body", "POST", actionsPath + "hello?blocking=true", `{"a":`, 400, []string{"The request content was malformed:"}},
		{"timeout 0", "POST", actionsPath + "hello?blocking=true&timeout=0", nil, 400, []string{msgTimeout}},
		{"timeout 60001", "POST", actionsPath + "hello?blocking=true&timeout=60001", nil, 400, []string{msgTimeout}},
		{"timeout x", "POST", actionsPath + "hello?blocking=true&timeout=x", nil, 400, []string{msgTimeout}},
		{"timeout -5", "POST", actionsPath + "hello?blocking=true&timeout=-5", nil, 400, []string{msgTimeout}},
		{"blocking maybe", "POST", actionsPath + "hello?blocking=maybe", nil, 400, nil},
		{"invoke missing", "POST", actionsPath + "missing?blocking=true", nil, 404, []string{msgNotFound}},
		{"invoke bad name", "POST", actionsPath + "-x?blocking=true", nil, 400, nil},
		{"limit 201", "GET", "/api/v1/namespaces/_/actions?limit=201", nil, 400, []string{"The value '201' is not in the range of 0 to 200 for actions."}},
		{"limit -1", "GET", "/api/v1/namespaces/_/actions?limit=-1", nil, 400, []string{"The value '-1' is not in the range of 0 to 200 for actions."}},
		{"limit x", "GET", "/api/v1/namespaces/_/actions?limit=x", nil, 400, []string{"The value 'x' is not an integer for actions."}},
		{"skip -1", "GET", "/api/v1/namespaces/_/actions?skip=-1", nil, 400, []string{"-1"}},
		{"skip x", "GET", "/api/v1/namespaces/_/actions?skip=x", nil, 400, []string{"The value 'x' is not an integer for actions."}},
		{"count x", "GET", "/api/v1/namespaces/_/actions?count=x", nil, 400, nil},
		{"activations limit 201", "GET", "/api/v1/namespaces/_/activations?limit=201", nil, 400, []string{"The value '201' is not in the range of 0 to 200 for activations."}},
		{"activations skip x", "GET", "/api/v1/namespaces/_/activations?skip=x", nil, 400, []string{"The value 'x' is not an integer for activations."}},
		{"activations skip -1", "GET", "/api/v1/namespaces/_/activations?skip=-1", nil, 400, nil},
		{"activations since x", "GET", "/api/v1/namespaces/_/activations?since=x", nil, 400, nil},
		{"activations upto -1", "GET", "/api/v1/namespaces/_/activations?upto=-1", nil, 400, nil},
		{"activations docs x", "GET", "/api/v1/namespaces/_/activations?docs=x", nil, 400, nil},
		{"activations name a/b/c", "GET", "/api/v1/namespaces/_/activations?name=a/b/c", nil, 400, nil},
		{"activations name -x", "GET", "/api/v1/namespaces/_/activations?name=-x", nil, 400, nil},
		{"activation id short", "GET", "/api/v1/namespaces/_/activations/abc", nil, 400, []string{"Activation id length is 3 but must be 32."}},
		{"activation id long", "GET", "/api/v1/namespaces/_/activations/" + strings.Repeat("a", 33) + "/logs", nil, 400, []string{"Activation id length is 33 but must be 32."}},
		{"activation id not hex", "GET", "/api/v1/namespaces/_/activations/" + strings.Repeat("z", 32) + "/result", nil, 400, nil},
		{"bad namespace", "GET", "/api/v1/namespaces/-ns/actions", nil, 400, nil},
	}
	for _, c := range calls {
		t.Run(c.method+" "+c.name, func(t *testing.T) {
			wantError(t, e.do(c.method, c.path, c.body), c.status, c.msgs...)
		})
	}
	// Boundaries that are fine.
	for _, path := range []string{
		actionsPath + "hello?blocking=true&timeout=1", actionsPath + "hello?blocking=true&timeout=60000",
	} {
		if r := e.do("POST", path, nil); r.status != http.StatusOK && r.status != http.StatusAccepted {
			t.Errorf("POST %s: %s", path, r)
		}
	}
	for _, path := range []string{"actions?limit=0", "actions?limit=200&skip=0", "activations?limit=200", "activations?name=hello"} {
		want(t, e.do("GET", "/api/v1/namespaces/_/"+path, nil), http.StatusOK)
	}
	want(t, e.do("POST", actionsPath+"hello?blocking=true", ""), http.StatusOK)
	want(t, e.do("POST", actionsPath+"hello?blocking=true", " \n"), http.StatusOK)
}

// TestBodyLimits: bodies over the limits are refused with 413, large
// declared lengths without reading the body, and nothing is stored.
func TestBodyLimits(t *testing.T) {
	lim := gusttest.TestLimits()
	lim.MaxCodeSize = 512 << 10 // the fixtures are ~200 KB of base64
	lim.MaxParameterSize = 4 << 10
	e := start(t, gusttest.WithLimits(lim))
	e.putAction("hello", "hello", nil)

	t.Run("invoke body over 1 MB", func(t *testing.T) {
		big := `{"name":"` + strings.Repeat("x", lim.MaxPayloadSize) + `"}`
		wantError(t, e.do("POST", actionsPath+"hello?blocking=true", big), http.StatusRequestEntityTooLarge, "Request larger than allowed")
		// Streamed without a length, it is cut off at the limit.
		req, err := http.NewRequest("POST", e.node.URL+actionsPath+"hello?blocking=true", io.MultiReader(strings.NewReader(big), strings.NewReader(big)))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = -1
		uuid, key, _ := strings.Cut(e.node.Auth, ":")
		req.SetBasicAuth(uuid, key)
		resp, err := rawClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantError(t, reply{resp.StatusCode, resp.Header, body}, http.StatusRequestEntityTooLarge, "Request larger than allowed")
		// Just under the limit is fine.
		ok := `{"name":"` + strings.Repeat("y", 1000) + `"}`
		want(t, e.do("POST", actionsPath+"hello?blocking=true", ok), http.StatusOK)
	})

	t.Run("declared length refused unread", func(t *testing.T) {
		for _, c := range []struct{ method, path string }{
			{"POST", actionsPath + "hello?blocking=true"},
			{"PUT", actionsPath + "huge"},
		} {
			r := declareHuge(t, e, c.method, c.path, 10<<30)
			wantError(t, r, http.StatusRequestEntityTooLarge, "Request larger than allowed: 10737418240 >")
		}
		wantError(t, e.do("GET", actionsPath+"huge", nil), http.StatusNotFound)
	})

	t.Run("exec over the limit", func(t *testing.T) {
		code := strings.Repeat("AAAA", lim.MaxCodeSize/4+1)
		r := e.do("PUT", actionsPath+"bigcode", `{"exec":{"kind":"wasm","code":"`+code+`"}}`)
		wantError(t, r, http.StatusRequestEntityTooLarge, "exec is larger than allowed")
		wantError(t, e.do("GET", actionsPath+"bigcode", nil), http.StatusNotFound)
	})

	t.Run("parameters over the limit", func(t *testing.T) {
		params := `[{"key":"p","value":"` + strings.Repeat("p", lim.MaxParameterSize) + `"}]`
		r := e.do("PUT", actionsPath+"bigparams", `{"exec":{"kind":"wasm","code":"`+fixture(t, "hello")+`"},"parameters":`+params+`}`)
		wantError(t, r, http.StatusRequestEntityTooLarge, "parameters are larger than allowed")
		wantError(t, e.do("GET", actionsPath+"bigparams", nil), http.StatusNotFound)
		r = e.do("PUT", actionsPath+"bigann", `{"exec":{"kind":"wasm","code":"`+fixture(t, "hello")+`"},"annotations":`+params+`}`)
		wantError(t, r, http.StatusRequestEntityTooLarge, "annotations are larger than allowed")
		wantError(t, e.do("GET", actionsPath+"bigann", nil), http.StatusNotFound)
	})
}

// declareHuge sends a request whose Content-Length says n bytes but sends
// only a few, over a raw connection, and returns the answer. A server that
// tried to read the body would wait for the rest and never answer (the
// read deadline then fails the test).
func declareHuge(t *testing.T, e *env, method, path string, n int64) reply {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.node.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	auth := base64.StdEncoding.EncodeToString([]byte(e.node.Auth))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: gust\r\nAuthorization: Basic %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"a\":\"", method, path, auth, n)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s with Content-Length %d: no answer: %v", method, path, n, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, body}
}
