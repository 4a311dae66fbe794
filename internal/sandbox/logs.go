package sandbox

import (
	"bytes"
	"fmt"
	"sync"
	"time"
)

// LogBuffer collects a call's stdout and stderr as OpenWhisk log lines:
// "<RFC 3339 nano time, padded to 30> <stream>: <text>". Once limit bytes of
// text have been kept, it keeps no more and adds one truncation line
// (msgTruncated).
// It is safe for concurrent use by the two streams.
type LogBuffer struct {
	mu        sync.Mutex
	limit     int
	used      int
	lines     []string
	truncated bool
	partial   [2][]byte
	now       func() time.Time
}

// NewLogBuffer returns a buffer keeping at most limit bytes of log text.
func NewLogBuffer(limit int) *LogBuffer {
	return &LogBuffer{limit: limit, now: time.Now}
}

// Stdout returns a writer for the stdout stream.
func (b *LogBuffer) Stdout() *StreamWriter { return &StreamWriter{b: b, stream: 0} }

// Stderr returns a writer for the stderr stream.
func (b *LogBuffer) Stderr() *StreamWriter { return &StreamWriter{b: b, stream: 1} }

// StreamWriter is the io.Writer of one stream of a LogBuffer.
type StreamWriter struct {
	b      *LogBuffer
	stream int
}

// Write splits p into lines; it never fails, so a chatty function is not
// stopped by its logs, only truncated.
func (w *StreamWriter) Write(p []byte) (int, error) {
	w.b.write(w.stream, p)
	return len(p), nil
}

var streamNames = [2]string{"stdout", "stderr"}

func (b *LogBuffer) write(stream int, p []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.truncated {
		return // nothing more is kept: do not even split it into lines
	}
	data := p
	if len(b.partial[stream]) > 0 {
		data = append(b.partial[stream], p...)
		b.partial[stream] = nil
	}
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		b.addLocked(stream, data[:i])
		data = data[i+1:]
	}
	if len(data) > 0 {
		if b.truncated || len(data) > b.limit {
			// A line longer than the whole limit: keep what fits, drop the rest.
			b.addLocked(stream, data)
			return
		}
		b.partial[stream] = append([]byte(nil), data...)
	}
}

func (b *LogBuffer) addLocked(stream int, text []byte) {
	if b.truncated {
		return
	}
	if b.used+len(text) > b.limit {
		b.truncated = true
		return
	}
	b.used += len(text)
	b.lines = append(b.lines, fmt.Sprintf("%-30s %s: %s", b.now().UTC().Format(time.RFC3339Nano), streamNames[stream], text))
}

// Truncated reports whether output was dropped.
func (b *LogBuffer) Truncated() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.truncated
}

// Lines flushes partial lines and returns the collected log lines, ending with
// a truncation notice when output was dropped.
func (b *LogBuffer) Lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.partial {
		if len(b.partial[s]) > 0 {
			b.addLocked(s, b.partial[s])
			b.partial[s] = nil
		}
	}
	lines := b.lines
	if b.truncated {
		lines = append(lines, fmt.Sprintf("%-30s stderr: "+msgTruncated, b.now().UTC().Format(time.RFC3339Nano), b.limit))
	}
	return lines
}

// msgTruncated is the last log line of a call that reached its log limit:
// the phrase every backend's limit errors share, then OpenWhisk's text,
// which clients match at the end of the line. A backend ends the instance
// of such a call (it serves no other call); the call's result is what the
// function returned.
const msgTruncated = "[log limit reached, output truncated] Logs were truncated because the total bytes size exceeds the limit of %d bytes."
