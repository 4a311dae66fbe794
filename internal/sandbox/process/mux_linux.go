package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gust-faas/gust/internal/sandbox"
)

// Concurrent workers: a Node.js action whose limits allow several
// activations at once (Limits.Concurrency > 1, OpenWhisk's intra-container
// concurrency) runs up to that many on one worker. Its launcher prefixes
// every output line, end marker and reply with "<activation id>\t"
// (launchers/launcher.js), and one goroutine per worker reads its pipes
// and hands each line to the call it belongs to. Output without a prefix
// (written outside any activation) goes to the oldest call in flight.
//
// One call's timeout or memory breach ends the worker, and with it the
// other calls it was running: a function stuck in a loop blocks the event
// loop of every call anyway. A call's developer error is that call's: the
// worker is retired (no new calls; it ends after the calls in flight), as
// the launcher answered the others normally. A call whose caller gives up
// fails alone; its slot stays taken until the worker is done with it.

// muxWorker is a worker serving several calls at once.
type muxWorker struct {
	w *worker
	n int // most calls at once

	mu        sync.Mutex
	calls     map[string]*muxCall // by activation id, in flight
	order     []string            // activation ids in the order they came
	reserved  int                 // slots taken by callers not yet registered
	idleSince time.Time           // when the last call ended; zero while busy
	dead      bool                // its pipes closed or it was ended
	retired   bool                // takes no new calls; ends after its last one
	unloaded  func() bool         // its function is closed: it ends once idle
	broken    bool                // a reply overflowed: the rest is in the pipe
	skipReply bool                // the rest of that reply is being read and dropped
	killed    bool                // end ran
	oom       bool                // end found an OOM kill; set before ended closes
	ended     chan struct{}       // closed once end has killed and reaped the worker
	stdin     sync.Mutex          // one request line at a time

	// The reader polls the worker's pipes until stop (an eventfd) says
	// end is running, and closes readerDone as it returns: end closes the
	// pipes only then, since a number closed under the reader's poll may
	// be reused at once for another sandbox's pipe.
	stop       int
	readerDone chan struct{}
}

// muxCall is one call in flight on a muxWorker.
type muxCall struct {
	logs           *sandbox.LogBuffer
	line           []byte // the reply, without its prefix; nil until it came
	size           int
	overflow       bool
	outEnd, errEnd bool // the markers of its stdout and stderr came
	done           chan struct{}
	ended          bool // done was closed
}

func (c *muxCall) complete() bool { return c.line != nil && c.outEnd && c.errEnd }

func (c *muxCall) finish() {
	if !c.ended {
		c.ended = true
		close(c.done)
	}
}

// newMux makes w, initialised, a concurrent worker and starts reading it.
func newMux(w *worker, n, resultLimit int, unloaded func() bool) (*muxWorker, error) {
	stop, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("process: eventfd: %w", err)
	}
	m := &muxWorker{w: w, n: n, calls: map[string]*muxCall{}, idleSince: time.Now(),
		unloaded: unloaded, stop: stop, readerDone: make(chan struct{}), ended: make(chan struct{})}
	go m.read(resultLimit)
	return m, nil
}

// idPrefix reports whether line starts with a 32-hex activation id and a
// tab, returning the id.
func idPrefix(line []byte) (string, bool) {
	if len(line) < 33 || line[32] != '\t' || !validID(line[:32]) {
		return "", false
	}
	return string(line[:32]), true
}

