//go:build linux

package process

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
	"github.com/gust-faas/gust/internal/sandbox/sandboxtest"
)

// pyZygoteProbe reports which process served a call and which loaded the
// code; given "hold", it waits until that many calls are running at once
// (a barrier in /tmp, which the workers of one zygote share), so that the
// calls need that many workers.
const pyZygoteProbe = `
import os, sys, time
print("loading the module")
LOADER = os.getpid()
calls = 0
def main(args):
    global calls
    calls += 1
    hold = args.get("hold", 0)
    if hold:
        open("/tmp/arrived-%d" % os.getpid(), "w").close()
        deadline = time.time() + 20
        while len([n for n in os.listdir("/tmp") if n.startswith("arrived-")]) < hold and time.time() < deadline:
            time.sleep(0.005)
    if args.get("sleep"):
        time.sleep(args["sleep"])
    if args.get("alloc"):
        global keep
        keep = bytearray(args["alloc"] << 20)
        for i in range(0, len(keep), 4096):
            keep[i] = 1
    return {"pid": os.getpid(), "loader": LOADER, "calls": calls}
`

type probeResult struct {
	Pid, Loader, Calls int
}

func probe(t testing.TB, res *sandbox.Result) probeResult {
	t.Helper()
	var r probeResult
	if err := json.Unmarshal(res.Result, &r); err != nil {
		t.Fatalf("result %s: %v", res.Result, err)
	}
	return r
}

func invokeAsync(f sandbox.Function, params string) (*sandbox.Result, error) {
	return f.Invoke(context.Background(), sandbox.Call{Params: json.RawMessage(params), Env: sandboxtest.Env(gust.NewActivationID(time.Now()))})
}

// zygotes returns the backend's live zygotes and the workers forked from
// them that were given to calls (spares waiting for one are not).
func zygotes(b *Backend) (zygotes, forked []*worker) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for w := range b.workers {
		switch {
		case w.isZygote:
			zygotes = append(zygotes, w)
		case w.parent != nil:
			forked = append(forked, w)
		}
	}
	return zygotes, forked
}

// spare waits until the function's zygote has its spare worker, and
// returns it; with drop, it takes it away (and ends it) first.
func spare(t testing.TB, f *function, drop bool) *worker {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.zmu.Lock()
		z := f.zyg
		var w *worker
		if z != nil && !z.refilling {
			w = z.spare
			if drop {
				z.spare = nil
			}
		}
		f.zmu.Unlock()
		switch {
		case w != nil && drop:
			w.destroy()
			return nil
		case w != nil:
			return w
		case time.Now().After(deadline):
			t.Fatal("the zygote has no spare worker")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// withZygote makes f grow its pool (two calls at once, each lasting a while
// per params), which starts its zygote, then ends its idle workers: the
// next call gets a worker forked from the zygote.
func withZygote(t testing.TB, f sandbox.Function, params string) {
	t.Helper()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			res, err := invokeAsync(f, params)
			if err != nil || res.Status != gust.StatusSuccess {
				t.Errorf("growing the pool: %v %+v", err, res)
			}
		})
	}
	wg.Wait()
	fn := f.(*function)
	fn.zmu.Lock()
	ok := fn.zyg != nil
	fn.zmu.Unlock()
	if !ok {
		t.Fatal("no zygote after two calls at once")
	}
	for _, w := range fn.pool.evict(time.Now().Add(time.Hour)) {
		w.destroy()
	}
}

