package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/gust-faas/gust/internal/gust"
)

func TestParseParamValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"1", `1`},
		{"-2.5e3", `-2.5e3`},
		{"true", `true`},
		{"null", `null`},
		{"world", `"world"`},
		{"hello world", `"hello world"`},
		{`"quoted"`, `"quoted"`},
		{`{"a": [1, 2]}`, `{"a":[1,2]}`},
		{"[1,", `"[1,"`},
		{"", `""`},
		{" 7 ", `7`},
		{"01", `"01"`}, // not JSON: a leading zero
		{"tab\there", `"tab\there"`},
	} {
		if got := string(parseParamValue(tc.in)); got != tc.want {
			t.Errorf("parseParamValue(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestParseParamFile(t *testing.T) {
	kv, err := parseParamFile([]byte(`{"b": {"x": 1}, "a": "s", "c": [true]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := gust.KeyValues{
		{Key: "a", Value: json.RawMessage(`"s"`)},
		{Key: "b", Value: json.RawMessage(`{"x":1}`)},
		{Key: "c", Value: json.RawMessage(`[true]`)},
	}
	if got, _ := json.Marshal(kv); string(got) != string(mustJSON(t, want)) {
		t.Errorf("parseParamFile = %s, want %s", got, mustJSON(t, want))
	}
	for _, bad := range []string{`[1]`, `"s"`, `null`, `{`, ``} {
		if _, err := parseParamFile([]byte(bad)); err == nil {
			t.Errorf("parseParamFile(%q) succeeded, want an error", bad)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuildParams(t *testing.T) {
	dir := t.TempDir()
	f1 := filepath.Join(dir, "p1.json")
	f2 := filepath.Join(dir, "p2.json")
	os.WriteFile(f1, []byte(`{"a": 1, "b": 1}`), 0o644)
	os.WriteFile(f2, []byte(`{"b": 2, "c": 2}`), 0o644)
	kv, err := buildParams([]string{f1, f2}, [][2]string{{"c", "3"}, {"d", "four"}})
	if err != nil {
		t.Fatal(err)
	}
	obj, _ := paramsObject(kv)
	if string(obj) != `{"a":1,"b":2,"c":3,"d":"four"}` {
		t.Errorf("params = %s", obj)
	}

	if kv, err := buildParams(nil, nil); err != nil || kv != nil {
		t.Errorf("no params = %v, %v; want nil so that updates leave parameters alone", kv, err)
	}
	if _, err := buildParams([]string{filepath.Join(dir, "missing.json")}, nil); err == nil {
		t.Error("missing file: no error")
	}
	os.WriteFile(f1, []byte(`[1]`), 0o644)
	if _, err := buildParams([]string{f1}, nil); err == nil {
		t.Error("array file: no error")
	}
}

// FuzzParseParam checks the parsers of -p values and -P files on any input:
// whatever they return is valid JSON, and a -p value that is not JSON is
// kept as the same string.
func FuzzParseParam(f *testing.F) {
	for _, s := range []string{"1", "world", `{"a":1}`, "[1,", "", " null ", "\xff", `"x`} {
		f.Add(s, []byte(`{"k":`+string(parseParamValue(s))+`}`))
	}
	f.Add("x", []byte(`{"a":{"b":[1,2,{"c":null}]},"d":"e"}`))
	f.Fuzz(func(t *testing.T, value string, file []byte) {
		v := parseParamValue(value)
		if !json.Valid(v) {
			t.Fatalf("parseParamValue(%q) = %q: not JSON", value, v)
		}
		if !json.Valid([]byte(value)) && utf8.ValidString(value) {
			var s string
			if err := json.Unmarshal(v, &s); err != nil || s != value {
				t.Fatalf("parseParamValue(%q) = %s, want the same string", value, v)
			}
		}
		kv, err := parseParamFile(file)
		if err != nil {
			return
		}
		for i, e := range kv {
			if !json.Valid(e.Value) {
				t.Fatalf("parseParamFile(%q): %q is not JSON", file, e.Value)
			}
			if i > 0 && kv[i-1].Key >= e.Key {
				t.Fatalf("parseParamFile(%q): keys not sorted and unique: %q, %q", file, kv[i-1].Key, e.Key)
			}
		}
		if _, err := paramsObject(kv); err != nil {
			t.Fatalf("paramsObject: %v", err)
		}
	})
}
