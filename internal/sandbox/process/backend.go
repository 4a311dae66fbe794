//go:build linux

package process

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
)

//go:embed launchers/launcher.py launchers/launcher.js
var launchers embed.FS

// Backend is the process sandbox backend. It is safe for concurrent use.
type Backend struct {
	cfg     Config
	log     *slog.Logger
	hostUID int

	workDir    string
	ownWorkDir bool
	launchDir  string // host directory with the launchers

	kinds   []*runtimeKind
	reasons map[string]string // kind → why unavailable
	support error             // why no kind can run, if so

	cgroups *cgroupHost
	roots   map[string]*rootfs // kind → what its sandboxes' root holds
	rlimits []initRlimit
	env     []string // base environment of every sandbox

	cells map[string]*cellPool

	mu      sync.Mutex
	closed  bool
	funcs   map[*function]struct{}
	workers map[*worker]struct{}
	gone    *sync.Cond // signalled when a worker leaves workers

	bg   sync.WaitGroup // background goroutines: janitor, cell refills
	stop chan struct{}
}

var _ sandbox.Backend = (*Backend)(nil)

// New returns a Backend. When the host cannot run sandboxes (not root, no
// user namespaces, no cgroups) it still returns one, whose Kinds is empty
// and whose Runtimes says why; an error means the work directory failed.
func New(cfg Config) (*Backend, error) {
	if cfg.Python == "" {
		cfg.Python = DefaultPython
	}
	if cfg.Node == "" {
		cfg.Node = DefaultNode
	}
	if cfg.StemCells == 0 {
		cfg.StemCells = DefaultStemCells
	}
	if cfg.StemCellMemoryMB <= 0 {
		cfg.StemCellMemoryMB = DefaultStemCellMemoryMB
	}
	if cfg.MaxWorkersPerFunction <= 0 {
		cfg.MaxWorkersPerFunction = DefaultMaxWorkers
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.TmpMB <= 0 {
		cfg.TmpMB = DefaultTmpMB
	}
	if cfg.Pids <= 0 {
		cfg.Pids = DefaultPids
	}
	if cfg.HostUID <= 0 {
		cfg.HostUID = DefaultHostUID
	}
	if cfg.MaxCodeBytes <= 0 {
		cfg.MaxCodeBytes = DefaultMaxCodeBytes
	}
	b := &Backend{
		cfg:     cfg,
		log:     cfg.Logger,
		hostUID: cfg.HostUID,
		funcs:   map[*function]struct{}{},
		workers: map[*worker]struct{}{},
		cells:   map[string]*cellPool{},
		stop:    make(chan struct{}),
	}
	b.gone = sync.NewCond(&b.mu)
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if err := b.setupWorkDir(); err != nil {
		return nil, err
	}
	b.kinds, b.reasons = newKinds(cfg)
	b.support = checkSupport()
	if b.support == nil {
		name := fmt.Sprintf("gust-%d-%s", os.Getpid(), newID()[:8])
		cg, err := newCgroupHost(name, cfg.CgroupParent)
		switch {
		case err != nil:
			b.support = err
		case !cg.hasMemory():
			_ = cg.remove()
			b.support = errors.New("no memory cgroup controller is available")
		default:
			b.cgroups = cg
		}
	}
	b.roots = map[string]*rootfs{}
	for _, rt := range b.kinds {
		b.roots[rt.name] = newRootfs(rt)
	}
	b.rlimits = []initRlimit{
		{Resource: unix.RLIMIT_NOFILE, Cur: 1024, Max: 1024},
		{Resource: unix.RLIMIT_CORE, Cur: 0, Max: 0},
		// Files are written to /tmp only, which is smaller anyway.
		{Resource: unix.RLIMIT_FSIZE, Cur: uint64(cfg.TmpMB) << 20, Max: uint64(cfg.TmpMB) << 20},
	}
	b.env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "TMPDIR=/tmp", "LANG=C.UTF-8"}
	for _, k := range slices.Sorted(mapKeys(cfg.Env)) {
		b.env = append(b.env, k+"="+cfg.Env[k])
	}
	if b.support == nil {
		// Each interpreter once, in a sandbox as its workers run it
		// (probe_linux.go); the ready sandboxes become stem cells.
		ready := b.probeKinds()
		for _, rt := range b.kinds {
			if rt.stem && cfg.StemCells > 0 && b.reasons[rt.name] == "" {
				b.cells[rt.name] = newCellPool(b, rt, cfg.StemCells)
			}
		}
		for kind, w := range ready {
			if c := b.cells[kind]; c != nil {
				c.idle = append(c.idle, w)
			} else {
				w.destroy()
			}
		}
		for _, c := range b.cells {
			c.fill()
		}
		b.bg.Add(1)
		go b.janitor()
	}
	return b, nil
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// setupWorkDir creates the work directory and writes the launchers.
func (b *Backend) setupWorkDir() error {
	dir := b.cfg.WorkDir
	if dir == "" {
		// Directories of backends that died without Close are removed;
		// the pid in the name tells them apart from live ones.
		tmp := os.TempDir()
		entries, _ := os.ReadDir(tmp)
		for _, e := range entries {
			if e.IsDir() && staleName(e.Name(), "gust-process-") {
				_ = os.RemoveAll(filepath.Join(tmp, e.Name()))
			}
		}
		d, err := os.MkdirTemp("", fmt.Sprintf("gust-process-%d-", os.Getpid()))
		if err != nil {
			return fmt.Errorf("process: work dir: %w", err)
		}
		dir, b.ownWorkDir = d, true
	}
	b.workDir = dir
	b.launchDir = filepath.Join(dir, "launchers")
	// Others may search the directories that lead to code (the sandbox's
	// init helper opens it as an unprivileged host uid) but not list them;
	// the code itself is for the sandbox's group only (code.go). The
	// launchers are Gust's own, public files.
	for _, d := range []struct {
		path string
		perm os.FileMode
	}{{dir, 0o711}, {filepath.Join(dir, "code"), 0o711}, {filepath.Join(dir, "cells"), 0o711}, {b.launchDir, 0o755}} {
		if err := os.MkdirAll(d.path, d.perm); err != nil {
			return fmt.Errorf("process: work dir: %w", err)
		}
		if err := os.Chmod(d.path, d.perm); err != nil { // MkdirTemp made it 0700
			return fmt.Errorf("process: work dir: %w", err)
		}
	}
	if err := checkSearchable(dir); err != nil {
		return err
	}
	entries, _ := launchers.ReadDir("launchers")
	for _, e := range entries {
		data, _ := launchers.ReadFile("launchers/" + e.Name())
		if err := writeFile(filepath.Join(b.launchDir, e.Name()), data, 0o644); err != nil {
			return fmt.Errorf("process: launchers: %w", err)
		}
	}
	return nil
}

// checkSearchable checks that others may search dir and its ancestors:
// the sandbox's init helper opens code there as an unprivileged host uid.
func checkSearchable(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("process: work dir: %w", err)
	}
	for p := abs; ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("process: work dir: %w", err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("process: work dir %s: %s is not searchable by others (chmod o+x it, or choose another WorkDir): sandboxes read code there as an unprivileged user", abs, p)
		}
		if p == "/" {
			return nil
		}
	}
}

