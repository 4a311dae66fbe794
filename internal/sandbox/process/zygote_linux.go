package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gust-faas/gust/internal/sandbox"
)

// Python zygotes (reference/sandbox.md B6). A function called one call at
// a time has one plain worker. When its pool grows (a new worker is needed
// while other calls hold workers), a sandbox (a stem cell, else a new one)
// loads the function's code as usual and then, instead of serving calls,
// becomes the function's fork server, and every new worker is forked from
// it: the interpreter is up and the code imported, so a new worker costs a
// fork and a few host-side steps, not a sandbox and an interpreter start
// and the imports.
//
// The protocol, on the zygote's control socket (fd 5, a SOCK_SEQPACKET
// unix socket the host gave it at spawn):
//
//	host → zygote: "F" + SCM_RIGHTS [status socket, stdin, stdout, stderr, result]
//	child → host, on the status socket: "H" (the kernel adds the child's
//	    credentials: SO_PASSCRED gives its pid in the host's pid namespace)
//	host: opens a pidfd on it and moves it into a cgroup of its own with
//	    the function's limits; when a call needs it, answers "G". Until
//	    then the child waits, so none of the function's code runs outside
//	    its cgroup
//	zygote → host, on the status socket, once it reaped the child:
//	    "X<wait status>", or "E<message>" if fork failed
//
// Each zygote keeps one such child forked ahead, waiting for its "G" (the
// spare): moving a process into a cgroup after a quiet spell waits for an
// RCU grace period (tens of milliseconds), which the spare pays off the
// call's path.
//
// Isolation: a zygote serves one function, so one tenant; it holds only
// the state of loading that function's code (it never runs a call), and
// each child starts from that state, as a new worker would. The children
// share the zygote's namespaces: its /tmp, its pid namespace (they see
// each other in /proc; killing one another is possible, ptrace is not),
// its network namespace; each has its own cgroup (memory, pids, CPU),
// pipes and logs. Memory the zygote had before the fork stays charged to
// the zygote's cgroup, shared copy-on-write; what a child writes is
// charged to the child's.
//
// Code that starts threads while loading is not forked (a fork copies only
// the calling thread; locks held by the others would stay held): the
// launcher says so at init and serves calls itself, and the function's
// workers are started without a zygote from then on.

// zygote is a function's fork server.
type zygote struct {
	f *function
	w *worker // the sandbox; w.p.ctrl is the control socket

	// Guarded by the function's zmu.
	forking  int       // fork requests in progress
	children int       // live workers forked from it
	lastUsed time.Time // last fork
	retired  bool      // no longer the function's: ends when unused
	ended    bool      // destroyed, or being destroyed
	// spare is a worker forked ahead, already in its own cgroup, waiting
	// for "G"; not counted in children. refilling: one is being forked.
	spare     *worker
	refilling bool
}

// errZygoteGone means the zygote died or was closed before it forked.
var errZygoteGone = errors.New("process: the zygote is gone")

// ctrlSocket makes the control socket of a zygote-capable sandbox: the
// host's end (non-blocking, so that sends through the File are safe
// against a concurrent Close) and the child's.
func ctrlSocket() (host, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "ctrl"), os.NewFile(uintptr(fds[1]), "ctrl"), nil
}

// maxForkFailures is how many calls in a row may fail to get a forked
// worker before the function gives up its zygote for plain workers.
const maxForkFailures = 3

// startForked readies a worker forked from the function's zygote, starting
// the zygote first when there is none. handled is false when the function
// runs without a zygote, or the fork failed: the caller starts a plain
// worker. fork calls taken (see start).
func (f *function) startForked(ctx context.Context, deadline *time.Time, logs *sandbox.LogBuffer, res *sandbox.Result, taken func()) (w *worker, handled bool, err error) {
	t0 := time.Now()
	for attempt := 0; attempt < 2; attempt++ {
		z, plain, ok, err := f.zygote(ctx, deadline, logs, res)
		switch {
		case err != nil:
			return nil, true, err
		case !ok:
			return nil, false, nil
		case z == nil: // plain is this call's worker, or nil: a developer error in res
			return plain, true, nil
		}
		w, err := f.fork(ctx, z, taken)
		if err == nil {
			f.zmu.Lock()
			f.forkFailures = 0
			f.zmu.Unlock()
			res.InitTime = time.Since(t0)
			return w, true, nil
		}
		if errors.Is(err, errClosed) {
			return nil, true, err
		}
		// Whatever broke, this zygote is not trusted again; it ends once
		// its workers have (they may be serving calls).
		f.b.log.Warn("process: fork from zygote failed", "sandbox", z.w.id, "err", err)
		f.retire(z)
		if !errors.Is(err, errZygoteGone) {
			break
		}
		// It died between calls: the next attempt starts a new one.
	}
	f.zmu.Lock()
	f.forkFailures++
	if f.forkFailures >= maxForkFailures && !f.noZygote {
		f.noZygote = true
		f.b.log.Warn("process: forks keep failing; the function's workers start without a zygote")
	}
	f.zmu.Unlock()
	return nil, false, nil
}