// validID reports whether id is an activation id the reader can match: 32
// lowercase hex digits. A call with any other id would never be answered.
func validID[T string | []byte](id T) bool {
	if len(id) != 32 {
		return false
	}
	for i := range len(id) {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// read polls the worker's stdout, stderr and result pipes until it ends
// or end stops it, routing each complete line to its call.
func (m *muxWorker) read(resultLimit int) {
	w := m.w
	p := w.p
	var pending [3][]byte // partial lines: stdout, stderr, result
	fds := [3]int{p.stdout, p.stderr, p.result}
	scratch := make([]byte, 64<<10)
	open := 3
	pfds := make([]unix.PollFd, 0, 4)
poll:
	for open > 0 {
		pfds = append(pfds[:0], unix.PollFd{Fd: int32(m.stop), Events: unix.POLLIN})
		for _, fd := range fds {
			if fd >= 0 {
				pfds = append(pfds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
			}
		}
		if _, err := unix.Poll(pfds, -1); err != nil && err != unix.EINTR {
			break
		}
		if pfds[0].Revents != 0 {
			break poll // end is running: it closes the pipes once we are out
		}
		for i, fd := range fds {
			if fd < 0 {
				continue
			}
			for {
				n, err := unix.Read(fd, scratch)
				if n > 0 {
					pending[i] = append(pending[i], scratch[:n]...)
					pending[i] = m.lines(i, pending[i], resultLimit)
					continue
				}
				if err == unix.EAGAIN {
					break
				}
				if err == unix.EINTR {
					continue
				}
				fds[i] = -1 // EOF or error: the worker is gone
				open--
				break
			}
		}
		if fds[2] < 0 {
			break // no more replies can come
		}
	}
	m.fail()
	close(m.readerDone)
	_, _ = m.end(errExited, nil) // its cgroup and memory go now, even if no call was in flight
}

// lines hands the complete lines of buf (from stream i: 0 stdout, 1
// stderr, 2 result) to their calls and returns what is left.
func (m *muxWorker) lines(i int, buf []byte, resultLimit int) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	for {
		nl := bytes.IndexByte(buf, '\n')
		if i == 2 && m.skipReply {
			// The rest of an overflowed reply: were it parsed as lines,
			// its text could pass for another call's reply.
			if nl < 0 {
				return buf[:0]
			}
			buf, m.skipReply = buf[nl+1:], false
			continue
		}
		if nl < 0 {
			id, ok := idPrefix(buf)
			switch {
			case i < 2 && len(buf) > maxPartialLine:
				// Log it in pieces, keeping the prefix and a marker's
				// length back: the marker may be arriving on this line.
				head := 0
				if ok {
					head = 33
				}
				cut := len(buf) - len(marker)
				m.logLocked(i, id, append(bytes.Clone(buf[head:cut]), '\n'))
				return append(buf[:head], buf[cut:]...)
			case i == 2 && len(buf) > resultLimit+33:
				// A reply over the limit: it is not read further, and the
				// rest of it stays in the pipe, so the worker must end.
				m.broken, m.skipReply = true, true
				if c := m.calls[id]; ok && c != nil && c.line == nil {
					c.line, c.size, c.overflow = bytes.Clone(buf[33:33+resultLimit+1]), len(buf)-33, true
					c.outEnd, c.errEnd = true, true
					c.finish()
				}
				return buf[:0]
			}
			return buf
		}
		line := buf[:nl+1]
		buf = buf[nl+1:]
		id, ok := idPrefix(line)
		if i == 2 {
			c := m.calls[id]
			if !ok || c == nil || c.line != nil {
				continue // a reply for nobody (a call that gave up), or a second one: the first stands
			}
			payload := line[33 : len(line)-1]
			c.size = len(payload)
			if len(payload) > resultLimit {
				c.overflow = true
				payload = payload[:resultLimit+1]
			}
			c.line = bytes.Clone(payload)
			if c.complete() {
				c.finish()
			}
			continue
		}
		text := line
		if ok {
			text = line[33:]
		}
		if before, found := splitMarker(text); ok && found {
			if before != nil {
				m.logLocked(i, id, before)
			}
			if c := m.calls[id]; c != nil {
				if i == 0 {
					c.outEnd = true
				} else {
					c.errEnd = true
				}
				if c.complete() {
					c.finish()
				}
			}
			continue
		}
		m.logLocked(i, id, text)
	}
}

// logLocked writes text to the log of call id, or, for output of no call,
// of the oldest call in flight.
func (m *muxWorker) logLocked(i int, id string, text []byte) {
	c := m.calls[id]
	if c == nil && len(m.order) > 0 {
		c = m.calls[m.order[0]]
	}
	if c == nil {
		return
	}
	if i == 0 {
		_, _ = c.logs.Stdout().Write(text)
	} else {
		_, _ = c.logs.Stderr().Write(text)
	}
}

// fail ends every call in flight: the worker is gone.
func (m *muxWorker) fail() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dead = true
	for _, c := range m.calls {
		c.finish()
	}
}

// take reserves a call slot, or reports that the worker is full, retired
// or dead.
func (m *muxWorker) take() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dead || m.retired || len(m.calls)+m.reserved >= m.n {
		return false
	}
	m.reserved++
	m.idleSince = time.Time{}
	return true
}

