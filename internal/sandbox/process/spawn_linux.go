package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Identity inside the sandbox. The init runs as uid 0 of the new user
// namespace, mapped to an unused host uid (HostUID); the payload runs as
// 1000, mapped to HostUID+1000. Neither is root on the host, and files the
// sandbox creates belong to neither of the platform's users.
const (
	sandboxUID = 1000
	sandboxGID = 1000
)

// spawnOpts is one sandboxed process to start.
type spawnOpts struct {
	id     string
	argv   []string
	env    []string
	dir    string
	mounts []Mount // besides the root's
	limits cgroupLimits
	// ctrl gives the payload a control socket at fd 5 (fdCtrl), through
	// which the host can later ask it to fork workers (a zygote).
	ctrl bool
	// hideProtocol: see initSpec.HideProtocol.
	hideProtocol bool
	root         *rootfs // what the root holds besides mounts
}

// proc is a running sandbox seen from the host: the payload process (PID 1
// inside) and the host ends of its pipes, all non-blocking. A worker forked
// by a zygote is a proc too, without cmd: the zygote is its parent, so the
// host watches it through a pidfd and learns its exit status from the
// zygote (zygote_linux.go).
type proc struct {
	cmd    *exec.Cmd
	cg     *cgroup
	stdin  int
	stdout int
	stderr int
	result int
	ctrl   *os.File // host end of the control socket (spawnOpts.ctrl); nil if none

	exited  chan struct{} // closed once the process is reaped (forked: once it exited)
	waitErr error         // valid after exited
	removed bool          // the cgroups are gone (destroy ran)

	// Forked workers only.
	forkedPid int           // in the host's pid namespace
	pidfd     *os.File      // the process, for signals and to see it exit
	status    *os.File      // socket on which the zygote reports its exit status
	reaped    chan struct{} // closed when the zygote reported (or can no longer)
	ended     string        // how it ended, valid after reaped; "" if unknown
}

// pid is the process's id in the host's pid namespace.
func (p *proc) pid() int {
	if p.cmd != nil && p.cmd.Process != nil {
		return p.cmd.Process.Pid
	}
	return p.forkedPid
}

// makePipe returns a pipe whose host end (a non-blocking fd: the call loop
// polls it) reads when hostReads, else writes; the child's end is blocking,
// as programs expect of their stdio. Both are close-on-exec.
func makePipe(hostReads bool) (host int, child *os.File, err error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return -1, nil, fmt.Errorf("pipe: %w", err)
	}
	h, c := fds[0], fds[1]
	if !hostReads {
		h, c = fds[1], fds[0]
	}
	if err := unix.SetNonblock(h, true); err != nil {
		unix.Close(h)
		unix.Close(c)
		return -1, nil, err
	}
	return h, os.NewFile(uintptr(c), "pipe"), nil
}

// stdioPipes makes the four pipes of a worker: stdin, stdout, stderr and the
// result pipe (fd 3). It stores the host ends in p and returns the child's.
func (p *proc) stdioPipes() ([]*os.File, error) {
	var child []*os.File
	for _, x := range []struct {
		fd        *int
		hostReads bool
	}{{&p.stdin, false}, {&p.stdout, true}, {&p.stderr, true}, {&p.result, true}} {
		h, c, err := makePipe(x.hostReads)
		if err != nil {
			for _, f := range child {
				f.Close()
			}
			return nil, err
		}
		*x.fd = h
		child = append(child, c)
	}
	return child, nil
}

