package wasm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
	"github.com/gust-faas/gust/internal/sandbox/sandboxtest"
	"github.com/gust-faas/gust/internal/sandbox/wasm"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
)

func prepare(t testing.TB, b *wasm.Backend, code []byte, limits sandbox.Limits) sandbox.Function {
	t.Helper()
	f, err := b.Prepare(t.Context(), sandbox.Spec{Kind: wasm.Kind, Code: code, Limits: limits})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	t.Cleanup(func() { _ = f.Close(context.Background()) })
	return f
}

func invoke(t testing.TB, f sandbox.Function, params string, env map[string]string) *sandbox.Result {
	t.Helper()
	res, err := f.Invoke(t.Context(), sandbox.Call{Params: json.RawMessage(params), Env: env})
	if err != nil {
		t.Fatalf("Invoke(%s): %v", params, err)
	}
	return res
}

func limits(mutate func(*sandbox.Limits)) sandbox.Limits {
	l := sandboxtest.Limits()
	if mutate != nil {
		mutate(&l)
	}
	return l
}

func shortTimeout(l *sandbox.Limits) { l.Timeout = 200 * time.Millisecond }

func errorOf(res *sandbox.Result) string {
	var m struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(res.Result, &m)
	return m.Error
}

func logsContain(res *sandbox.Result, s string) bool {
	for _, l := range res.Logs {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// jsonEqual compares JSON documents semantically.
func jsonEqual(t testing.TB, got []byte, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		return false
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %s: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	return string(gb) == string(wb)
}

func TestCommand(t *testing.T) {
	b := newBackend(t, wasm.Config{})
	const id = "0123456789abcdef0123456789abcdef"
	env := map[string]string{"__OW_ACTIVATION_ID": id, "__OW_NAMESPACE": "guest", "__OW_ACTION_NAME": "/guest/env"}
	tests := []struct {
		fixture  string
		params   string
		limits   func(*sandbox.Limits)
		status   gust.Status
		result   string         // exact JSON, when set
		error    *regexp.Regexp // matches the "error" member, when set
		timedOut bool
		log      string // a log line contains it, when set
	}{
		{fixture: "hello", params: `{"name":"Gust"}`, result: `{"greeting":"Hello, Gust!"}`, log: "stderr: hello: greeting Gust"},
		{fixture: "noop", result: `{}`},
		{fixture: "empty", result: `{}`},
		{fixture: "error", status: gust.StatusApplicationError, result: `{"error":"boom"}`},
		{fixture: "errorexit", status: gust.StatusApplicationError, result: `{"error":"bad input"}`},
		{fixture: "exit", status: gust.StatusDeveloperError, error: regexp.MustCompile(`^The action exited with code 3\.$`), log: "stderr: giving up"},
		{fixture: "notjson", status: gust.StatusDeveloperError, error: regexp.MustCompile(`^The action did not produce a valid JSON response: hello, world$`)},
		{fixture: "crash", status: gust.StatusDeveloperError, error: regexp.MustCompile(`^The action failed: wasm error: unreachable$`), log: "wasm stack trace"},
		{fixture: "loop", limits: shortTimeout, status: gust.StatusDeveloperError, timedOut: true, error: regexp.MustCompile(`^The action exceeded its time limits of 200 milliseconds \(timeout of 200 ms exceeded\)\.$`)},
		// A sleep must end at the deadline too: an hour-long one would hang the test.
		{fixture: "sleep", limits: shortTimeout, status: gust.StatusDeveloperError, timedOut: true, error: regexp.MustCompile(`time limits of 200 milliseconds`)},
		{fixture: "membomb", limits: func(l *sandbox.Limits) { l.MemoryMB = 64 }, status: gust.StatusDeveloperError, error: regexp.MustCompile(`^The action exhausted its memory and was aborted \(memory limit of 64 MB exceeded\)\.$`)},
		{fixture: "gomembomb", limits: func(l *sandbox.Limits) { l.MemoryMB = 64 }, status: gust.StatusDeveloperError, error: regexp.MustCompile(`^The action exhausted its memory and was aborted \(memory limit of 64 MB exceeded\)\.$`), log: "out of memory"},
		{fixture: "bigresult", limits: func(l *sandbox.Limits) { l.ResultBytes = 1 << 20 }, status: gust.StatusApplicationError,
			error: regexp.MustCompile(`^The action produced a response that exceeded the allowed length: 2097164 > 1048576 bytes\.$`)},
		{fixture: "logs", limits: func(l *sandbox.Limits) { l.LogBytes = 100 }, result: `{"lines":1000}`, log: "Logs were truncated because the total bytes size exceeds the limit of 100 bytes."},
		// Exactly the call's environment, nothing from the host; argv is the program name.
		{fixture: "env", result: `{"activation_id":"` + id + `","environ":3,"args":1,"argv0":"main"}`},
		{fixture: "webecho", params: `{"result":{"statusCode":204}}`, result: `{"statusCode":204}`},
		{fixture: "gohello", params: `{"name":"Go"}`, result: `{"greeting":"Hello, Go!","activation_id":"` + id + `"}`, log: "stderr: hello: greeting Go"},
	}
	for _, tc := range tests {
		t.Run(tc.fixture, func(t *testing.T) {
			t.Parallel()
			f := prepare(t, b, wasmtest.Build(t, tc.fixture), limits(tc.limits))
			params := tc.params
			if params == "" {
				params = "{}"
			}
			res := invoke(t, f, params, env)
			if res.Status != tc.status {
				t.Errorf("status = %v, want %v", res.Status, tc.status)
			}
			if tc.result != "" && !jsonEqual(t, res.Result, tc.result) {
				t.Errorf("result = %s, want %s", res.Result, tc.result)
			}
			if tc.error != nil && !tc.error.MatchString(errorOf(res)) {
				t.Errorf("error = %q, want a match for %s", errorOf(res), tc.error)
			}
			if res.TimedOut != tc.timedOut {
				t.Errorf("TimedOut = %v, want %v", res.TimedOut, tc.timedOut)
			}
			if tc.log != "" && !logsContain(res, tc.log) {
				t.Errorf("logs %q, want a line containing %q", res.Logs, tc.log)
			}
			if res.Start != sandbox.StartCold {
				t.Errorf("Start = %q, want cold: every command call is a fresh instance", res.Start)
			}
			if t.Failed() {
				t.Logf("result %s; logs %q", res.Result, res.Logs)
			}
		})
	}
}

// TestCReactor checks reuse, recycling and the instance cap with a C
// reactor: it counts the calls its instance served.
func TestCReactor(t *testing.T) {
	code := wasmtest.Build(t, "creactor")
	b := newBackend(t, wasm.Config{MaxInstancesPerFunction: 2})

	count := func(t *testing.T, res *sandbox.Result) int {
		t.Helper()
		var m struct{ Count int }
		if err := json.Unmarshal(res.Result, &m); err != nil {
			t.Fatalf("result %s: %v", res.Result, err)
		}
		return m.Count
	}
	expect := func(t *testing.T, res *sandbox.Result, start sandbox.Start, n int) {
		t.Helper()
		if res.Status != gust.StatusSuccess || res.Start != start || count(t, res) != n {
			t.Fatalf("got %v %s %s, want success %s with count %d", res.Status, res.Start, res.Result, start, n)
		}
		if (start == sandbox.StartCold) != (res.InitTime > 0) {
			t.Errorf("%s start with InitTime %v", start, res.InitTime)
		}
	}

	t.Run("Reuse", func(t *testing.T) {
		f := prepare(t, b, code, limits(nil))
		expect(t, invoke(t, f, `{}`, nil), sandbox.StartCold, 1)
		for n := 2; n <= 4; n++ {
			res := invoke(t, f, `{}`, nil)
			expect(t, res, sandbox.StartWarm, n)
			// Per-call logs, from both streams: not the earlier calls'.
			if len(res.Logs) != 2 || !logsContain(res, "stdout: call "+string(rune('0'+n))) || !logsContain(res, "stderr: input") {
				t.Errorf("logs %q", res.Logs)
			}
		}
	})
	t.Run("ApplicationErrorKeepsInstance", func(t *testing.T) {
		f := prepare(t, b, code, limits(nil))
		expect(t, invoke(t, f, `{}`, nil), sandbox.StartCold, 1)
		res := invoke(t, f, `{"error":true}`, nil)
		if res.Status != gust.StatusApplicationError || errorOf(res) != "asked" {
			t.Fatalf("got %v %s", res.Status, res.Result)
		}
		expect(t, invoke(t, f, `{}`, nil), sandbox.StartWarm, 3)
	})
	// After a failure the instance is thrown away: the next call gets a
	// fresh one, whose count starts again at 1.
	for _, tc := range []struct {
		name, params string
		timedOut     bool
		error        string
	}{
		{"RecycleAfterTrap", `{"trap":true}`, false, "The action failed: wasm error: unreachable"},
		{"RecycleAfterTimeout", `{"loop":true}`, true, "The action exceeded its time limits of 200 milliseconds (timeout of 200 ms exceeded)."},
		{"RecycleAfterBadResult", `{"badptr":true}`, false, "The action broke the Gust reactor ABI: gust_handle returned 100 bytes at 0xfffffff0, outside its memory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := prepare(t, b, code, limits(shortTimeout))
			expect(t, invoke(t, f, `{}`, nil), sandbox.StartCold, 1)
			res := invoke(t, f, tc.params, nil)
			if res.Status != gust.StatusDeveloperError || res.TimedOut != tc.timedOut || errorOf(res) != tc.error {
				t.Fatalf("got %v timedOut=%v %s; want developer error %q", res.Status, res.TimedOut, res.Result, tc.error)
			}
			expect(t, invoke(t, f, `{}`, nil), sandbox.StartCold, 1)
			expect(t, invoke(t, f, `{}`, nil), sandbox.StartWarm, 2)
		})
	}
	t.Run("InstanceCap", func(t *testing.T) {
		f := prepare(t, b, code, limits(nil))
		const calls = 16
		var wg sync.WaitGroup
		results := make(chan *sandbox.Result, calls)
		for range calls {
			wg.Go(func() {
				res, err := f.Invoke(t.Context(), sandbox.Call{Params: json.RawMessage(`{}`)})
				if err != nil {
					t.Error(err)
					return
				}
				results <- res
			})
		}
		wg.Wait()
		close(results)
		cold, served := 0, 0
		for res := range results {
			if res.Status != gust.StatusSuccess {
				t.Errorf("%v %s", res.Status, res.Result)
			}
			if res.Start == sandbox.StartCold {
				cold++
			}
			served++
		}
		if served != calls || cold < 1 || cold > 2 {
			t.Errorf("%d calls served by %d cold instances; want %d calls, at most 2 instances", served, cold, calls)
		}
	})
}

// TestGoReactor checks the ABI with a Go guest built with
// -buildmode=c-shared and //go:wasmexport.
func TestGoReactor(t *testing.T) {
	code := wasmtest.Build(t, "goreactor")
	b := newBackend(t, wasm.Config{})
	f := prepare(t, b, code, limits(func(l *sandbox.Limits) { l.Timeout = 2 * time.Second }))

	type out struct {
		Greeting     string `json:"greeting"`
		Count        int    `json:"count"`
		ActivationID string `json:"activation_id"`
	}
	call := func(params string, id string) (*sandbox.Result, out) {
		t.Helper()
		res := invoke(t, f, params, map[string]string{"__OW_ACTIVATION_ID": id})
		var o out
		_ = json.Unmarshal(res.Result, &o)
		return res, o
	}

	for i, id := range []string{"a1", "b2", "c3"} {
		res, o := call(`{"name":"Gust","sleep_ms":1}`, id)
		wantStart := sandbox.StartWarm
		if i == 0 {
			wantStart = sandbox.StartCold
		}
		if res.Status != gust.StatusSuccess || res.Start != wantStart || o.Count != i+1 || o.ActivationID != id || o.Greeting != "Hello, Gust!" {
			t.Fatalf("call %d: %v %s %s", i, res.Status, res.Start, res.Result)
		}
	}

	res, _ := call(`{"log":"to both streams"}`, "d4")
	if !logsContain(res, "stdout: to both streams") || !logsContain(res, "stderr: to both streams") {
		t.Errorf("logs %q, want the line on stdout and stderr", res.Logs)
	}
	if res, _ := call(`{"error":"nope"}`, "e5"); res.Status != gust.StatusApplicationError || errorOf(res) != "nope" {
		t.Errorf("error: %v %s", res.Status, res.Result)
	}

	// A Go panic ends the instance (in a c-shared build the Go runtime
	// prints the panic to stderr, then aborts: a trap); the next call
	// starts a new one.
	res, _ = call(`{"panic":true}`, "f6")
	if res.Status != gust.StatusDeveloperError || errorOf(res) != "The action failed: wasm error: unreachable" || !logsContain(res, "panic: asked to panic") {
		t.Errorf("panic: %v %s %q", res.Status, res.Result, res.Logs)
	}
	if res, o := call(`{}`, "g7"); res.Start != sandbox.StartCold || o.Count != 1 {
		t.Errorf("after a panic: %s %s, want a fresh instance", res.Start, res.Result)
	}

	res, _ = call(`{"loop":true}`, "h8")
	if !res.TimedOut || res.Status != gust.StatusDeveloperError {
		t.Errorf("loop: %v timedOut=%v %s", res.Status, res.TimedOut, res.Result)
	}
	if res, o := call(`{}`, "i9"); res.Start != sandbox.StartCold || o.Count != 1 {
		t.Errorf("after a timeout: %s %s, want a fresh instance", res.Start, res.Result)
	}
}

// TestPrepareRejects checks that code Gust cannot run is refused at create
// time, as invalid, with a message for the developer.
func TestPrepareRejects(t *testing.T) {
	b := newBackend(t, wasm.Config{CacheDir: t.TempDir()})
	tests := []struct {
		name string
		code []byte
		msg  string
	}{
		{"NotWasm", []byte("print('hello')"), "the code is not a valid WebAssembly module: "},
		{"Empty", nil, "the code is not a valid WebAssembly module: "},
		{"NoEntryPoint", module(), "exports neither _start (a WASI command) nor gust_alloc and gust_handle"},
		{"ForeignImport", module(
			section(1, functype(nil, nil)),
			section(2, concat(name("env"), name("f"), []byte{0, 0})),
			section(7, export("_start", 0, 0)),
		), "the module imports env.f; Gust provides only wasi_snapshot_preview1"},
		{"HalfReactor", module(
			section(1, functype([]byte{i32}, []byte{i32})),
			section(3, []byte{0}),
			section(5, []byte{0, 1}),
			section(7, export("gust_alloc", 0, 0), export("memory", 2, 0)),
			section(10, body(0x20, 0)),
		), "a Gust reactor must export both gust_alloc and gust_handle"},
		{"HandleSignature", module(
			section(1, functype([]byte{i32}, []byte{i32})),
			section(3, []byte{0}, []byte{0}),
			section(5, []byte{0, 1}),
			section(7, export("gust_alloc", 0, 0), export("gust_handle", 0, 1), export("memory", 2, 0)),
			section(10, body(0x20, 0), body(0x20, 0)),
		), "gust_handle must have the type (i32) -> i64"},
		{"MemoryOverLimit", module(
			section(5, []byte{0, 0xd0, 0x0f}), // min 2000 pages (125 MiB), limit 64 MiB
		), "over limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := b.Prepare(t.Context(), sandbox.Spec{Kind: wasm.Kind, Code: tc.code, Limits: limits(func(l *sandbox.Limits) { l.MemoryMB = 64 })})
			if err == nil {
				f.Close(t.Context())
				t.Fatal("accepted")
			}
			if gust.KindOf(err) != gust.KindInvalid || !strings.Contains(gust.MessageOf(err), tc.msg) {
				t.Errorf("got %v (kind %v), want kind invalid with %q", err, gust.KindOf(err), tc.msg)
			}
		})
	}
	t.Run("WrongKind", func(t *testing.T) {
		_, err := b.Prepare(t.Context(), sandbox.Spec{Kind: "nodejs:20", Code: module()})
		if err == nil || gust.KindOf(err) != gust.KindInternal {
			t.Errorf("got %v, want an internal error: the invoker asked the wrong backend", err)
		}
	})
}

