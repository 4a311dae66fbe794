package sandbox

import (
	"strings"
	"testing"
	"time"
)

func fixedBuffer(limit int) *LogBuffer {
	b := NewLogBuffer(limit)
	b.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC) }
	return b
}

func TestLogBuffer(t *testing.T) {
	b := fixedBuffer(100)
	b.Stdout().Write([]byte("hello\nwor"))
	b.Stderr().Write([]byte("oops\n"))
	b.Stdout().Write([]byte("ld\n"))
	b.Stdout().Write([]byte("tail without newline"))
	got := b.Lines()
	want := []string{
		"2026-01-02T03:04:05.000000006Z stdout: hello",
		"2026-01-02T03:04:05.000000006Z stderr: oops",
		"2026-01-02T03:04:05.000000006Z stdout: world",
		"2026-01-02T03:04:05.000000006Z stdout: tail without newline",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if b.Truncated() {
		t.Fatal("truncated")
	}
}

func TestLogBufferTruncates(t *testing.T) {
	b := fixedBuffer(10)
	b.Stdout().Write([]byte("12345\n67890\nabc\n"))
	b.Stderr().Write([]byte(strings.Repeat("z", 1000)))
	got := b.Lines()
	if len(got) != 3 || !strings.HasSuffix(got[1], "stdout: 67890") ||
		!strings.HasSuffix(got[2], "stderr: [log limit reached, output truncated] Logs were truncated because the total bytes size exceeds the limit of 10 bytes.") {
		t.Fatalf("got %q", got)
	}
	if !b.Truncated() {
		t.Fatal("not marked truncated")
	}
	// A huge line without a newline is not buffered without bound.
	b = fixedBuffer(10)
	for range 100 {
		b.Stdout().Write([]byte(strings.Repeat("x", 1000)))
	}
	if got := b.Lines(); len(got) != 1 || !b.Truncated() {
		t.Fatalf("long line: %q", got)
	}
	// Zero limit keeps nothing but the notice.
	b = fixedBuffer(0)
	b.Stdout().Write([]byte("a\n"))
	if got := b.Lines(); len(got) != 1 || !strings.Contains(got[0], "truncated") {
		t.Fatalf("zero limit: %q", got)
	}
}
