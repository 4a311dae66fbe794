// Package sandboxtest is the conformance suite of sandbox backends: the
// behaviour every backend shares, whatever it runs (wasm modules, processes).
// A backend's tests call Run with code, in that backend's own format, for
// each scenario:
//
//	sandboxtest.Run(t, backend, sandboxtest.Fixtures{Kind: "wasm", Hello: …})
package sandboxtest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
)

// Fixtures is code behaving as each field describes, for one backend. A nil
// field skips its scenario, so a backend can start with a subset.
type Fixtures struct {
	Kind string // Spec.Kind of every fixture
	Main string // Spec.Main of every fixture; optional

	// Hello, given {"name": N}, returns an object whose "greeting" is
	// "Hello, N!"; without a name, N is "stranger". Other members are allowed.
	Hello []byte
	// Logs writes the lines "log line 0" … "log line 999" to its log
	// (stderr) and succeeds.
	Logs []byte
	// AppError returns {"error": "boom"}.
	AppError []byte
	// Loop never returns.
	Loop []byte
	// MemoryBomb allocates memory without bound.
	MemoryBomb []byte
	// BigResult returns a result larger than 64 KiB.
	BigResult []byte
	// Env returns an object whose "activation_id" is the call's
	// __OW_ACTIVATION_ID.
	Env []byte
	// Invalid is code that Prepare must refuse with gust.KindInvalid.
	Invalid []byte
	// Counter returns {"count": N}, N being the number of calls the
	// instance serving it has run, this one included (state kept in the
	// instance: a global, a module variable). Given {"crash": true} it ends
	// abnormally without a result (exits, traps); given {"loop": true} it
	// never returns.
	Counter []byte
	// Chatty, given {"bytes": N}, writes N bytes of log text (lines of at
	// most 100 bytes) and returns {"count": C}, C counted as by Counter.
	Chatty []byte
	// Escape tries one thing a function must not be able to do, or must be
	// able to do only within its own instance, and says how it went: given
	// {"op": …}, it returns {"outcome": O, …}, O being "ok" when the
	// operation succeeded, else the errno's name ("ENOENT", "EACCES", …) or
	// another text saying why it failed. The ops:
	//
	//	{"op": "read", "path": P}: read the file P
	//	{"op": "write", "path": P, "data": D}: create (or truncate) P, write D
	//	{"op": "list", "path": P}: list the directory P; "names": its entries
	//	{"op": "procs"}: "cmdlines": the command line of every process the
	//	    function can see (arguments joined by spaces; "" if unreadable)
	//	{"op": "connect", "host": H, "port": N}: open a TCP connection,
	//	    giving up after 2 s
	//	{"op": "resolve", "host": H}: resolve the host name H
	//	{"op": "fill", "dir": D, "mb": N}: create D, then write N files of
	//	    1 MiB in it, stopping at the first failure, whose outcome it
	//	    reports; "mb": the files written
	Escape []byte
	// TmpMB is the size of an instance's /tmp (where Escape writes) in MiB;
	// 0 skips the /tmp quota scenario.
	TmpMB int

	// Capabilities. A scenario needing one the backend lacks is skipped.

	// WarmReuse: an instance that answered a call serves the next one of
	// the same function, its state intact (Start warm, InitTime 0).
	WarmReuse bool
	// Prewarmed, when set, offers instances started before their function
	// is known (stem cells): it waits until one is ready for a new
	// function of Kind, whose first call must then report StartPrewarmed.
	// The scenario runs alone (not in parallel with the others) so that no
	// other scenario takes the instance first.
	Prewarmed func(testing.TB)
}

// Limits are the generous limits of scenarios that do not test one: slow
// machines and the race detector must not make them flaky.
func Limits() sandbox.Limits {
	return sandbox.Limits{MemoryMB: 128, Timeout: time.Minute, LogBytes: 1 << 20, ResultBytes: 1 << 20}
}

