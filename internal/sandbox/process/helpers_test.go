//go:build linux

package process

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
	"github.com/gust-faas/gust/internal/sandbox/sandboxtest"
)

// needSandbox skips tests that need what the sandbox needs. CI runs as
// root with user namespaces, so there they run.
func needSandbox(t testing.TB) {
	t.Helper()
	if err := checkSupport(); err != nil {
		sandboxtest.Unavailable(t, "no process sandbox here: %v", err)
	}
}

// newBackend returns a Backend closed (and checked for leftovers) at the
// end of the test. Stem cells are off unless cfg asks for them.
func newBackend(t testing.TB, cfg Config) *Backend {
	t.Helper()
	needSandbox(t)
	if cfg.StemCells == 0 {
		cfg.StemCells = -1
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if b.support != nil {
		sandboxtest.Unavailable(t, "no process sandbox here: %v", b.support)
	}
	mounts := countMounts(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("Backend.Close: %v", err)
		}
		for _, dir := range append(cgroupDirs(b.cgroups), b.workDir) {
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("%s left behind", dir)
			}
		}
		if pids := sandboxProcesses(b.hostUID); len(pids) > 0 {
			t.Errorf("sandbox processes left behind: %v", pids)
		}
		if n := countMounts(t); n != mounts {
			t.Errorf("host mounts: %d before, %d after", mounts, n)
		}
	})
	return b
}

func countMounts(t testing.TB) int {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// sandboxProcesses lists this process's descendants running as a sandbox
// identity. Other processes on the host may use the same uids (another
// test binary, another engineer's node): they are not ours to count.
func sandboxProcesses(hostUID int) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" && (f[1] == strconv.Itoa(hostUID) || f[1] == strconv.Itoa(hostUID+sandboxUID)) && descendant(e.Name()) {
				out = append(out, e.Name())
			}
		}
	}
	return out
}

// descendant reports whether pid is a descendant of this process.
func descendant(pid string) bool {
	self := strconv.Itoa(os.Getpid())
	for range 64 {
		b, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			return false
		}
		ppid := ""
		for line := range strings.Lines(string(b)) {
			if rest, ok := strings.CutPrefix(line, "PPid:"); ok {
				ppid = strings.TrimSpace(rest)
			}
		}
		switch ppid {
		case self:
			return true
		case "", "0", "1":
			return false
		}
		pid = ppid
	}
	return false
}

func cgroupDirs(h *cgroupHost) []string {
	var out []string
	if h == nil {
		return nil
	}
	for _, d := range h.v1 {
		out = append(out, d)
	}
	if h.v2 != "" {
		out = append(out, h.v2)
	}
	return out
}

func prepare(t testing.TB, b *Backend, kind string, code string, limits sandbox.Limits) sandbox.Function {
	t.Helper()
	return prepareMain(t, b, kind, code, "", limits)
}

func prepareMain(t testing.TB, b *Backend, kind string, code string, main string, limits sandbox.Limits) sandbox.Function {
	t.Helper()
	f, err := b.Prepare(t.Context(), sandbox.Spec{Kind: kind, Code: []byte(code), Main: main, Limits: limits})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	t.Cleanup(func() { _ = f.Close(context.Background()) })
	return f
}

func call(t testing.TB, f sandbox.Function, params string) *sandbox.Result {
	t.Helper()
	res, err := f.Invoke(t.Context(), sandbox.Call{Params: json.RawMessage(params), Env: sandboxtest.Env(gust.NewActivationID(time.Now()))})
	if err != nil {
		t.Fatalf("Invoke(%s): %v", params, err)
	}
	return res
}

func wantStatus(t testing.TB, res *sandbox.Result, status gust.Status) {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status = %v, want %v; result %s; logs:\n%s", res.Status, status, res.Result, strings.Join(res.Logs, "\n"))
	}
}

func resultMap(t testing.TB, res *sandbox.Result) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(res.Result, &m); err != nil {
		t.Fatalf("result %s: %v", res.Result, err)
	}
	return m
}

func errorText(res *sandbox.Result) string {
	var m struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(res.Result, &m)
	return m.Error
}

// logTexts returns the text of each log line, without time and stream.
func logTexts(res *sandbox.Result) []string {
	var out []string
	for _, l := range res.Logs {
		if _, rest, ok := strings.Cut(l, " stdout: "); ok && len(l)-len(rest) <= 40 {
			out = append(out, "stdout: "+rest)
		} else if _, rest, ok := strings.Cut(l, " stderr: "); ok {
			out = append(out, "stderr: "+rest)
		}
	}
	return out
}
