package e2e

// End-to-end tests of the process runtimes (python:3, nodejs:20, go,
// native) through the REST API and openwhisk-client-go, on a real node
// whose invoker runs real sandboxes (docs/process.md). They skip where the
// host cannot run the process sandbox (not root, no user namespaces, no
// interpreter).
//
// What Gust does with code that fails to load, as OpenWhisk does: create
// succeeds (the code is laid out and checked for what can be checked
// without running it: a valid zip, its entry point, an executable's
// format), and the first invoke is a developer error (502, "action
// developer error") carrying the interpreter's message. Code that cannot
// be laid out (a broken zip, a zip without __main__.py) is refused at
// create with 400.

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/openwhisk-client-go/whisk"
	"github.com/gust-faas/gust/internal/sandbox/sandboxtest"

	"github.com/gust-faas/gust/internal/sandbox/process"
)

// Sandboxes re-exec this test binary as their init helper, which must take
// over before anything else runs. An init function (not TestMain, which
// this package's other files may want) does it.
func init() { process.MaybeRunInit() }

// procStart starts a node and skips unless it can run every kind given.
func procStart(t testing.TB, kinds ...string) *env {
	t.Helper()
	e := start(t)
	for _, k := range kinds {
		if !e.node.Invoker.Supports(k) {
			reason := "unknown"
			for _, rt := range e.node.Invoker.Runtimes() {
				if rt.Kind == k {
					reason = rt.Reason
				}
			}
			sandboxtest.Unavailable(t, "kind %s cannot run here: %s", k, reason)
		}
	}
	return e
}

// procCreate creates (or replaces) action name with the whisk client.
// Binary code is sent base64-encoded, as wsk does for zips and binaries.
func procCreate(t testing.TB, e *env, name, kind string, code []byte, main string, limits *whisk.Limits) {
	t.Helper()
	src := string(code)
	a := &whisk.Action{Name: name, Namespace: "_", Exec: &whisk.Exec{Kind: kind, Code: &src, Main: main}, Limits: limits}
	if bytes.HasPrefix(code, []byte("PK")) || bytes.HasPrefix(code, []byte("\x7fELF")) {
		src = base64.StdEncoding.EncodeToString(code)
		binary := true
		a.Exec.Code, a.Exec.Binary = &src, &binary
	}
	if _, _, err := e.wsk.Actions.Insert(a, true); err != nil {
		t.Fatalf("create %s (%s): %v", name, kind, err)
	}
}

// procInvoke runs name blocking through the whisk client and returns the
// activation and the HTTP status; a 502 (the action failed) is not an error.
func procInvoke(t testing.TB, e *env, name string, params any) (map[string]any, int) {
	t.Helper()
	res, resp, err := e.wsk.Actions.Invoke(name, params, true, false)
	var we *whisk.WskError
	if err != nil && !(asWsk(err, &we) && we.ApplicationError) {
		t.Fatalf("invoke %s: %v", name, err)
	}
	if resp == nil {
		t.Fatalf("invoke %s: no response", name)
	}
	act, ok := res.(map[string]any)
	if !ok {
		t.Fatalf("invoke %s: body %T %v, want an activation", name, res, res)
	}
	return act, resp.StatusCode
}

// procLogs returns the text of each log line of an activation.
func procLogs(act map[string]any) []string {
	var out []string
	lines, _ := act["logs"].([]any)
	for _, l := range lines {
		s, _ := l.(string)
		if _, text, ok := strings.Cut(s, "Z"); ok { // after the RFC 3339 time
			out = append(out, strings.TrimSpace(text))
		}
	}
	return out
}

func procWant(t testing.TB, act map[string]any, httpStatus, wantHTTP int, status string) {
	t.Helper()
	if httpStatus != wantHTTP || field(act, "response", "status") != status {
		t.Fatalf("HTTP %d, status %v, want %d %q; result %v, logs %q", httpStatus, field(act, "response", "status"), wantHTTP, status, field(act, "response", "result"), act["logs"])
	}
}

