package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmbuild"
)

// The bench's wasm modules are the test fixtures of package wasmtest,
// built from the same sources by package wasmbuild, so a benchmark and a
// test of the same name run the same code. The sources are found in the
// checkout the bench runs from; the builds are cached under the user cache
// directory, keyed by a hash of sources, flags and toolchain version.
const fixtureSources = "internal/sandbox/wasm/wasmtest/testdata"

// fixture is one wasmtest fixture the bench uses.
type fixture struct {
	name    string
	lang    string // "C" or "Go"
	reactor bool
}

var (
	// noopC is a command that prints {}: a fresh instance per call.
	noopC = fixture{name: "noop", lang: "C"}
	// noopGo is a Go reactor that returns {}: the host's per-call overhead
	// on a reused instance.
	noopGo = fixture{name: "gonoop", lang: "Go", reactor: true}
)

// fixtures builds modules at most once per run.
type fixtures struct {
	cacheDir string
	mu       sync.Mutex
	built    map[string]built
	tools    map[string]Tool
}

type built struct {
	code []byte
	err  error
}

func newFixtures(cacheDir string) *fixtures {
	return &fixtures{cacheDir: cacheDir, built: map[string]built{}, tools: map[string]Tool{}}
}

// get returns the module of f, or why it cannot be had.
func (fx *fixtures) get(ctx context.Context, f fixture) ([]byte, error) {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	if b, ok := fx.built[f.name]; ok {
		return b.code, b.err
	}
	code, err := fx.build(ctx, f)
	if err != nil {
		err = fmt.Errorf("wasm fixture %s (%s): %w", f.name, f.lang, err)
	}
	fx.built[f.name] = built{code, err}
	return code, err
}

// toolList returns the toolchains that built fixtures.
func (fx *fixtures) toolList() []Tool {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	var out []Tool
	for _, name := range []string{"clang", "go"} {
		if t, ok := fx.tools[name]; ok {
			out = append(out, t)
		}
	}
	return out
}

func (fx *fixtures) build(ctx context.Context, f fixture) ([]byte, error) {
	src, err := findSources()
	if err != nil {
		return nil, err
	}
	if f.lang == "C" {
		tc, err := wasmbuild.Clang()
		if err != nil {
			return nil, fmt.Errorf("no clang for wasm32-wasi: %w", err)
		}
		fx.tools["clang"] = toolOf(tc)
		return wasmbuild.C(ctx, fx.cacheDir, filepath.Join(src, "c", f.name+".c"), f.reactor)
	}
	tc, err := wasmbuild.Go()
	if err != nil {
		return nil, fmt.Errorf("no go command: %w", err)
	}
	fx.tools["go"] = toolOf(tc)
	return wasmbuild.GoProgram(ctx, fx.cacheDir, filepath.Join(src, "go", f.name), f.reactor)
}

func toolOf(tc wasmbuild.Toolchain) Tool {
	return Tool{Name: tc.Name, Path: tc.Path, Version: tc.Version, Note: "builds the wasm fixtures"}
}

// findSources locates the fixture sources in the checkout.
func findSources() (string, error) {
	if p, ok := inCheckout(fixtureSources, true); ok {
		return p, nil
	}
	return "", errors.New("the fixture sources (" + fixtureSources + ") were not found: run gust bench from a Gust checkout")
}

// inCheckout returns rel (a directory when dir) relative to the root of
// the Gust checkout that holds the working directory and has it, else
// relative to the checkout this file's source is in (go run, go test).
func inCheckout(rel string, dir bool) (string, bool) {
	exists := func(p string) bool {
		st, err := os.Stat(p)
		return err == nil && st.IsDir() == dir
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if isGustRoot(d) {
				if p := filepath.Join(d, rel); exists(p) {
					return p, true
				}
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		if p := filepath.Join(filepath.Dir(file), "..", "..", rel); exists(p) {
			return filepath.Clean(p), true
		}
	}
	return "", false
}

func isGustRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "module ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "module ")) == "github.com/gust-faas/gust"
		}
	}
	return false
}
