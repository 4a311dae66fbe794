package wasmbuild

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func need(t *testing.T, tc func() (Toolchain, error)) {
	t.Helper()
	if _, err := tc(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// TestCached: a build is cached under its key, a change of source makes a
// new one, and a compiler error comes back with the compiler's output.
func TestCached(t *testing.T) {
	tests := []struct {
		name  string
		tc    func() (Toolchain, error)
		file  string
		good  string
		other string
		bad   string
		build func(ctx context.Context, cache, src string) ([]byte, error)
	}{
		{"C", Clang, "m.c", "int main(void) { return 0; }\n", "int main(void) { return 1; }\n", "int main(void) { return }\n",
			func(ctx context.Context, cache, src string) ([]byte, error) { return C(ctx, cache, src, false) }},
		{"Go", Go, "main.go", "package main\n\nfunc main() {}\n", "package main\n\nfunc main() { println() }\n", "package main\n\nfunc main() {\n",
			func(ctx context.Context, cache, src string) ([]byte, error) {
				return GoProgram(ctx, cache, filepath.Dir(src), false)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			need(t, tt.tc)
			cache, dir := t.TempDir(), t.TempDir()
			src := filepath.Join(dir, tt.file)
			write := func(s string) {
				if err := os.WriteFile(src, []byte(s), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write(tt.good)
			first, err := tt.build(t.Context(), cache, src)
			if err != nil || !bytes.HasPrefix(first, []byte("\x00asm")) {
				t.Fatalf("build: %v (%d bytes)", err, len(first))
			}
			again, err := tt.build(t.Context(), cache, src)
			if err != nil || !bytes.Equal(first, again) {
				t.Errorf("second build: %v, same module %v", err, bytes.Equal(first, again))
			}
			write(tt.other)
			if _, err := tt.build(t.Context(), cache, src); err != nil {
				t.Fatal(err)
			}
			if got, _ := filepath.Glob(filepath.Join(cache, "*.wasm")); len(got) != 2 {
				t.Errorf("cache holds %v, want one module per source", got)
			}
			write(tt.bad)
			if _, err := tt.build(t.Context(), cache, src); err == nil || !strings.Contains(err.Error(), tt.file) {
				t.Errorf("bad source: err = %v, want the compiler's message naming %s", err, tt.file)
			}
			if left, _ := filepath.Glob(filepath.Join(cache, "*.tmp*")); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}
