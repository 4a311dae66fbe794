//go:build linux

package process

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
)

// function is prepared code with its limits and its pool of warm workers.
type function struct {
	b       *Backend
	rt      *runtimeKind
	code    *codeDir
	limits  sandbox.Limits
	cg      cgroupLimits
	initMsg []byte // the launcher's init line
	pool    *pool
	budget  sandbox.Budget // memory for each worker (and the zygote)
	env     []string       // init parameters as KEY=VALUE, for executables (no launcher)

	// Zygote (zygote_linux.go), for kinds that have one.
	zygoteMsg    []byte        // init line that makes the launcher a zygote
	zmu          sync.Mutex    // guards the fields below and zygote counts
	zyg          *zygote       // running zygote, or nil
	zstart       chan struct{} // closed when the zygote being started is up (or not)
	noZygote     bool          // no forks: the code starts threads as it loads, or forks failed
	forkFailures int           // calls in a row that got no forked worker

	// Concurrent workers (mux_linux.go), when the kind and limits allow.
	concurrency int
	muxMu       sync.Mutex
	muxes       []*muxWorker
	muxStart    sync.Mutex // held while a concurrent worker starts

	mu       sync.Mutex
	inflight int
	closed   bool
}

func newFunction(b *Backend, rt *runtimeKind, code *codeDir, spec sandbox.Spec) *function {
	l := spec.Limits
	if l.MemoryMB <= 0 {
		l.MemoryMB = defaultMemoryMB
	}
	if l.Timeout <= 0 {
		l.Timeout = defaultTimeout
	}
	if l.ResultBytes <= 0 {
		l.ResultBytes = defaultResultBytes
	}
	l.LogBytes = max(l.LogBytes, 0)
	main := spec.Main
	if main == "" {
		main = "main"
	}
	init := map[string]any{"main": main, "dir": appDir, "entry": code.entry, "plain": code.plain}
	if len(spec.Env) > 0 {
		init["env"] = spec.Env // the launcher sets them before loading the code
	}
	concurrency := 1
	if rt.concurrent && l.Concurrency > 1 {
		concurrency = l.Concurrency
		init["concurrency"] = concurrency
	}
	initMsg, _ := json.Marshal(map[string]any{"init": init})
	f := &function{
		b: b, rt: rt, code: code, limits: l,
		cg:      b.cgroupLimits(l.MemoryMB),
		initMsg: append(initMsg, '\n'),
		pool:    newPool(b.cfg.MaxWorkersPerFunction * concurrency),
		budget:  spec.BudgetOf(),

		concurrency: concurrency,
	}
	for _, k := range slices.Sorted(maps.Keys(spec.Env)) {
		f.env = append(f.env, k+"="+spec.Env[k])
	}
	if rt.zygote {
		init["zygote"] = true
		zmsg, _ := json.Marshal(map[string]any{"init": init})
		f.zygoteMsg = append(zmsg, '\n')
	}
	return f
}

// Invoke implements sandbox.Function: it runs the call on an idle worker,
// else on a stem cell given this function's code, else on a new sandbox.
func (f *function) Invoke(ctx context.Context, call sandbox.Call) (*sandbox.Result, error) {
	if err := f.enter(); err != nil {
		return nil, err
	}
	defer f.leave()
	if err := f.pool.acquire(ctx); err != nil {
		return nil, fmt.Errorf("process: waiting for a worker: %w", err)
	}
	defer f.pool.release()
	taken := takenOnce(call.Taken)
	if f.concurrency > 1 {
		return f.invokeConcurrent(ctx, call, taken)
	}

	// The time limit starts once a worker slot is ours (waiting for one is
	// queueing, not the function's time) and covers init and run. Creating
	// a sandbox and starting its interpreter is the platform's time, as
	// OpenWhisk does not count container creation: start restarts the
	// clock after it.
	deadline := time.Now().Add(f.limits.Timeout)
	logs := sandbox.NewLogBuffer(f.limits.LogBytes)
	res := &sandbox.Result{Start: sandbox.StartWarm}
	w := f.pool.take()
	if w != nil {
		taken()
		if w.prewarmed {
			w.prewarmed = false
			res.Start = sandbox.StartPrewarmed
		}
	}
	if w == nil {
		var err error
		if w, err = f.start(ctx, &deadline, logs, res, taken); err != nil {
			return nil, err
		}
		if w == nil { // the code failed to initialise; res says how
			res.Logs = logs.Lines()
			return res, nil
		}
	}

	req, err := appendRequest(w.req[:0], call.Params, call.Env)
	if err != nil {
		f.put(w)
		return nil, fmt.Errorf("process: %w", err)
	}
	w.req = req
	limit := f.limits.ResultBytes
	if f.rt.markers {
		limit++ // the R/E prefix
	}
	r, err := w.exchange(ctx, deadline, req, logs, limit)
	if err != nil {
		how, err := w.end(err, logs)
		if err != nil {
			return nil, err
		}
		f.failed(res, how, false)
		res.Logs = logs.Lines()
		return res, nil
	}
	o := classify(r, f.limits.ResultBytes, f.rt.markers)
	res.Status, res.Result = o.status, o.result
	res.Logs = logs.Lines()
	// A call that reached its log limit ends its worker (its result
	// stands): the limit's error is precise and final, and a function that
	// floods its log is not given the next call to flood.
	if o.keep && !logs.Truncated() {
		f.put(w)
	} else {
		w.destroy()
	}
	return res, nil
}

