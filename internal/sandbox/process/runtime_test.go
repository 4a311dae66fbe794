//go:build linux

package process

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
	"github.com/gust-faas/gust/internal/sandbox/sandboxtest"
)

func limits(timeout time.Duration) sandbox.Limits {
	l := sandboxtest.Limits()
	if timeout > 0 {
		l.Timeout = timeout
	}
	return l
}

const pyCounter = `
import os, sys, time
counter = 0
def main(args):
    global counter
    counter += 1
    if args.get("crash"):
        os._exit(3)
    if args.get("sleep"):
        time.sleep(args["sleep"])
    if args.get("loop"):
        while True:
            time.sleep(0.01)
    print("out", args.get("tag", ""))
    print("err", args.get("tag", ""), file=sys.stderr)
    sys.stdout.write("no newline " + args.get("tag", ""))
    return {"counter": counter, "pid": os.getpid()}
`

// TestWarmReuse: one worker serves call after call; state persists; a
// crash or a timeout replaces it and the next call works.
func TestWarmReuse(t *testing.T) {
	b := newBackend(t, Config{})
	f := prepare(t, b, KindPython, pyCounter, limits(1500*time.Millisecond))
	for i := 1; i <= 3; i++ {
		res := call(t, f, `{"tag":"t`+itoa(i)+`"}`)
		wantStatus(t, res, gust.StatusSuccess)
		if got := resultMap(t, res)["counter"]; got != float64(i) {
			t.Fatalf("call %d: counter = %v", i, got)
		}
		wantStart := sandbox.StartWarm
		if i == 1 {
			wantStart = sandbox.StartCold
		}
		if res.Start != wantStart || (res.InitTime > 0) != (i == 1) {
			t.Errorf("call %d: Start %s InitTime %v", i, res.Start, res.InitTime)
		}
		// Logs are per activation: this call's lines only, markers gone.
		want := []string{"stdout: out t" + itoa(i), "stderr: err t" + itoa(i), "stdout: no newline t" + itoa(i)}
		if got := logTexts(res); !sameSet(got, want) {
			t.Errorf("call %d: logs %q, want %q", i, got, want)
		}
	}

	res := call(t, f, `{"crash":true}`)
	wantStatus(t, res, gust.StatusDeveloperError)
	if got := errorText(res); got != msgExited {
		t.Errorf("crash: error %q", got)
	}
	if !strings.Contains(strings.Join(res.Logs, "\n"), "exited with code 3") {
		t.Errorf("crash: logs %q do not say how it ended", res.Logs)
	}
	res = call(t, f, `{}`)
	wantStatus(t, res, gust.StatusSuccess)
	if got := resultMap(t, res)["counter"]; got != float64(1) || res.Start != sandbox.StartCold || res.InitTime <= 0 {
		t.Errorf("after crash: counter %v start %s init %v, want a new worker", got, res.Start, res.InitTime)
	}

	res = call(t, f, `{"loop":true}`)
	wantStatus(t, res, gust.StatusDeveloperError)
	if got := errorText(res); got != "The action exceeded its time limits of 1500 milliseconds (timeout of 1500 ms exceeded)." || !res.TimedOut {
		t.Errorf("loop: error %q timedOut %v", got, res.TimedOut)
	}
	res = call(t, f, `{}`)
	wantStatus(t, res, gust.StatusSuccess)
	if got := resultMap(t, res)["counter"]; got != float64(1) {
		t.Errorf("after timeout: counter %v, want a new worker", got)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

func itoa(i int) string { return string(rune('0' + i)) }

func TestPythonSemantics(t *testing.T) {
	b := newBackend(t, Config{})
	t.Run("Main", func(t *testing.T) {
		f := prepareMain(t, b, KindPython, "def main(a):\n    return {'f': 'main'}\ndef other(a):\n    return {'f': 'other'}\n", "other", limits(0))
		res := call(t, f, `{}`)
		wantStatus(t, res, gust.StatusSuccess)
		if resultMap(t, res)["f"] != "other" {
			t.Errorf("result %s", res.Result)
		}
	})
	t.Run("Exception", func(t *testing.T) {
		f := prepare(t, b, KindPython, "def main(a):\n    raise ValueError('bad input')\n", limits(0))
		res := call(t, f, `{}`)
		wantStatus(t, res, gust.StatusApplicationError)
		if errorText(res) != "bad input" {
			t.Errorf("error %q", errorText(res))
		}
		if !strings.Contains(strings.Join(res.Logs, "\n"), "Traceback") {
			t.Errorf("no traceback in logs %q", res.Logs)
		}
		res = call(t, f, `{}`) // the worker survives an application error
		if res.Start != sandbox.StartWarm {
			t.Errorf("second call start %s", res.Start)
		}
	})
	for _, tc := range []struct{ name, code, want string }{
		{"SyntaxError", "def main(a)\n    return {}\n", "SyntaxError"},
		{"ImportError", "import no_such_module\ndef main(a):\n    return {}\n", "ModuleNotFoundError"},
		{"NoMain", "def handler(a):\n    return {}\n", "no function 'main'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := prepare(t, b, KindPython, tc.code, limits(0))
			res := call(t, f, `{}`)
			wantStatus(t, res, gust.StatusDeveloperError)
			if !strings.Contains(errorText(res), tc.want) || !strings.HasPrefix(errorText(res), "The action failed during initialization") {
				t.Errorf("error %q, want it to mention %q", errorText(res), tc.want)
			}
			if res.Start != sandbox.StartCold || res.InitTime <= 0 {
				t.Errorf("start %s init %v", res.Start, res.InitTime)
			}
		})
	}
	// A value json cannot encode is the developer's error, as None is;
	// an exception whose text is empty (MemoryError()) still says what
	// happened, and the worker survives it.
	for _, tc := range []struct {
		name, code string
		status     gust.Status
		prefix     string // of the error
		contains   string
	}{
		{"NotJSON", "def main(a):\n    return {'s': {1, 2}}\n", gust.StatusDeveloperError, msgNotObject, "not JSON: Object of type set is not JSON serializable"},
		{"NaN", "def main(a):\n    return {'x': float('nan')}\n", gust.StatusDeveloperError, msgNotObject, "not JSON: Out of range float values"},
		{"Cycle", "def main(a):\n    d = {}\n    d['d'] = d\n    return d\n", gust.StatusDeveloperError, msgNotObject, "Circular reference"},
		{"MemoryErrorRaised", "def main(a):\n    raise MemoryError()\n", gust.StatusApplicationError, "MemoryError: the action ran out of memory", ""},
		{"MemoryErrorAllocating", "def main(a):\n    return {'n': len(bytearray(1 << 50))}\n", gust.StatusApplicationError, "MemoryError: the action ran out of memory", ""},
		{"EmptyException", "def main(a):\n    raise KeyError\n", gust.StatusApplicationError, "KeyError", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := prepare(t, b, KindPython, tc.code, limits(0))
			res := call(t, f, `{}`)
			wantStatus(t, res, tc.status)
			if msg := errorText(res); !strings.HasPrefix(msg, tc.prefix) || !strings.Contains(msg, tc.contains) {
				t.Errorf("error %q, want %q … %q", msg, tc.prefix, tc.contains)
			}
			if tc.status == gust.StatusApplicationError {
				if res := call(t, f, `{}`); res.Start != sandbox.StartWarm {
					t.Errorf("after an application error: start %s, want the worker reused", res.Start)
				}
			}
		})
	}
	t.Run("NotADict", func(t *testing.T) {
		f := prepare(t, b, KindPython, "def main(a):\n    return None\n", limits(0))
		res := call(t, f, `{}`)
		wantStatus(t, res, gust.StatusDeveloperError)
		if !strings.HasPrefix(errorText(res), msgNotObject) {
			t.Errorf("error %q", errorText(res))
		}
	})
	t.Run("Zip", func(t *testing.T) {
		code := zipOf(t, map[string]string{
			"__main__.py": "from helper import greet\ndef main(a):\n    return {'greeting': greet(a.get('name', 'x'))}\n",
			"helper.py":   "def greet(n):\n    return 'Hi ' + n\n",
		})
		f := prepare(t, b, KindPython, string(code), limits(0))
		res := call(t, f, `{"name":"zip"}`)
		wantStatus(t, res, gust.StatusSuccess)
		if resultMap(t, res)["greeting"] != "Hi zip" {
			t.Errorf("result %s", res.Result)
		}
	})
}