func procZip(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// procGoAction is a Go action speaking OpenWhisk's actionloop protocol
// with the standard library only: one JSON request line on stdin, one
// result line on fd 3, logs on stdout and stderr before the result.
const procGoAction = `package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

func main() {
	out := os.NewFile(3, "result")
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	worker := fmt.Sprintf("go-%d-%d", os.Getpid(), time.Now().UnixNano())
	calls := 0
	for {
		line, err := in.ReadBytes('\n')
		if err != nil {
			return
		}
		var req struct {
			Value        map[string]any ` + "`json:\"value\"`" + `
			ActivationID string         ` + "`json:\"activation_id\"`" + `
		}
		if err := json.Unmarshal(line, &req); err != nil {
			fmt.Fprintln(out, ` + "`{\"error\":\"bad request\"}`" + `)
			continue
		}
		calls++
		name, _ := req.Value["name"].(string)
		if name == "" {
			name = "stranger"
		}
		fmt.Println("go: hello to", name)
		fmt.Fprintln(os.Stderr, "go: to stderr")
		var res any = map[string]any{"greeting": "Hello, " + name + "!", "calls": calls, "worker": worker, "activation": req.ActivationID}
		switch {
		case req.Value["fail"] == true:
			res = map[string]any{"error": "go failed"}
		case req.Value["crash"] == true:
			os.Exit(2)
		case req.Value["sleep"] != nil:
			ms, _ := req.Value["sleep"].(float64)
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		b, _ := json.Marshal(res)
		out.Write(append(b, '\n'))
	}
}
`

// procNativeAction is the same protocol in C, linked against the host's
// libc (the sandbox binds /usr read-only).
const procNativeAction = `#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void) {
	char *line = NULL;
	size_t cap = 0;
	int calls = 0;
	FILE *out = fdopen(3, "w");
	if (!out) return 1;
	while (getline(&line, &cap, stdin) > 0) {
		char name[128] = "stranger";
		char *p = strstr(line, "\"name\":\"");
		calls++;
		if (p) {
			size_t i = 0;
			p += 8;
			while (p[i] && p[i] != '"' && i < sizeof name - 1) { name[i] = p[i]; i++; }
			name[i] = 0;
		}
		fprintf(stderr, "native: hello to %s\n", name);
		if (strstr(line, "\"crash\":true")) abort();
		if (strstr(line, "\"sleep\":")) usleep(300000);
		fprintf(out, "{\"greeting\":\"Hello, %s!\",\"calls\":%d,\"worker\":\"c-%d\"}\n", name, calls, (int)getpid());
		fflush(out);
	}
	return 0;
}
`

var procBuilds sync.Map // "go" or "native" → []byte

// procBuild builds the Go (CGO_ENABLED=0, static) or C action once per
// test binary; it skips when the toolchain is missing.
func procBuild(t *testing.T, which string) []byte {
	t.Helper()
	if b, ok := procBuilds.Load(which); ok {
		return b.([]byte)
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "exec")
	var cmd *exec.Cmd
	switch which {
	case "go":
		if _, err := exec.LookPath("go"); err != nil {
			sandboxtest.Unavailable(t, "no go toolchain")
		}
		for name, content := range map[string]string{"main.go": procGoAction, "go.mod": "module action\n\ngo 1.22\n"} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cmd = exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", exe, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOWORK=off", "GOFLAGS=-mod=mod")
	case "native":
		cc, err := exec.LookPath("cc")
		if err != nil {
			sandboxtest.Unavailable(t, "no C compiler (cc)")
		}
		src := filepath.Join(dir, "action.c")
		if err := os.WriteFile(src, []byte(procNativeAction), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(cc, "-O2", "-o", exe, src)
	}
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the %s action: %v\n%s", which, err, out)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	procBuilds.Store(which, b)
	return b
}

const (
	procPyHello = `import os, sys
def main(args):
    name = args.get("name", "stranger")
    print("python: hello to", name)
    print("python: to stderr", file=sys.stderr)
    return {"greeting": "Hello, " + name + "!", "activation": os.environ["__OW_ACTIVATION_ID"]}
`
	procNodeHello = `function main(params) {
  const name = params.name || "stranger";
  console.log("node: hello to " + name);
  console.error("node: to stderr");
  return { greeting: "Hello, " + name + "!", activation: process.env.__OW_ACTIVATION_ID };
}`
)

// TestProcessKinds creates each kind of process action (source, zip with a
// custom entry point, compiled binaries) through the whisk client and
// invokes it: the result, the logs of the call, the kind and start
// annotations, then a warm second call.
func TestProcessKinds(t *testing.T) {
	e := procStart(t, process.KindPython, process.KindNode, process.KindGo, process.KindNative)
	cases := []struct {
		name, kind, main string
		code             func(t *testing.T) []byte
		logs             []string // lines the call must log, in order per stream
	}{
		{name: "py-source", kind: "python:3", code: func(*testing.T) []byte { return []byte(procPyHello) },
			logs: []string{"stdout: python: hello to Gust", "stderr: python: to stderr"}},
		{name: "py-zip", kind: "python:3", main: "hello", code: func(t *testing.T) []byte {
			return procZip(t, map[string]string{
				"__main__.py": "from helper import greet\ndef hello(args):\n    print('zip: hello')\n    return {'greeting': greet(args.get('name', 'stranger'))}\n",
				"helper.py":   "def greet(name):\n    return 'Hello, ' + name + '!'\n",
			})
		}, logs: []string{"stdout: zip: hello"}},
		{name: "node-source", kind: "nodejs:20", code: func(*testing.T) []byte { return []byte(procNodeHello) },
			logs: []string{"stdout: node: hello to Gust", "stderr: node: to stderr"}},
		{name: "node-zip", kind: "nodejs:20", main: "greet", code: func(t *testing.T) []byte {
			return procZip(t, map[string]string{
				"package.json": `{"name": "greeter", "main": "lib/app.js"}`,
				"lib/app.js":   "const { text } = require('./text');\nexports.greet = async (p) => { console.log('zip: hello'); return { greeting: text(p.name || 'stranger') }; };\n",
				"lib/text.js":  "exports.text = (n) => 'Hello, ' + n + '!';\n",
			})
		}, logs: []string{"stdout: zip: hello"}},
		{name: "go-binary", kind: "go", code: func(t *testing.T) []byte { return procBuild(t, "go") },
			logs: []string{"stdout: go: hello to Gust", "stderr: go: to stderr"}},
		{name: "native-c", kind: "native", code: func(t *testing.T) []byte { return procBuild(t, "native") },
			logs: []string{"stderr: native: hello to Gust"}},
		{name: "native-go", kind: "native", code: func(t *testing.T) []byte { return procBuild(t, "go") },
			logs: []string{"stdout: go: hello to Gust"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			procCreate(t, e, tc.name, tc.kind, tc.code(t), tc.main, nil)
			act, status := procInvoke(t, e, tc.name, map[string]any{"name": "Gust"})
			procWant(t, act, status, http.StatusOK, "success")
			if g := field(act, "response", "result", "greeting"); g != "Hello, Gust!" {
				t.Errorf("greeting = %v", g)
			}
			if k, _ := annotation(t, act, "kind"); k != tc.kind {
				t.Errorf("kind annotation %v, want %s", k, tc.kind)
			}
			start, _ := annotation(t, act, "start")
			if _, ok := annotation(t, act, "initTime"); start == "warm" || !ok {
				t.Errorf("first call: start %v, initTime present %v; want a new instance with its init time", start, ok)
			}
			if a := field(act, "response", "result", "activation"); a != nil && a != act["activationId"] {
				t.Errorf("the action saw activation %v, the record is %v", a, act["activationId"])
			}
			logs := procLogs(act)
			for _, l := range tc.logs {
				if !procContains(logs, l) {
					t.Errorf("logs %q lack %q", logs, l)
				}
			}
			// The logs are the call's own, also as the activation's logs.
			got, _, err := e.wsk.Activations.Logs(act["activationId"].(string))
			if err != nil {
				t.Fatalf("activation logs: %v", err)
			}
			if len(got.Logs) != len(logs) {
				t.Errorf("GET logs: %d lines, the invoke returned %d", len(got.Logs), len(logs))
			}

			act, status = procInvoke(t, e, tc.name, map[string]any{"name": "again"})
			procWant(t, act, status, http.StatusOK, "success")
			if start, _ := annotation(t, act, "start"); start != "warm" {
				t.Errorf("second call: start %v, want warm", start)
			}
			if _, ok := annotation(t, act, "initTime"); ok {
				t.Errorf("warm call with initTime")
			}
			for _, l := range procLogs(act) {
				if strings.Contains(l, "Gust") {
					t.Errorf("second call's logs carry the first call's line %q", l)
				}
			}
		})
	}
}

func procContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestProcessErrors: how each way of failing reaches the caller. Every
// failed blocking invoke is 502, with OpenWhisk's status: "application
// error" for an {"error": …} result, a Python exception or a rejected
// Promise; "action developer error" for code that fails to load, a result
// that is not an object, a crash, a synchronous Node throw, a timeout.
func TestProcessErrors(t *testing.T) {
	e := procStart(t, process.KindPython, process.KindNode, process.KindGo)
	cases := []struct {
		name, kind, code string
		params           map[string]any
		status           string
		errText          string // contained in result.error; "…" separates several
	}{
		{"py-apperror", "python:3", "def main(a):\n    return {'error': 'boom'}\n", nil, "application error", "boom"},
		{"py-exception", "python:3", "def main(a):\n    raise ValueError('bad input ' + a.get('x', ''))\n", map[string]any{"x": "42"}, "application error", "bad input 42"},
		{"py-notdict", "python:3", "def main(a):\n    return 42\n", nil, "action developer error", "The action did not return a dictionary or array."},
		{"py-syntax", "python:3", "def main(a)\n    return {}\n", nil, "action developer error", "The action failed during initialization: …SyntaxError"},
		{"py-import", "python:3", "import no_such_module\ndef main(a):\n    return {}\n", nil, "action developer error", "ModuleNotFoundError"},
		{"py-nomain", "python:3", "def handler(a):\n    return {}\n", nil, "action developer error", "no function 'main'"},
		{"py-crash", "python:3", "import os\ndef main(a):\n    os._exit(7)\n", nil, "action developer error", "exited unexpectedly"},
		{"py-timeout", "python:3", "def main(a):\n    while True:\n        pass\n", nil, "action developer error", "time limits of 500 milliseconds"},
		{"node-apperror", "nodejs:20", "function main() { return { error: 'boom' }; }", nil, "application error", "boom"},
		{"node-reject", "nodejs:20", "async function main() { throw new Error('async boom'); }", nil, "application error", "async boom"},
		{"node-throw", "nodejs:20", "function main() { throw new Error('sync boom'); }", nil, "action developer error", "sync boom"},
		{"node-syntax", "nodejs:20", "function main( { return {}; }", nil, "action developer error", "Initialization has failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var limits *whisk.Limits
			if tc.name == "py-timeout" {
				timeout := 500
				limits = &whisk.Limits{Timeout: &timeout}
			}
			// Create succeeds even for code that cannot load.
			procCreate(t, e, tc.name, tc.kind, []byte(tc.code), "", limits)
			var params any // untyped nil: no body, where a nil map would be null
			if tc.params != nil {
				params = tc.params
			}
			act, status := procInvoke(t, e, tc.name, params)
			procWant(t, act, status, http.StatusBadGateway, tc.status)
			msg, _ := field(act, "response", "result", "error").(string)
			for _, part := range strings.Split(tc.errText, "…") {
				if !strings.Contains(msg, part) {
					t.Errorf("result.error = %q, want it to contain %q", msg, part)
				}
			}
			if tc.name == "py-exception" && !strings.Contains(strings.Join(procLogs(act), "\n"), "Traceback") {
				t.Errorf("no traceback in the logs: %q", procLogs(act))
			}
			if to, _ := annotation(t, act, "timeout"); to != (tc.name == "py-timeout") {
				t.Errorf("timeout annotation %v", to)
			}
		})
	}

	t.Run("go-failures", func(t *testing.T) {
		procCreate(t, e, "go-fail", "go", procBuild(t, "go"), "", nil)
		act, status := procInvoke(t, e, "go-fail", map[string]any{"fail": true})
		procWant(t, act, status, http.StatusBadGateway, "application error")
		act, status = procInvoke(t, e, "go-fail", map[string]any{"crash": true})
		procWant(t, act, status, http.StatusBadGateway, "action developer error")
		if !strings.Contains(strings.Join(procLogs(act), "\n"), "exited with code 2") {
			t.Errorf("crash logs %q do not say how it ended", procLogs(act))
		}
		// The crashed worker was replaced.
		act, status = procInvoke(t, e, "go-fail", nil)
		procWant(t, act, status, http.StatusOK, "success")
		if c, _ := num(field(act, "response", "result", "calls")); c != 1 {
			t.Errorf("after the crash: calls %v, want a new worker", c)
		}
	})

	t.Run("bad-zip", func(t *testing.T) {
		// Code that cannot even be laid out is refused at create.
		bad := procZip(t, map[string]string{"main.py": "def main(a):\n    return {}\n"}) // no __main__.py
		src := base64.StdEncoding.EncodeToString(bad)
		r := e.do("PUT", "/api/v1/namespaces/_/actions/bad-zip?overwrite=true", map[string]any{"exec": map[string]any{"kind": "python:3", "code": src, "binary": true}})
		wantError(t, r, http.StatusBadRequest, "__main__.py")
	})
}

