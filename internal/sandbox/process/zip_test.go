//go:build linux

package process

import (
	"archive/zip"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

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

// zipItem is an entry of zipOrdered.
type zipItem struct {
	name, data string
	mode       fs.FileMode
}

// zipOrdered makes an archive of items in their order: the attacks below
// depend on which entry comes first.
func zipOrdered(t testing.TB, items ...zipItem) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, it := range items {
		h := &zip.FileHeader{Name: it.name, Method: zip.Deflate}
		h.SetMode(it.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(it.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestZipSymlinkChain: an archive cannot create anything through a link
// it made itself. The entry "d" is a symlink to a host directory (the
// victim); entries under "d/" would land there if extraction followed it.
func TestZipSymlinkChain(t *testing.T) {
	b := newBackend(t, Config{})
	victim := t.TempDir()
	main := zipItem{"__main__.py", "def main(a):\n    return {}\n", 0o644}
	link := zipItem{"d", victim, fs.ModeSymlink | 0o777}
	for _, tc := range []struct {
		name  string
		items []zipItem
		entry string // the entry the error names
	}{
		{"SymlinkThenSymlink", []zipItem{main, link, {"d/planted", "/etc/shadow", fs.ModeSymlink | 0o777}}, "d/planted"},
		{"SymlinkThenFile", []zipItem{main, link, {"d/planted", "x", 0o644}}, "d/planted"},
		{"SymlinkThenDir", []zipItem{main, link, {"d/planted/", "", fs.ModeDir | 0o755}}, "d/planted/"},
		{"SymlinkThenDeepFile", []zipItem{main, link, {"d/a/b/planted", "x", 0o644}}, "d/a/b/planted"},
		{"FileBeforeSymlink", []zipItem{main, {"d/planted", "x", 0o644}, link}, "d/planted"},
		{"DotSlashSymlink", []zipItem{main, {"./d", victim, fs.ModeSymlink | 0o777}, {"d/planted", "/etc/shadow", fs.ModeSymlink | 0o777}}, "d/planted"},
		{"SymlinkToSymlink", []zipItem{main, link, {"e", "d", fs.ModeSymlink | 0o777}, {"e/planted", "x", 0o644}}, "e/planted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := zipOrdered(t, tc.items...)
			f, err := b.Prepare(t.Context(), sandbox.Spec{Kind: KindPython, Code: code, Limits: limits(0)})
			if err == nil {
				_ = f.Close(t.Context())
				t.Error("Prepare accepted the archive")
			} else if msg := gust.MessageOf(err); gust.KindOf(err) != gust.KindInvalid || !strings.Contains(msg, strconv.Quote(tc.entry)) || !strings.Contains(msg, "symlink") {
				t.Errorf("Prepare: %v (kind %v), want KindInvalid naming %q and the symlink", err, gust.KindOf(err), tc.entry)
			}
			if entries, _ := os.ReadDir(victim); len(entries) > 0 {
				t.Errorf("the archive wrote into the host directory %s: %v", victim, entries)
				for _, e := range entries {
					_ = os.RemoveAll(filepath.Join(victim, e.Name()))
				}
			}
		})
	}
}

// TestExtractorNoFollow: even a link the name check missed is never
// followed: paths are resolved one component at a time without following
// links.
func TestExtractorNoFollow(t *testing.T) {
	dir, victim := t.TempDir(), t.TempDir()
	if err := os.Symlink(victim, filepath.Join(dir, "d")); err != nil {
		t.Fatal(err)
	}
	x, err := newExtractor(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer x.close()
	// O_NOFOLLOW|O_DIRECTORY on a link fails with ENOTDIR (ELOOP without
	// O_DIRECTORY): either way, not followed.
	refused := func(err error) bool { return errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) }
	if _, err := x.dir("d/sub"); !refused(err) {
		t.Errorf("dir through a symlink: %v, want ENOTDIR or ELOOP", err)
	}
	if err := x.symlink("d/planted", "/etc/shadow"); !refused(err) {
		t.Errorf("symlink through a symlink: %v, want ENOTDIR or ELOOP", err)
	}
	if entries, _ := os.ReadDir(victim); len(entries) > 0 {
		t.Errorf("created in the link's target: %v", entries)
	}
	// What is not a link is created as asked.
	if _, err := x.dir("a/b"); err != nil {
		t.Fatal(err)
	}
	if err := x.symlink("a/b/l", "/elsewhere"); err != nil {
		t.Fatal(err)
	}
	if dest, err := os.Readlink(filepath.Join(dir, "a/b/l")); err != nil || dest != "/elsewhere" {
		t.Errorf("symlink a/b/l: %q, %v", dest, err)
	}
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
		}), `"link/evil" is inside "link", which is a symlink`},
		{"Duplicate", KindPython, zipOrdered(t, zipItem{"__main__.py", main, 0o644}, zipItem{"__main__.py", main, 0o644}), `"__main__.py" cannot be extracted: another entry has the same name`},
		{"FileAsDirectory", KindPython, zipOrdered(t, zipItem{"__main__.py", main, 0o644}, zipItem{"a", "x", 0o644}, zipItem{"a/b", "x", 0o644}), `"a/b" cannot be extracted: its path goes through an entry that is not a directory`},
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