// zygote returns the function's running zygote, with a fork request
// counted, starting it when there is none; concurrent calls wait for one
// start. It sets res.Start: how the zygote came to be for the call that
// started it, prewarmed for the others.
//
//   - err: the platform failed;
//   - !ok: the function runs without a zygote;
//   - z: fork from it;
//   - plain: the code cannot be forked, and the sandbox that loaded it is
//     this call's worker;
//   - neither: the code failed to load; res holds the developer error.
func (f *function) zygote(ctx context.Context, deadline *time.Time, logs *sandbox.LogBuffer, res *sandbox.Result) (z *zygote, plain *worker, ok bool, err error) {
	f.zmu.Lock()
	for {
		if f.noZygote {
			f.zmu.Unlock()
			return nil, nil, false, nil
		}
		if z := f.zyg; z != nil {
			if !z.w.dead() {
				z.forking++
				f.zmu.Unlock()
				res.Start = sandbox.StartPrewarmed
				return z, nil, true, nil
			}
			f.zmu.Unlock()
			f.retire(z) // dead: its workers died with it
			f.zmu.Lock()
			continue
		}
		if f.zstart == nil {
			break
		}
		starting := f.zstart
		f.zmu.Unlock()
		select {
		case <-starting:
		case <-ctx.Done():
			return nil, nil, true, context.Cause(ctx)
		}
		// Waiting for another call's sandbox is the platform's time.
		*deadline = time.Now().Add(f.limits.Timeout)
		f.zmu.Lock()
	}
	starting := make(chan struct{})
	f.zstart = starting
	f.zmu.Unlock()

	// A zygote is an extra process: it starts only with memory free now,
	// never with a call's reservation (that call would then wait for
	// memory itself).
	w, err := f.startPlain(ctx, deadline, logs, res, f.zygoteMsg, func() error {
		if !f.budget.TryAcquire() {
			return errNoRoom
		}
		return nil
	})

	f.zmu.Lock()
	defer f.zmu.Unlock()
	f.zstart = nil
	close(starting)
	switch {
	case errors.Is(err, errNoRoom):
		return nil, nil, false, nil // this time without a zygote
	case err != nil:
		return nil, nil, true, err
	case w == nil:
		return nil, nil, true, nil
	case !w.isZygote:
		f.noZygote = true
		f.b.log.Debug("process: code starts threads at load; no zygote", "sandbox", w.id)
		return nil, w, true, nil
	}
	z = &zygote{f: f, w: w, forking: 1, lastUsed: time.Now()}
	f.zyg = z
	return z, nil, true, nil
}

// fork gives a new worker from z; the caller counted the request. It is
// the spare when one waits, else a new fork; either way a new spare is then
// forked in the background. (Moving a process into a cgroup takes a lock
// whose first writer after a quiet spell waits for an RCU grace period,
// tens of milliseconds: the spare has paid it off the call's path. This
// is Android's pool of pre-forked processes, for the same reason.)
//
// taken is called once the spare is out of z (Idle counts it until then)
// or, without one, as the fork starts.
func (f *function) fork(ctx context.Context, z *zygote, taken func()) (*worker, error) {
	f.zmu.Lock()
	spare := z.spare
	z.spare = nil
	f.zmu.Unlock()
	taken()
	if spare != nil {
		if !spare.dead() && spare.p.goAhead() == nil {
			spare.parent = z
			f.forkDone(z, true)
			go f.refillSpare(z)
			return spare, nil
		}
		spare.destroy()
	}
	w, err := f.forkWorker(z, func() error { return f.budget.Acquire(ctx) })
	if err == nil {
		if err = w.p.goAhead(); err != nil {
			w.destroy()
			err = fmt.Errorf("process: forked worker: %w", err)
		}
	}
	if err != nil {
		f.forkDone(z, false)
		return nil, err
	}
	w.parent = z
	f.forkDone(z, true)
	go f.refillSpare(z)
	return w, nil
}

