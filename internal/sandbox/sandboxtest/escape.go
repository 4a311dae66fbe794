package sandboxtest

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
)

// Scenarios of the log limit and of escapes: what a function must not
// reach (the host's files, processes and network, other functions' files)
// and the limits of what it may (its /tmp).

// logLimitEndsInstance: a call that reaches its log limit keeps its result,
// its log is cut with the truncation line, and its instance serves no other
// call; a call within the limit keeps its instance.
func (s *suite) logLimitEndsInstance(t *testing.T, code []byte) {
	limits := Limits()
	limits.LogBytes = 4096
	f := s.prepare(t, code, limits)
	res := invoke(t, f, `{"bytes":100000}`)
	want(t, res, gust.StatusSuccess)
	if n := count(t, res); n != 1 {
		t.Errorf("first call: count %d, want 1", n)
	}
	checkTruncated(t, res, limits.LogBytes)
	if !s.fx.WarmReuse {
		return
	}
	res = invoke(t, f, `{"bytes":10}`)
	want(t, res, gust.StatusSuccess)
	if n := count(t, res); n != 1 || res.Start == sandbox.StartWarm {
		t.Errorf("call after one that reached the log limit: count %d, Start %s; want a new instance (count 1, not warm)", n, res.Start)
	}
	res = invoke(t, f, `{"bytes":10}`)
	want(t, res, gust.StatusSuccess)
	if n := count(t, res); n != 2 || res.Start != sandbox.StartWarm {
		t.Errorf("call after one within the log limit: count %d, Start %s; want the instance reused (count 2, warm)", n, res.Start)
	}
}

// hugeOutput: a function printing 50 MB is cut at the log limit and the
// call returns promptly, well before its deadline.
func (s *suite) hugeOutput(t *testing.T, code []byte) {
	limits := Limits()
	f := s.prepare(t, code, limits)
	start := time.Now()
	res := invoke(t, f, fmt.Sprintf(`{"bytes":%d}`, 50<<20))
	took := time.Since(start)
	t.Logf("50 MB of log output: the call took %v", took)
	want(t, res, gust.StatusSuccess)
	if res.TimedOut || took > limits.Timeout/3 {
		t.Errorf("the call took %v (TimedOut %v), want it to return promptly", took, res.TimedOut)
	}
	checkTruncated(t, res, limits.LogBytes)
}

// escape calls f's Escape fixture with params and returns its answer.
func escape(t *testing.T, f sandbox.Function, params map[string]any) escapeResult {
	t.Helper()
	p, _ := json.Marshal(params)
	res := invoke(t, f, string(p))
	want(t, res, gust.StatusSuccess)
	var r escapeResult
	if err := json.Unmarshal(res.Result, &r); err != nil || r.Outcome == "" {
		t.Fatalf("%s: result %s, want {\"outcome\": …} (%v)", p, res.Result, err)
	}
	return r
}

type escapeResult struct {
	Outcome  string   `json:"outcome"`
	Names    []string `json:"names"`
	Cmdlines []string `json:"cmdlines"`
	MB       int      `json:"mb"`
}

