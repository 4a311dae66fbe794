package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestInferKind(t *testing.T) {
	for _, tc := range []struct{ file, kind, err string }{
		{"hello.wasm", "wasm", ""},
		{"dir.v2/HELLO.WASM", "wasm", ""},
		{"main.py", "python:default", ""},
		{"index.js", "nodejs:default", ""},
		{"bundle.zip", "", "cannot infer the kind of bundle.zip: a zip archive needs --kind"},
		{"hello.rb", "", "cannot infer the kind of hello.rb: use --kind"},
		{"hello", "", "cannot infer the kind of hello: use --kind"},
	} {
		kind, err := inferKind(tc.file)
		if kind != tc.kind || (err == nil) != (tc.err == "") || err != nil && err.Error() != tc.err {
			t.Errorf("inferKind(%q) = %q, %v; want %q, %q", tc.file, kind, err, tc.kind, tc.err)
		}
		var ue *cliUsageError
		if err != nil && !errors.As(err, &ue) {
			t.Errorf("inferKind(%q) error is not a usage error", tc.file)
		}
	}
}

func TestReadExec(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	wasm := []byte("\x00asm\x01\x00\x00\x00")
	elf := []byte("\x7fELF\x02\x01\x01\x00\x00\x00")
	script := []byte("def main(args):\n    return {\"é\": 1}\n")
	for _, tc := range []struct {
		name, file, kind, main string
		data                   []byte
		wantKind               string
		binary                 bool
	}{
		{name: "wasm", file: write("hello.wasm", wasm, 0o644), wantKind: "wasm", data: wasm, binary: true},
		{name: "python text", file: write("hello.py", script, 0o644), main: "handler", wantKind: "python:default", data: script},
		{name: "executable script stays text", file: write("tool.py", script, 0o755), wantKind: "python:default", data: script},
		{name: "native executable", file: write("app", elf, 0o755), kind: "native", wantKind: "native", data: elf, binary: true},
		{name: "zip with kind", file: write("a.zip", []byte("PK\x03\x04"), 0o644), kind: "python:3", wantKind: "python:3", data: []byte("PK\x03\x04"), binary: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exec, err := readExec(tc.file, tc.kind, tc.main)
			if err != nil {
				t.Fatal(err)
			}
			if exec.Kind != tc.wantKind || exec.Binary != tc.binary || exec.Main != tc.main {
				t.Errorf("exec = %+v", exec)
			}
			code := []byte(exec.Code)
			if tc.binary {
				if code, err = base64.StdEncoding.DecodeString(exec.Code); err != nil {
					t.Fatalf("code is not base64: %v", err)
				}
			}
			if string(code) != string(tc.data) {
				t.Errorf("code = %q, want %q", code, tc.data)
			}
		})
	}
	if _, err := readExec(filepath.Join(dir, "missing.wasm"), "", ""); err == nil {
		t.Error("missing file: no error")
	}
	if _, err := readExec(write("x.zip", []byte("PK"), 0o644), "", ""); err == nil {
		t.Error("zip without --kind: no error")
	}
}

func TestWebAnnotations(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"true", `[{"key":"web-export","value":true},{"key":"raw-http","value":false},{"key":"final","value":true}]`},
		{"raw", `[{"key":"web-export","value":true},{"key":"raw-http","value":true},{"key":"final","value":true}]`},
		{"false", `[{"key":"web-export","value":false},{"key":"raw-http","value":false},{"key":"final","value":false}]`},
	} {
		kv, err := webAnnotations(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := json.Marshal(kv); string(got) != tc.want {
			t.Errorf("--web %s = %s, want %s", tc.in, got, tc.want)
		}
	}
	if _, err := webAnnotations("maybe"); err == nil {
		t.Error("--web maybe: no error")
	}
}