// checkSupport says why this host cannot run sandboxes, or nil.
func checkSupport() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the process sandbox needs root (running as uid %d)", os.Geteuid())
	}
	b, err := os.ReadFile("/proc/sys/user/max_user_namespaces")
	if err == nil && strings.TrimSpace(string(b)) == "0" {
		return errors.New("user namespaces are disabled (/proc/sys/user/max_user_namespaces is 0)")
	}
	if _, err := os.Stat("/proc/self/ns/user"); err != nil {
		return errors.New("the kernel has no user namespaces")
	}
	return nil
}

// Kinds implements sandbox.Backend: the kinds that can run here.
func (b *Backend) Kinds() []string {
	var out []string
	for _, ri := range b.Runtimes() {
		if ri.Available {
			out = append(out, ri.Kind)
		}
	}
	return out
}

// Runtimes lists every kind of this backend, with its interpreter and, when
// it cannot run here, why.
func (b *Backend) Runtimes() []RuntimeInfo {
	out := make([]RuntimeInfo, 0, len(b.kinds))
	for _, rt := range b.kinds {
		ri := RuntimeInfo{Kind: rt.name, Interpreter: rt.interpreter, Available: true}
		switch {
		case b.support != nil:
			ri.Available, ri.Reason = false, b.support.Error()
		case b.reasons[rt.name] != "":
			ri.Available, ri.Reason = false, b.reasons[rt.name]
		}
		out = append(out, ri)
	}
	return out
}

