package process

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The init helper. A sandbox starts as a re-exec of our own binary
// (/proc/self/exe) with argv[0] = initArg0, cloned into fresh user, pid,
// mount, network, IPC, UTS and cgroup namespaces, as uid 0 of its user
// namespace (which gives it the capabilities to set the sandbox up, and
// nothing on the host). It reads its spec from fd 4, builds the minimal
// root, drops to uid 1000, installs seccomp and execs the payload, which
// becomes PID 1 of the sandbox: when it exits the kernel ends everything
// else in the pid namespace.
//
// fd 4 is a socket: the host writes the spec as one line, attaches the
// process to its v1 cgroups and then shuts down its side; the init builds
// the root meanwhile and waits for that end of stream before it execs the
// payload, so no function code runs outside its cgroups. The init writes
// an error there if setup fails. The socket is close-on-exec, so on
// success the host reads EOF the moment the payload has been exec'd.

// initArg0 is the argv[0] that makes MaybeRunInit take over.
const initArg0 = "gust-sandbox-init"

// File descriptors of the init helper.
const (
	fdResult = 3 // the payload's result pipe, inherited
	fdInit   = 4 // spec in, error out
	// fdCtrl (5) is a zygote-capable payload's control socket, inherited.
)

// initSpec is what the init helper does, in order.
type initSpec struct {
	Mounts   []initMount
	Symlinks [][2]string       // link path in the new root → target
	Files    map[string]string // synthetic files in the new root, e.g. /etc/passwd
	TmpBytes int64             // size of the private /tmp
	Hostname string
	UID, GID int
	Rlimits  []initRlimit
	Argv     []string
	Env      []string
	Dir      string
	KeepCtrl bool // fd 5 is the payload's control socket: keep it open
	// HideProtocol moves the request pipe (fd 0) and the result pipe (fd 3)
	// to new descriptors, whose numbers are appended to Argv, and leaves
	// /dev/null as stdin and fd 3 closed: code the payload loads cannot read
	// requests or write replies through the usual descriptors. (Node.js
	// cannot dup a descriptor itself; the Python launcher does this itself.)
	HideProtocol bool
}

// initMount is a read-only (unless Writable) bind mount of host path Src.
type initMount struct {
	Src      string
	Target   string
	File     bool // the source is not a directory
	Writable bool
}

type initRlimit struct {
	Resource int
	Cur, Max uint64
}

// MaybeRunInit runs the sandbox init helper and never returns when this
// process was started as one; otherwise it returns at once. The gust
// binary's main and test binaries' TestMain must call it first, before
// anything else starts.
func MaybeRunInit() {
	if len(os.Args) == 0 || os.Args[0] != initArg0 {
		return
	}
	// Every step from here to execve must happen on one thread: no_new_privs
	// is per thread, and the payload is exec'd by the thread that set it.
	runtime.LockOSThread()
	err := runInit()
	// Reached only on failure: tell the host, which reports a platform error.
	msg := []byte(err.Error())
	_, _ = unix.Write(fdInit, msg)
	os.Exit(125)
}

func runInit() error {
	// The host sends nothing after the line until it shuts down, so the
	// buffered reader takes no more than the spec.
	r := bufio.NewReader(os.NewFile(fdInit, "init"))
	b, err := r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	var spec initSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("decode spec: %w", err)
	}
	if err := buildRoot(&spec); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	for _, r := range spec.Rlimits {
		if err := unix.Setrlimit(r.Resource, &unix.Rlimit{Cur: r.Cur, Max: r.Max}); err != nil {
			return fmt.Errorf("setrlimit %d: %w", r.Resource, err)
		}
	}
	// Dropping to a non-zero uid drops every capability: from here on the
	// process is an ordinary user in a user namespace it does not own.
	if err := syscall.Setresgid(spec.GID, spec.GID, spec.GID); err != nil {
		return fmt.Errorf("setresgid: %w", err)
	}
	if err := syscall.Setresuid(spec.UID, spec.UID, spec.UID); err != nil {
		return fmt.Errorf("setresuid: %w", err)
	}
	// As the payload's identity: the code directory is for its group only
	// (code.go), not for the init's uid.
	if err := os.Chdir(spec.Dir); err != nil {
		return fmt.Errorf("chdir: %w", err)
	}
	// The credential change cleared the parent-death signal; set it again
	// so that the sandbox dies with the platform.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("pdeathsig: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	// Everything but stdio, the result pipe and the control socket closes
	// at exec: the spec socket (the host then reads EOF: success) and the
	// mount sources.
	const closeRangeCloexec = 1 << 2
	from := uint(fdInit)
	if spec.KeepCtrl {
		if err := unix.CloseRange(fdInit, fdInit, closeRangeCloexec); err != nil {
			return fmt.Errorf("close_range: %w", err)
		}
		from = fdCtrl + 1
	}
	if err := unix.CloseRange(from, ^uint(0), closeRangeCloexec); err != nil {
		return fmt.Errorf("close_range: %w", err)
	}
	if spec.HideProtocol {
		in, out, err := hideProtocol()
		if err != nil {
			return err
		}
		spec.Argv = append(spec.Argv, strconv.Itoa(in), strconv.Itoa(out))
	}
	// The go-ahead: the host has attached us to our cgroups.
	if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		return fmt.Errorf("wait for the cgroup attach: unexpected %d bytes, %v", n, err)
	}
	if err := loadSeccomp(); err != nil {
		return err
	}
	path := spec.Argv[0]
	err = unix.Exec(path, spec.Argv, spec.Env)
	return fmt.Errorf("exec %s: %w", path, err)
}

