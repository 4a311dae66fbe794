package wasm

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
)

// function is a compiled module with its limits; commands and reactors share
// it and differ only in how a call reaches the guest.
type function struct {
	b        *Backend
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	shape    shape
	limits   sandbox.Limits
	memLimit uint64              // bytes of linear memory an instance may reach
	config   wazero.ModuleConfig // base config; With* returns copies, so it is shared safely
	pool     *pool               // reactors only
	budget   sandbox.Budget      // memory for each instance

	mu       sync.Mutex
	inflight int
	closed   bool
}

func newFunction(b *Backend, rt wazero.Runtime, compiled wazero.CompiledModule, s shape, spec sandbox.Spec, limits sandbox.Limits, fsc wazero.FSConfig) *function {
	argv0 := spec.Main
	if argv0 == "" {
		argv0 = "main"
	}
	f := &function{
		b:        b,
		rt:       rt,
		compiled: compiled,
		shape:    s,
		limits:   limits,
		memLimit: uint64(min(limits.MemoryMB*16, maxPages)) << 16,
		// No FSConfig: no files. No host environment. Clocks and randomness
		// are opt-in in wazero, and functions need real ones (wazero's
		// default random source is deterministic).
		config: wazero.NewModuleConfig().
			WithName("").         // anonymous, so that instances of one module coexist
			WithStartFunctions(). // _start/_initialize are called by us, under the call's deadline
			WithArgs(argv0).
			WithSysWalltime().
			WithSysNanotime().
			WithRandSource(rand.Reader),
	}
	if fsc != nil {
		f.config = f.config.WithFSConfig(fsc) // only the granted directories
	}
	for _, k := range slices.Sorted(maps.Keys(spec.Env)) {
		f.config = f.config.WithEnv(k, spec.Env[k])
	}
	f.budget = spec.BudgetOf()
	if s == reactor {
		f.pool = newPool(b.maxInstances)
	}
	return f
}

// Invoke implements sandbox.Function.
func (f *function) Invoke(ctx context.Context, call sandbox.Call) (*sandbox.Result, error) {
	if err := f.enter(); err != nil {
		return nil, err
	}
	defer f.leave(ctx)
	if f.shape == reactor {
		return f.invokeReactor(ctx, call)
	}
	return f.invokeCommand(ctx, call)
}

// Close implements sandbox.Function. Idle instances go at once; calls in
// flight finish, and the compiled code is released after the last one.
func (f *function) Close(ctx context.Context) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	last := f.inflight == 0
	f.mu.Unlock()
	if f.pool != nil {
		for _, inst := range f.pool.close() {
			f.closeInstance(ctx, inst)
		}
	}
	if last {
		return f.compiled.Close(ctx)
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
		return errors.New("wasm: function closed")
	}
	f.inflight++
	return nil
}

func (f *function) leave(ctx context.Context) {
	f.mu.Lock()
	f.inflight--
	last := f.closed && f.inflight == 0
	f.mu.Unlock()
	if last {
		_ = f.compiled.Close(ctx)
	}
}

// invokeCommand runs one call in a fresh instance: stdin is the parameters,
// stdout the result, stderr the log.
func (f *function) invokeCommand(ctx context.Context, call sandbox.Call) (*sandbox.Result, error) {
	if call.Taken != nil {
		call.Taken() // a command's instance is always new, and starts now
	}
	// The instance's memory, before its time starts: waiting for memory
	// is not the function's time.
	if err := f.budget.Acquire(ctx); err != nil {
		return nil, fmt.Errorf("wasm: memory for an instance: %w", err)
	}
	defer f.budget.Release()
	callCtx, cancel := context.WithTimeout(ctx, f.limits.Timeout)
	defer cancel()
	logs := sandbox.NewLogBuffer(f.limits.LogBytes)
	stdout := &capped{limit: f.limits.ResultBytes}
	params := call.Params
	if len(params) == 0 {
		params = emptyObject
	}
	cfg := f.config.
		WithStdin(bytes.NewReader(params)).
		WithStdout(stdout).
		WithStderr(logs.Stderr()).
		WithNanosleep(func(ns int64) { sleep(callCtx, ns) })
	for k, v := range call.Env {
		cfg = cfg.WithEnv(k, v)
	}

	start := time.Now()
	mod, err := f.rt.InstantiateModule(callCtx, f.compiled, cfg)
	if err != nil {
		return nil, f.platformError("instantiate", err)
	}
	defer mod.Close(ctx)
	res := &sandbox.Result{Start: sandbox.StartCold, InitTime: time.Since(start)}

	_, err = mod.ExportedFunction("_start").Call(callCtx)
	var exit *sys.ExitError
	exited := errors.As(err, &exit)
	switch {
	case err == nil, exited && exit.ExitCode() == 0: // Go and C guests exit(0) rather than return
		res.Status, res.Result = resultOf(stdout.buf, stdout.n, f.limits.ResultBytes)
	case exited && !reservedExitCode(exit.ExitCode()) && stdout.n <= f.limits.ResultBytes && isErrorObject(stdout.buf):
		// The function reported its failure the idiomatic way for a
		// program: an error object, then a failing exit status.
		res.Status, res.Result = gust.StatusApplicationError, trimSpace(stdout.buf)
	default:
		if err := f.failure(ctx, callCtx, err, mod, logs, res); err != nil {
			return nil, err
		}
	}
	res.Logs = logs.Lines()
	return res, nil
}

