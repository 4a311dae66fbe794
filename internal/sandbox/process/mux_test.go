//go:build linux

package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
	"github.com/gust-faas/gust/internal/sandbox/sandboxtest"
)

// nodeConcurrent waits, logs around the wait, and says which worker
// served it.
const nodeConcurrent = `
const worker = Math.random(); // pids repeat: each sandbox has its own pid namespace
async function main(p) {
  console.log("start " + p.n);
  await new Promise(r => setTimeout(r, p.ms || 300));
  console.error("end " + p.n);
  if (p.fail) throw new Error("failed " + p.n);
  return { n: p.n, pid: worker };
}`

// TestConcurrentNode: with Concurrency > 1, one Node.js worker runs that
// many activations at once, and each call gets exactly its own logs and
// result.
func TestConcurrentNode(t *testing.T) {
	b := newBackend(t, Config{})
	if b.reasons[KindNode] != "" {
		sandboxtest.Unavailable(t, "%s", b.reasons[KindNode])
	}
	l := limits(0)
	l.Concurrency = 4
	f := prepare(t, b, KindNode, nodeConcurrent, l)
	call(t, f, `{"n":0,"ms":1}`) // a warm worker first

	type out struct {
		res *sandbox.Result
		d   time.Duration
	}
	results := make([]out, 4)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range results {
		wg.Go(func() {
			res := call(t, f, `{"n":`+string(rune('1'+i))+`,"ms":400}`)
			results[i] = out{res, time.Since(t0)}
		})
	}
	wg.Wait()
	pids := map[float64]bool{}
	for i, o := range results {
		wantStatus(t, o.res, gust.StatusSuccess)
		m := resultMap(t, o.res)
		if m["n"] != float64(i+1) {
			t.Errorf("call %d got the result of %v", i+1, m["n"])
		}
		pids[m["pid"].(float64)] = true
		logs := logTexts(o.res)
		n := string(rune('1' + i))
		if len(logs) != 2 || !strings.Contains(logs[0], "start "+n) || !strings.Contains(logs[1], "end "+n) {
			t.Errorf("call %d logs %q, want its own start and end", i+1, logs)
		}
	}
	if len(pids) != 1 {
		t.Errorf("4 concurrent calls ran on %d workers, want 1", len(pids))
	}
	if elapsed := time.Since(t0); elapsed > 1200*time.Millisecond {
		t.Errorf("4 calls of 400 ms took %v: they did not run at once", elapsed)
	}
	if n := f.(*function).muxIdle(); n != 4 {
		t.Errorf("%d free slots after the calls, want 4", n)
	}
	// A fifth call beyond the limit gets a second worker.
	var more []*sandbox.Result
	var mu sync.Mutex
	for range 5 {
		wg.Go(func() {
			r := call(t, f, `{"n":9,"ms":300}`)
			mu.Lock()
			more = append(more, r)
			mu.Unlock()
		})
	}
	wg.Wait()
	pids = map[float64]bool{}
	for _, r := range more {
		wantStatus(t, r, gust.StatusSuccess)
		pids[resultMap(t, r)["pid"].(float64)] = true
	}
	if len(pids) != 2 {
		t.Errorf("5 calls at a concurrency of 4 ran on %d workers, want 2", len(pids))
	}
	// An application error stays that call's.
	if r := call(t, f, `{"n":7,"ms":1,"fail":true}`); r.Status != gust.StatusApplicationError || !strings.Contains(errorText(r), "failed 7") {
		t.Errorf("rejected promise: %v %s", r.Status, r.Result)
	}
}

