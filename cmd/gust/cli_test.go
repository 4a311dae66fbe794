package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testAuth = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP"
	testID   = "0123456789abcdef0123456789abcdef"
)

// seen is one request as the fake API received it.
type seen struct {
	method, path, query, auth, body string
}

// fakeAPI is an HTTP server on 127.0.0.1 standing in for Gust at the
// boundary: it records what the CLI sends and answers what answer returns.
type fakeAPI struct {
	mu   sync.Mutex
	reqs []seen
}

type answer struct {
	status int
	body   string
	id     string // x-openwhisk-activation-id
}

// startFake starts a fake API and points the CLI at it through the
// environment (GUST_APIHOST, GUST_AUTH), with HOME isolated.
func startFake(t *testing.T, tls bool, answer func(r seen, n int) answer) *fakeAPI {
	t.Helper()
	isolate(t)
	f := &fakeAPI{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s := seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), string(b)}
		f.mu.Lock()
		f.reqs = append(f.reqs, s)
		n := len(f.reqs)
		f.mu.Unlock()
		a := answer(s, n)
		if a.id != "" {
			w.Header().Set("X-Openwhisk-Activation-Id", a.id)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the TLS test's refused handshake is expected
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	t.Setenv("GUST_APIHOST", srv.URL)
	t.Setenv("GUST_AUTH", testAuth)
	return f
}

func ok(body string) func(seen, int) answer {
	return func(seen, int) answer { return answer{status: 200, body: body} }
}

func (f *fakeAPI) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

// last returns the last request and checks its method, path, query and auth.
func (f *fakeAPI) last(t *testing.T, method, path, query string) seen {
	t.Helper()
	reqs := f.requests()
	if len(reqs) == 0 {
		t.Fatal("no request")
	}
	r := reqs[len(reqs)-1]
	if r.method != method || r.path != path || r.query != query {
		t.Errorf("request = %s %s?%s, want %s %s?%s", r.method, r.path, r.query, method, path, query)
	}
	if want := "Basic " + base64.StdEncoding.EncodeToString([]byte(testAuth)); r.auth != want {
		t.Errorf("Authorization = %q, want %q", r.auth, want)
	}
	return r
}