// failure fills res for a call that ended with err (an exit, a trap, a
// deadline, an ABI violation) or returns a platform error when the call was
// ended from outside: the caller went away or the backend closed.
func (f *function) failure(ctx, callCtx context.Context, err error, mod api.Module, logs *sandbox.LogBuffer, res *sandbox.Result) error {
	var exit *sys.ExitError
	isExit := errors.As(err, &exit)
	if isExit && reservedExitCode(exit.ExitCode()) {
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("wasm: call abandoned: %w", context.Cause(ctx))
		case callCtx.Err() != nil:
			res.Status, res.TimedOut = gust.StatusDeveloperError, true
			res.Result = gust.ErrorResult(sandbox.TimeoutMessage(f.limits.Timeout.Milliseconds()))
			return nil
		case exit.ExitCode() == exitCodeBackendClosed:
			return errClosed
		}
	}
	res.Status = gust.StatusDeveloperError
	var abi abiError
	switch {
	case f.exhausted(mod):
		// Guests rarely say why they died when memory.grow fails (Go
		// exits 2, C traps in abort), but an instance that ended with its
		// memory at the limit ran out of it.
		res.Result = gust.ErrorResult(sandbox.MemoryMessage(f.limits.MemoryMB))
	case isExit:
		res.Result = gust.ErrorResult(fmt.Sprintf(msgExit, exit.ExitCode()))
	case errors.As(err, &abi):
		res.Result = gust.ErrorResult(fmt.Sprintf(msgABI, string(abi)))
	default:
		// A trap. The first line says what; the wasm stack trace after it
		// goes to the logs, where the developer can read it.
		_, _ = logs.Stderr().Write([]byte(err.Error() + "\n"))
		res.Result = gust.ErrorResult(fmt.Sprintf(msgTrap, firstLine(err.Error())))
	}
	return nil
}

// exhausted reports whether mod's memory grew to within 1/8 of the limit.
// Allocators ask for sizeable blocks (Go heap arenas, malloc chunks), so the
// failing request leaves a gap below the limit; 1/8 covers it without
// mistaking ordinary use for exhaustion.
func (f *function) exhausted(mod api.Module) bool {
	if mod == nil {
		return false
	}
	mem := mod.ExportedMemory("memory") // unlike Memory(), a true nil when absent
	return mem != nil && uint64(mem.Size()) >= f.memLimit-f.memLimit/8
}

func (f *function) platformError(op string, err error) error {
	if f.b.isClosed() {
		return errClosed
	}
	return fmt.Errorf("wasm: %s: %w", op, err)
}

// reservedExitCode reports exit codes set by the host, not by the guest.
func reservedExitCode(code uint32) bool {
	return code == sys.ExitCodeDeadlineExceeded || code == sys.ExitCodeContextCanceled || code == exitCodeBackendClosed
}

// sleep implements WASI sleeps (poll_oneoff on a clock) for a call: real
// time, so a sleeping guest costs no CPU (Go guests spin otherwise), but
// ended with the call, so a long sleep cannot outlive the deadline.
func sleep(ctx context.Context, ns int64) {
	if ctx == nil || ns <= 0 {
		return
	}
	t := time.NewTimer(time.Duration(ns))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		// Returning would let the guest run on as if it had slept, and
		// perhaps finish before wazero notices the deadline. Exiting the
		// way proc_exit does ends it here, with the code wazero itself
		// uses for a done context.
		code := uint32(sys.ExitCodeDeadlineExceeded)
		if errors.Is(ctx.Err(), context.Canceled) {
			code = sys.ExitCodeContextCanceled
		}
		panic(sys.NewExitError(code))
	}
}

// capped keeps the first limit bytes written and counts the rest, so an
// oversized result can be reported with its size without being stored.
type capped struct {
	buf   []byte
	limit int
	n     int
}

func (c *capped) Write(p []byte) (int, error) {
	c.n += len(p)
	if room := c.limit - len(c.buf); room > 0 {
		c.buf = append(c.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
