// Package wasm runs WebAssembly functions (WASI preview 1) in-process with
// wazero. It is the "wasm" sandbox backend; docs/wasm.md is the contract
// that function authors see.
//
// Two module shapes are supported:
//
//   - A command exports _start. Each call gets a fresh instance: parameters
//     are a JSON object on stdin, the result is a JSON object on stdout and
//     stderr is the log. Fresh instances cost tens of microseconds for C or
//     Rust, so there is nothing to pool and no state leaks between calls.
//   - A reactor exports gust_alloc and gust_handle (the Gust reactor ABI,
//     see reactor.go). Its instance is initialised once and reused, one call
//     at a time, which saves the 4–7 ms of runtime start-up of Go guests.
//
// A module is compiled when it is prepared (action create time); the
// compilation cache, on disk when Config.CacheDir is set, makes the next
// compile of the same bytes cheap, including after a restart.
package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
)

// Kind is the exec kind this backend runs.
const Kind = "wasm"

// Defaults applied to zero fields of Config and sandbox.Limits. A zero memory
// limit must not mean "unlimited": wazero's own default is 4 GiB per instance.
const (
	DefaultMaxInstances = 8
	defaultMemoryMB     = 256
	defaultTimeout      = time.Minute
	defaultResultBytes  = 1 << 20
	maxPages            = 65536 // 4 GiB, the wasm32 address space
)

// Config configures a Backend.
type Config struct {
	// CacheDir keeps compiled native code on disk, so compiling a module that
	// was seen before (even by an earlier process) is a file read. Empty keeps
	// the cache in memory only.
	CacheDir string
	// Logger receives debug events (compiles, instance recycling). Nil discards.
	Logger *slog.Logger
	// MaxInstancesPerFunction caps the live reactor instances of one
	// function, which is also its number of concurrent calls; further calls
	// wait for a free instance. Zero means DefaultMaxInstances.
	MaxInstancesPerFunction int
	// Dirs are the host directories the operator lets namespaces' actions
	// have (gust up --wasm-dir); nothing else of the host is visible.
	Dirs []DirGrant
}

// DirGrant lets the actions of Namespace that ask for Name (annotation
// gust-dirs) see the host directory Path at /Name, read-only unless
// Writable.
type DirGrant struct {
	Namespace, Name, Path string
	Writable              bool
}

// ParseDirGrant reads "NAMESPACE/NAME=PATH", with ":rw" at the end for a
// writable directory (read-only by default).
func ParseDirGrant(s string) (DirGrant, error) {
	bad := fmt.Errorf("wasm directory %q: want NAMESPACE/NAME=/host/path[:rw]", s)
	left, path, ok := strings.Cut(s, "=")
	if !ok {
		return DirGrant{}, bad
	}
	ns, name, ok := strings.Cut(left, "/")
	if !ok || gust.ValidateName("namespace", ns) != nil || !validDirName(name) {
		return DirGrant{}, bad
	}
	g := DirGrant{Namespace: ns, Name: name, Path: path}
	if p, ok := strings.CutSuffix(path, ":rw"); ok {
		g.Path, g.Writable = p, true
	} else {
		g.Path = strings.TrimSuffix(path, ":ro")
	}
	if !filepath.IsAbs(g.Path) {
		return DirGrant{}, bad
	}
	st, err := os.Stat(g.Path)
	if err != nil || !st.IsDir() {
		return DirGrant{}, fmt.Errorf("wasm directory %q: %s is not a directory", s, g.Path)
	}
	return g, nil
}

// validDirName: a directory name is a plain path element.
func validDirName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > 64 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Backend is the wasm sandbox backend. It is safe for concurrent use.
type Backend struct {
	log          *slog.Logger
	dirs         []DirGrant
	cache        wazero.CompilationCache
	cacheDir     string
	maxInstances int

	closed   atomic.Bool // read on every call, hence not under mu
	mu       sync.Mutex
	runtimes map[uint32]wazero.Runtime // by memory limit in pages; nil once closed
}

var _ sandbox.Backend = (*Backend)(nil)

// New returns a Backend. It fails only when CacheDir cannot be created.
func New(cfg Config) (*Backend, error) {
	b := &Backend{
		log:          cfg.Logger,
		cacheDir:     cfg.CacheDir,
		maxInstances: cfg.MaxInstancesPerFunction,
		dirs:         cfg.Dirs,
		runtimes:     make(map[uint32]wazero.Runtime),
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.maxInstances <= 0 {
		b.maxInstances = DefaultMaxInstances
	}
	if cfg.CacheDir == "" {
		b.cache = wazero.NewCompilationCache()
	} else {
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasm: compilation cache in %s: %w", cfg.CacheDir, err)
		}
		b.cache = c
	}
	return b, nil
}