func sameJSON(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("%q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Errorf("JSON = %s, want %s", gb, wb)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ec exitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 1
}

func TestActionCreate(t *testing.T) {
	f := startFake(t, false, ok(`{"namespace":"guest","name":"hello"}`))
	file := filepath.Join(t.TempDir(), "hello.wasm")
	os.WriteFile(file, []byte("\x00asm\x01\x00\x00\x00"), 0o644)

	out, _, err := runCmd(t, "action", "create", "hello", "-p", "name", "world", file, "-p", "n", "1",
		"--memory", "512", "-t", "3000", "-c", "4", "--web", "true", "-a", "description", "greets")
	if err != nil {
		t.Fatal(err)
	}
	// --web true: the web URL follows, in the namespace the server reports.
	if want := "ok: created action hello\n" + os.Getenv("GUST_APIHOST") + "/api/v1/web/guest/default/hello\n"; out != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
	r := f.last(t, "PUT", "/api/v1/namespaces/_/actions/hello", "overwrite=false")
	sameJSON(t, r.body, `{
		"exec": {"kind": "wasm", "code": "AGFzbQEAAAA=", "binary": true},
		"parameters": [{"key": "name", "value": "world"}, {"key": "n", "value": 1}],
		"annotations": [{"key": "description", "value": "greets"}, {"key": "web-export", "value": true},
			{"key": "raw-http", "value": false}, {"key": "final", "value": true}],
		"limits": {"memory": 512, "timeout": 3000, "concurrency": 4}}`)
}

func TestActionUpdateWithoutFile(t *testing.T) {
	f := startFake(t, false, ok(`{"namespace":"guest","name":"a b"}`))
	out, _, err := runCmd(t, "action", "update", "pkg/a b", "-p", "x", `{"y":[1]}`, "--json")
	if err != nil {
		t.Fatal(err)
	}
	if out != "{\n  \"namespace\": \"guest\",\n  \"name\": \"a b\"\n}\n" {
		t.Errorf("stdout = %q", out)
	}
	r := f.last(t, "PUT", "/api/v1/namespaces/_/actions/pkg/a%20b", "overwrite=true")
	sameJSON(t, r.body, `{"parameters": [{"key": "x", "value": {"y": [1]}}]}`)

	if _, _, err := runCmd(t, "action", "update", "a", "--kind", "wasm"); exitCode(err) != 2 {
		t.Errorf("update --kind without FILE: err = %v, want a usage error", err)
	}
}

func TestActionCreateErrors(t *testing.T) {
	startFake(t, false, func(seen, int) answer {
		return answer{status: 409, body: `{"error":"resource already exists","code":"abc"}`}
	})
	file := filepath.Join(t.TempDir(), "hello.py")
	os.WriteFile(file, []byte("def main(a): return a\n"), 0o644)
	_, _, err := runCmd(t, "action", "create", "hello", file)
	if err == nil || err.Error() != "Unable to create action 'hello': resource already exists (code abc)" || exitCode(err) != 1 {
		t.Errorf("err = %v (exit %d)", err, exitCode(err))
	}

	for _, args := range [][]string{
		{"action", "create", "hello", "x.rb"},          // kind not inferable
		{"action", "create", "hello"},                  // FILE missing
		{"action", "create", "hello", file, "--nope"},  // unknown flag
		{"action", "create", "hello", file, "-m", "x"}, // not an integer
		{"action", "create", "hello", file, "--web", "sometimes"},
		{"action", "frobnicate"},
	} {
		if _, _, err := runCmd(t, args...); exitCode(err) != 2 {
			t.Errorf("%q: err = %v (exit %d), want a usage error", args, err, exitCode(err))
		}
	}
}

func TestActionGetListDelete(t *testing.T) {
	f := startFake(t, false, func(r seen, _ int) answer {
		switch {
		case r.method == "GET" && strings.Contains(r.query, "count=true"):
			return answer{status: 200, body: `{"actions":2}`}
		case r.method == "GET" && strings.HasSuffix(r.path, "/actions"):
			return answer{status: 200, body: `[{"namespace":"guest","name":"b","publish":false,"annotations":[{"key":"exec","value":"wasm"}]},{"namespace":"guest","name":"a","publish":true,"exec":{"kind":"python:3"}}]`}
		case r.method == "GET":
			return answer{status: 200, body: `{"namespace":"guest","name":"hello","exec":{"kind":"wasm","binary":true}}`}
		default:
			return answer{status: 200, body: `{"namespace":"guest","name":"hello"}`}
		}
	})
	out, _, err := runCmd(t, "action", "get", "/guest/hello")
	if err != nil || !strings.HasPrefix(out, "ok: got action /guest/hello\n{\n  \"namespace\": \"guest\",") {
		t.Errorf("get = %q, %v", out, err)
	}
	f.last(t, "GET", "/api/v1/namespaces/guest/actions/hello", "code=false")
	runCmd(t, "action", "get", "hello", "--code")
	f.last(t, "GET", "/api/v1/namespaces/_/actions/hello", "code=true")

	out, _, err = runCmd(t, "action", "list")
	if want := "actions\n/guest/b   private   wasm\n/guest/a   shared    python:3\n"; err != nil || out != want {
		t.Errorf("list = %q, %v; want %q", out, err, want)
	}
	f.last(t, "GET", "/api/v1/namespaces/_/actions", "limit=30&skip=0")
	runCmd(t, "action", "list", "-l", "5", "--skip", "10")
	f.last(t, "GET", "/api/v1/namespaces/_/actions", "limit=5&skip=10")
	out, _, _ = runCmd(t, "action", "list", "--count")
	if out != "2\n" {
		t.Errorf("list --count = %q", out)
	}
	f.last(t, "GET", "/api/v1/namespaces/_/actions", "count=true")

	out, _, err = runCmd(t, "action", "delete", "hello")
	if err != nil || out != "ok: deleted action hello\n" {
		t.Errorf("delete = %q, %v", out, err)
	}
	f.last(t, "DELETE", "/api/v1/namespaces/_/actions/hello", "")
}

func TestActionInvoke(t *testing.T) {
	activation := `{"activationId":"` + testID + `","name":"hello","response":{"status":"success","success":true,"result":{"greeting":"hi"}}}`
	failed := `{"activationId":"` + testID + `","name":"hello","response":{"status":"application error","success":false,"result":{"error":"boom"}}}`
	for _, tc := range []struct {
		name    string
		args    []string
		answer  answer
		query   string
		body    string
		stdout  string
		wantErr string
	}{
		{
			name: "non-blocking", args: []string{"-p", "name", "world"},
			answer: answer{status: 202, body: `{"activationId":"` + testID + `"}`, id: testID},
			query:  "blocking=false&result=false", body: `{"name":"world"}`,
			stdout: "ok: invoked hello with id " + testID + "\n",
		},
		{
			name: "blocking", args: []string{"-b"},
			answer: answer{status: 200, body: activation, id: testID},
			query:  "blocking=true&result=false", body: `{}`,
			stdout: "ok: invoked hello with id " + testID + "\n{\n  \"activationId\": \"" + testID + "\",\n  \"name\": \"hello\",\n  \"response\": {\n    \"status\": \"success\",\n    \"success\": true,\n    \"result\": {\n      \"greeting\": \"hi\"\n    }\n  }\n}\n",
		},
		{
			name: "result with timeout", args: []string{"-r", "--timeout", "500"},
			answer: answer{status: 200, body: `{"greeting":"hi"}`, id: testID},
			query:  "blocking=true&result=true&timeout=500", body: `{}`,
			stdout: "{\n  \"greeting\": \"hi\"\n}\n",
		},
		{
			name: "blocking outlived its wait", args: []string{"--blocking"},
			answer: answer{status: 202, body: `{"activationId":"` + testID + `"}`, id: testID},
			query:  "blocking=true&result=false", body: `{}`,
			stdout: "ok: invoked hello, but the request has not yet finished, with id " + testID + "\n",
		},
		{
			name: "application error", args: []string{"-b"},
			answer: answer{status: 502, body: failed, id: testID},
			query:  "blocking=true&result=false", body: `{}`,
			stdout:  "ok: invoked hello with id " + testID + "\n" + indent(failed),
			wantErr: "action 'hello' failed: application error (activation " + testID + ")",
		},
		{
			name: "application error, result only", args: []string{"-r"},
			answer: answer{status: 502, body: `{"error":"boom"}`, id: testID},
			query:  "blocking=true&result=true", body: `{}`,
			stdout:  "{\n  \"error\": \"boom\"\n}\n",
			wantErr: "action 'hello' failed: boom (activation " + testID + ")",
		},
		{
			name: "throttled", args: []string{},
			answer: answer{status: 429, body: `{"error":"Too many requests in the last minute (count: 61, allowed: 60).","code":"tx9"}`},
			query:  "blocking=false&result=false", body: `{}`,
			wantErr: "Unable to invoke action 'hello': Too many requests in the last minute (count: 61, allowed: 60). (code tx9)",
		},
		{
			name: "json non-blocking", args: []string{"--json"},
			answer: answer{status: 202, body: `{"activationId":"` + testID + `"}`, id: testID},
			query:  "blocking=false&result=false", body: `{}`,
			stdout: "{\n  \"activationId\": \"" + testID + "\"\n}\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t, false, func(seen, int) answer { return tc.answer })
			out, _, err := runCmd(t, append([]string{"action", "invoke", "hello"}, tc.args...)...)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
			if out != tc.stdout {
				t.Errorf("stdout =\n%s\nwant\n%s", out, tc.stdout)
			}
			r := f.last(t, "POST", "/api/v1/namespaces/_/actions/hello", tc.query)
			sameJSON(t, r.body, tc.body)
		})
	}
}