// Prewarm implements sandbox.Prewarmer: it readies one worker ahead of a
// call the keep-alive policy expects (for Python, forked from the
// function's zygote, which it starts first if needed). The call that takes
// it reports StartPrewarmed. What the code logs while loading is dropped,
// and code that fails to load is left for that call to report.
func (f *function) Prewarm(ctx context.Context) error {
	if f.concurrency > 1 {
		return nil // a concurrent worker is made by the first call; one serves many
	}
	if err := f.enter(); err != nil {
		return err
	}
	defer f.leave()
	if err := f.pool.acquire(ctx); err != nil {
		return fmt.Errorf("process: pre-warm: %w", err)
	}
	defer f.pool.release()
	if w := f.pool.take(); w != nil { // one is ready already
		f.put(w)
		return nil
	}
	deadline := time.Now().Add(f.limits.Timeout)
	res := &sandbox.Result{}
	w, err := f.start(ctx, &deadline, sandbox.NewLogBuffer(0), res, func() {})
	switch {
	case err != nil:
		return fmt.Errorf("process: pre-warm: %w", err)
	case w == nil:
		return fmt.Errorf("process: pre-warm: the code did not load: %s", res.Result)
	}
	w.prewarmed = true
	f.put(w)
	return nil
}

var _ sandbox.Prewarmer = (*function)(nil)

// sandboxSetupTimeout bounds the creation of a sandbox and the start of
// its interpreter, which do not count against the function's time limit.
const sandboxSetupTimeout = 30 * time.Second

// start readies a new worker for this function. When the pool grows (the
// function's kind has zygotes and other calls are in flight) or a zygote is
// running, the worker is forked from the function's zygote
// (zygote_linux.go); else it is a plain worker, a function's first one
// included. It fills res.Start and res.InitTime, and may restart the clock
// (deadline) after platform work. A nil worker with a nil error means the
// code failed to initialise, and res holds that developer error.
//
// taken (sandbox.Call.Taken, safe to call again) is called once the
// worker is the call's: before a plain one starts, when the zygote's
// spare is taken or a fork starts (fork), and in any case before start
// returns.
func (f *function) start(ctx context.Context, deadline *time.Time, logs *sandbox.LogBuffer, res *sandbox.Result, taken func()) (*worker, error) {
	if f.zygoteMsg != nil && f.wantFork() {
		if w, handled, err := f.startForked(ctx, deadline, logs, res, taken); handled || err != nil {
			taken() // the zygote's sandbox is the call's worker, or none
			return w, err
		}
	}
	taken()
	return f.startPlain(ctx, deadline, logs, res, f.initMsg, func() error { return f.budget.Acquire(ctx) })
}

// wantFork says whether a new worker should come from the zygote: there is
// one (running or starting), or the pool is growing — calls besides the
// caller hold workers. A function called one call at a time never starts a
// zygote: its first worker is a plain one, as fast to get (a stem cell) and
// without a second process to keep.
func (f *function) wantFork() bool {
	f.zmu.Lock()
	defer f.zmu.Unlock()
	if f.noZygote {
		return false
	}
	return f.zyg != nil || f.zstart != nil || len(f.pool.slots) > 1
}

// startPlain readies a worker: a stem cell if one is waiting, else a new
// sandbox; then, for launcher kinds, sends initMsg (the code's init). It
// fills res.Start and res.InitTime, and restarts the clock (deadline) after
// creating a sandbox. A nil worker with a nil error means the code failed
// to initialise, and res holds that developer error.
//
// reserve takes the worker's memory from the function's budget first
// (waiting for it is not the function's time); whatever ends the worker
// gives it back.
func (f *function) startPlain(ctx context.Context, deadline *time.Time, logs *sandbox.LogBuffer, res *sandbox.Result, initMsg []byte, reserve func() error) (*worker, error) {
	if err := reserve(); err != nil {
		return nil, fmt.Errorf("process: memory for a worker: %w", err)
	}
	w, err := f.startBudgeted(ctx, deadline, logs, res, initMsg)
	if w == nil {
		f.budget.Release()
	} else {
		w.release = f.budget.Release
	}
	return w, err
}