// hostDir makes a directory on the host that any user may read, as a
// careless deployment might leave one.
func hostDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gust-escape-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// escapeHostFiles: the host's files are out of reach, world-readable ones
// included: /etc/shadow, and a file any host user could read.
func (s *suite) escapeHostFiles(t *testing.T, code []byte) {
	f := s.prepare(t, code, Limits())
	secret := filepath.Join(hostDir(t), "secret")
	if err := os.WriteFile(secret, []byte("host secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/etc/shadow", "/proc/1/root/etc/shadow", "/../../etc/shadow", secret, "/proc/1/root" + secret} {
		if r := escape(t, f, map[string]any{"op": "read", "path": p}); r.Outcome == "ok" {
			t.Errorf("read %s: ok, want it refused or absent", p)
		}
	}
}

// escapeHostProcesses: the host's processes, this test's included, are not
// visible.
func (s *suite) escapeHostProcesses(t *testing.T, code []byte) {
	f := s.prepare(t, code, Limits())
	r := escape(t, f, map[string]any{"op": "procs"})
	self, _ := os.ReadFile("/proc/self/cmdline")
	mine := strings.TrimSpace(strings.ReplaceAll(string(self), "\x00", " "))
	for _, c := range r.Cmdlines {
		if c != "" && c == mine {
			t.Errorf("the function sees the test process (%q) among %q", c, r.Cmdlines)
		}
	}
	if len(r.Cmdlines) > 16 {
		t.Errorf("the function sees %d processes, want only its own few: %q", len(r.Cmdlines), r.Cmdlines)
	}
}

// escapeNetwork: no connection leaves the function: not to the host's
// loopback (a listener there accepts nothing), not to the Internet, and
// names do not resolve.
func (s *suite) escapeNetwork(t *testing.T, code []byte) {
	f := s.prepare(t, code, Limits())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
			accepted <- struct{}{}
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	for _, tc := range []map[string]any{
		{"op": "connect", "host": "127.0.0.1", "port": port},
		{"op": "connect", "host": "1.1.1.1", "port": 53},
		{"op": "resolve", "host": "example.com"},
	} {
		if r := escape(t, f, tc); r.Outcome == "ok" {
			t.Errorf("%v: ok, want it to fail", tc)
		}
	}
	select {
	case <-accepted:
		t.Error("the host's loopback listener accepted a connection from the function")
	default:
	}
}

// escapeWrite: nothing outside /tmp is writable, and nothing the function
// tries lands on the host; /tmp is.
func (s *suite) escapeWrite(t *testing.T, code []byte) {
	f := s.prepare(t, code, Limits())
	name := fmt.Sprintf("gust-escape-%d", time.Now().UnixNano())
	for _, dir := range []string{"/", "/usr", "/etc", "/var", "/dev", "/proc", "/bin", "/root"} {
		p := filepath.Join(dir, name)
		if r := escape(t, f, map[string]any{"op": "write", "path": p, "data": "x"}); r.Outcome == "ok" {
			t.Errorf("write %s: ok, want it refused", p)
		}
		if _, err := os.Lstat(p); err == nil {
			_ = os.Remove(p)
			t.Errorf("%s appeared on the host", p)
		}
	}
	if r := escape(t, f, map[string]any{"op": "write", "path": "/tmp/" + name, "data": "x"}); r.Outcome != "ok" {
		t.Errorf("write /tmp/%s: %s, want ok", name, r.Outcome)
	}
	if _, err := os.Lstat("/tmp/" + name); err == nil {
		_ = os.Remove("/tmp/" + name)
		t.Errorf("/tmp/%s appeared on the host: the function's /tmp must be its own", name)
	}
}

// escapeOtherTmp: a function cannot see what another wrote in its /tmp.
func (s *suite) escapeOtherTmp(t *testing.T, code []byte) {
	a := s.prepare(t, code, Limits())
	b := s.prepare(t, code, Limits())
	name := fmt.Sprintf("gust-secret-%d", time.Now().UnixNano())
	if r := escape(t, a, map[string]any{"op": "write", "path": "/tmp/" + name, "data": "a's secret"}); r.Outcome != "ok" {
		t.Fatalf("a writes /tmp/%s: %s", name, r.Outcome)
	}
	if r := escape(t, a, map[string]any{"op": "read", "path": "/tmp/" + name}); r.Outcome != "ok" {
		t.Fatalf("a reads back /tmp/%s: %s", name, r.Outcome)
	}
	if r := escape(t, b, map[string]any{"op": "read", "path": "/tmp/" + name}); r.Outcome == "ok" {
		t.Errorf("b reads a's /tmp/%s: ok", name)
	}
	r := escape(t, b, map[string]any{"op": "list", "path": "/tmp"})
	if r.Outcome != "ok" || slices.Contains(r.Names, name) {
		t.Errorf("b lists /tmp: %s %q, want it listed, without a's file", r.Outcome, r.Names)
	}
}

// tmpQuota: /tmp holds TmpMB, then writes fail with ENOSPC.
func (s *suite) tmpQuota(t *testing.T, code []byte) {
	f := s.prepare(t, code, Limits())
	r := escape(t, f, map[string]any{"op": "fill", "dir": "/tmp/fill", "mb": s.fx.TmpMB + 8})
	if r.Outcome != "ENOSPC" || r.MB > s.fx.TmpMB || r.MB < s.fx.TmpMB/2 {
		t.Errorf("filling a %d MiB /tmp: %s after %d MiB, want ENOSPC at about %d MiB", s.fx.TmpMB, r.Outcome, r.MB, s.fx.TmpMB)
	}
}
