// Package wasmbuild compiles WebAssembly modules from C and Go sources
// with the machine's toolchains, caching each build in a directory keyed
// by a hash of the sources, flags and toolchain version. It serves the
// test fixtures (package wasmtest) and gust bench, so that a test and a
// benchmark of the same name run the same module, built the same way.
package wasmbuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Toolchain is a compiler found on this machine.
type Toolchain struct {
	Name, Path string
	Version    string // the first line of its version output
}

// Clang returns clang, once it has built a WASI program: clang alone is
// not enough without wasi-libc (Debian: clang lld wasi-libc
// libclang-rt-14-dev-wasm32).
func Clang() (Toolchain, error) { return clang() }

var clang = sync.OnceValues(func() (Toolchain, error) {
	tc, err := find("clang", "--version")
	if err != nil {
		return tc, err
	}
	dir, err := os.MkdirTemp("", "wasmbuild-probe")
	if err != nil {
		return tc, err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "probe.c")
	if err := os.WriteFile(src, []byte("#include <stdio.h>\nint main(void) { puts(\"{}\"); return 0; }\n"), 0o644); err != nil {
		return tc, err
	}
	if out, err := exec.Command(tc.Path, "--target=wasm32-wasi", "-O2", "-o", filepath.Join(dir, "probe.wasm"), src).CombinedOutput(); err != nil {
		return tc, fmt.Errorf("clang cannot build for wasm32-wasi (install clang lld wasi-libc libclang-rt-14-dev-wasm32): %w: %s", err, out)
	}
	return tc, nil
})

// Go returns the go command.
func Go() (Toolchain, error) { return goTool() }

var goTool = sync.OnceValues(func() (Toolchain, error) { return find("go", "env", "GOVERSION") })

func find(name string, args ...string) (Toolchain, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return Toolchain{Name: name}, err
	}
	out, err := exec.Command(path, args...).Output()
	if err != nil {
		return Toolchain{Name: name, Path: path}, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	version, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return Toolchain{Name: name, Path: path, Version: version}, nil
}

// C compiles one C file with clang --target=wasm32-wasi -O2, as a reactor
// (-mexec-model=reactor) when reactor is set, into cacheDir. Headers beside
// src are part of the cache key.
func C(ctx context.Context, cacheDir, src string, reactor bool) ([]byte, error) {
	tc, err := Clang()
	if err != nil {
		return nil, err
	}
	args := []string{"--target=wasm32-wasi", "-O2"}
	if reactor {
		args = append(args, "-mexec-model=reactor")
	}
	headers, _ := filepath.Glob(filepath.Join(filepath.Dir(src), "*.h"))
	name := strings.TrimSuffix(filepath.Base(src), ".c")
	return cached(cacheDir, name, append([]string{src}, headers...), tc.Version, args, func(out string) (*exec.Cmd, error) {
		return exec.CommandContext(ctx, tc.Path, append(args, "-o", out, src)...), nil
	})
}

// GoProgram builds the main package in dir with GOOS=wasip1 GOARCH=wasm,
// with -buildmode=c-shared when reactor is set, into cacheDir. The package
// may import only the standard library: it is built as its own module,
// away from any enclosing go.mod.
func GoProgram(ctx context.Context, cacheDir, dir string, reactor bool) ([]byte, error) {
	tc, err := Go()
	if err != nil {
		return nil, err
	}
	srcs, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, fmt.Errorf("Go files in %s: %w", dir, err)
	}
	if len(srcs) == 0 {
		return nil, fmt.Errorf("no Go files in %s", dir)
	}
	args := []string{"build", "-trimpath"}
	if reactor {
		args = append(args, "-buildmode=c-shared")
	}
	return cached(cacheDir, filepath.Base(dir), srcs, tc.Version, args, func(out string) (*exec.Cmd, error) {
		mod := out + ".src"
		if err := os.MkdirAll(mod, 0o755); err != nil {
			return nil, err
		}
		for _, src := range srcs {
			b, err := os.ReadFile(src)
			if err == nil {
				err = os.WriteFile(filepath.Join(mod, filepath.Base(src)), b, 0o644)
			}
			if err != nil {
				return nil, err
			}
		}
		if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module fixture\n\ngo 1.24\n"), 0o644); err != nil {
			return nil, err
		}
		cmd := exec.CommandContext(ctx, tc.Path, append(args, "-o", out, ".")...)
		cmd.Dir = mod
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOWORK=off")
		return cmd, nil
	})
}

// cached returns the build of files in cacheDir, running the command that
// cmd makes when there is none yet. The output is renamed into place, so
// processes building the same module side by side never read a partial
// file. out+".src" is the command's to use and is removed afterwards.
func cached(cacheDir, name string, files []string, version string, args []string, cmd func(out string) (*exec.Cmd, error)) ([]byte, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%q\x00", version, args)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("building %s: %w", name, err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(f), len(b))
		h.Write(b)
	}
	path := filepath.Join(cacheDir, name+"-"+hex.EncodeToString(h.Sum(nil))[:20]+".wasm")
	if b, err := os.ReadFile(path); err == nil {
		return b, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("wasm build cache: %w", err)
	}
	tmp, err := os.CreateTemp(cacheDir, name+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("wasm build cache: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	defer os.RemoveAll(tmp.Name() + ".src")
	c, err := cmd(tmp.Name())
	if err != nil {
		return nil, fmt.Errorf("building %s: %w", name, err)
	}
	if out, err := c.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building %s: %s: %w\n%s", name, strings.Join(c.Args, " "), err, out)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("wasm build cache: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wasm build cache: %w", err)
	}
	return b, nil
}