// startBudgeted is startPlain once the worker's memory is reserved; a
// worker it ends on the way has no release set yet.
func (f *function) startBudgeted(ctx context.Context, deadline *time.Time, logs *sandbox.LogBuffer, res *sandbox.Result, initMsg []byte) (*worker, error) {
	t0 := time.Now()
	w := f.takeCell()
	res.Start = sandbox.StartPrewarmed
	if w == nil {
		res.Start = sandbox.StartCold
		sctx, cancel := context.WithTimeout(ctx, sandboxSetupTimeout)
		defer cancel()
		var err error
		if w, err = f.b.startWorker(sctx, f.rt, f.code.dir, f.limits.MemoryMB, f.env); err != nil {
			return nil, err
		}
		if f.rt.markers {
			// The interpreter's start-up is the runtime's, not the
			// function's (OpenWhisk's runtimes are up before /init).
			if err := w.awaitReady(sctx, time.Now().Add(sandboxSetupTimeout), logs); err != nil {
				how, err2 := w.end(err, logs)
				switch {
				case err2 != nil:
					return nil, err2
				case how == failMemory: // the limit is too small for the interpreter
					f.failed(res, how, true)
					res.InitTime = time.Since(t0)
					return nil, nil
				}
				return nil, fmt.Errorf("process: %s did not start: %w", f.rt.name, err)
			}
		}
		*deadline = time.Now().Add(f.limits.Timeout)
	}
	if f.rt.markers {
		r, err := w.exchange(ctx, *deadline, initMsg, logs, 64<<10)
		if err != nil {
			how, err := w.end(err, logs)
			if err != nil {
				return nil, err
			}
			f.failed(res, how, true)
			res.InitTime = time.Since(t0)
			return nil, nil
		}
		if o := classify(r, 64<<10, true); o.status != gust.StatusSuccess {
			w.destroy()
			res.Status, res.Result = gust.StatusDeveloperError, o.result
			res.InitTime = time.Since(t0)
			return nil, nil
		}
		w.isZygote = bytes.Contains(r.line, []byte(`"zygote":true`))
	}
	if !w.isZygote && w.p.ctrl != nil {
		w.p.closeCtrl() // a plain worker: nothing to fork
	}
	res.InitTime = time.Since(t0)
	return w, nil
}

// failed fills res for a call its worker ended without answering (how,
// from classifyFailure), during the code's init or its run.
func (f *function) failed(res *sandbox.Result, how failure, init bool) {
	res.Status = gust.StatusDeveloperError
	ms := f.limits.Timeout.Milliseconds()
	switch {
	case how == failTimeout && init:
		res.TimedOut = true
		res.Result = gust.ErrorResult(fmt.Sprintf(msgInitTimeout, ms))
	case how == failTimeout:
		res.TimedOut = true
		res.Result = gust.ErrorResult(sandbox.TimeoutMessage(ms))
	case how == failMemory:
		res.Result = gust.ErrorResult(sandbox.MemoryMessage(f.limits.MemoryMB))
	case init:
		res.Result = gust.ErrorResult(msgInitExited)
	default:
		res.Result = gust.ErrorResult(msgExited)
	}
}

// takeCell gives a stem cell this function's code and limits, or returns
// nil when none is ready.
func (f *function) takeCell() *worker {
	cells := f.b.cells[f.rt.name]
	if cells == nil {
		return nil
	}
	for {
		w := cells.take()
		if w == nil {
			return nil
		}
		err := linkTree(f.code.dir, w.cellDir, f.b.codeGID())
		if err == nil {
			err = w.p.cg.setLimits(f.cg)
		}
		if err == nil {
			return w
		}
		f.b.log.Warn("process: stem cell unusable", "sandbox", w.id, "err", err)
		w.destroy()
	}
}

// Idle implements sandbox.InstancePool: the idle workers, and the
// zygote's spare, which a call takes without starting anything.
func (f *function) Idle() int {
	f.pool.mu.Lock()
	n := len(f.pool.idle)
	f.pool.mu.Unlock()
	n += f.muxIdle() // free call slots of concurrent workers
	if f.spareWorker(false) != nil {
		n++
	}
	return n
}

