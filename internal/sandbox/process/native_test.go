//go:build linux

package process

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gust-faas/gust/internal/sandbox/sandboxtest"
)

var (
	nativeMu    sync.Mutex
	nativeBuilt = map[string][]byte{}
	nativeDir   string
)

// buildNative returns testdata/native in the given mode: a static linux
// binary speaking actionloop, built once per test binary run.
func buildNative(t testing.TB, mode string) []byte {
	t.Helper()
	nativeMu.Lock()
	defer nativeMu.Unlock()
	if b, ok := nativeBuilt[mode]; ok {
		return b
	}
	if _, err := exec.LookPath("go"); err != nil {
		sandboxtest.Unavailable(t, "no go toolchain to build the native fixture")
	}
	if nativeDir == "" {
		d, err := os.MkdirTemp("", "gust-native-")
		if err != nil {
			t.Fatal(err)
		}
		nativeDir = d
	}
	base, ok := nativeBuilt[""]
	if !ok {
		out := filepath.Join(nativeDir, "native")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./testdata/native")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build native fixture: %v\n%s", err, msg)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		base = b
		nativeBuilt[""] = b
	}
	b := append(append([]byte(nil), base...), "\nmode="+mode...)
	nativeBuilt[mode] = b
	return b
}
