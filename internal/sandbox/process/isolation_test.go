//go:build linux

package process

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/gust-faas/gust/internal/sandbox/sandboxtest"
	"golang.org/x/sys/unix"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
)

// pyProbe reports what a function can see and do.
const pyProbe = `
import ctypes, errno, os, socket, time
def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

def write(path):
    with open(path, "w") as f:
        f.write("x")

def main(args):
    time.sleep(args.get("sleep", 0))
    r = {}
    r["uid"] = os.getuid()
    r["self"] = os.getpid()
    r["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    r["exists"] = {p: os.path.exists(p) for p in args["paths"]}
    r["connect"] = attempt(lambda: socket.create_connection(("127.0.0.1", args["port"]), timeout=2))
    r["netlink"] = attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))
    r["writes"] = {p: attempt(lambda p=p: write(p)) for p in ["/x", "/usr/x", "/etc/x", "/app/x", "/tmp/x", "/dev/x", "/proc/sys/kernel/hostname"]}
    libc = ctypes.CDLL(None, use_errno=True)
    r["unshare"] = errno.errorcode.get(ctypes.get_errno(), "0") if libc.unshare(0x10000000) != 0 else "ok"
    r["mount"] = errno.errorcode.get(ctypes.get_errno(), "0") if libc.mount(b"none", b"/tmp", b"tmpfs", 0, None) != 0 else "ok"
    with open("/proc/net/dev") as f:
        r["ifaces"] = sorted(l.split(":")[0].strip() for l in f.readlines()[2:])
    status = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            status[k] = v.strip()
    r["status"] = {k: status.get(k) for k in ("CapEff", "NoNewPrivs", "Seccomp")}
    r["hostname"] = socket.gethostname()
    with open("/proc/sys/user/max_user_namespaces") as f:
        r["maxuserns"] = f.read().strip()
    r["env"] = sorted(k for k in os.environ if not k.startswith("__OW_"))
    return r
`

// TestIsolation probes a worker from inside, as a plain sandbox and as a
// worker forked from its function's zygote, which must be confined the same
// way (it inherits the zygote's namespaces, identity and seccomp filter).
func TestIsolation(t *testing.T) {
	t.Run("Plain", func(t *testing.T) { testIsolation(t, Config{NoZygote: true}) })
	t.Run("Forked", func(t *testing.T) { testIsolation(t, Config{}) })
}

