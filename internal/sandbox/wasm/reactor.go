package wasm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
)

// The Gust reactor ABI (docs/wasm.md has the author's view).
//
// A reactor exports its memory as "memory", optionally _initialize (run
// once per instance, as WASI reactors and Go's -buildmode=c-shared expect),
// and:
//
//	gust_alloc(size i32) -> ptr i32
//	    Returns a buffer of at least size bytes for the input. The buffer
//	    must stay valid, and the guest must not use it for anything else,
//	    until the next gust_alloc call: the host writes later inputs into it
//	    while they fit, so most calls need no gust_alloc at all.
//	gust_handle(len i32) -> i64
//	    Handles the len-byte input in that buffer and returns the result as
//	    ptr<<32 | len. The result must stay valid until the next call into
//	    the module; the host copies it at once.
//
// The input is {"value": <parameters>, "env": {"__OW_ACTIVATION_ID": …, …}}:
// an instance serves many activations, so the per-activation __OW_* values
// cannot be process environment set at instantiation; the guest applies
// them (os.Setenv) per call if it wants os.Getenv to see them. The result is
// a JSON object or array, as for commands; stdout and stderr are the log.
//
// Why this shape: Go's //go:wasmexport allows one result and no multi-value,
// so the result's address and length travel packed in one i64; the host
// owns no guest memory, so the guest's own allocator (Go's GC, malloc) stays
// in charge; and a steady-state call is one host→guest transition
// (gust_handle), which matters when the guest itself takes microseconds.
const (
	exportAlloc  = "gust_alloc"
	exportHandle = "gust_handle"
	minInput     = 4 << 10 // first gust_alloc size: most inputs fit, few reallocations
)

// instance is one live reactor instance. It serves one call at a time; its
// fields are touched only by the call that holds it.
type instance struct {
	mod    api.Module
	mem    api.Memory
	alloc  api.Function
	handle api.Function

	// The guest's stdout and stderr are fixed at instantiation; these point
	// them at the log of the call in progress.
	stdout, stderr redirect
	ctx            context.Context // of the call in progress, for sleeps

	prewarmed    bool      // made by Prewarm and not used yet
	idleSince    time.Time // when it went back to the pool
	inPtr, inCap uint32    // the buffer from the last gust_alloc
	buf          []byte    // input envelope, reused across calls
	stack        [1]uint64 // CallWithStack's params and results; no per-call allocation
}

// bind points the instance at a call; bind(nil, nil) detaches it.
func (inst *instance) bind(ctx context.Context, logs *sandbox.LogBuffer) {
	inst.ctx = ctx
	if logs == nil {
		inst.stdout.w, inst.stderr.w = nil, nil
		return
	}
	inst.stdout.w, inst.stderr.w = logs.Stdout(), logs.Stderr()
}

func (inst *instance) sleep(ns int64) { sleep(inst.ctx, ns) }

func (inst *instance) close(ctx context.Context) {
	if inst.mod != nil {
		_ = inst.mod.Close(ctx)
	}
}

// closeInstance closes inst and gives its memory back to the budget.
func (f *function) closeInstance(ctx context.Context, inst *instance) {
	inst.close(ctx)
	f.budget.Release()
}

// redirect is an io.Writer whose target changes per call.
type redirect struct{ w io.Writer }

func (r *redirect) Write(p []byte) (int, error) {
	if r.w == nil {
		return len(p), nil
	}
	return r.w.Write(p)
}

// abiError is a reactor breaking the ABI, e.g. returning a pointer outside
// its memory: the guest's fault, reported to the developer.
type abiError string

func (e abiError) Error() string { return string(e) }