// Kinds implements sandbox.Backend.
func (b *Backend) Kinds() []string { return []string{Kind} }

// Prepare compiles spec.Code and checks that it is a command or a reactor
// Gust can run. Bad code yields a gust.KindInvalid error.
func (b *Backend) Prepare(ctx context.Context, spec sandbox.Spec) (sandbox.Function, error) {
	if spec.Kind != Kind {
		return nil, fmt.Errorf("wasm: cannot prepare kind %q", spec.Kind)
	}
	limits := normalize(spec.Limits)
	fsc, err := b.grants(spec)
	if err != nil {
		return nil, err
	}
	pages := uint32(min(limits.MemoryMB*16, maxPages))
	rt, err := b.runtime(ctx, pages)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	compiled, err := rt.CompileModule(ctx, spec.Code)
	if err != nil && b.cacheDir != "" && ctx.Err() == nil {
		// wazero fails a compile whose disk-cache write failed (disk full,
		// directory gone) but keeps the code in memory, so compiling again
		// is a memory hit. The cache is an optimisation: run without it.
		// (The failed compile holds a reference wazero never drops; the
		// code stays in memory until Close. Acceptable in this degraded case.)
		if c, retryErr := rt.CompileModule(ctx, spec.Code); retryErr == nil {
			b.log.Warn("wasm: compilation cache failed; running from memory", "dir", b.cacheDir, "err", err)
			compiled, err = c, nil
		}
	}
	if err != nil {
		return nil, b.compileError(ctx, pages, spec.Code, err)
	}
	shape, err := inspect(compiled)
	if err != nil {
		_ = compiled.Close(ctx)
		return nil, err
	}
	b.log.Debug("wasm: compiled module", "digest", spec.Digest, "shape", shape, "bytes", len(spec.Code), "took", time.Since(start))
	return newFunction(b, rt, compiled, shape, spec, limits, fsc), nil
}

// grants returns the file system of spec's instances: the directories it
// asks for, as its namespace is granted them; nil for none (no files).
func (b *Backend) grants(spec sandbox.Spec) (wazero.FSConfig, error) {
	if len(spec.Dirs) == 0 {
		return nil, nil
	}
	fsc := wazero.NewFSConfig()
	for _, name := range spec.Dirs {
		i := slices.IndexFunc(b.dirs, func(g DirGrant) bool { return g.Namespace == spec.Owner && g.Name == name })
		if i < 0 {
			return nil, gust.Errorf(gust.KindInvalid, "The directory '%s' is not granted to namespace '%s' on this node.", name, spec.Owner)
		}
		if g := b.dirs[i]; g.Writable {
			fsc = fsc.WithDirMount(g.Path, "/"+name)
		} else {
			fsc = fsc.WithReadOnlyDirMount(g.Path, "/"+name)
		}
	}
	return fsc, nil
}

// compileError classifies a failed compile. wazero reports a malformed module
// and a failing disk cache (e.g. an unreadable entry) alike, so when a cache
// is involved the module is validated again without one: blaming the user's
// code for a broken disk would be wrong. The check costs a compile, but only
// on this failure path.
func (b *Backend) compileError(ctx context.Context, pages uint32, code []byte, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("wasm: compile: %w", ctx.Err())
	}
	if b.isClosed() {
		return errClosed
	}
	if b.cacheDir != "" {
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithMemoryLimitPages(pages))
		_, verr := rt.CompileModule(ctx, code)
		_ = rt.Close(ctx)
		if verr == nil {
			return fmt.Errorf("wasm: compile (compilation cache %s): %w", b.cacheDir, err)
		}
	}
	return gust.Errorf(gust.KindInvalid, "the code is not a valid WebAssembly module: %v", err)
}

// runtime returns the runtime enforcing a memory limit of pages. wazero sets
// the limit per runtime, so there is one runtime per distinct limit; they
// share the compilation cache, so a module compiled for one limit is not
// compiled again for another.
func (b *Backend) runtime(ctx context.Context, pages uint32) (wazero.Runtime, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.runtimes == nil {
		return nil, errClosed
	}
	if rt, ok := b.runtimes[pages]; ok {
		return rt, nil
	}
	cfg := wazero.NewRuntimeConfig().
		WithMemoryLimitPages(pages).
		// Without this a deadline does not stop a running guest (see
		// reference/sandbox.md A3): mandatory.
		WithCloseOnContextDone(true).
		WithCompilationCache(b.cache)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("wasm: instantiate WASI: %w", err)
	}
	b.runtimes[pages] = rt
	return rt, nil
}

