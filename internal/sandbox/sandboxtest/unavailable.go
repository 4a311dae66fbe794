package sandboxtest

import (
	"fmt"
	"os"
	"testing"
)

// Unavailable skips a test that needs something this machine lacks (a
// toolchain, an interpreter, namespaces) on a developer's machine, but
// fails it in CI (CI set), where a skipped suite would pass silently.
func Unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		tb.Fatal(msg + " (CI is set: the machine must provide it)")
	}
	tb.Skip(msg)
}