func (f *function) invokeReactor(ctx context.Context, call sandbox.Call) (*sandbox.Result, error) {
	if err := f.pool.acquire(ctx); err != nil {
		return nil, fmt.Errorf("wasm: waiting for an instance: %w", err)
	}
	defer f.pool.release()

	// The timeout starts once an instance slot is ours: waiting for one is
	// queueing, not the function's time. Instantiation is included.
	callCtx, cancel := context.WithTimeout(ctx, f.limits.Timeout)
	defer cancel()
	logs := sandbox.NewLogBuffer(f.limits.LogBytes)
	res := &sandbox.Result{Start: sandbox.StartWarm}

	inst := f.pool.take()
	if call.Taken != nil {
		call.Taken() // the idle instance is out of the pool, or a new one starts
	}
	var err error
	if inst != nil {
		inst.bind(callCtx, logs)
		if inst.prewarmed {
			inst.prewarmed = false
			res.Start = sandbox.StartPrewarmed
		}
	} else {
		if err := f.budget.Acquire(ctx); err != nil {
			return nil, fmt.Errorf("wasm: memory for an instance: %w", err)
		}
		start := time.Now()
		inst, err = f.newInstance(callCtx, logs)
		res.Start, res.InitTime = sandbox.StartCold, time.Since(start)
		if inst == nil {
			f.budget.Release()
			return nil, err
		}
	}
	if err == nil {
		err = f.handle(callCtx, inst, call, res)
	}
	inst.bind(nil, nil)

	keep := err == nil && (res.Status == gust.StatusSuccess || res.Status == gust.StatusApplicationError)
	if err != nil {
		err = f.failure(ctx, callCtx, err, inst.mod, logs, res)
	}
	// Never reuse an instance after a trap, an exit, a timeout or a broken
	// result: its state is suspect (and after a deadline wazero closed it).
	if !keep || !f.pool.put(inst) {
		f.closeInstance(ctx, inst)
		if !keep {
			f.b.log.Debug("wasm: reactor instance recycled", "status", res.Status, "timedOut", res.TimedOut)
		}
	}
	if err != nil {
		return nil, err
	}
	res.Logs = logs.Lines()
	return res, nil
}

// newInstance instantiates the reactor and runs _initialize. A nil instance
// means the platform failed; an instance with an error means the guest did.
func (f *function) newInstance(ctx context.Context, logs *sandbox.LogBuffer) (*instance, error) {
	inst := &instance{}
	inst.bind(ctx, logs)
	cfg := f.config.
		WithStdout(&inst.stdout).
		WithStderr(&inst.stderr).
		WithNanosleep(inst.sleep)
	mod, err := f.rt.InstantiateModule(ctx, f.compiled, cfg)
	if err != nil {
		return nil, f.platformError("instantiate", err)
	}
	inst.mod = mod
	inst.mem = mod.ExportedMemory("memory")
	inst.alloc = mod.ExportedFunction(exportAlloc)
	inst.handle = mod.ExportedFunction(exportHandle)
	if init := mod.ExportedFunction("_initialize"); init != nil {
		if _, err := init.Call(ctx); err != nil {
			return inst, err
		}
	}
	return inst, nil
}

// handle runs one call on inst and fills res from its output. An error is
// a failure of the guest (trap, exit, deadline, ABI violation).
func (f *function) handle(ctx context.Context, inst *instance, call sandbox.Call, res *sandbox.Result) error {
	inst.buf = appendEnvelope(inst.buf[:0], call.Params, call.Env)
	n := uint32(len(inst.buf))
	if n > inst.inCap {
		size := max(n, 2*inst.inCap, minInput)
		inst.stack[0] = uint64(size)
		if err := inst.alloc.CallWithStack(ctx, inst.stack[:]); err != nil {
			return err
		}
		inst.inPtr, inst.inCap = uint32(inst.stack[0]), size
		if inst.inPtr == 0 {
			// Address 0 is valid wasm memory, but never a real buffer: an
			// allocator failed (malloc returns NULL). Writing there would
			// corrupt the guest.
			inst.inCap = 0
			return abiError(fmt.Sprintf("%s(%d) returned 0", exportAlloc, size))
		}
	}
	if !inst.mem.Write(inst.inPtr, inst.buf) {
		return abiError(fmt.Sprintf("%s(%d) returned %#x, outside its memory", exportAlloc, inst.inCap, inst.inPtr))
	}
	inst.stack[0] = uint64(n)
	if err := inst.handle.CallWithStack(ctx, inst.stack[:]); err != nil {
		return err
	}
	ptr, size := uint32(inst.stack[0]>>32), uint32(inst.stack[0])
	if uint64(size) > uint64(f.limits.ResultBytes) {
		// Not even read: the size alone decides.
		res.Status, res.Result = resultOf(nil, int(size), f.limits.ResultBytes)
		return nil
	}
	out, ok := inst.mem.Read(ptr, size)
	if !ok {
		return abiError(fmt.Sprintf("%s returned %d bytes at %#x, outside its memory", exportHandle, size, ptr))
	}
	res.Status, res.Result = resultOf(out, len(out), f.limits.ResultBytes)
	// out is a view of guest memory, which the next call overwrites.
	res.Result = bytes.Clone(res.Result)
	return nil
}

