package bench

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// The bench's wasm modules are the test fixtures of package wasmtest,
// built from the same sources with the same flags, so a benchmark and a
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
		clang, err := toolchain(ctx, "clang", "--version")
		if err != nil {
			return nil, fmt.Errorf("no clang (install clang lld wasi-libc libclang-rt-14-dev-wasm32): %w", err)
		}
		fx.tools["clang"] = clang
		file := filepath.Join(src, "c", f.name+".c")
		headers, _ := filepath.Glob(filepath.Join(src, "c", "*.h"))
		args := []string{"--target=wasm32-wasi", "-O2"}
		if f.reactor {
			args = append(args, "-mexec-model=reactor")
		}
		return fx.cached(f.name, append([]string{file}, headers...), clang.Version, args, func(out string) *exec.Cmd {
			return exec.CommandContext(ctx, clang.Path, append(args, "-o", out, file)...)
		})
	}
	goTool, err := toolchain(ctx, "go", "env", "GOVERSION")
	if err != nil {
		return nil, fmt.Errorf("no go command: %w", err)
	}
	fx.tools["go"] = goTool
	dir := filepath.Join(src, "go", f.name)
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	if len(files) == 0 {
		return nil, fmt.Errorf("no Go files in %s", dir)
	}
	args := []string{"build", "-trimpath"}
	if f.reactor {
		args = append(args, "-buildmode=c-shared")
	}
	var mod string // the module the build runs in, removed afterwards
	defer func() {
		if mod != "" {
			os.RemoveAll(mod)
		}
	}()
	return fx.cached(f.name, files, goTool.Version, args, func(out string) *exec.Cmd {
		// Built as its own module, away from Gust's go.mod, as wasmtest does;
		// a failure to copy shows as a failed build.
		mod = out + ".src"
		_ = os.MkdirAll(mod, 0o755)
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil {
				_ = os.WriteFile(filepath.Join(mod, filepath.Base(f)), b, 0o644)
			}
		}
		_ = os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module fixture\n\ngo 1.24\n"), 0o644)
		cmd := exec.CommandContext(ctx, goTool.Path, append(args, "-o", out, ".")...)
		cmd.Dir = mod
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOWORK=off")
		return cmd
	})
}

// cached returns the build of files for key, running the command that cmd
// makes when there is none yet. The output is renamed into place, so runs
// side by side never read a partial file.
func (fx *fixtures) cached(name string, files []string, version string, args []string, cmd func(out string) *exec.Cmd) ([]byte, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%q\x00", version, args)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(f), len(b))
		h.Write(b)
	}
	path := filepath.Join(fx.cacheDir, name+"-"+hex.EncodeToString(h.Sum(nil))[:20]+".wasm")
	if b, err := os.ReadFile(path); err == nil {
		return b, nil
	}
	if err := os.MkdirAll(fx.cacheDir, 0o755); err != nil {
		return nil, err
	}
	tmp := path + fmt.Sprintf(".%d.tmp", os.Getpid())
	defer os.Remove(tmp)
	c := cmd(tmp)
	if out, err := c.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", strings.Join(c.Args, " "), err, out)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
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

// toolchain finds a command on PATH and reads its version with args.
func toolchain(ctx context.Context, name string, args ...string) (Tool, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return Tool{}, err
	}
	out, err := exec.CommandContext(ctx, path, args...).Output()
	if err != nil {
		return Tool{}, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	version, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return Tool{Name: name, Path: path, Version: version, Note: "builds the wasm fixtures"}, nil
}
