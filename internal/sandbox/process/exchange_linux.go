package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gust-faas/gust/internal/sandbox"
)

// One exchange with a worker: write a request line to its stdin, read one
// reply line from fd 3 and its stdout/stderr into the call's log. A single
// goroutine polls all four pipes, so the order of events is known:
//
//   - launcher kinds (Python, Node) end their logs with a marker line on
//     each stream before replying, and the exchange ends once the reply and
//     both markers are in (log lines after a marker belong to the next call);
//   - actionloop executables write no markers; they write their logs before
//     their reply, so once the reply is in, whatever is in the pipes is all
//     theirs: the exchange drains them without waiting.

// marker ends an activation's output on stdout and stderr (OpenWhisk's).
var marker = []byte("XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX")

var (
	errTimedOut = errors.New("the worker did not answer in time")
	errExited   = errors.New("the worker exited")
)

// maxPartialLine bounds the bytes of a line without a newline kept while
// waiting for its end; longer text goes to the log in pieces.
const maxPartialLine = 64 << 10

// splitMarker reports whether line (a complete line, its newline
// included) ends with the marker. Text printed without a newline sits
// before the marker on the same line: it is returned as a line of its own
// (a copy, newline added), or nil when there is none.
func splitMarker(line []byte) (text []byte, found bool) {
	body := bytes.TrimSuffix(line, []byte("\n"))
	if !bytes.HasSuffix(body, marker) {
		return nil, false
	}
	if body = body[:len(body)-len(marker)]; len(body) > 0 {
		text = append(bytes.Clone(body), '\n')
	}
	return text, true
}

// stream is the host end of the worker's stdout or stderr. buf holds bytes
// read but not yet logged; it carries over between calls.
type stream struct {
	fd     int
	buf    []byte
	w      io.Writer
	marker bool // the marker of the current exchange was seen
	eof    bool
}

// consume logs the complete lines in buf, up to the marker when markers
// is set.
func (s *stream) consume(markers bool) {
	start := 0
	for !s.marker {
		i := bytes.IndexByte(s.buf[start:], '\n')
		if i < 0 {
			break
		}
		line := s.buf[start : start+i+1]
		start += i + 1
		if markers {
			if text, ok := splitMarker(line); ok {
				if text != nil {
					_, _ = s.w.Write(text)
				}
				s.marker = true
				break
			}
		}
		_, _ = s.w.Write(line)
	}
	if !s.marker && len(s.buf)-start > maxPartialLine {
		// Keep a marker's length back: the marker may be arriving.
		cut := len(s.buf) - len(marker)
		_, _ = s.w.Write(s.buf[start:cut])
		start = cut
	}
	s.buf = append(s.buf[:0], s.buf[start:]...)
}

// flush logs a trailing partial line (actionloop executables end without a
// marker, so nothing more will complete it).
func (s *stream) flush() {
	if len(s.buf) > 0 {
		_, _ = s.w.Write(s.buf)
		s.buf = s.buf[:0]
	}
}

// maxStreamRead bounds what one read takes in before it is consumed: a
// function writing faster than the host reads must not make buf grow with
// its whole output.
const maxStreamRead = 256 << 10

// read reads what is available, up to maxStreamRead bytes in buf; more
// says it stopped there, with more perhaps waiting. It sets eof at EOF or
// on error.
func (s *stream) read(scratch []byte) (more bool) {
	for !s.eof {
		if len(s.buf) >= maxStreamRead {
			return true
		}
		n, err := unix.Read(s.fd, scratch)
		if n > 0 {
			s.buf = append(s.buf, scratch[:n]...)
			continue
		}
		if err == unix.EAGAIN {
			return false
		}
		if err == unix.EINTR {
			continue
		}
		s.eof = true
	}
	return false
}

// reply is the fd 3 line of an exchange.
type reply struct {
	line     []byte // without the newline; cut at limit+1 bytes
	size     int    // full length, or, when over the limit, what was read
	complete bool   // the newline was read
	// overflow: the line passed the limit before its newline came. Reading
	// stopped there (a result without a newline would otherwise be read
	// until the deadline, and a huge one would cost the host its reading);
	// the rest of the line is still in the pipe, so the worker must end.
	overflow bool
}

// exchange sends input (one line, newline included) and returns the reply.
// It fails with errTimedOut at deadline, errExited when the worker closed
// its result pipe (died), or ctx's error; the worker is then unusable.
func (w *worker) exchange(ctx context.Context, deadline time.Time, input []byte, logs *sandbox.LogBuffer, limit int) (reply, error) {
	return w.exchangeMarked(ctx, deadline, input, logs, limit, w.rt.markers)
}

// awaitReady reads the line a launcher writes once its interpreter is up
// (no markers come with it), so that a stem cell joins its pool only when
// it is ready to take code at once.
func (w *worker) awaitReady(ctx context.Context, deadline time.Time, logs *sandbox.LogBuffer) error {
	r, err := w.exchangeMarked(ctx, deadline, nil, logs, 64, false)
	if err == nil && string(r.line) != readyLine {
		err = fmt.Errorf("process: launcher said %q, want %q", r.line, readyLine)
	}
	return err
}