// pool holds a reactor function's idle instances. slots has one token per
// busy instance; since a call creates an instance only when none is idle,
// live instances never outnumber its capacity.
type pool struct {
	slots chan struct{}

	mu     sync.Mutex
	idle   []*instance
	closed bool
}

func newPool(size int) *pool {
	return &pool{slots: make(chan struct{}, size)}
}

func (p *pool) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (p *pool) release() { <-p.slots }

// Idle implements sandbox.InstancePool.
func (f *function) Idle() int {
	if f.pool == nil {
		return 0
	}
	f.pool.mu.Lock()
	defer f.pool.mu.Unlock()
	return len(f.pool.idle)
}

// Trim implements sandbox.InstancePool.
func (f *function) Trim(expired func(pos int, idleSince time.Time) bool, max int) int {
	if f.pool == nil {
		return 0
	}
	var old []*instance
	f.pool.mu.Lock()
	idle := f.pool.idle
	kept := idle[:0]
	for i, inst := range idle { // the longest idle first
		if (max <= 0 || len(old) < max) && expired(len(idle)-i, inst.idleSince) {
			old = append(old, inst)
			continue
		}
		kept = append(kept, inst)
	}
	clear(idle[len(kept):])
	f.pool.idle = kept
	f.pool.mu.Unlock()
	for _, inst := range old {
		f.closeInstance(context.Background(), inst)
	}
	return len(old)
}

var _ sandbox.InstancePool = (*function)(nil)

// take returns the most recently used idle instance (its memory is the most
// likely to be in CPU caches), or nil. Idle instances are kept in the
// order they went idle, the longest idle first.
func (p *pool) take() *instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.idle)
	if n == 0 {
		return nil
	}
	inst := p.idle[n-1]
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	return inst
}

// put returns inst to the pool; false means the pool is closed and the
// caller must close inst.
func (p *pool) put(inst *instance) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	inst.idleSince = time.Now()
	p.idle = append(p.idle, inst)
	return true
}

// close marks the pool closed and hands back the idle instances to close.
func (p *pool) close() []*instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	return idle
}

// Prewarm makes one reactor instance ready ahead of a call the keep-alive
// policy expects, so that call skips instantiation (Start "prewarmed").
// Commands get a fresh instance per call anyway, so there is nothing to do.
func (f *function) Prewarm(ctx context.Context) error {
	if f.shape != reactor {
		return nil
	}
	if err := f.enter(); err != nil {
		return err
	}
	defer f.leave(ctx)
	if err := f.pool.acquire(ctx); err != nil {
		return err
	}
	defer f.pool.release()
	if err := f.budget.Acquire(ctx); err != nil {
		return fmt.Errorf("wasm: pre-warm: memory for an instance: %w", err)
	}
	ictx, cancel := context.WithTimeout(ctx, f.limits.Timeout)
	defer cancel()
	inst, err := f.newInstance(ictx, sandbox.NewLogBuffer(0))
	if inst == nil {
		f.budget.Release()
		return err
	}
	inst.bind(nil, nil)
	if err != nil {
		f.closeInstance(ctx, inst)
		return fmt.Errorf("wasm: pre-warm: %w", err)
	}
	inst.prewarmed = true
	if !f.pool.put(inst) {
		f.closeInstance(ctx, inst)
	}
	return nil
}