// errNoRoom: the invoker has no memory free now for a process made ahead
// of need (a zygote, a spare worker).
var errNoRoom = errors.New("process: no memory free for a zygote or a spare worker")

// forkWorker forks a worker from z, in its own cgroup, waiting for "G".
// reserve takes the worker's memory from the function's budget first; the
// worker gives it back when it ends.
func (f *function) forkWorker(z *zygote, reserve func() error) (*worker, error) {
	if err := reserve(); err != nil {
		return nil, err
	}
	w, err := f.forkReserved(z)
	if err != nil {
		f.budget.Release()
		return nil, err
	}
	w.release = f.budget.Release
	return w, nil
}

func (f *function) forkReserved(z *zygote) (*worker, error) {
	b := f.b
	w := &worker{
		b: b, rt: f.rt, id: newID(),
		resBuf:  make([]byte, 0, 4096),
		scratch: make([]byte, 64<<10),
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, errClosed
	}
	b.workers[w] = struct{}{}
	b.mu.Unlock()

	p, err := b.forkProc(z.w.p, w.id, f.cg, time.Now().Add(sandboxSetupTimeout))
	return b.adopt(w, p, err)
}

// spareWorker returns the running zygote's spare worker, or nil; with take,
// it is the caller's to end.
func (f *function) spareWorker(take bool) *worker {
	f.zmu.Lock()
	defer f.zmu.Unlock()
	z := f.zyg
	if z == nil || z.spare == nil {
		return nil
	}
	s := z.spare
	if take {
		z.spare = nil
	}
	return s
}

// refillSpare forks z's spare worker, unless it has one or is ending.
func (f *function) refillSpare(z *zygote) {
	f.zmu.Lock()
	if z.retired || z.ended || z.spare != nil || z.refilling {
		f.zmu.Unlock()
		return
	}
	z.refilling = true
	z.forking++
	f.zmu.Unlock()
	// A spare is made ahead of need: only with memory free now.
	w, err := f.forkWorker(z, func() error {
		if !f.budget.TryAcquire() {
			return errNoRoom
		}
		return nil
	})
	f.zmu.Lock()
	z.refilling = false
	z.forking--
	keep := err == nil && !z.retired && !z.ended
	if keep {
		w.idleSince = time.Now()
		z.spare = w
	}
	end := z.unusedLocked()
	f.zmu.Unlock()
	if err == nil && !keep {
		w.destroy()
	}
	if end {
		z.destroy()
	}
	if err != nil && !errors.Is(err, errClosed) && !errors.Is(err, errNoRoom) {
		f.b.log.Debug("process: forking a spare worker", "sandbox", z.w.id, "err", err)
	}
}

// destroy ends the zygote and its spare. Workers forked from it end too
// (their pid namespace ends); their holders destroy them.
func (z *zygote) destroy() {
	z.f.zmu.Lock()
	spare := z.spare
	z.spare = nil
	z.f.zmu.Unlock()
	if spare != nil {
		spare.destroy()
	}
	z.w.destroy()
}

func (f *function) forkDone(z *zygote, forked bool) {
	f.zmu.Lock()
	z.forking--
	if forked {
		z.children++
		z.lastUsed = time.Now()
	}
	end := z.unusedLocked()
	f.zmu.Unlock()
	if end {
		z.destroy()
	}
}

// childGone is called when a worker forked from z is destroyed.
func (z *zygote) childGone() {
	f := z.f
	f.zmu.Lock()
	z.children--
	end := z.unusedLocked()
	f.zmu.Unlock()
	if end {
		z.destroy()
	}
}

// unusedLocked reports whether a retired zygote is now to be ended (by the
// caller, once it released zmu), and marks it so.
func (z *zygote) unusedLocked() bool {
	if !z.retired || z.ended || z.children > 0 || z.forking > 0 {
		return false
	}
	z.ended = true
	return true
}