func TestNodeSemantics(t *testing.T) {
	b := newBackend(t, Config{})
	for _, tc := range []struct {
		name, code string
		status     gust.Status
		want       string // in the result
	}{
		{"GlobalFunction", `function main(p) { return {v: 1}; }`, gust.StatusSuccess, `{"v":1}`},
		{"Exports", `exports.main = (p) => ({v: 2});`, gust.StatusSuccess, `{"v":2}`},
		{"ModuleExportsAsync", `module.exports.main = async function (p) { await new Promise(r => setTimeout(r, 5)); return {v: 3}; };`, gust.StatusSuccess, `{"v":3}`},
		{"Promise", `function main() { return new Promise(r => setTimeout(() => r({v: 4}), 5)); }`, gust.StatusSuccess, `{"v":4}`},
		{"Undefined", `function main() {}`, gust.StatusSuccess, `{}`},
		{"Require", `const path = require('path'); function main() { return {v: path.basename('/a/b.js')}; }`, gust.StatusSuccess, `{"v":"b.js"}`},
		{"Rejected", `async function main() { throw new Error('nope'); }`, gust.StatusApplicationError, `{"error":"nope"}`},
		{"Throws", `function main() { throw new Error('kaput'); }`, gust.StatusDeveloperError, `An error has occurred: kaput`},
		{"SyntaxError", `function main( { return {}; }`, gust.StatusDeveloperError, `Initialization has failed due to:`},
		{"NoMain", `function handler() { return {}; }`, gust.StatusDeveloperError, `has no function`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := prepare(t, b, KindNode, tc.code, limits(0))
			res := call(t, f, `{}`)
			wantStatus(t, res, tc.status)
			if !strings.Contains(string(res.Result), tc.want) {
				t.Errorf("result %s, want %s", res.Result, tc.want)
			}
		})
	}
	t.Run("Zip", func(t *testing.T) {
		code := zipOf(t, map[string]string{
			"package.json":  `{"name":"a","main":"lib/entry.js"}`,
			"lib/entry.js":  `const h = require('./helper'); exports.main = (p) => ({greeting: h(p.name)});`,
			"lib/helper.js": `module.exports = (n) => 'Hi ' + n;`,
		})
		f := prepare(t, b, KindNode, string(code), limits(0))
		res := call(t, f, `{"name":"zip"}`)
		wantStatus(t, res, gust.StatusSuccess)
		if resultMap(t, res)["greeting"] != "Hi zip" {
			t.Errorf("result %s", res.Result)
		}
	})
	// The function cannot read the invoker's requests or write its
	// replies: stdin is /dev/null and fd 3 is not the result pipe.
	t.Run("ReadsStdin", func(t *testing.T) {
		f := prepare(t, b, KindNode, `const fs = require('fs');
function main(p) { return p.read ? { stdin: fs.readFileSync(0, 'utf8') } : { ok: true }; }`, limits(5*time.Second))
		res := call(t, f, `{"read":true}`)
		wantStatus(t, res, gust.StatusSuccess)
		if got := resultMap(t, res)["stdin"]; got != "" {
			t.Errorf("stdin read %q, want nothing", got)
		}
		res = call(t, f, `{}`)
		wantStatus(t, res, gust.StatusSuccess)
		if res.Start != sandbox.StartWarm || resultMap(t, res)["ok"] != true {
			t.Errorf("next call: start %s result %s", res.Start, res.Result)
		}
	})
	t.Run("ListensOnStdin", func(t *testing.T) {
		f := prepare(t, b, KindNode, `const got = [];
function main(p) {
  if (p.listen) { process.stdin.on('data', (d) => got.push(String(d))); return {}; }
  return { got };
}`, limits(5*time.Second))
		wantStatus(t, call(t, f, `{"listen":true}`), gust.StatusSuccess)
		for range 2 {
			res := call(t, f, `{"tag":"next"}`)
			wantStatus(t, res, gust.StatusSuccess)
			if got := resultMap(t, res)["got"]; fmt.Sprint(got) != "[]" {
				t.Errorf("the function's stdin listener got %v", got)
			}
		}
	})
	t.Run("WritesFd3", func(t *testing.T) {
		f := prepare(t, b, KindNode, `const fs = require('fs');
function main(p) {
  let err = null;
  try { fs.writeSync(3, 'R{"forged":true}\n'); } catch (e) { err = e.code; }
  return { real: p.n, err };
}`, limits(5*time.Second))
		for n := 1; n <= 3; n++ {
			res := call(t, f, `{"n":`+itoa(n)+`}`)
			wantStatus(t, res, gust.StatusSuccess)
			if m := resultMap(t, res); m["real"] != float64(n) || m["forged"] != nil {
				t.Errorf("call %d: result %s, want the function's own", n, res.Result)
			}
		}
	})
	t.Run("WarmAndLogs", func(t *testing.T) {
		f := prepare(t, b, KindNode, `let n = 0; function main(p) { n++; console.log('call ' + n); return {n}; }`, limits(0))
		for i := 1; i <= 3; i++ {
			res := call(t, f, `{}`)
			wantStatus(t, res, gust.StatusSuccess)
			if got := resultMap(t, res)["n"]; got != float64(i) {
				t.Errorf("n = %v, want %d", got, i)
			}
			if got := logTexts(res); len(got) != 1 || got[0] != "stdout: call "+itoa(i) {
				t.Errorf("logs %q", got)
			}
		}
	})
}