// TestZygoteWorkers: concurrent calls get workers forked from one zygote,
// which loaded the code once; each worker is a process of its own, in its
// own cgroups, and starts from the loaded state (no call ran before).
func TestZygoteWorkers(t *testing.T) {
	b := newBackend(t, Config{})
	f := prepare(t, b, KindPython, pyZygoteProbe, limits(0))
	// One call at a time: a plain worker, no zygote.
	first := call(t, f, `{}`)
	wantStatus(t, first, gust.StatusSuccess)
	if first.Start != sandbox.StartCold || probe(t, first).Pid != 1 || !strings.Contains(strings.Join(first.Logs, "\n"), "loading the module") {
		t.Errorf("first call: start %s, %s, logs %q; want a plain cold worker loading the module", first.Start, first.Result, first.Logs)
	}
	if zs, _ := zygotes(b); len(zs) != 0 {
		t.Fatalf("%d zygotes for one call at a time", len(zs))
	}

	// Four at once: the warm worker takes one; the pool grows by three,
	// forked from a zygote started for the occasion.
	const n = 4
	var wg sync.WaitGroup
	results := make([]*sandbox.Result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { results[i], errs[i] = invokeAsync(f, `{"sleep":0.3}`) })
	}
	wg.Wait()
	pids := map[int]bool{}
	forked := 0
	for i, res := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		wantStatus(t, res, gust.StatusSuccess)
		r := probe(t, res)
		pids[r.Pid] = true
		if res.Start == sandbox.StartWarm {
			continue
		}
		forked++
		if r.Loader != 1 || r.Pid == 1 || r.Calls != 1 || res.InitTime <= 0 {
			t.Errorf("call %d: pid %d, code loaded by %d, %d calls, init %v; want a new worker forked from the zygote (pid 1)", i, r.Pid, r.Loader, r.Calls, res.InitTime)
		}
		if res.Start == sandbox.StartPrewarmed && strings.Contains(strings.Join(res.Logs, "\n"), "loading the module") {
			t.Errorf("call %d: a forked worker loaded the module again: %q", i, res.Logs)
		}
	}
	if len(pids) != n || forked != n-1 {
		t.Errorf("%d distinct workers, %d new, for %d calls at once beside one warm worker", len(pids), forked, n)
	}
	zs, fw := zygotes(b)
	if len(zs) != 1 || len(fw) != n-1 {
		t.Fatalf("%d zygotes and %d forked workers, want 1 and %d", len(zs), len(fw), n-1)
	}
	for _, w := range append(zs, fw...) {
		checkCgroups(t, b, w)
	}
	// With the zygote up, a new worker is forked even for a lone call.
	for _, w := range f.(*function).pool.evict(time.Now().Add(time.Hour)) {
		w.destroy()
	}
	res := call(t, f, `{}`)
	if r := probe(t, res); res.Start != sandbox.StartPrewarmed || r.Pid == 1 {
		t.Errorf("lone call with a zygote up: start %s pid %d, want a forked worker", res.Start, r.Pid)
	}
}

// TestZygoteMemoryPerWorker: each forked worker has the function's memory
// limit to itself: two workers may each use most of it, and one that
// exceeds it is killed alone.
func TestZygoteMemoryPerWorker(t *testing.T) {
	b := newBackend(t, Config{})
	l := limits(0)
	l.MemoryMB = 96
	f := prepare(t, b, KindPython, pyZygoteProbe, l)
	withZygote(t, f, `{"sleep":0.2}`)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			res, err := invokeAsync(f, `{"hold":2,"alloc":60}`)
			if err != nil {
				t.Error(err)
				return
			}
			if res.Status != gust.StatusSuccess {
				t.Errorf("60 MB in a 96 MB worker beside another: %v %s", res.Status, res.Result)
			}
		})
	}
	wg.Wait()
	res := call(t, f, `{"alloc":200}`)
	wantStatus(t, res, gust.StatusDeveloperError)
	if want := sandbox.MemoryMessage(96); errorText(res) != want {
		t.Errorf("error %q, want %q", errorText(res), want)
	}
	zs, _ := zygotes(b)
	if len(zs) != 1 || zs[0].dead() {
		t.Fatalf("the zygote did not survive its worker's OOM kill: %d zygotes", len(zs))
	}
	wantStatus(t, call(t, f, `{}`), gust.StatusSuccess)
}

// TestZygoteThreads: code that starts a thread as it loads is not forked;
// its workers are plain sandboxes and it works as without zygotes.
func TestZygoteThreads(t *testing.T) {
	b := newBackend(t, Config{})
	code := "import threading, time\nthreading.Thread(target=time.sleep, args=(3600,), daemon=True).start()\n" + pyZygoteProbe
	f := prepare(t, b, KindPython, code, limits(0))
	var wg sync.WaitGroup
	results := make([]*sandbox.Result, 2)
	for i := range results {
		wg.Go(func() {
			// Plain sandboxes share no /tmp for a barrier: overlap by sleeping.
			res, err := invokeAsync(f, `{"sleep":0.5}`)
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		})
	}
	wg.Wait()
	for _, res := range results {
		if res == nil {
			t.FailNow()
		}
		wantStatus(t, res, gust.StatusSuccess)
		if r := probe(t, res); r.Pid != 1 {
			t.Errorf("pid %d: want a plain sandbox (pid 1)", r.Pid)
		}
	}
	if zs, _ := zygotes(b); len(zs) != 0 {
		t.Errorf("%d zygotes for code with threads", len(zs))
	}
	if res := call(t, f, `{}`); res.Start != sandbox.StartWarm {
		t.Errorf("start %s, want warm", res.Start)
	}
}

