package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gust-faas/gust/internal/sandbox"
)

// worker is one sandbox serving activations of one function (or, as a stem
// cell, waiting for one). It serves one call at a time (a concurrent
// worker, mux_linux.go, several, through its muxWorker); its fields are
// touched only by the goroutine that holds it.
type worker struct {
	b  *Backend
	rt *runtimeKind
	id string
	p  *proc

	stdout, stderr stream
	resBuf         []byte // result line being read
	scratch        []byte // read buffer
	req            []byte // request line being written

	cellDir   string    // a stem cell's own /app source; removed with the worker
	idleSince time.Time // when it was last returned to its pool

	release   func()  // gives its memory back to the function's budget; nil: none taken
	prewarmed bool    // readied by Prewarm; no call has taken it yet
	isZygote  bool    // it loaded its function's code as a fork server
	parent    *zygote // the zygote it was forked from; nil if none
}

// startWorker starts a sandbox for rt with codeDir as /app. An empty
// codeDir makes a stem cell: /app is a directory of its own, empty until
// the cell is given to a function.
//
// env is added to the sandbox's environment (an executable's init
// parameters; launcher kinds get theirs with the init).
func (b *Backend) startWorker(ctx context.Context, rt *runtimeKind, codeDir string, memoryMB int, env []string) (*worker, error) {
	w := &worker{
		b: b, rt: rt, id: newID(),
		resBuf:  make([]byte, 0, 4096),
		scratch: make([]byte, 64<<10),
	}
	app := codeDir
	if app == "" {
		w.cellDir = filepath.Join(b.workDir, "cells", w.id)
		if err := os.Mkdir(w.cellDir, codeDirPerm); err != nil {
			return nil, fmt.Errorf("process: stem cell dir: %w", err)
		}
		if err := own(w.cellDir, b.codeGID(), codeDirPerm); err != nil {
			_ = os.Remove(w.cellDir)
			return nil, fmt.Errorf("process: stem cell dir: %w", err)
		}
		app = w.cellDir
	}
	mounts := []Mount{{Source: app, Target: appDir}}
	if rt.launcher != "" {
		mounts = append(mounts, Mount{Source: b.launchDir, Target: launcherDir})
	}
	if b.cfg.Mounts != nil {
		mounts = append(mounts, b.cfg.Mounts(w.id)...)
	}

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		w.removeCellDir()
		return nil, errClosed
	}
	b.workers[w] = struct{}{}
	b.mu.Unlock()

	p, err := b.spawn(ctx, spawnOpts{
		id:     w.id,
		argv:   rt.argv(rt.zygote),
		env:    append(b.sandboxEnv(), env...),
		dir:    appDir,
		mounts: mounts,
		limits: b.cgroupLimits(memoryMB),
		ctrl:   rt.zygote,
		root:   b.roots[rt.name],

		hideProtocol: rt.hideProtocol,
	})
	return b.adopt(w, p, err)
}

// adopt makes p, just started for w (err says how that went), w's
// process, or destroys w when the start failed or the backend closed
// meanwhile.
func (b *Backend) adopt(w *worker, p *proc, err error) (*worker, error) {
	b.mu.Lock()
	w.p = p
	closed := b.closed
	b.mu.Unlock()
	if err == nil && closed {
		err = errClosed
	}
	if err != nil {
		w.destroy()
		return nil, err
	}
	w.stdout = stream{fd: p.stdout, buf: make([]byte, 0, 4096)}
	w.stderr = stream{fd: p.stderr, buf: make([]byte, 0, 4096)}
	return w, nil
}

// dead reports whether the worker's process has already exited.
func (w *worker) dead() bool {
	select {
	case <-w.p.exited:
		return true
	default:
		return false
	}
}

// destroy ends the worker and releases everything it holds.
func (w *worker) destroy() {
	if w.release != nil {
		w.release()
		w.release = nil
	}
	if w.p != nil {
		if err := w.p.destroy(); err != nil {
			w.b.log.Warn("process: sandbox cleanup", "sandbox", w.id, "err", err)
		}
	}
	w.removeCellDir()
	if w.parent != nil {
		w.parent.childGone()
		w.parent = nil
	}
	w.b.mu.Lock()
	delete(w.b.workers, w)
	w.b.gone.Broadcast()
	w.b.mu.Unlock()
}

func (w *worker) removeCellDir() {
	if w.cellDir != "" {
		_ = os.RemoveAll(w.cellDir)
	}
}

// failure is how a worker ended a call it did not answer.
type failure int

const (
	failTimeout failure = iota + 1
	failExited
	failMemory
)

// classifyFailure says how a call failed whose worker ended without
// answering it: err is how the call's exchange ended, oom whether the
// worker's cgroup saw an OOM kill, closed whether the backend is closing.
// Every path that ends a worker (one call at a time, concurrent, the
// probe) decides with it, so that they agree. The order:
//
//   - the backend closing: the platform's, whatever the worker did;
//   - the call's own deadline: the call is timed out (OpenWhisk's status),
//     even if memory ran out on the way, as with cgroup v1 killing one
//     process of the sandbox while the call waits on it;
//   - an OOM kill: the worker died of its memory limit;
//   - the worker's exit (a crash, a refused syscall);
//   - else the platform's (the caller gave up, a poll failed).
func classifyFailure(err error, oom, closed bool) (failure, error) {
	switch {
	case closed:
		return 0, errClosed
	case errors.Is(err, errTimedOut):
		return failTimeout, nil
	case oom:
		return failMemory, nil
	case errors.Is(err, errExited):
		return failExited, nil
	}
	return 0, fmt.Errorf("process: call abandoned: %w", err)
}

// end kills a worker that failed an exchange with err, collects its last
// logs and classifies the failure (classifyFailure). Any error it returns
// is the platform's. The worker is destroyed.
func (w *worker) end(err error, logs *sandbox.LogBuffer) (failure, error) {
	oom, status := w.stop(logs)
	w.destroy()
	how, err := classifyFailure(err, oom, w.b.isClosed())
	if how == failExited {
		// Say how it ended: "killed by signal SIGSYS" is the sandbox
		// refusing a syscall, SIGSEGV a crash; the developer needs it.
		_, _ = logs.Stderr().Write([]byte("The action's process " + status + ".\n"))
	}
	return how, err
}

// stop kills the worker's process, collects what it wrote before it died
// and waits for its end. It reports whether its cgroup saw an OOM kill and
// how the process ended ("exited with code 3").
func (w *worker) stop(logs *sandbox.LogBuffer) (oom bool, status string) {
	w.p.kill()
	w.drainAfterKill(logs)
	<-w.p.exited
	return w.p.cg != nil && w.p.cg.oomKills() > 0, w.p.exitStatus()
}
