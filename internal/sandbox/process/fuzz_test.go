//go:build linux

package process

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
)

// FuzzExtractZip: an action's zip is uploaded by anyone who may create an
// action. Whatever it holds, extraction must not panic, must not touch
// anything outside its directory, must not write more than maxBytes, and
// must fail only as the user's error (400, never a platform error); when
// it succeeds, the files hold what the archive says.
func FuzzExtractZip(f *testing.F) {
	const maxBytes = 4 << 10
	main := zipItem{"__main__.py", "def main(a):\n    return {}\n", 0o644}
	for _, items := range [][]zipItem{
		{main},
		{main, {"lib/", "", fs.ModeDir | 0o755}, {"lib/a.py", "x = 1\n", 0o755}},
		{main, {"../victim/planted", "x", 0o644}},
		{main, {"d", "../victim", fs.ModeSymlink | 0o777}, {"d/planted", "x", 0o644}},
		{main, {"e", "/", fs.ModeSymlink | 0o777}},
		{main, {"big", strings.Repeat("x", maxBytes+1), 0o644}},
		{main, {"a", "x", 0o644}, {"a/b", "y", 0o644}},
		{main, {`a\..\..\victim\x`, "x", 0o644}},
	} {
		f.Add(zipOrdered(f, items...))
	}
	f.Fuzz(func(t *testing.T, code []byte) {
		base := t.TempDir()
		out, victim := filepath.Join(base, "out"), filepath.Join(base, "victim")
		for _, d := range []string{out, victim} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(victim, "keep"), []byte("kept"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := extractZip(out, code, maxBytes)
		if err != nil && gust.KindOf(err) != gust.KindInvalid {
			t.Fatalf("a platform error for the user's archive: %v", err)
		}

		// Nothing outside out: base holds out and victim, victim its file.
		if names := dirNames(t, base); strings.Join(names, ",") != "out,victim" {
			t.Fatalf("the archive wrote beside its directory: %v", names)
		}
		if names := dirNames(t, victim); strings.Join(names, ",") != "keep" {
			t.Fatalf("the archive wrote into a sibling: %v", names)
		}
		if b, _ := os.ReadFile(filepath.Join(victim, "keep")); string(b) != "kept" {
			t.Fatalf("the archive overwrote a sibling's file: %q", b)
		}

		// Sizes: what was written, links not followed (Lstat, WalkDir).
		var written int64
		_ = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Fatalf("walk %s: %v", p, err)
			}
			info, err := d.Info()
			if err != nil {
				t.Fatal(err)
			}
			switch m := info.Mode(); {
			case m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0:
				t.Errorf("%s has mode %v", p, m)
			case m.IsRegular():
				written += info.Size()
			case m.IsDir(), m&fs.ModeSymlink != 0:
			default:
				t.Errorf("%s is neither a file, a directory nor a link: %v", p, m)
			}
			return nil
		})
		// A failed extraction may have written one byte past the budget:
		// that byte is how it learnt the archive lied about its size.
		if limit := int64(maxBytes) + map[bool]int64{true: 1}[err != nil]; written > limit {
			t.Fatalf("wrote %d bytes, limit %d (err %v)", written, limit, err)
		}
		if err != nil {
			return
		}
		// Success: each file and link is there as the archive has it.
		zr, zerr := zip.NewReader(bytes.NewReader(code), int64(len(code)))
		if zerr != nil {
			t.Fatalf("extracted an archive zip cannot read: %v", zerr)
		}
		for _, zf := range zr.File {
			name := path.Clean(zf.Name)
			m := zf.Mode()
			if name == "." || m.IsDir() || strings.HasSuffix(zf.Name, "/") {
				continue
			}
			want := readEntry(t, zf)
			p := filepath.Join(out, filepath.FromSlash(name))
			if m&fs.ModeSymlink != 0 {
				if dest, err := os.Readlink(p); err != nil || dest != string(want[:min(len(want), 4096)]) {
					t.Errorf("link %q: %q, %v; want %q", zf.Name, dest, err, want)
				}
				continue
			}
			if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, want) {
				t.Errorf("file %q: %d bytes, %v; want %d bytes", zf.Name, len(got), err, len(want))
			}
		}
	})
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func readEntry(t *testing.T, zf *zip.File) []byte {
	t.Helper()
	rc, err := zf.Open()
	if err != nil {
		t.Fatalf("entry %q extracted but does not open: %v", zf.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("entry %q extracted but does not read: %v", zf.Name, err)
	}
	return b
}

// FuzzResult: a function's reply, as readResult takes it from the pipe in
// reads of any size and classify judges it. The reply is the function's
// to choose, so: what is kept is at most limit+1 bytes and a prefix of the
// line; its flags say what was read; a success or application error
// carries at most limit bytes of valid JSON, a success no top-level
// "error"; every result is a JSON object or array; only a reply read whole
// lets the worker serve on.
func FuzzResult(f *testing.F) {
	for _, s := range []string{"{}\n", `R{"a":1}` + "\n", `R{"error":"x"}` + "\n", `E"boom"` + "\n", "R42\n", "X{}\n", "\n", `R{"a":"` + strings.Repeat("x", 300) + "\"}\n", "[1,2]", `{"\u0065rror":1}` + "\n"} {
		f.Add([]byte(s), uint16(64), uint8(7), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, limit16 uint16, chunk uint8, prefixed bool) {
		limit := int(limit16%1024) + 1
		if len(data) > 32<<10 {
			return // one pipe's worth, written before reading
		}
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		defer unix.Close(p[0])
		if _, err := unix.Write(p[1], data); err != nil && len(data) > 0 {
			t.Fatal(err)
		}
		unix.Close(p[1])
		var r reply
		buf, scratch := []byte(nil), make([]byte, int(chunk%32)+1)
		eof := false
		for !r.complete && !r.overflow && !eof {
			buf, eof = readResult(p[0], scratch, buf, &r, limit)
		}
		line, _, hasNL := bytes.Cut(data, []byte("\n"))
		switch {
		case r.complete && r.overflow:
			t.Fatal("complete and overflow")
		case len(r.line) > limit+1 || !bytes.HasPrefix(line, r.line):
			t.Fatalf("kept %q of line %q (limit %d)", r.line, line, limit)
		case r.complete && (!hasNL || r.size != len(line) || len(r.line) != min(len(line), limit+1)):
			t.Fatalf("complete: size %d, kept %d, of a line of %d (newline %v)", r.size, len(r.line), len(line), hasNL)
		case r.overflow && (r.size <= limit || r.size > len(line) || len(r.line) != limit+1):
			t.Fatalf("overflow: size %d, kept %d, line %d, limit %d", r.size, len(r.line), len(line), limit)
		case !r.complete && !r.overflow && (hasNL || len(data) > limit):
			t.Fatalf("neither complete nor overflow for %d bytes (newline %v, limit %d)", len(data), hasNL, limit)
		}

		rlimit := limit
		if prefixed {
			rlimit-- // as Invoke: the limit counts the R/E prefix
		}
		o := classify(r, rlimit, prefixed)
		body := o.result
		if !json.Valid(body) || len(body) == 0 || body[0] != '{' && body[0] != '[' {
			t.Fatalf("result %q is not a JSON object or array", body)
		}
		switch o.status {
		case gust.StatusSuccess, gust.StatusApplicationError:
			var m map[string]json.RawMessage
			isObj := json.Unmarshal(body, &m) == nil
			_, hasErr := m["error"]
			switch {
			case o.status == gust.StatusSuccess && isObj && hasErr:
				t.Fatalf("success with an error: %s", body)
			case o.status == gust.StatusApplicationError && !(isObj && hasErr):
				t.Fatalf("application error without one: %s", body)
			case len(body) > rlimit && !strings.Contains(string(body), "exceeded the allowed length"):
				t.Fatalf("a result of %d bytes passed the limit %d", len(body), rlimit)
			case o.keep && !r.complete:
				t.Fatal("the worker serves on with a reply still in its pipe")
			}
		case gust.StatusDeveloperError:
			if o.keep {
				t.Fatalf("a developer error keeps its worker: %s", body)
			}
			var m map[string]string
			if json.Unmarshal(body, &m) != nil || m["error"] == "" || len(m) != 1 {
				t.Fatalf("developer error %s is not {\"error\": text}", body)
			}
		default:
			t.Fatalf("status %v", o.status)
		}
		// The launchers reply R or E; anything else is the runtime's fault.
		if prefixed && len(r.line) > 0 && r.line[0] != 'R' && r.line[0] != 'E' && errorOfJSON(body) != msgBadLauncher {
			t.Fatalf("reply %q with no R/E prefix: %s", r.line, body)
		}
	})
}

func errorOfJSON(b []byte) string {
	var m struct{ Error string }
	_ = json.Unmarshal(b, &m)
	return m.Error
}

// Two activation ids of a concurrent worker's calls; a is the oldest.
const (
	fuzzIDA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	fuzzIDB = "0123456789abcdef0123456789abcdef"
)

// FuzzMuxLines: the id-tagged lines a concurrent Node.js worker writes
// (launcher.js), as the mux reader hands them to lines in reads of any
// size. The function writes what it likes into them, so: one call never
// gets text that was not tagged with its id (untagged text goes to the
// oldest call, a, only); how the bytes were split across reads changes
// nothing but the size recorded of a reply cut at the limit (and whether
// its call awaited its markers); a reply kept is at most limit+1 bytes.
func FuzzMuxLines(f *testing.F) {
	for _, s := range []string{
		fuzzIDA + "\thello\n" + fuzzIDB + "\tworld\n",
		fuzzIDB + "\tpartial" + string(marker) + "\n" + fuzzIDA + "\t" + string(marker) + "\n",
		"untagged\n" + fuzzIDB + "\t" + string(marker) + "\n",
		fuzzIDA + "\tR{\"n\":1}\n" + fuzzIDB + "\tR" + strings.Repeat("x", 100) + "\n" + fuzzIDB + "\tR{}\n",
		fuzzIDB[:31] + "\tnot quite\n" + strings.ToUpper(fuzzIDB) + "\tupper\n",
	} {
		for stream := range uint8(3) {
			f.Add([]byte(s), stream, uint8(5), uint8(40))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, stream, chunk, limit8 uint8) {
		i := int(stream % 3)
		limit := int(limit8%64) + 1
		whole := runMuxLines(data, i, limit, len(data)+1)
		split := runMuxLines(data, i, limit, int(chunk%16)+1)
		for _, r := range []muxRun{whole, split} {
			for _, text := range r.logs[1] {
				if !bytes.Contains(data, []byte(fuzzIDB+"\t"+text)) {
					t.Fatalf("call b logged %q, which no line tagged b holds", text)
				}
			}
			for id, c := range r.calls {
				if len(c.line) > limit+1 {
					t.Fatalf("call %d kept %d bytes of reply, limit %d", id, len(c.line), limit)
				}
			}
		}
		for k := range 2 {
			if strings.Join(whole.logs[k], "\n") != strings.Join(split.logs[k], "\n") {
				t.Fatalf("call %d logs depend on the reads:\nwhole %q\nsplit %q", k, whole.logs[k], split.logs[k])
			}
			w, s := whole.calls[k], split.calls[k]
			// A reply cut at the limit before its newline ends its call at
			// once (its markers not awaited) with the bytes read so far.
			cut := w.overflow || s.overflow
			if !bytes.Equal(w.line, s.line) || w.overflow != s.overflow || !cut && (w.outEnd != s.outEnd || w.errEnd != s.errEnd || w.size != s.size) {
				t.Fatalf("call %d depends on the reads:\nwhole %+v\nsplit %+v", k, w, s)
			}
		}
	})
}

type muxRun struct {
	logs  [2][]string // log texts of calls a and b
	calls [2]muxCall
}

// runMuxLines feeds data to a muxWorker's stream i in reads of n bytes, as
// its reader does.
func runMuxLines(data []byte, i, limit, n int) muxRun {
	m := &muxWorker{calls: map[string]*muxCall{}, order: []string{fuzzIDA, fuzzIDB}}
	ids := [2]string{fuzzIDA, fuzzIDB}
	for _, id := range ids {
		m.calls[id] = &muxCall{logs: sandbox.NewLogBuffer(1 << 20), done: make(chan struct{})}
	}
	var pending []byte
	for len(data) > 0 {
		k := min(n, len(data))
		pending = append(pending, data[:k]...)
		data = data[k:]
		pending = m.lines(i, pending, limit)
	}
	var r muxRun
	for k, id := range ids {
		c := m.calls[id]
		for _, l := range c.logs.Lines() {
			// "<time, padded to 30> <stream>: <text>"
			_, text, _ := strings.Cut(l[31:], ": ")
			r.logs[k] = append(r.logs[k], text)
		}
		r.calls[k] = muxCall{line: c.line, size: c.size, overflow: c.overflow, outEnd: c.outEnd, errEnd: c.errEnd}
	}
	return r
}

// FuzzSplitMarker: the marker is found exactly when the line ends with it,
// and the text before it comes back whole.
func FuzzSplitMarker(f *testing.F) {
	for _, s := range []string{string(marker) + "\n", "abc" + string(marker) + "\n", "abc\n", string(marker[1:]) + "\n", string(marker)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		text, found := splitMarker(line)
		body := bytes.TrimSuffix(line, []byte("\n"))
		if found != bytes.HasSuffix(body, marker) {
			t.Fatalf("found %v for %q", found, line)
		}
		if !found {
			return
		}
		before := body[:len(body)-len(marker)]
		if len(before) == 0 && text != nil || len(before) > 0 && string(text) != string(before)+"\n" {
			t.Fatalf("text %q before the marker of %q", text, line)
		}
	})
}