// TestZygoteDies: when the zygote dies, its workers die with it (their pid
// namespace ends) and the next call starts a new zygote.
func TestZygoteDies(t *testing.T) {
	b := newBackend(t, Config{})
	f := prepare(t, b, KindPython, pyZygoteProbe, limits(0))
	withZygote(t, f, `{"sleep":0.2}`)
	wantStatus(t, call(t, f, `{}`), gust.StatusSuccess)
	zs, forked := zygotes(b)
	if len(zs) != 1 || len(forked) != 1 {
		t.Fatalf("%d zygotes, %d workers", len(zs), len(forked))
	}
	if err := syscall.Kill(zs[0].p.pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-zs[0].p.exited
	deadline := time.Now().Add(5 * time.Second)
	for !forked[0].dead() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	res := call(t, f, `{}`)
	wantStatus(t, res, gust.StatusSuccess)
	if res.Start == sandbox.StartWarm || probe(t, res).Calls != 1 {
		t.Errorf("after the zygote died: start %s, %s; want a new worker", res.Start, res.Result)
	}
	if zs, _ := zygotes(b); len(zs) != 1 || zs[0].dead() {
		t.Errorf("want one live zygote after the restart, got %d", len(zs))
	}
}

// TestZygoteIdle: idle workers end after IdleTimeout, and the zygote once
// it has no workers left.
func TestZygoteIdle(t *testing.T) {
	b := newBackend(t, Config{IdleTimeout: 200 * time.Millisecond})
	f := prepare(t, b, KindPython, pyZygoteProbe, limits(0))
	withZygote(t, f, `{"sleep":0.1}`)
	wantStatus(t, call(t, f, `{}`), gust.StatusSuccess)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		n := len(b.workers)
		b.mu.Unlock()
		if n == 0 {
			wantStatus(t, call(t, f, `{}`), gust.StatusSuccess) // and it starts again
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	zs, forked := zygotes(b)
	t.Fatalf("still %d zygotes and %d workers after idling", len(zs), len(forked))
}

// TestZygoteCloseWhileBusy: closing the function lets a call running on a
// forked worker finish; the zygote ends after it.
func TestZygoteCloseWhileBusy(t *testing.T) {
	b := newBackend(t, Config{})
	f, err := b.Prepare(t.Context(), sandbox.Spec{Kind: KindPython, Code: []byte(pyCounter), Limits: limits(0)})
	if err != nil {
		t.Fatal(err)
	}
	withZygote(t, f, `{"sleep":0.2}`)
	done := make(chan *sandbox.Result, 1)
	go func() {
		res, err := invokeAsync(f, `{"sleep":0.3}`)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	time.Sleep(100 * time.Millisecond)
	if err := f.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res == nil || res.Status != gust.StatusSuccess || res.Start != sandbox.StartPrewarmed {
		t.Fatalf("call in flight at Close, on a forked worker: %+v", res)
	}
	b.mu.Lock()
	n := len(b.workers)
	b.mu.Unlock()
	if n != 0 {
		t.Errorf("%d workers left after the function closed and its last call ended", n)
	}
}

// TestZygoteForkFails: when the zygote cannot fork, the call still runs, on
// a plain worker; the zygote is retired (it ends, having no workers), and
// after maxForkFailures such calls in a row the function stops using one.
func TestZygoteForkFails(t *testing.T) {
	b := newBackend(t, Config{})
	f := prepare(t, b, KindPython, pyZygoteProbe, limits(0)).(*function)
	for failures := 1; failures <= 2; failures++ {
		withZygote(t, f, `{"sleep":0.2}`)
		if failures == 2 {
			// A successful fork resets the count: pretend the calls
			// before this one all failed.
			f.zmu.Lock()
			f.forkFailures = maxForkFailures - 1
			f.zmu.Unlock()
		}
		zs, _ := zygotes(b)
		if len(zs) != 1 {
			t.Fatalf("%d zygotes", len(zs))
		}
		spare(t, f, true) // so that the next call asks for a fork
		fakeZygote(t, zs[0])
		res := call(t, f, `{}`)
		wantStatus(t, res, gust.StatusSuccess)
		if r := probe(t, res); r.Pid != 1 || res.Start != sandbox.StartCold {
			t.Errorf("failure %d: pid %d start %s, want a plain cold worker", failures, r.Pid, res.Start)
		}
		if zs, _ := zygotes(b); len(zs) != 0 {
			t.Errorf("failure %d: the failed zygote was not ended", failures)
		}
		for _, w := range f.pool.evict(time.Now().Add(time.Hour)) {
			w.destroy()
		}
	}
	f.zmu.Lock()
	off := f.noZygote
	f.zmu.Unlock()
	if !off {
		t.Fatalf("after %d failed forks in a row the function still uses a zygote", maxForkFailures)
	}
	res := call(t, f, `{}`)
	wantStatus(t, res, gust.StatusSuccess)
	if r := probe(t, res); r.Pid != 1 {
		t.Errorf("pid %d, want a plain worker", r.Pid)
	}
}

// fakeZygote replaces z's control socket with one whose other end refuses
// every fork request, as a zygote that cannot fork does.
func fakeZygote(t *testing.T, z *worker) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		t.Fatal(err)
	}
	real := z.p.ctrl
	t.Cleanup(func() { real.Close() })
	z.p.ctrl = os.NewFile(uintptr(fds[0]), "fake-ctrl")
	go func() {
		defer syscall.Close(fds[1])
		buf, oob := make([]byte, 16), make([]byte, syscall.CmsgSpace(8*4))
		for {
			n, oobn, _, _, err := syscall.Recvmsg(fds[1], buf, oob, 0)
			if err != nil || n == 0 {
				return
			}
			msgs, _ := syscall.ParseSocketControlMessage(oob[:oobn])
			for _, m := range msgs {
				rights, _ := syscall.ParseUnixRights(&m)
				for i, fd := range rights {
					if i == 0 {
						syscall.Write(fd, []byte("Efork: Resource temporarily unavailable"))
					}
					syscall.Close(fd)
				}
			}
		}
	}()
}

// TestPrewarm: Prewarm readies a worker (for Python, the zygote and a
// worker forked from it) so that the next call reports StartPrewarmed and
// finds everything up.
func TestPrewarm(t *testing.T) {
	b := newBackend(t, Config{})
	for _, tc := range []struct {
		kind string
		code []byte
	}{
		{KindPython, []byte(pyZygoteProbe)},
		{KindNode, nodeFixtures.Hello},
		{KindNative, buildNative(t, "hello")},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			f := prepare(t, b, tc.kind, string(tc.code), limits(0))
			if err := f.(sandbox.Prewarmer).Prewarm(t.Context()); err != nil {
				t.Fatal(err)
			}
			res := call(t, f, `{}`)
			wantStatus(t, res, gust.StatusSuccess)
			if res.Start != sandbox.StartPrewarmed {
				t.Errorf("start %s after Prewarm, want prewarmed", res.Start)
			}
			if res := call(t, f, `{}`); res.Start != sandbox.StartWarm {
				t.Errorf("second call: start %s, want warm", res.Start)
			}
			if tc.kind != KindPython {
				return
			}
			// With a zygote up, the pre-warmed worker is forked from it.
			withZygote(t, f, `{"sleep":0.2}`)
			if err := f.(sandbox.Prewarmer).Prewarm(t.Context()); err != nil {
				t.Fatal(err)
			}
			res = call(t, f, `{}`)
			if r := probe(t, res); res.Start != sandbox.StartPrewarmed || r.Pid == 1 {
				t.Errorf("start %s pid %d after Prewarm with a zygote, want a pre-warmed forked worker", res.Start, r.Pid)
			}
		})
	}
}