// Close closes every runtime, ending any call still running (callers get an
// error, not a result), and then the compilation cache. Functions prepared
// by b are unusable afterwards.
func (b *Backend) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.runtimes == nil {
		b.mu.Unlock()
		return nil
	}
	b.closed.Store(true)
	runtimes := b.runtimes
	b.runtimes = nil
	b.mu.Unlock()

	var errs []error
	for _, rt := range runtimes {
		// A distinct exit code lets in-flight calls tell "the backend went
		// away" from a guest that exited.
		errs = append(errs, rt.CloseWithExitCode(ctx, exitCodeBackendClosed))
	}
	errs = append(errs, b.cache.Close(ctx))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("wasm: close: %w", err)
	}
	return nil
}

func (b *Backend) isClosed() bool { return b.closed.Load() }

// exitCodeBackendClosed is the exit code of instances ended by Backend.Close.
// It sits next to wazero's own reserved codes, far from any real exit status.
const exitCodeBackendClosed = sys.ExitCodeDeadlineExceeded - 1

var errClosed = errors.New("wasm: backend closed")

func normalize(l sandbox.Limits) sandbox.Limits {
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
	return l
}

// shape is what kind of module a function is.
type shape int

const (
	command shape = iota + 1
	reactor
)

func (s shape) String() string {
	if s == reactor {
		return "reactor"
	}
	return "command"
}

// WASI is the only import namespace provided; anything else would fail at
// the first call, so it is rejected at create time instead.
const wasiModule = wasi_snapshot_preview1.ModuleName

// inspect decides the module's shape and checks its imports and exports, so
// that a module Gust cannot run is refused when it is created rather than on
// every call.
func inspect(m wazero.CompiledModule) (shape, error) {
	for _, f := range m.ImportedFunctions() {
		if mod, name, _ := f.Import(); mod != wasiModule {
			return 0, invalid("the module imports %s.%s; Gust provides only %s", mod, name, wasiModule)
		}
	}
	for _, mem := range m.ImportedMemories() {
		mod, name, _ := mem.Import()
		return 0, invalid("the module imports memory %s.%s; it must define its own", mod, name)
	}
	exports := m.ExportedFunctions()
	if start, ok := exports["_start"]; ok {
		if !signature(start, nil, nil) {
			return 0, invalid("_start must take and return nothing")
		}
		return command, nil
	}
	alloc, hasAlloc := exports[exportAlloc]
	handle, hasHandle := exports[exportHandle]
	if !hasAlloc && !hasHandle {
		return 0, invalid("the module exports neither _start (a WASI command) nor %s and %s (a Gust reactor)", exportAlloc, exportHandle)
	}
	i32, i64 := []api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}
	switch {
	case !hasAlloc || !hasHandle:
		return 0, invalid("a Gust reactor must export both %s and %s", exportAlloc, exportHandle)
	case !signature(alloc, i32, i32):
		return 0, invalid("%s must have the type (i32) -> i32", exportAlloc)
	case !signature(handle, i32, i64):
		return 0, invalid("%s must have the type (i32) -> i64", exportHandle)
	}
	if _, ok := m.ExportedMemories()["memory"]; !ok {
		return 0, invalid("a Gust reactor must export its memory as \"memory\"")
	}
	if init, ok := exports["_initialize"]; ok && !signature(init, nil, nil) {
		return 0, invalid("_initialize must take and return nothing")
	}
	return reactor, nil
}

func signature(f api.FunctionDefinition, params, results []api.ValueType) bool {
	return string(f.ParamTypes()) == string(params) && string(f.ResultTypes()) == string(results)
}

func invalid(format string, args ...any) error {
	return gust.Errorf(gust.KindInvalid, "the code is not a runnable WebAssembly function: "+format, args...)
}

// Runtimes describes the one kind this backend runs.
func (b *Backend) Runtimes() []sandbox.RuntimeInfo {
	return []sandbox.RuntimeInfo{{Kind: "wasm", Interpreter: "wazero (in-process, WASI preview1)", Available: true}}
}