// retire detaches z from the function. It ends now if it is dead or
// unused, else when its last worker or fork request does: ending a zygote
// ends its workers, which may be serving calls.
func (f *function) retire(z *zygote) {
	f.zmu.Lock()
	if f.zyg == z {
		f.zyg = nil
	}
	z.retired = true
	end := !z.ended && z.w.dead()
	if end {
		z.ended = true
	} else {
		end = z.unusedLocked()
	}
	spare := z.spare // no more forks: its spare goes now
	z.spare = nil
	f.zmu.Unlock()
	if spare != nil {
		spare.destroy()
	}
	if end {
		z.destroy()
	}
}

// closeZygote ends the function's zygote now, and with it (their pid
// namespace ends) any worker still forked from it. Retired zygotes end
// with their last worker.
func (f *function) closeZygote() {
	f.zmu.Lock()
	z := f.zyg
	f.zyg = nil
	end := z != nil && !z.ended
	if end {
		z.retired, z.ended = true, true
	}
	f.zmu.Unlock()
	if end {
		z.destroy()
	}
}

// evictZygote ends the zygote once it has no workers and has not forked
// since before.
func (f *function) evictZygote(before time.Time) {
	f.zmu.Lock()
	z := f.zyg
	if z == nil || z.forking > 0 || z.children > 0 || z.lastUsed.After(before) {
		f.zmu.Unlock()
		return
	}
	f.zyg = nil
	z.retired, z.ended = true, true
	f.zmu.Unlock()
	z.destroy()
}

// forkProc asks the zygote zp for a new process and returns it, in a new
// cgroup id with limits, waiting for goAhead. deadline bounds the wait for
// the zygote.
func (b *Backend) forkProc(zp *proc, id string, limits cgroupLimits, deadline time.Time) (_ *proc, err error) {
	cg, err := b.cgroups.newCgroup(id, limits)
	if err != nil {
		return nil, err
	}
	p := &proc{cg: cg, stdin: -1, stdout: -1, stderr: -1, result: -1,
		exited: make(chan struct{}), reaped: make(chan struct{})}
	var status *os.File // host end of the status socket, until p owns it
	defer func() {
		if err != nil {
			if status != nil {
				status.Close()
			}
			_ = p.destroy()
		}
	}()

	childFiles, err := p.stdioPipes()
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, f := range childFiles {
			f.Close()
		}
	}()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	childFiles = append([]*os.File{os.NewFile(uintptr(fds[1]), "status")}, childFiles...)
	// Non-blocking before NewFile, so that the runtime's poller serves the
	// File (deadlines, no thread blocked per read).
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, err
	}
	status = os.NewFile(uintptr(fds[0]), "status")
	if err := unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		return nil, fmt.Errorf("status socket: %w", err)
	}

	// Ask for the fork.
	rights := make([]int, len(childFiles))
	for i, f := range childFiles {
		rights[i] = int(f.Fd())
	}
	if zp.ctrl == nil {
		return nil, errors.New("process: the zygote has no control socket")
	}
	if err := zp.ctrl.SetWriteDeadline(deadline); err != nil {
		return nil, errZygoteGone // closed
	}
	if err := rawWrite(zp.ctrl, func(fd int) error {
		return unix.Sendmsg(fd, []byte("F"), unix.UnixRights(rights...), nil, unix.MSG_NOSIGNAL)
	}); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("process: the zygote did not take a fork request: %w", context.DeadlineExceeded)
		}
		return nil, fmt.Errorf("%w: %v", errZygoteGone, err)
	}
	for _, f := range childFiles {
		f.Close()
	}
	childFiles = nil

	// The child says hello; the kernel says who it is.
	pid, err := readHello(status, deadline, b.hostUID+sandboxUID)
	if err != nil {
		return nil, err
	}
	pidfd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("process: pidfd of forked worker %d: %w", pid, err)
	}
	p.pidfd, p.forkedPid = os.NewFile(uintptr(pidfd), "pidfd"), pid
	go p.watchExit()
	p.status, status = status, nil
	go p.watchStatus()
	if err := cg.attachAll(pid); err != nil {
		return nil, err
	}
	return p, nil
}

// goAhead tells a forked process, now in its cgroup, to start serving.
func (p *proc) goAhead() error {
	return rawWrite(p.status, func(fd int) error {
		_, err := unix.Write(fd, []byte("G"))
		return err
	})
}