// TestZygoteSignals: a worker cannot end its zygote with SIGINT (Python's
// default handler would raise in it); its siblings keep working.
func TestZygoteSignals(t *testing.T) {
	b := newBackend(t, Config{})
	f := prepare(t, b, KindPython, "import os, signal, time\ndef main(a):\n    time.sleep(a.get('sleep', 0))\n    if a.get('kill'):\n        os.kill(1, signal.SIGINT)\n        os.kill(1, signal.SIGTERM)\n        os.kill(1, signal.SIGHUP)\n    return {'pid': os.getpid()}\n", limits(0))
	withZygote(t, f, `{"sleep":0.2}`)
	res := call(t, f, `{"kill":true}`)
	wantStatus(t, res, gust.StatusSuccess)
	if res.Start != sandbox.StartPrewarmed {
		t.Fatalf("start %s: the test needs a forked worker", res.Start)
	}
	time.Sleep(50 * time.Millisecond)
	zs, _ := zygotes(b)
	if len(zs) != 1 || zs[0].dead() {
		t.Fatal("a worker's signals ended its zygote")
	}
	f.(*function).closeIdle()
}

// TestZygoteSpare: a zygote keeps one worker forked ahead, in its own
// cgroup, waiting; the next new worker is that one, and another is forked
// to replace it. None of the function's code runs in a spare.
func TestZygoteSpare(t *testing.T) {
	b := newBackend(t, Config{})
	f := prepare(t, b, KindPython, pyZygoteProbe, limits(0)).(*function)
	withZygote(t, f, `{"sleep":0.2}`)
	s := spare(t, f, false)
	checkCgroups(t, b, s)
	res := call(t, f, `{}`)
	wantStatus(t, res, gust.StatusSuccess)
	if r := probe(t, res); res.Start != sandbox.StartPrewarmed || r.Calls != 1 || r.Pid == 1 {
		t.Fatalf("start %s %s, want the spare: a fresh forked worker", res.Start, res.Result)
	}
	_, forked := zygotes(b)
	if len(forked) != 1 || forked[0] != s {
		t.Errorf("the call did not get the spare")
	}
	if next := spare(t, f, false); next == s {
		t.Error("the spare was not replaced")
	}
	// Closing the function ends the zygote and its spare (newBackend checks
	// that no process or cgroup is left).
	if err := f.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	n := len(b.workers)
	b.mu.Unlock()
	if n != 0 {
		t.Errorf("%d workers left after Close", n)
	}
}