// Minimal wasm binary encoding for hand-made modules; every count and size
// here fits one LEB128 byte.
const i32 = 0x7f

func module(sections ...[]byte) []byte {
	return concat(append([][]byte{[]byte("\x00asm\x01\x00\x00\x00")}, sections...)...)
}

func section(id byte, items ...[]byte) []byte {
	content := concat(append([][]byte{{byte(len(items))}}, items...)...)
	return concat([]byte{id, byte(len(content))}, content)
}

func functype(params, results []byte) []byte {
	return concat([]byte{0x60, byte(len(params))}, params, []byte{byte(len(results))}, results)
}

func export(n string, kind, index byte) []byte { return concat(name(n), []byte{kind, index}) }

func name(s string) []byte { return concat([]byte{byte(len(s))}, []byte(s)) }

func body(code ...byte) []byte {
	fn := concat([]byte{0}, code, []byte{0x0b}) // no locals, code, end
	return concat([]byte{byte(len(fn))}, fn)
}

func concat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// TestCompileCachePersists checks that a second Backend on the same
// CacheDir (another process, after a restart) reuses the compiled code:
// the cache entry written by the first is read, not written again.
func TestCompileCachePersists(t *testing.T) {
	dir := t.TempDir()
	code := wasmtest.Build(t, "hello")

	b1, err := wasm.New(wasm.Config{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	f := prepare(t, b1, code, limits(nil))
	f.Close(t.Context())
	if err := b1.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := cacheFiles(t, dir)
	if len(before) == 0 {
		t.Fatalf("no compiled code in %s after Prepare", dir)
	}

	b2 := newBackend(t, wasm.Config{CacheDir: dir})
	// A different memory limit is a different runtime; the code is the same.
	f = prepare(t, b2, code, limits(func(l *sandbox.Limits) { l.MemoryMB = 512 }))
	if res := invoke(t, f, `{"name":"again"}`, nil); res.Status != gust.StatusSuccess {
		t.Fatalf("%v %s", res.Status, res.Result)
	}
	after := cacheFiles(t, dir)
	if len(after) != len(before) {
		t.Errorf("cache files %v, then %v: want a hit, not a new entry", before, after)
	}
	for path, mod := range before {
		if !after[path].Equal(mod) {
			t.Errorf("%s was rewritten: want it read", path)
		}
	}
}

func cacheFiles(t *testing.T, dir string) map[string]time.Time {
	t.Helper()
	files := map[string]time.Time{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files[path] = info.ModTime()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestCacheWriteFails checks that a broken disk cache costs speed, not
// function: the module still compiles and runs.
func TestCacheWriteFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	var log syncBuffer
	b := newBackend(t, wasm.Config{CacheDir: dir, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	f := prepare(t, b, wasmtest.Build(t, "hello"), limits(nil))
	if res := invoke(t, f, `{"name":"disk"}`, nil); res.Status != gust.StatusSuccess {
		t.Fatalf("%v %s", res.Status, res.Result)
	}
	if !strings.Contains(log.String(), "compilation cache failed") {
		t.Errorf("log %q, want a warning about the cache", log.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestNewBadCacheDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := wasm.New(wasm.Config{CacheDir: file}); err == nil {
		t.Error("New accepted a cache dir that is a file")
	}
}

// TestEndedFromOutside checks calls ended by the platform rather than the
// function: they return errors, not activation results.
func TestEndedFromOutside(t *testing.T) {
	loop := wasmtest.Build(t, "loop")
	started := func(f sandbox.Function, ctx context.Context) chan error {
		done := make(chan error, 1)
		go func() {
			res, err := f.Invoke(ctx, sandbox.Call{Params: json.RawMessage(`{}`)})
			if err == nil {
				err = errors.New("got a result: " + string(res.Result))
			}
			done <- err
		}()
		return done
	}

	t.Run("CallerCancels", func(t *testing.T) {
		f := prepare(t, newBackend(t, wasm.Config{}), loop, limits(nil))
		ctx, cancel := context.WithCancel(t.Context())
		done := started(f, ctx)
		time.Sleep(50 * time.Millisecond) // let it start; correctness does not depend on it
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	})
	t.Run("BackendCloses", func(t *testing.T) {
		b, err := wasm.New(wasm.Config{})
		if err != nil {
			t.Fatal(err)
		}
		f := prepare(t, b, loop, limits(nil))
		done := started(f, t.Context())
		time.Sleep(50 * time.Millisecond)
		if err := b.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err == nil || !strings.Contains(err.Error(), "closed") {
			t.Errorf("got %v, want a closed-backend error", err)
		}
		if _, err := f.Invoke(t.Context(), sandbox.Call{}); err == nil {
			t.Error("Invoke after Backend.Close succeeded")
		}
		if _, err := b.Prepare(t.Context(), sandbox.Spec{Kind: wasm.Kind, Code: loop}); err == nil {
			t.Error("Prepare after Backend.Close succeeded")
		}
	})
	t.Run("FunctionClosed", func(t *testing.T) {
		f := prepare(t, newBackend(t, wasm.Config{}), wasmtest.Build(t, "creactor"), limits(nil))
		invoke(t, f, `{}`, nil)
		if err := f.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Invoke(t.Context(), sandbox.Call{}); err == nil {
			t.Error("Invoke after Close succeeded")
		}
	})
}