func TestNative(t *testing.T) {
	b := newBackend(t, Config{})
	f := prepare(t, b, KindGo, string(buildNative(t, "crash")), limits(0))
	for i := 1; i <= 2; i++ {
		res := call(t, f, `{}`)
		wantStatus(t, res, gust.StatusSuccess)
		if got := resultMap(t, res)["counter"]; got != float64(i) {
			t.Errorf("counter %v", got)
		}
	}
	res := call(t, f, `{"crash":true}`)
	wantStatus(t, res, gust.StatusDeveloperError)
	if errorText(res) != msgExited {
		t.Errorf("error %q", errorText(res))
	}
	res = call(t, f, `{}`)
	wantStatus(t, res, gust.StatusSuccess)
	if got := resultMap(t, res)["counter"]; got != float64(1) {
		t.Errorf("after crash counter %v", got)
	}
	// A zip with exec.
	z := zipOfMode(t, map[string]zipEntry{"exec": {data: string(buildNative(t, "hello")), mode: 0o755}})
	f = prepare(t, b, KindNative, string(z), limits(0))
	res = call(t, f, `{"name":"zip"}`)
	wantStatus(t, res, gust.StatusSuccess)
	if resultMap(t, res)["greeting"] != "Hello, zip!" {
		t.Errorf("result %s", res.Result)
	}
}

