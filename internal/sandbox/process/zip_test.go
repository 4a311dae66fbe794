//go:build linux

package process

import (
	"archive/zip"
	"bytes"
	"io/fs"
	"strings"
	"testing"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
)

type zipEntry struct {
	data string
	mode fs.FileMode
}

func zipOf(t testing.TB, files map[string]string) []byte {
	m := map[string]zipEntry{}
	for k, v := range files {
		m[k] = zipEntry{data: v, mode: 0o644}
	}
	return zipOfMode(t, m)
}

func zipOfMode(t testing.TB, files map[string]zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, e := range files {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(e.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestZipRefused(t *testing.T) {
	b := newBackend(t, Config{MaxCodeBytes: 1 << 20})
	main := "def main(a):\n    return {}\n"
	for _, tc := range []struct {
		name string
		kind string
		code []byte
		want string
	}{
		{"DotDot", KindPython, zipOf(t, map[string]string{"__main__.py": main, "../evil.py": "x"}), "outside the action's directory"},
		{"DeepDotDot", KindPython, zipOf(t, map[string]string{"__main__.py": main, "a/../../evil.py": "x"}), "outside the action's directory"},
		{"Absolute", KindPython, zipOf(t, map[string]string{"__main__.py": main, "/etc/evil": "x"}), "outside the action's directory"},
		{"SymlinkThenWrite", KindPython, zipOfMode(t, map[string]zipEntry{
			"__main__.py": {data: main, mode: 0o644},
			"link":        {data: "/etc", mode: fs.ModeSymlink | 0o777},
			"link/evil":   {data: "x", mode: 0o644},
		}), "cannot be extracted"},
		{"TooBig", KindPython, zipOf(t, map[string]string{"__main__.py": main, "big": strings.Repeat("x", 2<<20)}), "expands to"},
		{"Corrupt", KindPython, []byte("PK\x03\x04 this is not really a zip archive"), "not a valid zip archive"},
		{"NoMainPy", KindPython, zipOf(t, map[string]string{"main.py": main}), "no __main__.py"},
		{"NodeNoEntry", KindNode, zipOf(t, map[string]string{"lib.js": ""}), "neither package.json nor index.js"},
		{"NativeNoExec", KindNative, zipOf(t, map[string]string{"run": "x"}), "no executable named exec"},
		{"NativeText", KindNative, []byte("echo hi"), "not an executable"},
		{"GoSource", KindGo, []byte("package main\nfunc main() {}\n"), "Go source is not compiled"},
		{"ELF32", KindNative, append([]byte("\x7fELF\x01\x01\x01"), make([]byte, 60)...), "32-bit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := b.Prepare(t.Context(), sandbox.Spec{Kind: tc.kind, Code: tc.code, Limits: limits(0)})
			if err == nil {
				_ = f.Close(t.Context())
				t.Fatal("Prepare accepted the code")
			}
			if gust.KindOf(err) != gust.KindInvalid || !strings.Contains(gust.MessageOf(err), tc.want) {
				t.Errorf("Prepare: %v (kind %v), want KindInvalid mentioning %q", err, gust.KindOf(err), tc.want)
			}
		})
	}
}