// call runs one activation on m, whose slot the caller took.
func (m *muxWorker) call(ctx context.Context, id string, req []byte, deadline time.Time, logs *sandbox.LogBuffer) (*muxCall, error) {
	c := &muxCall{logs: logs, done: make(chan struct{})}
	m.mu.Lock()
	m.reserved--
	if m.dead {
		m.mu.Unlock()
		return nil, errExited
	}
	if _, dup := m.calls[id]; dup {
		// Refused: the slot is given back as forget does, or the worker
		// would never be idle again.
		end := m.settleLocked()
		m.mu.Unlock()
		if end {
			_, _ = m.end(errExited, nil)
		}
		return nil, fmt.Errorf("process: activation id %q already running", id)
	}
	m.calls[id] = c
	m.order = append(m.order, id)
	m.mu.Unlock()
	abandoned := false
	defer func() {
		if !abandoned {
			m.forget(id)
		}
	}()

	if err := m.write(req, deadline); err != nil {
		return c, err
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-c.done:
	case <-timer.C:
		return c, errTimedOut
	case <-ctx.Done():
		// The function still runs it: its slot stays taken until then.
		abandoned = true
		go m.abandon(id, c, deadline)
		return c, fmt.Errorf("process: %w: %w", errAbandoned, context.Cause(ctx))
	}
	m.mu.Lock()
	complete := c.complete()
	m.mu.Unlock()
	if !complete {
		return c, errExited
	}
	return c, nil
}

// errAbandoned: the caller gave up on its call (its context ended).
var errAbandoned = errors.New("call abandoned")

// abandon waits until the worker is done with call id, whose caller gave
// up, and then frees its slot. At its deadline it times out as any call
// does, ending the worker: the function is stuck.
func (m *muxWorker) abandon(id string, c *muxCall, deadline time.Time) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-c.done:
	case <-timer.C:
		_, _ = m.end(errTimedOut, nil)
	}
	m.forget(id)
}

// write sends one request line, waiting for room in the pipe until
// deadline or until end starts. It holds m.stdin throughout, as end does
// to close the pipe: a number closed under a writer may be reused at once
// for another sandbox's pipe, which would get this call's request.
func (m *muxWorker) write(req []byte, deadline time.Time) error {
	m.stdin.Lock()
	defer m.stdin.Unlock()
	fd := m.w.p.stdin
	if fd < 0 {
		return errExited // end closed it
	}
	for len(req) > 0 {
		n, err := unix.Write(fd, req)
		if n > 0 {
			req = req[n:]
			continue
		}
		switch {
		case err == unix.EAGAIN:
			wait := time.Until(deadline)
			if wait <= 0 {
				return errTimedOut
			}
			// stop: end waits for m.stdin, so a blocked writer must
			// give up as soon as end starts.
			pfds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}, {Fd: int32(m.stop), Events: unix.POLLIN}}
			_, _ = unix.Poll(pfds, int(min(wait, 100*time.Millisecond)/time.Millisecond)+1)
			if pfds[1].Revents != 0 {
				return errExited
			}
		case err == unix.EINTR:
		default:
			return errExited
		}
	}
	return nil
}