// TestResultOverflow: a result line that passes ResultBytes fails at once,
// newline or not (without one it used to be read until the deadline), and
// the next call gets a new worker.
func TestResultOverflow(t *testing.T) {
	b := newBackend(t, Config{})
	l := limits(20 * time.Second)
	l.ResultBytes = 64 << 10
	f := prepare(t, b, KindNative, `#!/bin/sh
n=0
while read -r line; do
  n=$((n+1))
  case "$line" in
  *'"small":true'*) printf '{"n":%d}\n' "$n" >&3 ;;
  *'"newline":true'*) head -c 200000 /dev/zero | tr '\0' x >&3; echo >&3 ;;
  *) head -c 200000 /dev/zero | tr '\0' x >&3; sleep 60 ;;
  esac
done
`, l)
	for _, params := range []string{`{}`, `{"newline":true}`} {
		start := time.Now()
		res := call(t, f, params)
		took := time.Since(start)
		wantStatus(t, res, gust.StatusApplicationError)
		if !strings.HasPrefix(errorText(res), "The action produced a response that exceeded the allowed length: ") || !strings.HasSuffix(errorText(res), " > 65536 bytes.") {
			t.Errorf("%s: error %q", params, errorText(res))
		}
		if res.TimedOut || took > 5*time.Second {
			t.Errorf("%s: took %v (TimedOut %v), want it to fail at the limit", params, took, res.TimedOut)
		}
		res = call(t, f, `{"small":true}`)
		wantStatus(t, res, gust.StatusSuccess)
		if string(res.Result) != `{"n":1}` {
			t.Errorf("after %s: %s, want a new worker's first answer", params, res.Result)
		}
	}
}