// Env returns the __OW_* environment of an activation with the given id, as
// the invoker builds it.
func Env(activationID string) map[string]string {
	return map[string]string{
		"__OW_ACTIVATION_ID":  activationID,
		"__OW_ACTION_NAME":    "/guest/conformance",
		"__OW_ACTION_VERSION": "0.0.1",
		"__OW_NAMESPACE":      "guest",
		"__OW_DEADLINE":       strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10),
	}
}

// Messages every backend reports verbatim: OpenWhisk's texts, then the
// limit named in Gust's words.
const (
	msgTimeout   = "The action exceeded its time limits of %[1]d milliseconds (timeout of %[1]d ms exceeded)."
	msgMemory    = "The action exhausted its memory and was aborted (memory limit of %d MB exceeded)."
	phraseLogs   = "log limit reached, output truncated" // in the truncation line
	msgTruncated = "Logs were truncated because the total bytes size exceeds the limit of %d bytes."
)

var (
	reTooLarge = regexp.MustCompile(`^The action produced a response that exceeded the allowed length: (\d+) > (\d+) bytes\.$`)
	reLogLine  = regexp.MustCompile(`^\S+\s+(stdout|stderr): (.*)$`)
)

// Run runs the conformance scenarios against b.
func Run(t *testing.T, b sandbox.Backend, fx Fixtures) {
	t.Run("Kinds", func(t *testing.T) {
		if !slices.Contains(b.Kinds(), fx.Kind) {
			t.Fatalf("Kinds() = %v, want it to include %q", b.Kinds(), fx.Kind)
		}
	})
	s := &suite{b: b, fx: fx}
	for _, sc := range []struct {
		name string
		code []byte
		run  func(*testing.T, []byte)
	}{
		{"Hello", fx.Hello, s.hello},
		{"ConcurrentCalls", fx.Hello, s.concurrent},
		{"Logs", fx.Logs, s.logs},
		{"LogsTruncated", fx.Logs, s.logsTruncated},
		{"ApplicationError", fx.AppError, s.appError},
		{"Timeout", fx.Loop, s.timeout},
		{"MemoryBomb", fx.MemoryBomb, s.memoryBomb},
		{"OversizedResult", fx.BigResult, s.bigResult},
		{"Env", fx.Env, s.env},
		{"Invalid", fx.Invalid, s.invalid},
		{"LogsPerActivation", fx.Logs, s.logsPerActivation},
		{"WarmReuse", need(fx.Counter, fx.WarmReuse), s.warmReuse},
		{"CrashReplaced", fx.Counter, s.crashReplaced},
		{"TimeoutThenCall", fx.Counter, s.timeoutThenCall},
		{"LogLimitEndsInstance", fx.Chatty, s.logLimitEndsInstance},
		{"HugeOutput", fx.Chatty, s.hugeOutput},
		{"EscapeHostFiles", fx.Escape, s.escapeHostFiles},
		{"EscapeHostProcesses", fx.Escape, s.escapeHostProcesses},
		{"EscapeNetwork", fx.Escape, s.escapeNetwork},
		{"EscapeWriteOutsideTmp", fx.Escape, s.escapeWrite},
		{"EscapeOtherFunctionsTmp", fx.Escape, s.escapeOtherTmp},
		{"TmpQuota", need(fx.Escape, fx.TmpMB > 0), s.tmpQuota},
	} {
		t.Run(sc.name, func(t *testing.T) {
			if sc.code == nil {
				t.Skip("no fixture or capability for this scenario")
			}
			t.Parallel()
			sc.run(t, sc.code)
		})
	}
	// Not parallel: it runs before the parallel scenarios resume, so no
	// other call of this suite takes the prewarmed instance.
	t.Run("Prewarmed", func(t *testing.T) {
		if fx.Hello == nil || fx.Prewarmed == nil {
			t.Skip("no fixture or capability for this scenario")
		}
		s.prewarmed(t, fx.Hello)
	})
}

// need returns code when the backend has the capability, else nil.
func need(code []byte, capable bool) []byte {
	if !capable {
		return nil
	}
	return code
}