// readyLine is the launchers' first line on fd 3.
const readyLine = `R{"ready":true}`

func (w *worker) exchangeMarked(ctx context.Context, deadline time.Time, input []byte, logs *sandbox.LogBuffer, limit int, markers bool) (reply, error) {
	p := w.p
	streams := [2]*stream{&w.stdout, &w.stderr}
	w.stdout.w, w.stderr.w = logs.Stdout(), logs.Stderr()
	for _, s := range streams {
		s.marker = false
		s.consume(markers)
	}
	var (
		res     reply
		done    bool
		resBuf  = w.resBuf[:0]
		scratch = w.scratch
	)
	defer func() { w.resBuf = resBuf[:0] }()
	in := input
	// The pipe is empty between calls, so the request usually fits at
	// once: write before the first poll rather than poll for room.
	if n, err := unix.Write(p.stdin, in); n > 0 {
		in = in[n:]
	} else if err != nil && err != unix.EAGAIN && err != unix.EINTR {
		in = nil // the worker is gone; its result pipe says so next
	}
	pfds := make([]unix.PollFd, 0, 4)
	for {
		if done {
			if !markers {
				for _, s := range streams {
					for s.read(scratch) {
						s.consume(false)
					}
					s.consume(false)
					s.flush()
				}
				return res, nil
			}
			if (w.stdout.marker || w.stdout.eof) && (w.stderr.marker || w.stderr.eof) {
				return res, nil
			}
		}
		if err := ctx.Err(); err != nil {
			return res, context.Cause(ctx)
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return res, errTimedOut
		}
		pfds = pfds[:0]
		if len(in) > 0 {
			pfds = append(pfds, unix.PollFd{Fd: int32(p.stdin), Events: unix.POLLOUT})
		}
		if !done {
			pfds = append(pfds, unix.PollFd{Fd: int32(p.result), Events: unix.POLLIN})
		}
		for _, s := range streams {
			if !s.eof && !(done && s.marker) {
				pfds = append(pfds, unix.PollFd{Fd: int32(s.fd), Events: unix.POLLIN})
			}
		}
		// Wake up now and then to notice a cancelled ctx.
		ms := int(min(wait, 100*time.Millisecond)/time.Millisecond) + 1
		if _, err := unix.Poll(pfds, ms); err != nil && err != unix.EINTR {
			return res, err
		}
		for _, pfd := range pfds {
			if pfd.Revents == 0 {
				continue
			}
			switch int(pfd.Fd) {
			case p.stdin:
				n, err := unix.Write(p.stdin, in)
				if n > 0 {
					in = in[n:]
				}
				if err != nil && err != unix.EAGAIN && err != unix.EINTR {
					in = nil // the worker is gone; its result pipe says so next
				}
			case p.result:
				var eof bool
				resBuf, eof = readResult(p.result, scratch, resBuf, &res, limit)
				switch {
				case res.complete, res.overflow:
					done = true
				case eof:
					return res, errExited
				}
			case w.stdout.fd:
				w.stdout.read(scratch)
				w.stdout.consume(markers)
			case w.stderr.fd:
				w.stderr.read(scratch)
				w.stderr.consume(markers)
			}
		}
	}
}

// readResult reads from the result pipe until EAGAIN, a newline, EOF or
// the limit. Bytes past limit+1 are counted, not kept. On a newline res is
// complete; past the limit without one, it is an overflow.
func readResult(fd int, scratch, buf []byte, res *reply, limit int) ([]byte, bool) {
	for {
		n, err := unix.Read(fd, scratch)
		if n > 0 {
			chunk := scratch[:n]
			i := bytes.IndexByte(chunk, '\n')
			if i >= 0 {
				chunk = chunk[:i]
			}
			res.size += len(chunk)
			if room := limit + 1 - len(buf); room > 0 {
				buf = append(buf, chunk[:min(room, len(chunk))]...)
			}
			switch {
			case i >= 0:
				res.line, res.complete = bytes.Clone(buf), true
				return buf, false
			case res.size > limit:
				res.line, res.overflow = bytes.Clone(buf), true
				return buf, false
			}
			continue
		}
		switch err {
		case unix.EAGAIN:
			return buf, false
		case unix.EINTR:
			continue
		}
		return buf, true
	}
}

// drainAfterKill collects what a killed worker wrote before it died: its
// pipes reach EOF as soon as the kernel has ended it.
func (w *worker) drainAfterKill(logs *sandbox.LogBuffer) {
	w.stdout.w, w.stderr.w = logs.Stdout(), logs.Stderr()
	deadline := time.Now().Add(200 * time.Millisecond)
	for _, s := range []*stream{&w.stdout, &w.stderr} {
		for !s.eof && time.Now().Before(deadline) {
			pfd := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}}
			_, _ = unix.Poll(pfd, 20)
			s.read(w.scratch)
			s.consume(w.rt.markers)
		}
		if !s.marker {
			s.flush()
		}
	}
}
