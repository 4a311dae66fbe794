//go:build linux

package process

import (
	"context"
	"sync"
	"time"

	"github.com/gust-faas/gust/internal/sandbox"
)

// Stem cells: per launcher kind, a few sandboxes whose interpreter has
// started and waits, code-less, for its init line. A cold call takes one,
// links its function's code into the cell's /app directory (bound into the
// sandbox when it started, so the files appear inside), sets the
// function's cgroup limits and sends the init: it skips the namespace
// setup and the interpreter's start-up. The pool refills in the background.
//
// A cell is given to one function and stays with it (it joins that
// function's pool); cells are never shared or returned, so no state crosses
// from one function, or tenant, to another.

type cellPool struct {
	b      *Backend
	rt     *runtimeKind
	target int

	mu       sync.Mutex
	idle     []*worker // oldest first: the most likely to have finished starting
	starting int
	closed   bool
}

func newCellPool(b *Backend, rt *runtimeKind, target int) *cellPool {
	return &cellPool{b: b, rt: rt, target: target}
}

// take returns a ready cell or nil, and starts a replacement.
func (c *cellPool) take() *worker {
	defer time.AfterFunc(refillDelay, c.fill)
	for {
		c.mu.Lock()
		if len(c.idle) == 0 {
			c.mu.Unlock()
			return nil
		}
		w := c.idle[0]
		c.idle = c.idle[1:]
		c.mu.Unlock()
		if !w.dead() {
			return w
		}
		w.destroy()
	}
}

// refillDelay holds back a taken cell's replacement a little: starting a
// sandbox takes a core for milliseconds, which on a small host would slow
// the very call the cell was taken for.
const refillDelay = 20 * time.Millisecond

// fill starts cells until the target is met. A cell that fails to start
// is not retried until the next take, so a broken host does not spin.
func (c *cellPool) fill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for !c.closed && len(c.idle)+c.starting < c.target {
		c.starting++
		c.b.bg.Add(1)
		go c.start()
	}
}

func (c *cellPool) start() {
	defer c.b.bg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := c.b.startWorker(ctx, c.rt, "", c.b.cfg.StemCellMemoryMB, nil)
	if err == nil {
		// Whatever a cell logs while starting belongs to no activation.
		if err = w.awaitReady(ctx, time.Now().Add(30*time.Second), sandbox.NewLogBuffer(0)); err != nil {
			w.destroy()
		}
	}
	c.mu.Lock()
	c.starting--
	closed := c.closed
	if err == nil && !closed {
		c.idle = append(c.idle, w)
	}
	c.mu.Unlock()
	switch {
	case err != nil:
		c.b.log.Warn("process: starting a stem cell", "kind", c.rt.name, "err", err)
	case closed:
		w.destroy()
	}
}

// close ends the idle cells; cells still starting end when they are up.
func (c *cellPool) close() {
	c.mu.Lock()
	c.closed = true
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, w := range idle {
		w.destroy()
	}
}