// rawWrite runs op on f's descriptor once it is writable; f's deadline
// applies, and f cannot be closed under op.
func rawWrite(f *os.File, op func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	err = rc.Write(func(fd uintptr) bool {
		opErr = op(int(fd))
		return opErr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	return opErr
}

// readHello reads the forked child's "H" and returns its pid in our pid
// namespace, from the credentials the kernel attached; uid is the host uid
// it must run as.
func readHello(status *os.File, deadline time.Time, uid int) (int, error) {
	if err := status.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	rc, err := status.SyscallConn()
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 512)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred)+unix.CmsgSpace(4*8))
	var n, oobn, flags int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	})
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return 0, fmt.Errorf("process: the zygote did not fork in time: %w", context.DeadlineExceeded)
	case err != nil:
		return 0, err
	case rerr != nil:
		return 0, fmt.Errorf("%w: %v", errZygoteGone, rerr)
	}
	// Parsed before anything else, so that descriptors sent with any
	// message are closed, not leaked into the invoker.
	cred, fds, err := helloControl(oob[:oobn])
	switch {
	case err != nil:
		return 0, fmt.Errorf("process: forked worker credentials: %w", err)
	case n == 0:
		return 0, errZygoteGone
	case buf[0] == 'E':
		return 0, fmt.Errorf("process: the zygote could not fork: %s", bytes.ToValidUTF8(buf[1:n], []byte("?")))
	case buf[0] != 'H':
		return 0, fmt.Errorf("process: the zygote said %q", buf[:n])
	case fds > 0 || flags&unix.MSG_CTRUNC != 0:
		return 0, fmt.Errorf("process: forked worker's hello came with %d descriptors or more control data than expected", fds)
	case cred == nil:
		return 0, errors.New("process: forked worker sent no credentials")
	case int(cred.Uid) != uid || cred.Pid <= 0:
		return 0, fmt.Errorf("process: forked worker is pid %d uid %d, want uid %d", cred.Pid, cred.Uid, uid)
	}
	return int(cred.Pid), nil
}

// helloControl parses the control messages of a hello: it returns the
// sender's credentials (nil if none came) and closes every descriptor
// received, returning how many there were.
func helloControl(oob []byte) (cred *unix.Ucred, fds int, err error) {
	if len(oob) == 0 {
		return nil, 0, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, 0, err
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET {
			continue
		}
		switch m.Header.Type {
		case unix.SCM_RIGHTS:
			rights, perr := unix.ParseUnixRights(&m)
			for _, fd := range rights {
				unix.Close(fd)
			}
			fds += len(rights)
			if perr != nil && err == nil {
				err = perr
			}
		case unix.SCM_CREDENTIALS:
			if cred == nil {
				c, perr := unix.ParseUnixCredentials(&m)
				if perr != nil && err == nil {
					err = perr
				}
				cred = c
			}
		}
	}
	return cred, fds, err
}

// watchExit closes p.exited when the forked process has exited.
func (p *proc) watchExit() {
	defer close(p.exited)
	rc, err := p.pidfd.SyscallConn()
	if err != nil {
		return
	}
	err = rc.Read(func(fd uintptr) bool {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, _ := unix.Poll(pfd, 0)
		return n > 0
	})
	if err != nil && !errors.Is(err, os.ErrClosed) {
		// Not pollable through the runtime: wait on a thread of its own.
		_ = rc.Control(func(fd uintptr) {
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			for {
				if n, err := unix.Poll(pfd, -1); n > 0 || err != nil && err != unix.EINTR {
					return
				}
			}
		})
	}
}

// watchStatus reads the exit status the zygote reports for a forked
// process, then closes p.reaped.
func (p *proc) watchStatus() {
	defer close(p.reaped)
	rc, err := p.status.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 64)
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, rerr = unix.Read(int(fd), buf)
			return rerr != unix.EAGAIN
		})
		if err != nil || rerr != nil || n == 0 {
			return
		}
		if buf[0] == 'X' {
			if ws, err := strconv.Atoi(string(buf[1:n])); err == nil {
				p.ended = describeWait(syscall.WaitStatus(ws))
			}
			return
		}
	}
}

// describeWait says how a process ended, for the log.
func describeWait(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "killed by signal " + unix.SignalName(ws.Signal())
	}
	return fmt.Sprintf("exited with code %d", ws.ExitStatus())
}