func (b *Backend) kind(name string) *runtimeKind {
	for _, rt := range b.kinds {
		if rt.name == name {
			return rt
		}
	}
	return nil
}

// Prepare implements sandbox.Backend: it checks and lays out the code. Bad
// code (an unusable zip, an entry escaping the archive, a missing entry
// point, a binary for another machine) is a gust.KindInvalid error.
func (b *Backend) Prepare(ctx context.Context, spec sandbox.Spec) (sandbox.Function, error) {
	rt := b.kind(spec.Kind)
	if rt == nil {
		return nil, fmt.Errorf("process: cannot prepare kind %q", spec.Kind)
	}
	if b.support != nil {
		return nil, gust.Wrap(gust.KindUnavailable, "The process sandbox is not available on this invoker.", b.support)
	}
	if r := b.reasons[rt.name]; r != "" {
		return nil, gust.Errorf(gust.KindInvalid, "The specified runtime '%s' is not available on this invoker: %s.", rt.name, r)
	}
	if len(spec.Dirs) > 0 {
		return nil, gust.Errorf(gust.KindInvalid, "Host directories (annotation %s) are granted to wasm actions only.", sandbox.DirsAnnotation)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(filepath.Join(b.workDir, "code"), "fn-")
	if err != nil {
		return nil, fmt.Errorf("process: code dir: %w", err)
	}
	code, err := writeCode(dir, rt.name, spec.Code, b.cfg.MaxCodeBytes)
	if err == nil {
		err = fixPerms(dir, b.codeGID())
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	f := newFunction(b, rt, code, spec)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		_ = os.RemoveAll(dir)
		return nil, errClosed
	}
	b.funcs[f] = struct{}{}
	b.mu.Unlock()
	return f, nil
}

var errClosed = errors.New("process: backend closed")

// Close ends every sandbox, including those serving calls (their callers
// get an error), removes the cgroups and, if it made it, the work directory.
func (b *Backend) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	funcs := b.funcs
	b.funcs = nil
	b.mu.Unlock()
	close(b.stop)

	for _, c := range b.cells {
		c.close()
	}
	for f := range funcs {
		f.closeIdle()
		f.closeZygote() // its forked workers end with it
	}
	// Busy workers are killed here and destroyed by the call that holds
	// them, which notices at once.
	b.mu.Lock()
	for w := range b.workers {
		if w.p != nil { // nil while spawning: startWorker sees closed
			w.p.kill()
		}
	}
	b.mu.Unlock()
	b.bg.Wait()

	done := make(chan struct{})
	go func() {
		b.mu.Lock()
		for len(b.workers) > 0 {
			b.gone.Wait()
		}
		b.mu.Unlock()
		close(done)
	}()
	var errs []error
	select {
	case <-done:
	default:
		select {
		case <-done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("sandboxes still running: %w", ctx.Err()))
		}
	}
	if b.cgroups != nil && len(errs) == 0 {
		errs = append(errs, b.cgroups.remove())
	}
	if b.ownWorkDir {
		errs = append(errs, os.RemoveAll(b.workDir))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("process: close: %w", err)
	}
	return nil
}