// TestProcessConcurrency: ten simultaneous invokes of one action are
// served by several workers at once (each reports an id of its own
// process), for each kind.
func TestProcessConcurrency(t *testing.T) {
	e := procStart(t, process.KindPython, process.KindNode, process.KindGo)
	codes := []struct {
		name, kind string
		code       func(t *testing.T) []byte
	}{
		// os.getpid() is the sandbox's PID 1 in a plain worker (the
		// action's first) but differs between the workers forked from its
		// zygote as the pool grows; a per-process id made at the first
		// call tells workers apart either way.
		{"conc-py", "python:3", func(*testing.T) []byte {
			return []byte("import os, time, uuid\nworker = None\ndef main(a):\n    global worker\n    if worker is None:\n        worker = '%d-%s' % (os.getpid(), uuid.uuid4())\n    time.sleep(0.3)\n    return {'worker': worker, 'pid': os.getpid()}\n")
		}},
		{"conc-node", "nodejs:20", func(*testing.T) []byte {
			return []byte("const worker = require('crypto').randomUUID();\nasync function main() { await new Promise(r => setTimeout(r, 300)); return { worker, pid: process.pid }; }")
		}},
		{"conc-go", "go", func(t *testing.T) []byte { return procBuild(t, "go") }},
	}
	for _, c := range codes {
		t.Run(c.name, func(t *testing.T) {
			procCreate(t, e, c.name, c.kind, c.code(t), "", nil)
			const n = 10
			var wg sync.WaitGroup
			acts := make([]map[string]any, n)
			statuses := make([]int, n)
			for i := range n {
				wg.Go(func() {
					res, resp, err := e.wsk.Actions.Invoke(c.name, map[string]any{"sleep": 300}, true, false)
					if err != nil {
						t.Errorf("invoke %d: %v", i, err)
						return
					}
					acts[i], statuses[i] = res.(map[string]any), resp.StatusCode
				})
			}
			wg.Wait()
			workers := map[string]int{}
			pids := map[string]bool{}
			for i, act := range acts {
				if act == nil {
					t.FailNow()
				}
				procWant(t, act, statuses[i], http.StatusOK, "success")
				workers[fmt.Sprint(field(act, "response", "result", "worker"))]++
				pids[fmt.Sprint(field(act, "response", "result", "pid"))] = true
			}
			if len(workers) < 2 {
				t.Errorf("10 concurrent calls served by %d worker(s): %v", len(workers), workers)
			}
			if c.kind == "python:3" && len(pids) < 2 {
				// Workers forked from the zygote have pids of their own.
				t.Errorf("python workers' pids %v: want workers forked from the zygote", pids)
			}
			t.Logf("%s: %d workers for 10 concurrent calls: %v", c.name, len(workers), workers)
		})
	}
}

