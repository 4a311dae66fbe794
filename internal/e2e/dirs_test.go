package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gust-faas/gust/internal/app"
	"github.com/gust-faas/gust/internal/sandbox/wasm"
)

// TestWasmDirs: a wasm action sees no host files, except directories the
// operator granted its namespace and it asks for (annotation gust-dirs):
// read-only ones cannot be written, writable ones can; another namespace's
// grant, or a name never granted, is refused at create.
func TestWasmDirs(t *testing.T) {
	ro, rw := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(ro, "conf.txt"), []byte("threshold=42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	grant := func(s string) wasm.DirGrant {
		g, err := wasm.ParseDirGrant(s)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	e := start(t, func(c *app.Config) {
		c.WasmDirs = []wasm.DirGrant{grant("guest/conf=" + ro), grant("guest/out=" + rw + ":rw"), grant("other/secret=" + ro)}
	})
	put := func(name string, dirs any) reply {
		body := map[string]any{"exec": wasmExec(t, "files")}
		if dirs != nil {
			body["annotations"] = []map[string]any{{"key": "gust-dirs", "value": dirs}}
		}
		return e.do("PUT", "/api/v1/namespaces/_/actions/"+name+"?overwrite=true", body)
	}
	call := func(name string, params map[string]any) map[string]any {
		t.Helper()
		r := e.do("POST", "/api/v1/namespaces/_/actions/"+name+"?blocking=true&result=true", params)
		var m map[string]any
		r.decode(t, &m)
		return m
	}

	want(t, put("nofiles", nil), http.StatusOK)
	if got := call("nofiles", map[string]any{"read": "/conf/conf.txt"}); got["error"] == nil {
		t.Errorf("an action without grants read a file: %v", got)
	}

	want(t, put("granted", []string{"conf", "out"}), http.StatusOK)
	if got := call("granted", map[string]any{"read": "/conf/conf.txt"}); got["content"] != "threshold=42" {
		t.Errorf("read of a granted directory: %v", got)
	}
	if got := call("granted", map[string]any{"write": "/conf/x.txt", "text": "no"}); got["error"] == nil {
		t.Errorf("wrote into a read-only grant: %v", got)
	}
	if got := call("granted", map[string]any{"write": "/out/result.txt", "text": "done"}); got["written"] != true {
		t.Errorf("write into a writable grant: %v", got)
	}
	if b, err := os.ReadFile(filepath.Join(rw, "result.txt")); err != nil || string(b) != "done" {
		t.Errorf("the host sees %q, %v", b, err)
	}
	if got := call("granted", map[string]any{"read": "/etc/passwd"}); got["error"] == nil {
		t.Errorf("read a host file outside the grants: %v", got)
	}

	// An update of the annotation alone is checked too.
	r := e.do("PUT", "/api/v1/namespaces/_/actions/granted?overwrite=true", map[string]any{
		"annotations": []map[string]any{{"key": "gust-dirs", "value": []string{"secret"}}}})
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "not granted") {
		t.Errorf("annotation-only update to another namespace's grant: %s", r)
	}
	if got := call("granted", map[string]any{"read": "/conf/conf.txt"}); got["content"] != "threshold=42" {
		t.Errorf("after the refused update: %v", got)
	}

	for _, c := range []struct {
		dirs any
		msg  string
	}{
		{[]string{"secret"}, "The directory 'secret' is not granted to namespace 'guest'"},
		{[]string{"nope"}, "The directory 'nope' is not granted"},
		{"conf", "must be a list of directory names"},
	} {
		r := put("refused", c.dirs)
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), c.msg) {
			t.Errorf("gust-dirs %v: %s, want 400 %q", c.dirs, r, c.msg)
		}
	}
}

func TestParseDirGrant(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		in       string
		ok, rw   bool
		ns, name string
	}{
		{"guest/data=" + dir, true, false, "guest", "data"},
		{"guest/data=" + dir + ":rw", true, true, "guest", "data"},
		{"guest/data=" + dir + ":ro", true, false, "guest", "data"},
		{"guest/data=relative", false, false, "", ""},
		{"guest/..=" + dir, false, false, "", ""},
		{"data=" + dir, false, false, "", ""},
		{"guest/data=" + dir + "/missing", false, false, "", ""},
		{"/data=" + dir, false, false, "", ""},
	} {
		g, err := wasm.ParseDirGrant(c.in)
		if (err == nil) != c.ok {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if c.ok && (g.Writable != c.rw || g.Namespace != c.ns || g.Name != c.name || g.Path != dir) {
			t.Errorf("%q: %+v", c.in, g)
		}
	}
}