// forget removes call id, ending the worker if that was its last call and
// it was retired or its function closed.
func (m *muxWorker) forget(id string) {
	m.mu.Lock()
	delete(m.calls, id)
	for i, o := range m.order {
		if o == id {
			m.order = append(m.order[:i], m.order[i+1:]...)
			break
		}
	}
	end := m.settleLocked()
	m.mu.Unlock()
	if end {
		_, _ = m.end(errExited, nil)
	}
}

// settleLocked notes when m went idle after a call left it, and reports
// whether m must then end: it was retired or its function closed.
func (m *muxWorker) settleLocked() bool {
	if len(m.calls) > 0 || m.reserved > 0 {
		return false
	}
	m.idleSince = time.Now()
	return m.retired || m.unloaded()
}

// retire makes m take no new calls and end once the calls it is running
// have finished (now, if none is).
func (m *muxWorker) retire() {
	m.mu.Lock()
	m.retired = true
	idle := len(m.calls) == 0 && m.reserved == 0
	m.mu.Unlock()
	if idle {
		_, _ = m.end(errExited, nil)
	}
}

// free returns how many more calls m can take now, and since when it is
// idle (zero while a call runs).
func (m *muxWorker) free() (int, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dead || m.retired {
		return 0, time.Time{}
	}
	return m.n - len(m.calls) - m.reserved, m.idleSince
}

// invokeConcurrent runs call on one of f's concurrent workers, starting
// one when all are full. The caller holds a slot of f's pool; taken is
// call.Taken (see start), called once a slot is the call's.
func (f *function) invokeConcurrent(ctx context.Context, call sandbox.Call, taken func()) (*sandbox.Result, error) {
	deadline := time.Now().Add(f.limits.Timeout)
	logs := sandbox.NewLogBuffer(f.limits.LogBytes)
	res := &sandbox.Result{Start: sandbox.StartWarm}
	id := call.Env["__OW_ACTIVATION_ID"]
	if !validID(id) {
		return nil, fmt.Errorf("process: activation id %q not valid", id)
	}
	m := f.muxTake()
	if m != nil {
		taken()
	} else {
		// One worker starts at a time: calls arriving together wait for
		// it and share it, rather than each starting its own.
		f.muxStart.Lock()
		if m = f.muxTake(); m == nil {
			w, err := f.start(ctx, &deadline, logs, res, taken)
			if err != nil || w == nil {
				f.muxStart.Unlock()
				if err != nil {
					return nil, err
				}
				res.Logs = logs.Lines() // the code failed to initialise; res says how
				return res, nil
			}
			if m, err = newMux(w, f.limits.Concurrency, f.limits.ResultBytes+1, f.isClosed); err != nil { // +1: the R/E prefix
				f.muxStart.Unlock()
				w.destroy()
				return nil, err
			}
			m.take()
			f.muxMu.Lock()
			f.muxes = append(f.muxes, m)
			f.muxMu.Unlock()
		} else {
			taken()
			deadline = time.Now().Add(f.limits.Timeout) // waiting for the start was the platform's time
		}
		f.muxStart.Unlock()
	}
	req, err := appendRequest(nil, call.Params, call.Env)
	if err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	c, err := m.call(ctx, id, req, deadline, logs)
	if errors.Is(err, errAbandoned) {
		return nil, err // the platform's: the caller is gone, the worker serves on
	}
	if err != nil && !errors.Is(err, errTimedOut) && !errors.Is(err, errExited) {
		return nil, err // the platform's (an activation id running already): the call never reached the worker
	}
	if err != nil {
		how, err := m.end(err, logs)
		if err != nil {
			return nil, err
		}
		if how == failExited {
			_, _ = logs.Stderr().Write([]byte("The action's process ended while it ran this activation and others at once.\n"))
		}
		f.failed(res, how, false)
		res.Logs = logs.Lines()
		return res, nil
	}
	m.mu.Lock()
	r := reply{line: c.line, size: c.size, complete: !c.overflow, overflow: c.overflow}
	broken := m.broken
	m.mu.Unlock()
	o := classify(r, f.limits.ResultBytes, true)
	res.Status, res.Result = o.status, o.result
	res.Logs = logs.Lines()
	if !o.keep || broken {
		// Not trusted with new calls (OpenWhisk discards the container
		// after a developer error); the others it runs were answered
		// apart, so they finish first.
		m.retire()
	}
	return res, nil
}