// Trim implements sandbox.InstancePool. The zygote's spare counts as the
// longest idle worker: it goes first when room is needed.
func (f *function) Trim(expired func(pos int, idleSince time.Time) bool, max int) int {
	f.pool.mu.Lock()
	idle := len(f.pool.idle)
	f.pool.mu.Unlock()
	n := 0
	if s := f.spareWorker(false); s != nil && expired(idle+1, s.idleSince) {
		if s := f.spareWorker(true); s != nil {
			s.destroy()
			n++
		}
	}
	if max > 0 && n >= max {
		return n
	}
	if f.concurrency > 1 {
		return n + f.trimMuxes(expired, max-n)
	}
	old := f.pool.trim(expired, max-n)
	for _, w := range old {
		w.destroy()
	}
	return n + len(old)
}

var _ sandbox.InstancePool = (*function)(nil)

// takenOnce returns fn (a sandbox.Call.Taken, perhaps nil) as a hook that
// runs it on its first call only: the paths that start a worker may reach
// it more than once (a failed fork, then a plain worker).
func takenOnce(fn func()) func() {
	if fn == nil {
		return func() {}
	}
	return sync.OnceFunc(fn)
}

// put returns a worker to the pool, or ends it if the function is closed.
func (f *function) put(w *worker) {
	w.idleSince = time.Now()
	if !f.pool.put(w) {
		w.destroy()
	}
}

// Close implements sandbox.Function. Idle workers end at once; calls in
// flight finish, and the code is removed after the last one.
func (f *function) Close(ctx context.Context) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	last := f.inflight == 0
	f.mu.Unlock()
	f.b.mu.Lock()
	if f.b.funcs != nil {
		delete(f.b.funcs, f)
	}
	f.b.mu.Unlock()
	f.closeIdle()
	if last {
		f.closeZygote()
		return f.removeCode()
	}
	return nil
}

func (f *function) closeIdle() {
	for _, w := range f.pool.close() {
		w.destroy()
	}
	f.trimMuxes(func(int, time.Time) bool { return true }, 0)
}

func (f *function) evictIdle(before time.Time) {
	for _, w := range f.pool.evict(before) {
		w.destroy()
	}
	f.trimMuxes(func(_ int, since time.Time) bool { return since.Before(before) }, 0)
	f.evictZygote(before)
}

func (f *function) removeCode() error {
	if err := os.RemoveAll(f.code.dir); err != nil {
		return fmt.Errorf("process: remove code: %w", err)
	}
	return nil
}

func (f *function) enter() error {
	if f.b.isClosed() {
		return errClosed
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errors.New("process: function closed")
	}
	f.inflight++
	return nil
}

func (f *function) leave() {
	f.mu.Lock()
	f.inflight--
	last := f.closed && f.inflight == 0
	f.mu.Unlock()
	if last {
		f.closeZygote()
		_ = f.removeCode()
	}
}

// pool holds a function's idle workers. slots has one token per busy
// worker; since a call starts a worker only when none is idle, live
// workers never outnumber its capacity.
type pool struct {
	slots chan struct{}

	mu     sync.Mutex
	idle   []*worker // most recently used last
	closed bool
}

func newPool(size int) *pool { return &pool{slots: make(chan struct{}, size)} }

func (p *pool) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (p *pool) release() { <-p.slots }

// take returns the most recently used idle worker (its memory is the most
// likely to be warm in caches), or nil. A worker that died while idle is
// ended and skipped.
func (p *pool) take() *worker {
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			return nil
		}
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if !w.dead() {
			return w
		}
		w.destroy()
	}
}

// put adds w; false means the pool is closed and the caller ends w.
func (p *pool) put(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.idle = append(p.idle, w)
	return true
}

// trim removes and returns the idle workers for which expired says so,
// the longest idle first, at most max (all when max ≤ 0); pos 1 is the most
// recently used.
func (p *pool) trim(expired func(pos int, idleSince time.Time) bool, max int) []*worker {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*worker
	idle := p.idle
	kept := idle[:0]
	for i, w := range idle {
		if (max <= 0 || len(out) < max) && expired(len(idle)-i, w.idleSince) {
			out = append(out, w)
			continue
		}
		kept = append(kept, w)
	}
	clear(idle[len(kept):])
	p.idle = kept
	return out
}

// evict removes and returns the workers idle since before.
func (p *pool) evict(before time.Time) []*worker {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*worker
	kept := p.idle[:0]
	for _, w := range p.idle {
		if w.idleSince.Before(before) {
			out = append(out, w)
		} else {
			kept = append(kept, w)
		}
	}
	clear(p.idle[len(kept):])
	p.idle = kept
	return out
}

// close marks the pool closed and hands back its idle workers to end.
func (p *pool) close() []*worker {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	return idle
}