func testIsolation(t *testing.T, cfg Config) {
	b := newBackend(t, cfg)
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
	hostFile := filepath.Join(t.TempDir(), "host-secret")
	if err := os.WriteFile(hostFile, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GUST_TEST_LEAK", "host environment")

	f := prepare(t, b, KindPython, pyProbe, limits(0))
	paths := []string{"/etc/shadow", "/root", hostFile, "/home", "/var", "/sys", "/etc/passwd", "/usr/bin/python3"}
	params, _ := json.Marshal(map[string]any{"port": ln.Addr().(*net.TCPAddr).Port, "paths": paths})
	if !cfg.NoZygote {
		// Probe a worker forked from the zygote, which a pool that grows
		// gets.
		slow, _ := json.Marshal(map[string]any{"port": ln.Addr().(*net.TCPAddr).Port, "paths": paths, "sleep": 0.2})
		withZygote(t, f, string(slow))
	}
	res := call(t, f, string(params))
	wantStatus(t, res, gust.StatusSuccess)
	var r struct {
		UID     int
		Self    int
		Pids    []int
		Exists  map[string]bool
		Connect string
		Netlink string
		Writes  map[string]string
		Unshare string
		Mount   string
		Ifaces  []string
		Status  map[string]string
		Env     []string
		Host    string `json:"hostname"`
		MaxNS   string `json:"maxuserns"`
	}
	if err := json.Unmarshal(res.Result, &r); err != nil {
		t.Fatal(err)
	}
	t.Logf("probe: %s", res.Result)
	check := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("uid", r.UID, sandboxUID)
	if cfg.NoZygote {
		check("processes visible", r.Pids, []int{1})
	} else {
		// The zygote is PID 1; the worker sees it, itself and the zygote's
		// spare worker, nothing else (the zygote serves this function only).
		check("forked worker's pid is not 1", r.Self != 1, true)
		allowed := map[int]bool{1: true, r.Self: true, nsPid(t, spare(t, f.(*function), false)): true}
		for _, pid := range r.Pids {
			if !allowed[pid] {
				t.Errorf("processes visible %v: %d is neither the zygote, the worker nor the spare (%v)", r.Pids, pid, allowed)
			}
		}
	}
	for _, p := range []string{"/etc/shadow", "/root", hostFile, "/home", "/var", "/sys"} {
		check("exists "+p, r.Exists[p], false)
	}
	check("exists /etc/passwd (synthetic)", r.Exists["/etc/passwd"], true)
	check("exists /usr/bin/python3", r.Exists["/usr/bin/python3"], true)
	if r.Connect == "ok" {
		t.Errorf("connect to the host's 127.0.0.1 listener succeeded")
	}
	select {
	case <-accepted:
		t.Errorf("the host listener accepted a connection from the sandbox")
	default:
	}
	check("netlink socket", r.Netlink, "EPERM")
	check("interfaces", r.Ifaces, []string{"lo"})
	for p, want := range map[string]string{
		"/x": "EROFS", "/usr/x": "EROFS", "/etc/x": "EROFS", "/app/x": "EROFS", "/dev/x": "EROFS",
		"/tmp/x": "ok", "/proc/sys/kernel/hostname": "EACCES",
	} {
		check("write "+p, r.Writes[p], want)
	}
	check("unshare(CLONE_NEWUSER)", r.Unshare, "EPERM")
	check("mount", r.Mount, "EPERM")
	check("CapEff", r.Status["CapEff"], "0000000000000000")
	check("NoNewPrivs", r.Status["NoNewPrivs"], "1")
	check("Seccomp", r.Status["Seccomp"], "2")
	check("hostname", r.Host, "gust")
	check("max_user_namespaces", r.MaxNS, "0")
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err != nil || strings.TrimSpace(string(b)) == "0" {
		t.Errorf("the host's max_user_namespaces changed: %s", b)
	}
	check("environment", r.Env, []string{"HOME", "LANG", "PATH", "TMPDIR"})
}

// TestSeccompArch: the i386 ABI (int 0x80) cannot reach the kernel from
// the sandbox; reference/sandbox.md B4 shows a filter without the arch
// check let unshare through that way.
func TestSeccompArch(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("int 0x80 is an x86 matter")
	}
	cc, err := exec.LookPath("cc")
	if err != nil {
		sandboxtest.Unavailable(t, "no C compiler (cc) to build the int 0x80 program")
	}
	exe := filepath.Join(t.TempDir(), "int80")
	if out, err := exec.Command(cc, "-O2", "-o", exe, "testdata/int80/int80.c").CombinedOutput(); err != nil {
		t.Fatalf("cc: %v\n%s", err, out)
	}
	code, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend(t, Config{})
	f := prepare(t, b, KindNative, string(code), limits(0))

	res := call(t, f, `{"op":"native"}`)
	wantStatus(t, res, gust.StatusSuccess)
	if got := string(res.Result); got != fmt.Sprintf(`{"ret":%d}`, -1000-1) { // EPERM
		t.Errorf("native unshare: %s, want EPERM", got)
	}
	for _, op := range []string{"int80", "getpid"} {
		res = call(t, f, `{"op":"`+op+`"}`)
		wantStatus(t, res, gust.StatusDeveloperError)
		if !strings.Contains(strings.Join(res.Logs, "\n"), "killed by signal SIGSYS") {
			t.Errorf("%s: result %s, logs %q: want the process killed by SIGSYS", op, res.Result, res.Logs)
		}
	}
}

// TestForkBomb: the pids limit stops a fork bomb inside the sandbox, and
// closing the function ends every process of it.
func TestForkBomb(t *testing.T) {
	b := newBackend(t, Config{Pids: 32})
	f := prepare(t, b, KindPython, `
import os, time
def main(args):
    ok = fail = 0
    for i in range(300):
        try:
            pid = os.fork()
        except OSError:
            fail += 1
            continue
        if pid == 0:
            try:
                while True:
                    os.fork()
            except OSError:
                time.sleep(60)
            os._exit(0)
        ok += 1
    return {"ok": ok, "fail": fail}
`, limits(0))
	res := call(t, f, `{}`)
	wantStatus(t, res, gust.StatusSuccess)
	m := resultMap(t, res)
	if ok := m["ok"].(float64); ok >= 32 || m["fail"].(float64) < 268 {
		t.Errorf("forks: %s, want at most 31 to succeed", res.Result)
	}
}

// nsPid is a worker's pid inside its sandbox.
func nsPid(t *testing.T, w *worker) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", w.p.pid()))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(rest)
			n, _ := strconv.Atoi(f[len(f)-1])
			return n
		}
	}
	t.Fatal("no NSpid")
	return 0
}

// TestSocketFamilies: socket(2) and socketpair(2) reach the kernel only for
// AF_UNIX, AF_INET and AF_INET6; every other family (AF_APPLETALK, AF_IPX,
// AF_X25, netlink, packet, …) fails with EPERM before the kernel can load
// a protocol module for it.
func TestSocketFamilies(t *testing.T) {
	b := newBackend(t, Config{})
	f := prepare(t, b, KindPython, `
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
def outcome(ret):
    return "ok" if ret >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
def main(args):
    r = {}
    for fam in range(64):
        r["socket%d" % fam] = outcome(libc.socket(fam, 2, 0))  # SOCK_DGRAM
        fds = (ctypes.c_int * 2)()
        r["pair%d" % fam] = outcome(libc.socketpair(fam, 1, 0, fds))  # SOCK_STREAM
    return r
`, limits(0))
	res := call(t, f, `{}`)
	wantStatus(t, res, gust.StatusSuccess)
	r := map[string]string{}
	if err := json.Unmarshal(res.Result, &r); err != nil {
		t.Fatal(err)
	}
	for fam := range 64 {
		for _, op := range []string{"socket", "pair"} {
			got := r[op+strconv.Itoa(fam)]
			switch fam {
			case unix.AF_UNIX:
				if got != "ok" {
					t.Errorf("%s(AF_UNIX): %s, want ok", op, got)
				}
			case unix.AF_INET, unix.AF_INET6:
				// The kernel decides (socketpair is EOPNOTSUPP for inet,
				// IPv6 may be off): only the filter must not refuse.
				if got == "EPERM" {
					t.Errorf("%s(%d): EPERM, want it to reach the kernel", op, fam)
				}
			default:
				if got != "EPERM" {
					t.Errorf("%s(%d): %s, want EPERM", op, fam, got)
				}
			}
		}
	}
}