// spawn starts a sandbox running opts.argv. It returns once the payload has
// been exec'd (or the setup failed), with the process in its cgroups.
func (b *Backend) spawn(ctx context.Context, opts spawnOpts) (_ *proc, err error) {
	cg, err := b.cgroups.newCgroup(opts.id, opts.limits)
	if err != nil {
		return nil, err
	}
	p := &proc{cg: cg, stdin: -1, stdout: -1, stderr: -1, result: -1, exited: make(chan struct{})}
	var childFiles []*os.File
	defer func() {
		for _, f := range childFiles {
			_ = f.Close()
		}
		if err != nil {
			p.destroy()
		}
	}()
	childFiles, err = p.stdioPipes()
	if err != nil {
		return nil, err
	}
	stdin, stdout, stderr, result := childFiles[0], childFiles[1], childFiles[2], childFiles[3]
	extra := []*os.File{result}
	socks, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	// Non-blocking, so that the File is pollable and honours deadlines.
	if err := unix.SetNonblock(socks[0], true); err != nil {
		unix.Close(socks[0])
		unix.Close(socks[1])
		return nil, err
	}
	initHost := os.NewFile(uintptr(socks[0]), "init")
	defer initHost.Close()
	initChild := os.NewFile(uintptr(socks[1]), "init")
	childFiles = append(childFiles, initChild)
	extra = append(extra, initChild)
	if opts.ctrl {
		host, child, err := ctrlSocket()
		if err != nil {
			return nil, err
		}
		p.ctrl = host
		childFiles = append(childFiles, child)
		extra = append(extra, child) // fd 5
	}

	spec, err := b.initSpec(opts)
	if err != nil {
		return nil, err
	}
	cgfd, err := cg.v2FD()
	if err != nil {
		return nil, err
	}
	if cgfd >= 0 {
		defer unix.Close(cgfd)
	}

	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{initArg0},
		Env:        []string{}, // never the host's environment
		Stdin:      stdin,
		Stdout:     stdout,
		Stderr:     stderr,
		ExtraFiles: extra,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID | syscall.CLONE_NEWNS |
				syscall.CLONE_NEWNET | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS | syscall.CLONE_NEWCGROUP,
			UidMappings: []syscall.SysProcIDMap{
				{ContainerID: 0, HostID: b.hostUID, Size: 1},
				{ContainerID: sandboxUID, HostID: b.hostUID + sandboxUID, Size: 1},
			},
			GidMappings: []syscall.SysProcIDMap{
				{ContainerID: 0, HostID: b.hostUID, Size: 1},
				{ContainerID: sandboxGID, HostID: b.hostUID + sandboxGID, Size: 1},
			},
			GidMappingsEnableSetgroups: false,
			// Without it the child keeps host uid 0, which is unmapped in
			// the new namespace: it would exec with no capabilities and
			// fail its first mount (B1).
			Credential: &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true},
			Pdeathsig:  syscall.SIGKILL,
		},
	}
	if cgfd >= 0 {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = cgfd
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	p.cmd = cmd
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	// The spec goes first and the v1 cgroup attach second, so the init's
	// set-up (the mounts) overlaps the attach, which waits for an RCU grace
	// period in the kernel (several ms). The init waits for the end of the
	// stream, sent once the attach is done, before it execs the payload: no
	// function code runs outside its cgroups.
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	_ = initHost.SetDeadline(deadline)
	if _, err := initHost.Write(append(data, '\n')); err != nil {
		return nil, fmt.Errorf("send sandbox spec: %w", err)
	}
	attachErr := cg.attach(cmd.Process.Pid)
	for _, f := range childFiles {
		_ = f.Close()
	}
	childFiles = nil
	if attachErr == nil {
		if err := unix.Shutdown(socks[0], unix.SHUT_WR); err != nil {
			return nil, fmt.Errorf("send sandbox spec: %w", err)
		}
	} else {
		// The init never gets its go-ahead; end it, and report its own
		// error if it failed first (the attach then fails for that).
		p.kill()
	}
	msg, err := io.ReadAll(initHost)
	switch {
	case len(msg) > 0:
		return nil, fmt.Errorf("sandbox setup: %s", msg)
	case attachErr != nil:
		return nil, attachErr
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, fmt.Errorf("sandbox setup: %w", context.DeadlineExceeded)
	case err != nil:
		return nil, fmt.Errorf("sandbox setup: %w", err)
	}
	return p, nil
}

// initSpec builds the init helper's spec for opts.
func (b *Backend) initSpec(opts spawnOpts) (*initSpec, error) {
	spec := &initSpec{
		Symlinks: opts.root.symlinks,
		Files:    opts.root.files,
		TmpBytes: int64(b.cfg.TmpMB) << 20,
		Hostname: "gust",
		UID:      sandboxUID,
		GID:      sandboxGID,
		Rlimits:  b.rlimits,
		Argv:     opts.argv,
		Env:      opts.env,
		Dir:      opts.dir,
		KeepCtrl: opts.ctrl,

		HideProtocol: opts.hideProtocol,
	}
	spec.Mounts = append(spec.Mounts, opts.root.mounts...)
	for _, m := range opts.mounts {
		st, err := os.Stat(m.Source)
		if err != nil {
			return nil, fmt.Errorf("mount source: %w", err)
		}
		spec.Mounts = append(spec.Mounts, initMount{Src: m.Source, Target: m.Target, File: !st.IsDir(), Writable: m.Writable})
	}
	return spec, nil
}

// kill ends the sandbox: PID 1 first (the kernel then ends its whole pid
// namespace), then anything left in the cgroup. A forked worker is killed
// through its pidfd, which cannot hit a recycled pid.
func (p *proc) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	if p.pidfd != nil {
		if rc, err := p.pidfd.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) { _ = unix.PidfdSendSignal(int(fd), unix.SIGKILL, nil, 0) })
		}
	}
	if p.cg != nil {
		p.cg.kill()
	}
}

// destroy kills the sandbox, waits for it and frees its cgroups and pipes.
func (p *proc) destroy() error {
	p.kill()
	if p.cmd != nil || p.pidfd != nil {
		<-p.exited
	}
	for _, fd := range []*int{&p.stdin, &p.stdout, &p.stderr, &p.result} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
	p.closeCtrl()
	if p.status != nil {
		// Wait briefly for the zygote to reap it: the cgroup is removable
		// once the process is gone, and the zygote keeps no zombie.
		select {
		case <-p.reaped:
		case <-time.After(time.Second):
		}
		_ = p.status.Close()
	}
	if p.pidfd != nil {
		_ = p.pidfd.Close()
	}
	if p.cg == nil || p.removed {
		return nil
	}
	// p.cg stays set: Backend.Close may still be calling kill.
	p.removed = true
	return p.cg.remove()
}

// closeCtrl closes the host end of the control socket, if any.
func (p *proc) closeCtrl() {
	if p.ctrl != nil {
		_ = p.ctrl.Close()
	}
}

// exitStatus describes how the process ended, for the log.
func (p *proc) exitStatus() string {
	if p.status != nil {
		select {
		case <-p.reaped:
		case <-time.After(time.Second):
		}
		if p.ended == "" {
			return "ended"
		}
		return p.ended
	}
	var ee *exec.ExitError
	if !errors.As(p.waitErr, &ee) {
		return "exited"
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	switch {
	case !ok:
		return ee.Error()
	case ws.Signaled():
		return "killed by signal " + unix.SignalName(ws.Signal())
	default:
		return fmt.Sprintf("exited with code %d", ws.ExitStatus())
	}
}