// hideProtocol moves stdin and the result pipe to new descriptors, which
// survive the exec, and returns them: the lowest free ones from fdHidden
// (F_DUPFD), not fixed numbers, since a dup2 onto a fixed number could
// close a descriptor the Go runtime still uses (its poller) before the exec.
func hideProtocol() (in, out int, err error) {
	if in, err = unix.FcntlInt(0, unix.F_DUPFD, fdHidden); err != nil {
		return -1, -1, fmt.Errorf("hide stdin: %w", err)
	}
	if out, err = unix.FcntlInt(fdResult, unix.F_DUPFD, fdHidden); err != nil {
		return -1, -1, fmt.Errorf("hide the result pipe: %w", err)
	}
	null, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, -1, fmt.Errorf("hide stdin: %w", err)
	}
	err = unix.Dup3(null, 0, 0)
	unix.Close(null)
	if err != nil {
		return -1, -1, fmt.Errorf("hide stdin: %w", err)
	}
	if err := unix.Close(fdResult); err != nil {
		return -1, -1, fmt.Errorf("hide the result pipe: %w", err)
	}
	return in, out, nil
}

// fdHidden is the lowest descriptor hideProtocol uses.
const fdHidden = 10

// newRoot is where the sandbox's root is assembled, in the init's private
// mount namespace: a tmpfs over /tmp, which exists on every host and is
// reachable by anyone, so the helper (root only in its user namespace,
// not on host files) can reach it. Sources are opened before it is
// mounted, so the host's /tmp being hidden does not matter.
const newRoot = "/tmp"

func buildRoot(spec *initSpec) error {
	// Nothing mounted here may propagate back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	// Open every source before the new root hides /tmp. (They cannot be
	// opened by the host and passed down: a bind mount's source must be in
	// the caller's mount namespace, and the host's descriptors are in the
	// host's.) The helper is root only in its user namespace, so the paths
	// must be searchable by anyone; New checks that for its work directory.
	srcs := make([]int, len(spec.Mounts))
	for i, m := range spec.Mounts {
		fd, err := unix.Open(m.Src, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", m.Src, err)
		}
		srcs[i] = fd
	}
	defer func() {
		for _, fd := range srcs {
			unix.Close(fd)
		}
	}()
	if err := unix.Mount("tmpfs", newRoot, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m,mode=0755"); err != nil {
		return fmt.Errorf("mount root tmpfs: %w", err)
	}
	for _, d := range []string{"dev", "proc", "tmp", "etc", ".old"} {
		if err := os.MkdirAll(filepath.Join(newRoot, d), 0o755); err != nil {
			return err
		}
	}
	for i, m := range spec.Mounts {
		src := fmt.Sprintf("/proc/self/fd/%d", srcs[i])
		if err := bindMount(src, filepath.Join(newRoot, m.Target), m.File, m.Writable); err != nil {
			return err
		}
	}
	for _, l := range spec.Symlinks {
		p := filepath.Join(newRoot, l[0])
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(l[1], p); err != nil {
			return fmt.Errorf("symlink %s: %w", l[0], err)
		}
	}
	for name, content := range spec.Files {
		if err := os.WriteFile(filepath.Join(newRoot, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	tmpOpts := fmt.Sprintf("size=%d,mode=1777", spec.TmpBytes)
	if err := unix.Mount("tmpfs", filepath.Join(newRoot, "tmp"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, tmpOpts); err != nil {
		return fmt.Errorf("mount /tmp: %w", err)
	}
	// A fresh proc for the new pid namespace: it shows the sandbox's
	// processes only.
	if err := unix.Mount("proc", filepath.Join(newRoot, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	if err := unix.PivotRoot(newRoot, filepath.Join(newRoot, ".old")); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	// Detach the host's whole mount tree: from here the sandbox cannot even
	// name a host path.
	if err := unix.Unmount("/.old", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	if err := os.Remove("/.old"); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("remount / read-only: %w", err)
	}
	// No nested user namespaces, whatever the syscall ABI used to ask
	// (seccomp covers the native one; this covers everything). The value is
	// per user namespace: the host's is untouched.
	if err := os.WriteFile("/proc/sys/user/max_user_namespaces", []byte("0"), 0); err != nil {
		return fmt.Errorf("max_user_namespaces: %w", err)
	}
	return nil
}

// bindMount binds src on target, with every mount beneath it (MS_REC), and
// makes the whole tree nosuid and, unless writable, read-only and nodev.
// mount_setattr(AT_RECURSIVE) reaches each submount (a read-only bind
// remount changes the top mount only, so a submount under, say, /usr
// would stay writable), and it changes only the attributes it names, so
// the flags the source has locked in a user namespace (nosuid, nodev,
// noexec, atime) are kept as they must be.
func bindMount(src, target string, file, writable bool) error {
	if file {
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(target, nil, 0o644); err != nil {
			return fmt.Errorf("mount point %s: %w", target, err)
		}
	} else if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", strings.TrimPrefix(target, newRoot), err)
	}
	// Writable binds are the device nodes and Config.Mounts that ask for
	// it: nodev would break the former.
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID}
	if !writable {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NODEV
	}
	if err := unix.MountSetattr(unix.AT_FDCWD, target, unix.AT_RECURSIVE, &attr); err != nil {
		return fmt.Errorf("mount_setattr %s: %w", strings.TrimPrefix(target, newRoot), err)
	}
	return nil
}
