//go:build linux

package process

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// Sandboxes re-exec this test binary as their init helper.
	MaybeRunInit()
	code := m.Run()
	if nativeDir != "" {
		_ = os.RemoveAll(nativeDir)
	}
	os.Exit(code)
}
