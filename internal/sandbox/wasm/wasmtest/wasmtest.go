// Package wasmtest builds the WebAssembly fixtures of Gust's tests from
// source, during the tests, so no binary is checked in. Any package's tests
// can use them by name:
//
//	code := wasmtest.Build(t, "hello")
//
// Builds are cached in the user cache directory (gust-test-wasm), keyed by
// a hash of the sources, flags and toolchain version, so only the first run
// pays for them. C needs clang with the wasm32-wasi target (Debian: clang
// lld wasi-libc libclang-rt-14-dev-wasm32); without it, tests using a C
// fixture are skipped, unless the CI environment variable is set, in which
// case they fail. Go fixtures need only the go command.
//
// Commands (export _start; stdin is the parameters, stdout the result):
//
//	hello      C   {"name": N} -> {"greeting": "Hello, N!"} (N defaults to "stranger"); logs one stderr line
//	noop       C   returns {} without reading its input
//	empty      C   prints nothing (result {})
//	loop       C   never returns
//	sleep      C   sleeps for an hour, then returns {}
//	membomb    C   mallocs 1 MiB blocks until malloc fails, then aborts (a trap)
//	logs       C   writes "log line 0" .. "log line 999" to stderr; returns {"lines":1000}
//	bigresult  C   returns {"data": "xxx…"} with 2 MiB of x
//	error      C   returns {"error":"boom"}
//	exit       C   logs "giving up", exits with status 3, no result
//	errorexit  C   prints {"error":"bad input"} and exits with status 1
//	notjson    C   prints "hello, world"
//	crash      C   traps (unreachable)
//	env        C   returns {"activation_id": $__OW_ACTIVATION_ID, "environ": <variable count>, "args": argc, "argv0": argv[0]}
//	webecho    C   web action fixture: returns the "result" parameter verbatim, else its whole
//	               input as the body of {"statusCode":200,"headers":{…},"body":<params>}
//	gohello    Go  like hello, plus "activation_id" from the environment
//	gomembomb  Go  allocates until the Go runtime dies of out of memory (exit 2)
//
// Reactors (the Gust reactor ABI, see docs/wasm.md):
//
//	creactor   C   returns {"count": N} (calls served by the instance); input containing
//	               "loop" loops, "trap" traps, "badptr" returns a result outside memory,
//	               "error" returns {"error":"asked","count":N}; logs a stdout and a stderr line
//	goreactor  Go  {"name"} -> {"greeting", "count", "activation_id"}; params "error": E,
//	               "panic": true, "loop": true, "sleep_ms": N, "log": S (see its source)
//	gonoop     Go  returns {} (measures the host's per-call overhead)
package wasmtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmbuild"
)

type lang int

const (
	langC lang = iota + 1
	langGo
)

type fixture struct {
	lang    lang
	reactor bool
}

var fixtures = map[string]fixture{
	"hello": {lang: langC}, "noop": {lang: langC}, "empty": {lang: langC},
	"loop": {lang: langC}, "sleep": {lang: langC}, "membomb": {lang: langC},
	"logs": {lang: langC}, "bigresult": {lang: langC}, "error": {lang: langC},
	"exit": {lang: langC}, "errorexit": {lang: langC}, "notjson": {lang: langC},
	"crash": {lang: langC}, "env": {lang: langC}, "webecho": {lang: langC}, "files": {lang: langC},
	"creactor":  {lang: langC, reactor: true},
	"gohello":   {lang: langGo},
	"gomembomb": {lang: langGo},
	"goreactor": {lang: langGo, reactor: true},
	"gonoop":    {lang: langGo, reactor: true},
}

// Names lists the fixtures, sorted.
func Names() []string {
	names := make([]string, 0, len(fixtures))
	for n := range fixtures {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Build returns the wasm module of the named fixture (see the package doc).
func Build(t testing.TB, name string) []byte {
	t.Helper()
	fx, ok := fixtures[name]
	if !ok {
		t.Fatalf("wasmtest: no fixture %q; have %v", name, Names())
	}
	if fx.lang == langC {
		return BuildC(t, filepath.Join(testdata(t), "c", name+".c"), fx.reactor)
	}
	return BuildGo(t, filepath.Join(testdata(t), "go", name), fx.reactor)
}

// BuildC compiles one C file with clang --target=wasm32-wasi -O2, as a
// reactor (-mexec-model=reactor) when reactor is set (see wasmbuild.C).
func BuildC(t testing.TB, src string, reactor bool) []byte {
	t.Helper()
	if _, err := wasmbuild.Clang(); err != nil {
		unavailable(t, fmt.Sprintf("wasmtest: no C to wasm32-wasi toolchain (install clang lld wasi-libc libclang-rt-14-dev-wasm32): %v", err))
	}
	b, err := wasmbuild.C(context.Background(), baseDir(t), src, reactor)
	if err != nil {
		t.Fatalf("wasmtest: %v", err)
	}
	return b
}

// BuildGo builds the main package in dir with GOOS=wasip1 GOARCH=wasm, with
// -buildmode=c-shared when reactor is set (see wasmbuild.GoProgram).
func BuildGo(t testing.TB, dir string, reactor bool) []byte {
	t.Helper()
	if _, err := wasmbuild.Go(); err != nil {
		unavailable(t, fmt.Sprintf("wasmtest: no go command: %v", err))
	}
	b, err := wasmbuild.GoProgram(context.Background(), baseDir(t), dir, reactor)
	if err != nil {
		t.Fatalf("wasmtest: %v", err)
	}
	return b
}

// CacheDir returns a directory, kept across test runs, for a wazero
// compilation cache: compiling a Go fixture costs seconds (tens of seconds
// under -race), a cache hit milliseconds. Tests about the cache itself
// should use t.TempDir instead.
func CacheDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(baseDir(t), "wazero")
}

func baseDir(t testing.TB) string {
	t.Helper()
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "gust-test-wasm")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("wasmtest: %v", err)
	}
	return dir
}

// testdata locates this package's testdata directory from its source file,
// so fixtures are found whichever package's test runs.
func testdata(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("wasmtest: cannot locate the package source")
	}
	return filepath.Join(filepath.Dir(file), "testdata")
}

// unavailable skips a test whose toolchain is missing on a developer's
// machine, but fails it in CI, where a skipped suite would pass silently.
func unavailable(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