type suite struct {
	b  sandbox.Backend
	fx Fixtures
}

func (s *suite) prepare(t *testing.T, code []byte, limits sandbox.Limits) sandbox.Function {
	t.Helper()
	f, err := s.b.Prepare(t.Context(), sandbox.Spec{Kind: s.fx.Kind, Code: code, Main: s.fx.Main, Limits: limits})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Close(t.Context()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f
}

func invoke(t *testing.T, f sandbox.Function, params string) *sandbox.Result {
	t.Helper()
	res, err := f.Invoke(t.Context(), sandbox.Call{Params: json.RawMessage(params), Env: Env(gust.NewActivationID(time.Now()))})
	if err != nil {
		t.Fatalf("Invoke(%s): %v", params, err)
	}
	checkShape(t, res)
	return res
}

// checkShape checks what holds for every result.
func checkShape(t *testing.T, res *sandbox.Result) {
	t.Helper()
	if !json.Valid(res.Result) || len(res.Result) == 0 || res.Result[0] != '{' && res.Result[0] != '[' {
		t.Errorf("result %q is not a JSON object or array", res.Result)
	}
	if res.Status != gust.StatusSuccess && errorOf(res) == "" {
		t.Errorf("status %v with result %s, want an \"error\" member", res.Status, res.Result)
	}
	switch res.Start {
	case sandbox.StartCold, sandbox.StartPrewarmed, sandbox.StartWarm:
	default:
		t.Errorf("Start = %q", res.Start)
	}
	if res.InitTime < 0 || res.Start == sandbox.StartWarm && res.InitTime != 0 {
		t.Errorf("Start %s with InitTime %v", res.Start, res.InitTime)
	}
	for _, l := range res.Logs {
		if !reLogLine.MatchString(l) {
			t.Errorf("log line %q is not \"<time> <stream>: <text>\"", l)
		}
	}
}

func want(t *testing.T, res *sandbox.Result, status gust.Status) {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status = %v, want %v; result %s; logs %q", res.Status, status, res.Result, res.Logs)
	}
}

func member(t *testing.T, res *sandbox.Result, key string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(res.Result, &m); err != nil {
		t.Fatalf("result %s: %v", res.Result, err)
	}
	s, _ := m[key].(string)
	return s
}

func errorOf(res *sandbox.Result) string {
	var m struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(res.Result, &m)
	return m.Error
}

func (s *suite) hello(t *testing.T, code []byte) {
	f := s.prepare(t, code, Limits())
	for _, tc := range []struct{ params, greeting string }{
		{`{"name":"Gust"}`, "Hello, Gust!"},
		{`{"name":"Wörld 🌍"}`, "Hello, Wörld 🌍!"},
		{`{}`, "Hello, stranger!"},
	} {
		res := invoke(t, f, tc.params)
		want(t, res, gust.StatusSuccess)
		if got := member(t, res, "greeting"); got != tc.greeting {
			t.Errorf("%s: greeting = %q, want %q", tc.params, got, tc.greeting)
		}
		if res.TimedOut {
			t.Errorf("%s: TimedOut", tc.params)
		}
	}
}