// TestStemCells: with a prewarmed cell ready, a cold call takes it.
func TestStemCells(t *testing.T) {
	for _, kind := range []string{KindPython, KindNode} {
		t.Run(kind, func(t *testing.T) {
			b := newBackend(t, Config{StemCells: 1})
			waitCells(t, b, kind, 1)
			f := prepare(t, b, kind, string(map[string][]byte{KindPython: pyFixtures.Hello, KindNode: nodeFixtures.Hello}[kind]), limits(0))
			res := call(t, f, `{"name":"cell"}`)
			wantStatus(t, res, gust.StatusSuccess)
			if res.Start != sandbox.StartPrewarmed || res.InitTime <= 0 {
				t.Errorf("start %s init %v, want prewarmed", res.Start, res.InitTime)
			}
			if resultMap(t, res)["greeting"] != "Hello, cell!" {
				t.Errorf("result %s", res.Result)
			}
			res = call(t, f, `{}`)
			if res.Start != sandbox.StartWarm {
				t.Errorf("second call start %s", res.Start)
			}
			waitCells(t, b, kind, 1) // refilled in the background
		})
	}
}

func waitCells(t testing.TB, b *Backend, kind string, n int) {
	t.Helper()
	c := b.cells[kind]
	if c == nil {
		t.Fatalf("no stem cells for %s", kind)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		ready := len(c.idle)
		c.mu.Unlock()
		if ready >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("stem cells of %s not ready", kind)
}

func TestRuntimes(t *testing.T) {
	needSandbox(t)
	b := newBackend(t, Config{Node: "/nonexistent/node"})
	infos := map[string]RuntimeInfo{}
	for _, ri := range b.Runtimes() {
		infos[ri.Kind] = ri
	}
	if ri := infos[KindNode]; ri.Available || !strings.Contains(ri.Reason, "/nonexistent/node") {
		t.Errorf("node: %+v", ri)
	}
	if ri := infos[KindPython]; !ri.Available || ri.Interpreter != DefaultPython {
		t.Errorf("python: %+v", ri)
	}
	kinds := b.Kinds()
	if strings.Contains(strings.Join(kinds, ","), KindNode) || len(kinds) != 3 {
		t.Errorf("Kinds() = %v", kinds)
	}
	_, err := b.Prepare(t.Context(), sandbox.Spec{Kind: KindNode, Code: []byte("function main(){}")})
	if gust.KindOf(err) != gust.KindInvalid || !strings.Contains(gust.MessageOf(err), "not available") {
		t.Errorf("Prepare of an unavailable kind: %v", err)
	}
}