// isClosed reports whether f was closed (unloaded): its concurrent workers
// end as their last calls finish.
func (f *function) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// muxTake returns a concurrent worker of f with a slot taken for the
// caller, the busiest first (so idle ones go idle for good and can be
// trimmed), or nil when all are full.
func (f *function) muxTake() *muxWorker {
	f.muxMu.Lock()
	defer f.muxMu.Unlock()
	var best *muxWorker
	bestFree := 0
	kept := f.muxes[:0]
	for _, m := range f.muxes {
		free, _ := m.free()
		m.mu.Lock()
		dead := m.dead
		m.mu.Unlock()
		if dead {
			continue
		}
		kept = append(kept, m)
		if free > 0 && (best == nil || free < bestFree) {
			best, bestFree = m, free
		}
	}
	clear(f.muxes[len(kept):])
	f.muxes = kept
	if best != nil && best.take() {
		return best
	}
	return nil
}

// end kills m's worker (once; its other calls fail) and says how the
// call whose exchange ended with err failed (classifyFailure). A call
// whose worker was ended already, for another call or by the reader,
// waits for that end, so that it sees the same OOM count.
func (m *muxWorker) end(err error, _ *sandbox.LogBuffer) (failure, error) {
	m.mu.Lock()
	if m.killed {
		m.mu.Unlock()
		<-m.ended
		return classifyFailure(err, m.oom, m.w.b.isClosed())
	}
	m.killed, m.dead = true, true
	m.mu.Unlock()
	w := m.w
	w.p.kill()
	// Stop the reader (unless it is the caller, done already) before its
	// pipes close.
	var one [8]byte
	one[0] = 1 // any non-zero count wakes it, whatever the byte order
	_, _ = unix.Write(m.stop, one[:])
	<-m.readerDone
	<-w.p.exited
	m.oom = w.p.cg != nil && w.p.cg.oomKills() > 0
	// Not under a writer (it polls stop and the stdin fd): see write.
	m.stdin.Lock()
	w.destroy()
	unix.Close(m.stop)
	m.stdin.Unlock()
	m.fail()
	close(m.ended)
	return classifyFailure(err, m.oom, w.b.isClosed())
}

// trimMuxes ends f's idle concurrent workers for which expired says so (pos
// 1 is the most recently used), at most max, and returns how many it ended.
func (f *function) trimMuxes(expired func(pos int, idleSince time.Time) bool, max int) int {
	f.muxMu.Lock()
	var idle []*muxWorker
	for _, m := range f.muxes {
		if free, since := m.free(); free == m.n && !since.IsZero() {
			idle = append(idle, m)
		}
	}
	f.muxMu.Unlock()
	n := 0
	for i, m := range idle {
		if max > 0 && n >= max {
			break
		}
		_, since := m.free()
		if since.IsZero() || !expired(len(idle)-i, since) {
			continue
		}
		// A call may have taken it while expired decided: it goes only
		// if still idle since then, checked under the lock take holds.
		if !m.retireIfIdle(since) {
			continue
		}
		if _, err := m.end(errExited, sandbox.NewLogBuffer(0)); err == nil || errors.Is(err, errClosed) {
			n++
		}
	}
	return n
}

// retireIfIdle makes m take no more calls if it has had none since since,
// and reports whether it did; the caller then ends it.
func (m *muxWorker) retireIfIdle(since time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dead || m.retired || len(m.calls) > 0 || m.reserved > 0 || !m.idleSince.Equal(since) {
		return false
	}
	m.dead = true // take refuses it from now on
	return true
}

// muxIdle returns the call slots free on f's concurrent workers.
func (f *function) muxIdle() int {
	f.muxMu.Lock()
	defer f.muxMu.Unlock()
	n := 0
	for _, m := range f.muxes {
		free, _ := m.free()
		n += free
	}
	return n
}