func indent(s string) string {
	var b strings.Builder
	printJSON(&b, []byte(s))
	return b.String()
}

func TestActivationCommands(t *testing.T) {
	list := `[{"namespace":"guest","name":"hello","version":"0.0.1","activationId":"` + testID + `","start":1700000000000,"end":1700000000042,"duration":42,"statusCode":0,"annotations":[{"key":"kind","value":"wasm"},{"key":"initTime","value":3}]}]`
	f := startFake(t, false, func(r seen, _ int) answer {
		switch {
		case strings.HasSuffix(r.path, "/logs"):
			return answer{status: 200, body: `{"logs":["2024-01-01T00:00:00.000000000Z stdout: hi","2024-01-01T00:00:00.000000001Z stderr: ho"]}`}
		case strings.HasSuffix(r.path, "/result"):
			return answer{status: 200, body: `{"result":{"x":1},"success":true,"status":"success","size":7}`}
		case strings.HasSuffix(r.path, "/activations"):
			return answer{status: 200, body: list}
		default:
			return answer{status: 404, body: `{"error":"The requested resource does not exist.","code":"c1"}`}
		}
	})
	out, _, err := runCmd(t, "activation", "list", "hello", "--limit", "5", "--since", "1699999999000", "--upto", "1700000001000")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(out, "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "Datetime") ||
		!strings.Contains(lines[1], testID) || !strings.Contains(lines[1], " wasm cold  42ms ") || !strings.HasSuffix(lines[1], "guest/hello:0.0.1") {
		t.Errorf("activation list =\n%s", out)
	}
	f.last(t, "GET", "/api/v1/namespaces/_/activations", "limit=5&name=hello&since=1699999999000&skip=0&upto=1700000001000")

	out, _, _ = runCmd(t, "activation", "list", "--json")
	if out != indent(list) {
		t.Errorf("activation list --json =\n%s", out)
	}

	out, _, err = runCmd(t, "activation", "logs", testID)
	if err != nil || out != "2024-01-01T00:00:00.000000000Z stdout: hi\n2024-01-01T00:00:00.000000001Z stderr: ho\n" {
		t.Errorf("logs = %q, %v", out, err)
	}
	f.last(t, "GET", "/api/v1/namespaces/_/activations/"+testID+"/logs", "")

	out, _, err = runCmd(t, "activation", "result", testID)
	if err != nil || out != "{\n  \"x\": 1\n}\n" {
		t.Errorf("result = %q, %v", out, err)
	}
	f.last(t, "GET", "/api/v1/namespaces/_/activations/"+testID+"/result", "")

	_, _, err = runCmd(t, "activation", "get", testID)
	if err == nil || err.Error() != "Unable to get activation '"+testID+"': The requested resource does not exist. (code c1)" {
		t.Errorf("get err = %v", err)
	}
	f.last(t, "GET", "/api/v1/namespaces/_/activations/"+testID, "")
}

func TestActivationPoll(t *testing.T) {
	old := pollInterval
	pollInterval = 10 * time.Millisecond
	t.Cleanup(func() { pollInterval = old })

	rec := func(id string, start int64) string {
		return `{"namespace":"guest","name":"hello","activationId":"` + id + `","start":` + itoa64(start) +
			`,"response":{"status":"success","success":true,"result":{"n":` + itoa64(start) + `}},"logs":["log of ` + id + `"]}`
	}
	f := startFake(t, false, func(r seen, n int) answer {
		switch {
		case n == 1: // the newest record when polling starts: not printed
			return answer{status: 200, body: "[" + rec("a0", 100) + "]"}
		case n == 2:
			return answer{status: 200, body: "[" + rec("a0", 100) + "]"}
		case n == 3: // a1 shares a0's millisecond, a2 is later; newest first
			return answer{status: 200, body: "[" + rec("a2", 105) + "," + rec("a1", 100) + "," + rec("a0", 100) + "]"}
		default:
			return answer{status: 200, body: "[" + rec("a3", 110) + "," + rec("a2", 105) + "]"}
		}
	})
	out, _, err := runCmd(t, "activation", "poll", "hello", "--exit", "1")
	if err != nil {
		t.Fatal(err)
	}
	want := "\nActivation: 'hello' (a1) success\n    log of a1\n    result: {\"n\":100}\n" +
		"\nActivation: 'hello' (a2) success\n    log of a2\n    result: {\"n\":105}\n" +
		"\nActivation: 'hello' (a3) success\n    log of a3\n    result: {\"n\":110}\n"
	if out != want {
		t.Errorf("poll =\n%s\nwant\n%s", out, want)
	}
	reqs := f.requests()
	if len(reqs) < 4 {
		t.Fatalf("%d requests", len(reqs))
	}
	if reqs[0].query != "limit=1&name=hello&skip=0" {
		t.Errorf("first query = %q", reqs[0].query)
	}
	if reqs[1].query != "docs=true&limit=0&name=hello&since=100&skip=0" {
		t.Errorf("second query = %q", reqs[1].query)
	}
	if q := reqs[len(reqs)-1].query; q != "docs=true&limit=0&name=hello&since=110&skip=0" {
		t.Errorf("last query = %q", q)
	}
}

func itoa64(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestNamespaceList(t *testing.T) {
	f := startFake(t, false, ok(`["guest"]`))
	out, _, err := runCmd(t, "namespace", "list")
	if err != nil || out != "namespaces\nguest\n" {
		t.Errorf("namespace list = %q, %v", out, err)
	}
	f.last(t, "GET", "/api/v1/namespaces", "")
}

func TestGlobalFlags(t *testing.T) {
	f := startFake(t, true, ok(`["guest"]`))
	t.Setenv("GUST_AUTH", "wrong:key")
	// TLS with a self-signed certificate fails without -i.
	if _, _, err := runCmd(t, "namespace", "list", "--auth", testAuth); err == nil {
		t.Error("self-signed TLS accepted without --insecure")
	}
	// Global flags before the command, a flag beating the environment.
	if _, _, err := runCmd(t, "-i", "--auth", testAuth, "namespace", "list"); err != nil {
		t.Fatal(err)
	}
	f.last(t, "GET", "/api/v1/namespaces", "")

	t.Setenv("GUST_AUTH", "")
	_, _, err := runCmd(t, "namespace", "list", "-i")
	if err == nil || !strings.Contains(err.Error(), "no credentials") {
		t.Errorf("without credentials: err = %v", err)
	}
}

func TestHelpForEveryCommand(t *testing.T) {
	isolate(t)
	for _, c := range cliCommands {
		out, _, err := runCmd(t, c.group, c.name, "--help")
		if err != nil || !strings.HasPrefix(out, "Usage: gust "+c.group+" "+c.name) || !strings.Contains(out, "--json") {
			t.Errorf("%s %s --help = %q, %v", c.group, c.name, out, err)
		}
	}
	for _, g := range cliGroups {
		if g.name == "runtimes" {
			continue // one command: the group name alone runs it (TestRuntimesAlias)
		}
		out, _, err := runCmd(t, g.name, "-h")
		if err != nil || !strings.HasPrefix(out, "Usage: gust "+g.name+" COMMAND") {
			t.Errorf("%s -h = %q, %v", g.name, out, err)
		}
		_, errOut, err := runCmd(t, g.name)
		if exitCode(err) != 2 || !strings.Contains(errOut, "Commands:") {
			t.Errorf("%s without a command: err = %v, stderr %q", g.name, err, errOut)
		}
	}
	out, _, err := runCmd(t, "help")
	if err != nil || !strings.Contains(out, "gust action COMMAND") {
		t.Errorf("help = %q, %v", out, err)
	}
}

func TestRuntimesAlias(t *testing.T) {
	isolate(t)
	out, _, err := runCmd(t, "runtimes", "-h")
	if err != nil || !strings.HasPrefix(out, "Usage: gust runtimes list") {
		t.Errorf("runtimes -h = %q, %v", out, err)
	}
}