func (b *Backend) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// janitor ends idle workers past IdleTimeout.
func (b *Backend) janitor() {
	defer b.bg.Done()
	every := min(max(b.cfg.IdleTimeout/4, 100*time.Millisecond), 30*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case now := <-t.C:
			b.mu.Lock()
			funcs := make([]*function, 0, len(b.funcs))
			for f := range b.funcs {
				funcs = append(funcs, f)
			}
			b.mu.Unlock()
			for _, f := range funcs {
				f.evictIdle(now.Add(-b.cfg.IdleTimeout))
			}
		}
	}
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// rootfs is what a sandbox's root holds besides the code and launchers.
type rootfs struct {
	mounts   []initMount
	symlinks [][2]string
	files    map[string]string
}

// newRootfs describes the minimal root of rt's sandboxes: /usr (and, on
// hosts without merged /usr, /bin, /lib…), the few /etc files programs
// read, device nodes bound from the host (mknod is not allowed in a user
// namespace), synthetic passwd, group and hosts files, and rt's
// interpreter's install prefix when it lives outside /usr (only rt's: a
// Node.js sandbox has no need of a Python tree, and one kind's unreadable
// prefix must not break the others).
func newRootfs(rt *runtimeKind) *rootfs {
	r := &rootfs{files: map[string]string{
		"/etc/passwd":   "root:x:0:0:root:/root:/usr/sbin/nologin\nsandbox:x:1000:1000:sandbox:/tmp:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"/etc/group":    "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n",
		"/etc/hosts":    "127.0.0.1\tlocalhost\n::1\tlocalhost\n",
		"/etc/hostname": "gust\n",
	}}
	r.mounts = append(r.mounts, initMount{Src: "/usr", Target: "/usr"})
	for _, d := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		p := "/" + d
		st, err := os.Lstat(p)
		switch {
		case err != nil:
		case st.Mode()&os.ModeSymlink != 0:
			if dest, err := os.Readlink(p); err == nil {
				r.symlinks = append(r.symlinks, [2]string{p, dest})
			}
		case st.IsDir():
			r.mounts = append(r.mounts, initMount{Src: p, Target: p})
		}
	}
	for _, f := range []string{"ld.so.cache", "ld.so.conf", "localtime", "nsswitch.conf", "ssl", "alternatives", "mime.types"} {
		p := "/etc/" + f
		if st, err := os.Stat(p); err == nil {
			r.mounts = append(r.mounts, initMount{Src: p, Target: p, File: !st.IsDir()})
		}
	}
	if rt.interpreter != "" {
		if prefix := interpreterPrefix(rt.interpreter); prefix != "" {
			r.mounts = append(r.mounts, initMount{Src: prefix, Target: prefix})
		}
	}
	for _, d := range []string{"null", "zero", "full", "random", "urandom"} {
		r.mounts = append(r.mounts, initMount{Src: "/dev/" + d, Target: "/dev/" + d, File: true, Writable: true})
	}
	r.symlinks = append(r.symlinks,
		[2]string{"/dev/fd", "/proc/self/fd"},
		[2]string{"/dev/stdin", "/proc/self/fd/0"},
		[2]string{"/dev/stdout", "/proc/self/fd/1"},
		[2]string{"/dev/stderr", "/proc/self/fd/2"},
		// POSIX shared memory and semaphores (Python's multiprocessing)
		// live in /dev/shm: the private /tmp serves.
		[2]string{"/dev/shm", "/tmp"},
	)
	return r
}

// cgroupLimits derives a sandbox's cgroup limits from its memory limit.
func (b *Backend) cgroupLimits(memoryMB int) cgroupLimits {
	l := cgroupLimits{
		MemoryBytes: int64(memoryMB) << 20,
		Pids:        b.cfg.Pids,
		// CPU shares follow memory, as OpenWhisk does: 256 MB = the default
		// weight.
		CPUWeight: max(memoryMB*100/256, 1),
	}
	if b.cfg.CPUs > 0 {
		l.CPUQuota = time.Duration(b.cfg.CPUs * float64(100*time.Millisecond))
	}
	return l
}

// codeGID is the host gid of the sandbox's group (gid 1000 inside), which
// owns the code on the host (code.go).
func (b *Backend) codeGID() int { return b.hostUID + sandboxGID }

// sandboxEnv is the environment of a new sandbox.
func (b *Backend) sandboxEnv() []string { return slices.Clone(b.env) }