// concurrent calls one function from many goroutines: each call must get
// its own answer, whatever instances the backend shares between them.
func (s *suite) concurrent(t *testing.T, code []byte) {
	f := s.prepare(t, code, Limits())
	const workers, calls = 8, 4
	var wg sync.WaitGroup
	errs := make(chan error, workers*calls)
	for w := range workers {
		wg.Go(func() {
			for c := range calls {
				name := fmt.Sprintf("w%dc%d", w, c)
				res, err := f.Invoke(t.Context(), sandbox.Call{Params: json.RawMessage(`{"name":"` + name + `"}`), Env: Env(gust.NewActivationID(time.Now()))})
				switch {
				case err != nil:
					errs <- err
				case res.Status != gust.StatusSuccess:
					errs <- fmt.Errorf("%s: status %v: %s", name, res.Status, res.Result)
				case !strings.Contains(string(res.Result), `"Hello, `+name+`!"`):
					errs <- fmt.Errorf("%s: result %s", name, res.Result)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func (s *suite) logs(t *testing.T, code []byte) {
	f := s.prepare(t, code, Limits())
	res := invoke(t, f, `{}`)
	want(t, res, gust.StatusSuccess)
	var texts []string
	for _, l := range res.Logs {
		texts = append(texts, reLogLine.FindStringSubmatch(l)[2])
	}
	for i := range 1000 {
		if i >= len(texts) || texts[i] != fmt.Sprintf("log line %d", i) {
			t.Fatalf("log %d: got %q, want \"log line %d\" (%d lines)", i, at(texts, i), i, len(texts))
		}
	}
	if len(texts) != 1000 {
		t.Errorf("%d log lines, want 1000; last %q", len(texts), texts[len(texts)-1])
	}
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "<none>"
}

func (s *suite) logsTruncated(t *testing.T, code []byte) {
	limits := Limits()
	limits.LogBytes = 1000
	f := s.prepare(t, code, limits)
	res := invoke(t, f, `{}`)
	want(t, res, gust.StatusSuccess) // too many logs is not a failure
	if len(res.Logs) == 0 || len(res.Logs) > 100 {
		t.Fatalf("%d log lines, want a truncated log", len(res.Logs))
	}
	checkTruncated(t, res, limits.LogBytes)
}

// checkTruncated checks that res's log was cut at limit bytes of text and
// ends with the truncation line.
func checkTruncated(t *testing.T, res *sandbox.Result, limit int) {
	t.Helper()
	if len(res.Logs) == 0 {
		t.Fatal("no log lines, want a truncated log")
	}
	last := res.Logs[len(res.Logs)-1]
	if !strings.Contains(last, fmt.Sprintf(msgTruncated, limit)) || !strings.Contains(last, phraseLogs) {
		t.Errorf("last log line %q, want the truncation line, with %q", last, phraseLogs)
	}
	kept := 0
	for _, l := range res.Logs[:len(res.Logs)-1] {
		kept += len(reLogLine.FindStringSubmatch(l)[2])
	}
	if kept > limit {
		t.Errorf("kept %d bytes of log text, limit %d", kept, limit)
	}
}

func (s *suite) appError(t *testing.T, code []byte) {
	f := s.prepare(t, code, Limits())
	res := invoke(t, f, `{}`)
	want(t, res, gust.StatusApplicationError)
	if got := errorOf(res); got != "boom" {
		t.Errorf("error = %q, want boom (result %s)", got, res.Result)
	}
}

func (s *suite) timeout(t *testing.T, code []byte) {
	limits := Limits()
	limits.Timeout = 300 * time.Millisecond
	f := s.prepare(t, code, limits)
	for range 2 { // the second call must not be stuck behind the first
		res := invoke(t, f, `{}`)
		want(t, res, gust.StatusDeveloperError)
		if !res.TimedOut {
			t.Error("TimedOut = false")
		}
		if got, want := errorOf(res), fmt.Sprintf(msgTimeout, 300); got != want {
			t.Errorf("error = %q, want %q", got, want)
		}
	}
}

func (s *suite) memoryBomb(t *testing.T, code []byte) {
	limits := Limits()
	limits.MemoryMB = 64
	f := s.prepare(t, code, limits)
	res := invoke(t, f, `{}`)
	want(t, res, gust.StatusDeveloperError)
	if res.TimedOut {
		t.Error("TimedOut = true: the memory limit, not the time limit, must end it")
	}
	if got, want := errorOf(res), fmt.Sprintf(msgMemory, 64); got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

func (s *suite) bigResult(t *testing.T, code []byte) {
	limits := Limits()
	limits.ResultBytes = 64 << 10
	f := s.prepare(t, code, limits)
	res := invoke(t, f, `{}`)
	want(t, res, gust.StatusApplicationError)
	m := reTooLarge.FindStringSubmatch(errorOf(res))
	if m == nil {
		t.Fatalf("error = %q, want OpenWhisk's exceeded-length message", errorOf(res))
	}
	if size, _ := strconv.Atoi(m[1]); size <= limits.ResultBytes || m[2] != strconv.Itoa(limits.ResultBytes) {
		t.Errorf("error = %q: want the real size, over the limit %d", m[0], limits.ResultBytes)
	}
	if len(res.Result) > 1024 {
		t.Errorf("result is %d bytes: the oversized output must not be kept", len(res.Result))
	}
}

func (s *suite) env(t *testing.T, code []byte) {
	f := s.prepare(t, code, Limits())
	for range 2 { // per call, not per instance
		id := gust.NewActivationID(time.Now())
		res, err := f.Invoke(t.Context(), sandbox.Call{Params: json.RawMessage(`{}`), Env: Env(id)})
		if err != nil {
			t.Fatal(err)
		}
		want(t, res, gust.StatusSuccess)
		if got := member(t, res, "activation_id"); got != id {
			t.Errorf("activation_id = %q, want %q", got, id)
		}
	}
}

func (s *suite) invalid(t *testing.T, code []byte) {
	f, err := s.b.Prepare(t.Context(), sandbox.Spec{Kind: s.fx.Kind, Code: code, Main: s.fx.Main, Limits: Limits()})
	if err == nil {
		_ = f.Close(t.Context())
		t.Fatal("Prepare accepted invalid code")
	}
	if gust.KindOf(err) != gust.KindInvalid {
		t.Errorf("Prepare: %v (kind %v), want kind invalid", err, gust.KindOf(err))
	}
	if msg := gust.MessageOf(err); msg == "" || strings.HasPrefix(msg, "An internal error") {
		t.Errorf("message %q does not tell the developer what is wrong", msg)
	}
}

// logTexts returns the text of each log line, checking the stream.
func logTexts(t *testing.T, res *sandbox.Result) []string {
	t.Helper()
	texts := make([]string, 0, len(res.Logs))
	for _, l := range res.Logs {
		m := reLogLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("log line %q is not \"<time> <stream>: <text>\"", l)
		}
		texts = append(texts, m[2])
	}
	return texts
}

// logsPerActivation calls the Logs fixture twice on one function: each
// activation gets exactly its own lines, nothing carried over from the
// other (a worker that serves both must not leak its output across).
func (s *suite) logsPerActivation(t *testing.T, code []byte) {
	f := s.prepare(t, code, Limits())
	for call := range 3 {
		res := invoke(t, f, `{}`)
		want(t, res, gust.StatusSuccess)
		texts := logTexts(t, res)
		if len(texts) != 1000 {
			t.Fatalf("call %d: %d log lines, want exactly 1000; first %q, last %q", call, len(texts), at(texts, 0), at(texts, len(texts)-1))
		}
		for i, text := range texts {
			if text != fmt.Sprintf("log line %d", i) {
				t.Fatalf("call %d: log %d is %q, want \"log line %d\"", call, i, text, i)
			}
		}
	}
}

// count returns the Counter fixture's count.
func count(t *testing.T, res *sandbox.Result) int {
	t.Helper()
	var m struct {
		Count *int `json:"count"`
	}
	if err := json.Unmarshal(res.Result, &m); err != nil || m.Count == nil {
		t.Fatalf("result %s: want {\"count\": N} (%v)", res.Result, err)
	}
	return *m.Count
}

// warmReuse: calls one after the other are served by the same instance,
// whose state persists; the second is warm and needs no init.
func (s *suite) warmReuse(t *testing.T, code []byte) {
	f := s.prepare(t, code, Limits())
	res := invoke(t, f, `{}`)
	want(t, res, gust.StatusSuccess)
	if res.Start == sandbox.StartWarm {
		t.Errorf("first call of a new function: Start warm")
	}
	if n := count(t, res); n != 1 {
		t.Errorf("first call: count %d, want 1", n)
	}
	for i := 2; i <= 4; i++ {
		res := invoke(t, f, `{}`)
		want(t, res, gust.StatusSuccess)
		if n := count(t, res); n != i || res.Start != sandbox.StartWarm || res.InitTime != 0 {
			t.Errorf("call %d: count %d, Start %s, InitTime %v; want count %d from the same warm instance, no init", i, n, res.Start, res.InitTime, i)
		}
	}
}

// afterFailure checks the call that follows a failed one: it succeeds and,
// when instances are reused, runs on a new instance (count 1, not warm).
func (s *suite) afterFailure(t *testing.T, f sandbox.Function, what string) {
	t.Helper()
	for i := 1; i <= 2; i++ {
		res := invoke(t, f, `{}`)
		if res.Status != gust.StatusSuccess {
			t.Fatalf("call %d after %s: status %v, result %s; logs %q", i, what, res.Status, res.Result, res.Logs)
		}
		if !s.fx.WarmReuse {
			continue
		}
		n := count(t, res)
		switch {
		case i == 1 && (n != 1 || res.Start == sandbox.StartWarm):
			t.Errorf("first call after %s: count %d, Start %s; want a new instance (count 1, not warm)", what, n, res.Start)
		case i == 2 && (n != 2 || res.Start != sandbox.StartWarm):
			t.Errorf("second call after %s: count %d, Start %s; want the replacement reused (count 2, warm)", what, n, res.Start)
		}
	}
}

// crashReplaced: an instance that dies without answering is a developer
// error, and the function keeps working on a replacement.
func (s *suite) crashReplaced(t *testing.T, code []byte) {
	f := s.prepare(t, code, Limits())
	if s.fx.WarmReuse {
		// A warm instance first, so the crash hits one that served before.
		want(t, invoke(t, f, `{}`), gust.StatusSuccess)
	}
	res := invoke(t, f, `{"crash":true}`)
	want(t, res, gust.StatusDeveloperError)
	if res.TimedOut {
		t.Error("TimedOut = true for a crash")
	}
	if errorOf(res) == "" || strings.HasPrefix(errorOf(res), "The action exceeded its time limits") {
		t.Errorf("error %q does not describe a crash", errorOf(res))
	}
	s.afterFailure(t, f, "a crash")
}

// timeoutThenCall: after a call killed at its deadline, the next call of
// the same function runs normally and in time.
func (s *suite) timeoutThenCall(t *testing.T, code []byte) {
	limits := Limits()
	limits.Timeout = 500 * time.Millisecond
	f := s.prepare(t, code, limits)
	if s.fx.WarmReuse {
		want(t, invoke(t, f, `{}`), gust.StatusSuccess)
	}
	res := invoke(t, f, `{"loop":true}`)
	want(t, res, gust.StatusDeveloperError)
	if !res.TimedOut {
		t.Error("TimedOut = false")
	}
	if got, want := errorOf(res), fmt.Sprintf(msgTimeout, 500); got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
	s.afterFailure(t, f, "a timeout")
}

// prewarmed: with a prewarmed instance ready, a new function's first call
// takes it: Start prewarmed, with the time its init took.
func (s *suite) prewarmed(t *testing.T, code []byte) {
	s.fx.Prewarmed(t)
	f := s.prepare(t, code, Limits())
	res := invoke(t, f, `{"name":"Gust"}`)
	want(t, res, gust.StatusSuccess)
	if res.Start != sandbox.StartPrewarmed {
		t.Fatalf("first call with a prewarmed instance ready: Start %s, want prewarmed", res.Start)
	}
	if res.InitTime <= 0 {
		t.Errorf("prewarmed start with InitTime %v, want the init's time", res.InitTime)
	}
	if got := member(t, res, "greeting"); got != "Hello, Gust!" {
		t.Errorf("greeting = %q", got)
	}
	if s.fx.WarmReuse {
		if res := invoke(t, f, `{}`); res.Start != sandbox.StartWarm {
			t.Errorf("second call: Start %s, want warm", res.Start)
		}
	}
}