// TestConcurrentNodeTimeout: a call that times out ends its worker; the
// other calls on it fail cleanly, and the next call gets a new worker.
func TestConcurrentNodeTimeout(t *testing.T) {
	b := newBackend(t, Config{})
	if b.reasons[KindNode] != "" {
		sandboxtest.Unavailable(t, "%s", b.reasons[KindNode])
	}
	l := limits(0)
	l.Concurrency = 2
	// Long enough for a new worker's start-up (it counts against the
	// timeout) on a loaded 2-core host.
	l.Timeout = 2 * time.Second
	f := prepare(t, b, KindNode, nodeConcurrent, l)
	call(t, f, `{"n":0,"ms":1}`)
	var slow, quick *sandbox.Result
	var wg sync.WaitGroup
	wg.Go(func() { slow = call(t, f, `{"n":1,"ms":10000}`) })
	time.Sleep(50 * time.Millisecond)
	wg.Go(func() { quick = call(t, f, `{"n":2,"ms":100}`) })
	wg.Wait()
	wantStatus(t, quick, gust.StatusSuccess)
	if !slow.TimedOut || !strings.Contains(errorText(slow), "timeout of 2000 ms exceeded") {
		t.Errorf("slow call: timedOut %v %s", slow.TimedOut, slow.Result)
	}
	if r := call(t, f, `{"n":3,"ms":1}`); r.Status != gust.StatusSuccess {
		t.Errorf("after the timeout: %v %s", r.Status, r.Result)
	}
	// Closed, the function leaves no process behind.
	if err := f.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for left := sandboxProcesses(b.hostUID); len(left) > 0; left = sandboxProcesses(b.hostUID) {
		if time.Now().After(deadline) {
			t.Fatalf("sandbox processes left: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConcurrentNodePartialLine: output without a trailing newline puts
// the end marker on the same line; each call must still end at once, with
// that text as a line of its own log.
func TestConcurrentNodePartialLine(t *testing.T) {
	b := newBackend(t, Config{})
	if b.reasons[KindNode] != "" {
		sandboxtest.Unavailable(t, "%s", b.reasons[KindNode])
	}
	l := limits(0)
	l.Concurrency = 3
	l.Timeout = 5 * time.Second
	f := prepare(t, b, KindNode, `
async function main(p) {
  process.stdout.write("out" + p.n);
  await new Promise(r => setTimeout(r, 100));
  process.stderr.write("err" + p.n);
  return { n: p.n };
}`, l)
	results := make([]*sandbox.Result, 3)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range results {
		wg.Go(func() { results[i] = call(t, f, `{"n":`+string(rune('1'+i))+`}`) })
	}
	wg.Wait()
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("3 calls of 100 ms took %v: the markers were not seen", d)
	}
	for i, r := range results {
		n := string(rune('1' + i))
		wantStatus(t, r, gust.StatusSuccess)
		if m := resultMap(t, r); m["n"] != float64(i+1) {
			t.Errorf("call %s got the result of %v", n, m["n"])
		}
		logs := logTexts(r)
		if len(logs) != 2 || !strings.HasSuffix(logs[0], "out"+n) || !strings.HasSuffix(logs[1], "err"+n) {
			t.Errorf("call %s logs %q, want out%s and err%s", n, logs, n, n)
		}
	}
}

// TestConcurrentEndStopsReader: once a concurrent worker is ended, its
// reader has stopped, so the descriptor numbers it polled can be reused by
// anything else without the reader taking their data. The worker's result
// pipe is held open from outside, so the reader cannot learn of the end
// from an EOF.
func TestConcurrentEndStopsReader(t *testing.T) {
	b := newBackend(t, Config{StemCells: -1}) // no refill takes the freed fds
	if b.reasons[KindNode] != "" {
		sandboxtest.Unavailable(t, "%s", b.reasons[KindNode])
	}
	l := limits(0)
	l.Concurrency = 2
	f := prepare(t, b, KindNode, nodeConcurrent, l).(*function)
	call(t, f, `{"n":0,"ms":1}`)
	f.muxMu.Lock()
	m := f.muxes[0]
	f.muxMu.Unlock()
	resultFd := m.w.p.result
	link, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", resultFd))
	if err != nil {
		t.Fatal(err)
	}
	// The sandbox's end of the result pipe, opened again through /proc.
	pid := m.w.p.pid()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var writer *os.File
	for _, e := range ents {
		if l, _ := os.Readlink(dir + "/" + e.Name()); l == link {
			if writer, err = os.OpenFile(dir+"/"+e.Name(), os.O_WRONLY, 0); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if writer == nil {
		t.Fatalf("no fd of pid %d is %s", pid, link)
	}
	defer writer.Close()

	if _, err := m.end(errExited, nil); err != nil {
		t.Fatal(err)
	}
	// Take the freed number back with the read end of a new pipe, and see
	// whether the ended worker's reader drains it.
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[1])
	r, w := p[0], p[1]
	held := []int{r}
	defer func() {
		for _, fd := range held {
			unix.Close(fd)
		}
	}()
	for r != resultFd && len(held) < 100 {
		if r, err = unix.Dup(p[0]); err != nil { // the lowest free number
			t.Fatal(err)
		}
		held = append(held, r)
	}
	if r != resultFd {
		t.Skipf("fd %d was not reused", resultFd)
	}
	if _, err := unix.Write(w, []byte("not the worker's\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // longer than any poll of the reader
	buf := make([]byte, 64)
	if n, err := unix.Read(r, buf); n <= 0 {
		t.Errorf("the ended worker's reader took the data of a new pipe on its old fd %d (read: %d, %v)", resultFd, n, err)
	}
}

// nodeThrows throws synchronously (a developer error) when asked, else
// answers after p.ms, saying which worker served it.
const nodeThrows = `
const worker = Math.random();
function main(p) {
  if (p.throw) throw new Error("thrown " + p.n);
  return new Promise(r => setTimeout(() => r({ n: p.n, pid: worker }), p.ms || 1));
}`

// TestConcurrentDeveloperError: one call's developer error is that call's;
// the other calls on the worker finish, and the worker, retired, takes no
// new call.
func TestConcurrentDeveloperError(t *testing.T) {
	b := newBackend(t, Config{})
	if b.reasons[KindNode] != "" {
		sandboxtest.Unavailable(t, "%s", b.reasons[KindNode])
	}
	l := limits(0)
	l.Concurrency = 3
	f := prepare(t, b, KindNode, nodeThrows, l)
	first := resultMap(t, call(t, f, `{"n":0}`))["pid"]
	var slow *sandbox.Result
	var wg sync.WaitGroup
	wg.Go(func() { slow = call(t, f, `{"n":1,"ms":600}`) })
	time.Sleep(150 * time.Millisecond)
	thrown := call(t, f, `{"n":2,"throw":true}`)
	if thrown.Status != gust.StatusDeveloperError || !strings.Contains(errorText(thrown), "thrown 2") {
		t.Errorf("throwing call: %v %s", thrown.Status, thrown.Result)
	}
	// Started after the error: a new worker.
	after := call(t, f, `{"n":3}`)
	wg.Wait()
	wantStatus(t, slow, gust.StatusSuccess)
	if got := resultMap(t, slow)["pid"]; got != first {
		t.Errorf("the call in flight ran on %v, want the first worker %v", got, first)
	}
	wantStatus(t, after, gust.StatusSuccess)
	if got := resultMap(t, after)["pid"]; got == first {
		t.Errorf("a call after the developer error ran on the retired worker")
	}
}

// TestConcurrentAbandoned: a call whose context is cancelled fails alone,
// as abandoned; the worker keeps serving the others.
func TestConcurrentAbandoned(t *testing.T) {
	b := newBackend(t, Config{StemCells: -1}) // no cell left running after Close
	if b.reasons[KindNode] != "" {
		sandboxtest.Unavailable(t, "%s", b.reasons[KindNode])
	}
	l := limits(0)
	l.Concurrency = 3
	f := prepare(t, b, KindNode, nodeThrows, l)
	first := resultMap(t, call(t, f, `{"n":0}`))["pid"]
	var slow *sandbox.Result
	var wg sync.WaitGroup
	wg.Go(func() { slow = call(t, f, `{"n":1,"ms":600}`) })
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	res, err := f.Invoke(ctx, sandbox.Call{Params: json.RawMessage(`{"n":2,"ms":300}`), Env: sandboxtest.Env(gust.NewActivationID(time.Now()))})
	if err == nil || !strings.Contains(err.Error(), "call abandoned") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled call: %v, %+v; want a call abandoned error", err, res)
	}
	wg.Wait()
	wantStatus(t, slow, gust.StatusSuccess)
	if r := resultMap(t, call(t, f, `{"n":3}`)); r["pid"] != first {
		t.Errorf("after the abandoned call, a call ran on %v, want the same worker %v", r["pid"], first)
	}
	// Closed while an abandoned call still runs, the worker ends once the
	// function is done with it.
	ctx, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := f.Invoke(ctx, sandbox.Call{Params: json.RawMessage(`{"n":4,"ms":300}`), Env: sandboxtest.Env(gust.NewActivationID(time.Now()))}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled call: %v", err)
	}
	if err := f.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for left := sandboxProcesses(b.hostUID); len(left) > 0; left = sandboxProcesses(b.hostUID) {
		if time.Now().After(deadline) {
			t.Fatalf("sandbox processes left after Close: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConcurrentTrimRace: a call that takes an idle concurrent worker while
// Trim is deciding to end it runs on it; Trim leaves a worker that is no
// longer idle alone. The keep-alive policy is slow here, to hold Trim
// between its look at the worker and its decision.
func TestConcurrentTrimRace(t *testing.T) {
	b := newBackend(t, Config{})
	if b.reasons[KindNode] != "" {
		sandboxtest.Unavailable(t, "%s", b.reasons[KindNode])
	}
	l := limits(0)
	l.Concurrency = 2
	f := prepare(t, b, KindNode, nodeThrows, l).(*function)
	first := resultMap(t, call(t, f, `{"n":0}`))["pid"]
	deciding := make(chan struct{})
	var once sync.Once
	trimmed := make(chan int)
	go func() {
		trimmed <- f.Trim(func(int, time.Time) bool {
			once.Do(func() { close(deciding) })
			time.Sleep(200 * time.Millisecond)
			return true
		}, 0)
	}()
	<-deciding
	r := call(t, f, `{"n":1,"ms":300}`)
	wantStatus(t, r, gust.StatusSuccess)
	if got := resultMap(t, r)["pid"]; got != first {
		t.Errorf("the call ran on %v, want the idle worker %v", got, first)
	}
	if n := <-trimmed; n != 0 {
		t.Errorf("Trim ended %d workers, want 0: the worker was busy", n)
	}
}

// muxLogged reports whether a call in flight on m has logged text: the
// function's own signal that it got that far.
func muxLogged(m *muxWorker, text string) bool {
	m.mu.Lock()
	calls := make([]*muxCall, 0, len(m.calls))
	for _, c := range m.calls {
		calls = append(calls, c)
	}
	m.mu.Unlock()
	for _, c := range calls {
		for _, l := range c.logs.Lines() {
			if strings.Contains(l, text) {
				return true
			}
		}
	}
	return false
}

// waitFor polls cond until it holds, failing the test after a while.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// onlyMux returns f's one concurrent worker.
func onlyMux(t *testing.T, f *function) *muxWorker {
	t.Helper()
	f.muxMu.Lock()
	defer f.muxMu.Unlock()
	if len(f.muxes) != 1 {
		t.Fatalf("%d concurrent workers, want 1", len(f.muxes))
	}
	return f.muxes[0]
}

// TestConcurrentWriteDuringEnd: a call whose request is still being
// written (the pipe is full: the function's event loop is blocked) when
// another call's timeout ends the worker fails at once, and its writer
// never uses the worker's stdin after end has closed it (run with -race:
// the number may be reused for another sandbox's pipe at once).
func TestConcurrentWriteDuringEnd(t *testing.T) {
	b := newBackend(t, Config{})
	if b.reasons[KindNode] != "" {
		sandboxtest.Unavailable(t, "%s", b.reasons[KindNode])
	}
	l := limits(0)
	l.Concurrency = 2
	l.Timeout = 1500 * time.Millisecond
	f := prepare(t, b, KindNode, `
function main(p) {
  if (p.busy) { console.log("busy"); for (;;) {} }
  return { ok: true };
}`, l).(*function)
	call(t, f, `{}`)
	m := onlyMux(t, f)
	var busy *sandbox.Result
	var wg sync.WaitGroup
	wg.Go(func() { busy = call(t, f, `{"busy":true}`) })
	waitFor(t, "the busy call loops", func() bool { return muxLogged(m, "busy") })
	big := `{"pad":"` + strings.Repeat("x", 1<<20) + `"}`
	start := time.Now()
	blocked := call(t, f, big)
	wg.Wait()
	if !busy.TimedOut {
		t.Errorf("busy call: %v %s, want a timeout", busy.Status, busy.Result)
	}
	if blocked.Status == gust.StatusSuccess {
		t.Errorf("the call written to the blocked worker succeeded: %s", blocked.Result)
	}
	if d := time.Since(start); d >= l.Timeout {
		t.Errorf("the blocked call took %v: it waited for its own deadline, not the worker's end", d)
	}
}

// TestConcurrentRefusedID: a call whose activation id the reader could not
// match (not lowercase hex) or that is running already is refused at once,
// and the worker stays idle: Trim can still end it.
func TestConcurrentRefusedID(t *testing.T) {
	b := newBackend(t, Config{})
	if b.reasons[KindNode] != "" {
		sandboxtest.Unavailable(t, "%s", b.reasons[KindNode])
	}
	l := limits(0)
	l.Concurrency = 2
	f := prepare(t, b, KindNode, `
function main(p) {
  if (p.wait) { console.log("waiting"); return new Promise(r => setTimeout(r, 200)); }
  return { ok: true };
}`, l).(*function)
	call(t, f, `{}`)
	m := onlyMux(t, f)
	id := gust.NewActivationID(time.Now())
	upper := strings.ToUpper(string(id))
	if upper == string(id) {
		upper = strings.Repeat("A", 32)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for _, bad := range []string{upper, strings.Repeat("g", 32), "short"} {
		env := sandboxtest.Env(id)
		env["__OW_ACTIVATION_ID"] = bad
		if res, err := f.Invoke(ctx, sandbox.Call{Params: json.RawMessage(`{}`), Env: env}); err == nil || !strings.Contains(err.Error(), "not valid") {
			t.Errorf("activation id %q: %v, %+v; want it refused", bad, err, res)
		}
	}
	// The same id twice at once: the second is refused.
	var first *sandbox.Result
	var wg sync.WaitGroup
	wg.Go(func() {
		res, err := f.Invoke(t.Context(), sandbox.Call{Params: json.RawMessage(`{"wait":true}`), Env: sandboxtest.Env(id)})
		if err != nil {
			t.Errorf("first call: %v", err)
		}
		first = res
	})
	waitFor(t, "the first call runs", func() bool { return muxLogged(m, "waiting") })
	if _, err := f.Invoke(ctx, sandbox.Call{Params: json.RawMessage(`{}`), Env: sandboxtest.Env(id)}); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("a second call with the running id %s: %v; want it refused", id, err)
	}
	wg.Wait()
	if first != nil {
		wantStatus(t, first, gust.StatusSuccess)
	}
	if n := f.Trim(func(int, time.Time) bool { return true }, 0); n != 1 {
		t.Errorf("Trim ended %d workers after the refused calls, want 1: the worker never went idle", n)
	}
}