// TestReadHelloFds: a hello (or a fork error) that comes with descriptors
// is refused, and every descriptor received is closed: none leaks into
// the invoker. A plain hello gives the sender's pid.
func TestReadHelloFds(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		fds  int
		want string // error text; "" for success
	}{
		{"H", 0, ""},
		{"H", 1, "descriptors"},
		{"H", 3, "descriptors"},
		{"H", 12, "descriptors"}, // more than the control buffer holds
		{"Eno fork", 2, "could not fork"},
		{"?", 1, "said"},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.msg, tc.fds), func(t *testing.T) {
			sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(sp[1])
			if err := unix.SetNonblock(sp[0], true); err != nil {
				t.Fatal(err)
			}
			if err := unix.SetsockoptInt(sp[0], unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
				t.Fatal(err)
			}
			status := os.NewFile(uintptr(sp[0]), "status")
			defer status.Close()
			// Each descriptor sent is the write end of a pipe whose read
			// end sees EOF only once every copy of it is closed.
			var readers, writers []int
			for range tc.fds {
				var p [2]int
				if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
					t.Fatal(err)
				}
				readers, writers = append(readers, p[0]), append(writers, p[1])
			}
			defer func() {
				for _, fd := range readers {
					unix.Close(fd)
				}
			}()
			var oob []byte
			if len(writers) > 0 {
				oob = unix.UnixRights(writers...)
			}
			if err := unix.Sendmsg(sp[1], []byte(tc.msg), oob, nil, 0); err != nil {
				t.Fatal(err)
			}
			for _, fd := range writers {
				unix.Close(fd)
			}
			pid, err := readHello(status, time.Now().Add(time.Second), os.Getuid())
			switch {
			case tc.want == "" && (err != nil || pid != os.Getpid()):
				t.Errorf("readHello = %d, %v; want %d", pid, err, os.Getpid())
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("readHello = %d, %v; want an error about %q", pid, err, tc.want)
			}
			for i, fd := range readers {
				if n, err := unix.Read(fd, make([]byte, 1)); n != 0 || err != nil {
					t.Errorf("descriptor %d received is still open (read: %d, %v)", i, n, err)
				}
			}
		})
	}
}
