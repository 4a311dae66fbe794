//go:build linux

package process

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
)

// fakeInterpreter writes a shell script standing for an interpreter at
// <dir>/bin/<name>, in a directory outside /tmp (which the sandbox's own
// /tmp would hide) that the sandbox can read, and returns its path.
func fakeInterpreter(t *testing.T, name, script string) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/tmp", "gust-probe-")
	if err != nil {
		t.Skipf("no /var/tmp for a fake interpreter: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "bin", name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestProbe: an interpreter that exists but cannot serve its kind (too
// old, not the right program, unable to run the launcher in the sandbox)
// makes the kind unavailable with the reason, and creating an action of it
// is refused with that reason.
func TestProbe(t *testing.T) {
	needSandbox(t)
	for _, tc := range []struct {
		name   string
		kind   string
		interp func(t *testing.T) string
		reason []string // in the reason
		memMB  int      // the stem cells' memory; 0: the default
	}{
		{"Python2", KindPython, func(t *testing.T) string {
			// Python 2 prints its version on stderr.
			return fakeInterpreter(t, "python", `echo "Python 2.7.18" >&2`)
		}, []string{"is Python 2.7.18", "python:3 needs Python 3.8 or later"}, 0},
		{"Python37", KindPython, func(t *testing.T) string {
			return fakeInterpreter(t, "python3", `echo "Python 3.7.16"`)
		}, []string{"is Python 3.7.16", "needs Python 3.8 or later"}, 0},
		{"NotPython", KindPython, func(t *testing.T) string {
			return fakeInterpreter(t, "python3", `echo "hello"`)
		}, []string{"is not Python", `"hello"`}, 0},
		{"Fails", KindPython, func(t *testing.T) string {
			return fakeInterpreter(t, "python3", `echo "no such thing" >&2; exit 3`)
		}, []string{"does not run", "exit status 3", "no such thing"}, 0},
		{"NoLauncher", KindPython, func(t *testing.T) string {
			// The right version, but it cannot run the launcher.
			return fakeInterpreter(t, "python3", `[ "$1" = --version ] && { echo "Python 3.12.1"; exit 0; }
echo "boom: cannot run $*" >&2
exit 1`)
		}, []string{"does not run Gust's launcher in the sandbox (it exited with code 1)", "boom: cannot run"}, 0},
		{"OutOfMemory", KindPython, func(t *testing.T) string {
			// The right version, but the launcher's start needs more
			// than a stem cell has: the reason must say memory, not
			// "killed by signal SIGKILL".
			return fakeInterpreter(t, "python3", `[ "$1" = --version ] && { echo "Python 3.12.1"; exit 0; }
x=a; while :; do x="$x$x"; done`)
		}, []string{"does not run Gust's launcher in the sandbox (it ran out of its 32 MB of memory"}, 32},
		{"Node16", KindNode, func(t *testing.T) string {
			return fakeInterpreter(t, "node", `echo "v16.20.2"`)
		}, []string{"is v16.20.2", "nodejs:20 needs Node.js 18.0 or later"}, 0},
		{"PyenvBuild", KindPython, func(t *testing.T) string {
			// A pyenv build under /root (0700): the sandbox's unprivileged
			// uid cannot read it, though the host can run it.
			p := "/root/.pyenv/versions/3.11.7/bin/python3"
			if _, err := os.Stat(p); err != nil {
				t.Skip("no pyenv build of Python 3.11.7 here")
			}
			if st, err := os.Stat("/root"); err != nil || st.Mode().Perm()&0o001 != 0 {
				t.Skip("/root is searchable by others here")
			}
			return p
		}, []string{"cannot run in the sandbox", "permission denied", "readable by others"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{StemCellMemoryMB: tc.memMB}
			if tc.kind == KindPython {
				cfg.Python = tc.interp(t)
			} else {
				cfg.Node = tc.interp(t)
			}
			b := newBackend(t, cfg)
			var ri RuntimeInfo
			for _, r := range b.Runtimes() {
				if r.Kind == tc.kind {
					ri = r
				}
			}
			if ri.Available {
				t.Fatalf("%s available with %s", tc.kind, ri.Interpreter)
			}
			t.Logf("reason: %s", ri.Reason)
			for _, want := range tc.reason {
				if !strings.Contains(ri.Reason, want) {
					t.Errorf("reason %q, want it to say %q", ri.Reason, want)
				}
			}
			_, err := b.Prepare(t.Context(), sandbox.Spec{Kind: tc.kind, Code: []byte("x")})
			if gust.KindOf(err) != gust.KindInvalid || !strings.Contains(gust.MessageOf(err), ri.Reason) {
				t.Errorf("Prepare: %v, want it refused with the reason", err)
			}
			// The other kinds are not affected.
			other := KindNode
			if tc.kind == KindNode {
				other = KindPython
			}
			for _, r := range b.Runtimes() {
				if r.Kind == other && !r.Available {
					t.Errorf("%s unavailable too: %s", other, r.Reason)
				}
			}
		})
	}
}

// TestProbeCost measures what the probes add to New: each interpreter
// run directly for its version, then started in a sandbox, the kinds in
// parallel. With stem cells on, the probe's sandbox is the first cell.
func TestProbeCost(t *testing.T) {
	needSandbox(t)
	for _, cells := range []int{-1, 1} {
		start := time.Now()
		b := newBackend(t, Config{StemCells: cells})
		took := time.Since(start)
		for _, r := range b.Runtimes() {
			if !r.Available {
				t.Errorf("%s unavailable: %s", r.Kind, r.Reason)
			}
		}
		t.Logf("New with StemCells %d: %v", cells, took)
		if cells > 0 {
			for _, kind := range []string{KindPython, KindNode} {
				c := b.cells[kind]
				c.mu.Lock()
				ready := len(c.idle)
				c.mu.Unlock()
				if ready == 0 {
					t.Errorf("%s: no stem cell ready when New returns: the probe's sandbox should be one", kind)
				}
			}
		}
		for _, rt := range b.kinds {
			if rt.interpreter == "" {
				continue
			}
			t0 := time.Now()
			if err := checkVersion(t.Context(), rt); err != nil {
				t.Fatal(err)
			}
			t1 := time.Now()
			w, err := b.probe(t.Context(), rt)
			if err != nil {
				t.Fatal(err)
			}
			w.destroy()
			t.Logf("%s: --version %v, version and sandboxed launcher %v", rt.name, t1.Sub(t0), time.Since(t1))
		}
	}
}