// TestMountsReadOnly: inside a sandbox every mount is read-only but /tmp,
// /proc and the device nodes; a submount of a read-only bind included (a
// bind remount alone leaves submounts writable).
func TestMountsReadOnly(t *testing.T) {
	// A host directory with a writable tmpfs mounted inside it, bound into
	// the sandbox read-only.
	src, err := os.MkdirTemp("", "gust-submount-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(src) }) // last: after the unmount below
	sub := filepath.Join(src, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(src, 0o755); err != nil {
		t.Fatal(err)
	}
	b := newBackend(t, Config{Mounts: func(string) []Mount { return []Mount{{Source: src, Target: "/data"}} }})
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m,mode=0777"); err != nil {
		t.Fatal(err)
	}
	// Unmounted before the backend's cleanup counts the host's mounts.
	t.Cleanup(func() { _ = unix.Unmount(sub, unix.MNT_DETACH) })

	f := prepare(t, b, KindPython, `
import errno
def main(args):
    rw = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if "rw" in fields[5].split(","):
                rw.append(fields[4])
    try:
        with open("/data/sub/x", "w") as f:
            f.write("x")
        sub = "ok"
    except OSError as e:
        sub = errno.errorcode[e.errno]
    return {"rw": sorted(rw), "sub": sub}
`, limits(0))
	res := call(t, f, `{}`)
	wantStatus(t, res, gust.StatusSuccess)
	var r struct {
		RW  []string
		Sub string
	}
	if err := json.Unmarshal(res.Result, &r); err != nil {
		t.Fatal(err)
	}
	want := []string{"/dev/full", "/dev/null", "/dev/random", "/dev/urandom", "/dev/zero", "/proc", "/tmp"}
	if fmt.Sprint(r.RW) != fmt.Sprint(want) {
		t.Errorf("writable mounts %q, want only %q", r.RW, want)
	}
	if r.Sub != "EROFS" {
		t.Errorf("write to a submount of a read-only bind: %s, want EROFS", r.Sub)
	}
}

// TestCodePermissions: code on the host is root's and the sandbox's
// group's only, not for other host users; the sandbox still reads it,
// through a stem cell's hard links too.
func TestCodePermissions(t *testing.T) {
	b := newBackend(t, Config{StemCells: 1})
	code := zipOrdered(t,
		zipItem{"__main__.py", "from lib.helper import greet\ndef main(a):\n    return {'greeting': greet()}\n", 0o644},
		zipItem{"lib/__init__.py", "", 0o644},
		zipItem{"lib/helper.py", "def greet():\n    return 'hi'\n", 0o600},
		zipItem{"bin/tool", "#!/bin/sh\n", 0o700},
	)
	waitCells(t, b, KindPython, 1)
	f := prepare(t, b, KindPython, string(code), limits(0))
	res := call(t, f, `{}`)
	wantStatus(t, res, gust.StatusSuccess)
	if res.Start != sandbox.StartPrewarmed || resultMap(t, res)["greeting"] != "hi" {
		t.Errorf("start %s result %s, want the code read from a stem cell", res.Start, res.Result)
	}
	w := f.(*function).pool.take()
	if w == nil || w.cellDir == "" {
		t.Fatal("no stem cell worker in the pool")
	}
	defer f.(*function).put(w)
	gid := uint32(b.hostUID + sandboxGID)
	for _, dir := range []string{f.(*function).code.dir, w.cellDir} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := os.Lstat(p)
			if err != nil {
				return err
			}
			st := info.Sys().(*syscall.Stat_t)
			want := os.FileMode(0o640)
			switch {
			case info.IsDir(), strings.HasSuffix(p, "/bin/tool"):
				want = 0o750
			}
			if info.Mode().Perm() != want || st.Uid != 0 || st.Gid != gid {
				t.Errorf("%s: %v %d:%d, want %v 0:%d", p, info.Mode().Perm(), st.Uid, st.Gid, want, gid)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{b.workDir, filepath.Join(b.workDir, "code"), filepath.Join(b.workDir, "cells")} {
		if st, err := os.Stat(d); err != nil || st.Mode().Perm()&0o004 != 0 {
			t.Errorf("%s: %v %v, want it not listable by others", d, st.Mode(), err)
		}
	}
}