// Benchmarks of process actions through the REST API, each beside a bare
// net/http round trip to a trivial handler in the same process, with the
// same client: what remains is Gust's (auth, resolve, schedule, sandbox
// call, activation record).
//
//	go test ./internal/e2e -run '^$' -bench 'Process' -benchtime 400x

const (
	procBenchPy   = "def main(args):\n    return {\"greeting\": \"Hello, \" + args.get(\"name\", \"stranger\") + \"!\"}\n"
	procBenchNode = "function main(p) { return { greeting: 'Hello, ' + (p.name || 'stranger') + '!' }; }"
)

// procTarget is something to POST to: an action's blocking invoke, or the
// bare handler.
type procTarget struct {
	url, auth string
	client    *http.Client
}

func (p procTarget) call(tb testing.TB) time.Duration {
	req, err := http.NewRequest("POST", p.url, strings.NewReader(`{"name":"bench"}`))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if p.auth != "" {
		u, k, _ := strings.Cut(p.auth, ":")
		req.SetBasicAuth(u, k)
	}
	t0 := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s: %d %s", p.url, resp.StatusCode, body)
	}
	return d
}

func procBenchTargets(b *testing.B) (map[string]procTarget, *env) {
	e := procStart(b, process.KindPython, process.KindNode)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128, MaxConnsPerHost: 128}, Timeout: time.Minute}
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"greeting":"Hello, bench!"}`))
	}))
	b.Cleanup(bare.Close)
	targets := map[string]procTarget{"bare-http": {url: bare.URL, client: client}}
	for kind, code := range map[string]string{process.KindPython: procBenchPy, process.KindNode: procBenchNode} {
		name := "bench-" + strings.ReplaceAll(strings.ReplaceAll(kind, ":", ""), ".", "")
		procCreate(b, e, name, kind, []byte(code), "", nil)
		targets[kind] = procTarget{url: e.node.URL + "/api/v1/namespaces/_/actions/" + name + "?blocking=true&result=true", auth: e.node.Auth, client: client}
	}
	return targets, e
}

func procReport(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(ds[len(ds)/2]), "p50-ms")
	b.ReportMetric(ms(ds[min(len(ds)-1, len(ds)*99/100)]), "p99-ms")
}

// BenchmarkProcessWarm: one blocking call at a time to a warm worker.
func BenchmarkProcessWarm(b *testing.B) {
	targets, _ := procBenchTargets(b)
	for _, name := range []string{"bare-http", process.KindPython, process.KindNode} {
		b.Run(name, func(b *testing.B) {
			tg := targets[name]
			for range 20 { // warm: the worker is up, connections open
				tg.call(b)
			}
			ds := make([]time.Duration, 0, b.N)
			for b.Loop() {
				ds = append(ds, tg.call(b))
			}
			procReport(b, ds)
		})
	}
}

// BenchmarkProcessThroughput: b.N blocking calls by c concurrent clients;
// req/s is the throughput, p50/p99 the latency each call saw.
func BenchmarkProcessThroughput(b *testing.B) {
	targets, _ := procBenchTargets(b)
	for _, name := range []string{"bare-http", process.KindPython, process.KindNode} {
		for _, c := range []int{1, 10, 50} {
			b.Run(fmt.Sprintf("%s/c=%d", name, c), func(b *testing.B) {
				tg := targets[name]
				procParallel(b, c, c, tg) // warm: as many workers as the level needs
				b.ResetTimer()
				t0 := time.Now()
				ds := procParallel(b, c, b.N, tg)
				elapsed := time.Since(t0)
				b.StopTimer()
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
				procReport(b, ds)
			})
		}
	}
}

// procParallel makes total calls from c goroutines and returns their times.
func procParallel(b *testing.B, c, total int, tg procTarget) []time.Duration {
	var next atomic.Int64
	var mu sync.Mutex
	all := make([]time.Duration, 0, total)
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			var mine []time.Duration
			for next.Add(1) <= int64(total) {
				mine = append(mine, tg.call(b))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return all
}

// BenchmarkProcessIdleRSS reports the memory of idle warm workers: VmRSS
// (resident, shared pages counted in full) and Pss (shared pages divided
// among their sharers) from /proc. A Python action called one call at a
// time has one plain worker; one whose pool grew has a zygote, the workers
// forked from it and a spare (counted with them). Stem cells are off so
// that every sandbox process is one of these.
func BenchmarkProcessIdleRSS(b *testing.B) {
	e := procStart(b, process.KindPython, process.KindNode)
	procCreate(b, e, "rss-py", process.KindPython, []byte(procBenchPy), "", nil)
	procCreate(b, e, "rss-py-grown", process.KindPython, []byte("import time\n"+procBenchPy+"    time.sleep(args.get('sleep', 0))\n"), "", nil)
	procCreate(b, e, "rss-node", process.KindNode, []byte(procBenchNode), "", nil)
	for b.Loop() {
		for _, name := range []string{"rss-py", "rss-node"} {
			act, status := procInvoke(b, e, name, map[string]any{"name": "rss"})
			procWant(b, act, status, http.StatusOK, "success")
		}
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { procInvoke(b, e, "rss-py-grown", map[string]any{"sleep": 0.3}) })
	}
	wg.Wait()
	time.Sleep(300 * time.Millisecond) // idle; the spare is forked
	sums := map[string][2]float64{}
	counts := map[string]int{}
	for _, p := range procSandboxes(b) {
		role := p.comm
		switch {
		case strings.HasPrefix(p.comm, "python") && p.nspid == 1 && p.children:
			role = "python-zygote"
		case strings.HasPrefix(p.comm, "python") && p.nspid == 1:
			role = "python-worker"
		case strings.HasPrefix(p.comm, "python"):
			role = "python-forked"
		case strings.HasPrefix(p.comm, "node"):
			role = "node-worker"
		}
		s := sums[role]
		s[0] += p.rssKB / 1024
		s[1] += p.pssKB / 1024
		sums[role] = s
		counts[role]++
	}
	for role, s := range sums {
		n := float64(counts[role])
		b.ReportMetric(s[0]/n, role+"-rss-MB")
		b.ReportMetric(s[1]/n, role+"-pss-MB")
		b.ReportMetric(n, role+"-count")
	}
}

type procSandbox struct {
	pid, comm    string
	nspid        int
	children     bool // it has child processes (a zygote)
	rssKB, pssKB float64
}

// procSandboxes lists this process's descendants running as the sandbox's
// function uid (host uid 101000 by default), with their memory.
func procSandboxes(tb testing.TB) []procSandbox {
	tb.Helper()
	var out []procSandbox
	self := strconv.Itoa(os.Getpid())
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		st, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		fields := map[string][]string{}
		for line := range strings.Lines(string(st)) {
			k, v, _ := strings.Cut(line, ":")
			fields[k] = strings.Fields(v)
		}
		if len(fields["Uid"]) == 0 || fields["Uid"][0] != strconv.Itoa(process.DefaultHostUID+1000) || !procDescends(e.Name(), self) {
			continue
		}
		p := procSandbox{pid: e.Name(), comm: strings.Join(fields["Name"], " ")}
		if ns := fields["NSpid"]; len(ns) > 0 {
			p.nspid, _ = strconv.Atoi(ns[len(ns)-1])
		}
		if v := fields["VmRSS"]; len(v) > 0 {
			p.rssKB, _ = strconv.ParseFloat(v[0], 64)
		}
		if c, err := os.ReadFile("/proc/" + e.Name() + "/task/" + e.Name() + "/children"); err == nil {
			p.children = len(strings.TrimSpace(string(c))) > 0
		}
		if sm, err := os.ReadFile("/proc/" + e.Name() + "/smaps_rollup"); err == nil {
			for line := range strings.Lines(string(sm)) {
				if f := strings.Fields(line); len(f) > 1 && f[0] == "Pss:" {
					p.pssKB, _ = strconv.ParseFloat(f[1], 64)
				}
			}
		}
		out = append(out, p)
	}
	return out
}

func procDescends(pid, ancestor string) bool {
	for range 64 {
		st, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			return false
		}
		ppid := ""
		for line := range strings.Lines(string(st)) {
			if v, ok := strings.CutPrefix(line, "PPid:"); ok {
				ppid = strings.TrimSpace(v)
			}
		}
		if ppid == ancestor {
			return true
		}
		if ppid == "" || ppid == "0" || ppid == "1" {
			return false
		}
		pid = ppid
	}
	return false
}
