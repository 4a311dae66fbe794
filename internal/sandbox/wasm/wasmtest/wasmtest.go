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
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
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
// reactor (-mexec-model=reactor) when reactor is set. Headers beside src
// are part of the cache key.
func BuildC(t testing.TB, src string, reactor bool) []byte {
	t.Helper()
	clang := clangInfo()
	if clang.err != nil {
		unavailable(t, fmt.Sprintf("wasmtest: no C to wasm32-wasi toolchain (install clang lld wasi-libc libclang-rt-14-dev-wasm32): %v", clang.err))
	}
	args := []string{"--target=wasm32-wasi", "-O2"}
	if reactor {
		args = append(args, "-mexec-model=reactor")
	}
	headers, _ := filepath.Glob(filepath.Join(filepath.Dir(src), "*.h"))
	key := cacheKey(t, append([]string{src}, headers...), clang.version, args)
	return cached(t, strings.TrimSuffix(filepath.Base(src), ".c"), key, func(out string) *exec.Cmd {
		return exec.Command(clang.path, append(args, "-o", out, src)...)
	})
}

// BuildGo builds the main package in dir with GOOS=wasip1 GOARCH=wasm, with
// -buildmode=c-shared when reactor is set. The package may import only the
// standard library: it is built as its own module, away from Gust's go.mod.
func BuildGo(t testing.TB, dir string, reactor bool) []byte {
	t.Helper()
	goTool := goInfo()
	if goTool.err != nil {
		unavailable(t, fmt.Sprintf("wasmtest: no go command: %v", goTool.err))
	}
	srcs, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(srcs) == 0 {
		t.Fatalf("wasmtest: no Go files in %s", dir)
	}
	args := []string{"build", "-trimpath"}
	if reactor {
		args = append(args, "-buildmode=c-shared")
	}
	key := cacheKey(t, srcs, goTool.version, args)
	return cached(t, filepath.Base(dir), key, func(out string) *exec.Cmd {
		mod := t.TempDir()
		for _, src := range srcs {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(mod, filepath.Base(src)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module fixture\n\ngo 1.24\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(goTool.path, append(args, "-o", out, ".")...)
		cmd.Dir = mod
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOWORK=off")
		return cmd
	})
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

func cacheKey(t testing.TB, files []string, toolchain string, args []string) string {
	t.Helper()
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%q\x00", toolchain, args)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("wasmtest: %v", err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(f), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:20]
}

// cached returns the cached build for key, or runs the command that cmd
// makes to write it. The result is renamed into place, so concurrent test
// processes building the same fixture do not see partial files.
func cached(t testing.TB, name, key string, cmd func(out string) *exec.Cmd) []byte {
	t.Helper()
	path := filepath.Join(baseDir(t), name+"-"+key+".wasm")
	if b, err := os.ReadFile(path); err == nil {
		return b
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), name+".*.tmp")
	if err != nil {
		t.Fatalf("wasmtest: %v", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	c := cmd(tmp.Name())
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("wasmtest: building %s: %s: %v\n%s", name, strings.Join(c.Args, " "), err, out)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatalf("wasmtest: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("wasmtest: %v", err)
	}
	return b
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

type toolchain struct {
	path    string
	version string
	err     error
}

// clangInfo finds clang and checks, once per process, that it can build a
// WASI program: clang alone is not enough without wasi-libc.
var clangInfo = sync.OnceValue(func() toolchain {
	path, err := exec.LookPath("clang")
	if err != nil {
		return toolchain{err: err}
	}
	version, err := exec.Command(path, "--version").Output()
	if err != nil {
		return toolchain{err: fmt.Errorf("clang --version: %w", err)}
	}
	dir, err := os.MkdirTemp("", "wasmtest-probe")
	if err != nil {
		return toolchain{err: err}
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "probe.c")
	if err := os.WriteFile(src, []byte("#include <stdio.h>\nint main(void) { puts(\"{}\"); return 0; }\n"), 0o644); err != nil {
		return toolchain{err: err}
	}
	if out, err := exec.Command(path, "--target=wasm32-wasi", "-O2", "-o", filepath.Join(dir, "probe.wasm"), src).CombinedOutput(); err != nil {
		return toolchain{err: fmt.Errorf("%w: %s", err, out)}
	}
	return toolchain{path: path, version: string(version)}
})

var goInfo = sync.OnceValue(func() toolchain {
	path, err := exec.LookPath("go")
	if err != nil {
		return toolchain{err: err}
	}
	version, err := exec.Command(path, "env", "GOVERSION").Output()
	if err != nil {
		return toolchain{err: fmt.Errorf("go env GOVERSION: %w", err)}
	}
	return toolchain{path: path, version: strings.TrimSpace(string(version))}
})
