package gust

import (
	"strings"
	"testing"
	"time"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"hello", true},
		{"_x", true},
		{"a b", true},
		{"a@b.c&d-e", true},
		{"9lives", true},
		{"", false},
		{" a", false},
		{"a ", false},
		{"-a", false},
		{"a/b", false},
		{"a\tb", false},
		{"é", false},
		{strings.Repeat("a", 256), true},
		{strings.Repeat("a", 257), false},
	}
	for _, tt := range tests {
		err := ValidateName("action", tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && KindOf(err) != KindInvalid {
			t.Errorf("ValidateName(%q) kind = %v, want invalid", tt.name, KindOf(err))
		}
	}
}

func TestParsePath(t *testing.T) {
	tests := []struct {
		in   string
		want Path
		ok   bool
	}{
		{"hello", Path{"me", "", "hello"}, true},
		{"pkg/hello", Path{"me", "pkg", "hello"}, true},
		{"/ns/hello", Path{"ns", "", "hello"}, true},
		{"/_/hello", Path{"me", "", "hello"}, true},
		{"/ns/pkg/hello", Path{"ns", "pkg", "hello"}, true},
		{"/ns", Path{}, false},
		{"a/b/c", Path{}, false},
		{"/a/b/c/d", Path{}, false},
		{"", Path{}, false},
		{"/ns/bad name ", Path{}, false},
	}
	for _, tt := range tests {
		got, err := ParsePath(tt.in, "me")
		if (err == nil) != tt.ok {
			t.Errorf("ParsePath(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if tt.ok && got != tt.want {
			t.Errorf("ParsePath(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
	p := Path{"ns", "pkg", "a"}
	if p.String() != "/ns/pkg/a" || p.EntityNamespace() != "ns/pkg" || p.Rel(false) != "pkg/a" {
		t.Errorf("path rendering: %s %s %s", p.String(), p.EntityNamespace(), p.Rel(false))
	}
}

func TestLooksBase64(t *testing.T) {
	tests := map[string]bool{
		"AGFzbQEAAAA=":                   true,
		"  AGFzbQEAAAA=\n":               true,
		"function main() { return {}; }": false,
		"abc":                            false,
		"":                               false,
		"abcd":                           true, // OpenWhisk's rule: any valid base64 counts
		"ab=d":                           false,
	}
	for in, want := range tests {
		if got := LooksBase64(in); got != want {
			t.Errorf("LooksBase64(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestVersion(t *testing.T) {
	if got := BumpVersion("0.0.1"); got != "0.0.2" {
		t.Errorf("BumpVersion = %s", got)
	}
	if got := BumpVersion("garbage"); got != "0.0.1" {
		t.Errorf("BumpVersion(garbage) = %s", got)
	}
	for v, ok := range map[string]bool{"1.2.3": true, "1.2": false, "01.2.3": false, "1.2.3x": false} {
		if ValidVersion(v) != ok {
			t.Errorf("ValidVersion(%q) != %v", v, ok)
		}
	}
}

func TestActivationID(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_123)
	id := NewActivationID(now)
	if err := ValidateActivationID(id); err != nil {
		t.Fatal(err)
	}
	got, ok := ActivationIDTime(id)
	if !ok || !got.Equal(now) {
		t.Fatalf("ActivationIDTime = %v %v, want %v", got, ok, now)
	}
	later := NewActivationID(now.Add(time.Millisecond))
	if later <= id {
		t.Errorf("ids do not sort by time: %s <= %s", later, id)
	}
	if err := ValidateActivationID("abc"); err == nil || !strings.Contains(err.Error(), "length is 3 but must be 32") {
		t.Errorf("short id: %v", err)
	}
	if err := ValidateActivationID(strings.Repeat("G", 32)); err == nil {
		t.Error("non-hex id accepted")
	}
}

func TestKeyValues(t *testing.T) {
	kv := KeyValues{}.Set("a", 1).Set("b", "x")
	kv = kv.Merge(KeyValues{{Key: "b", Value: []byte(`"y"`)}, {Key: "c", Value: []byte(`true`)}})
	if v, _ := kv.Get("b"); string(v) != `"y"` {
		t.Errorf("merge: b = %s", v)
	}
	if !kv.IsTrue("c") || kv.IsTrue("a") {
		t.Error("IsTrue")
	}
	kv = kv.Delete("a")
	if _, ok := kv.Get("a"); ok || len(kv) != 2 {
		t.Errorf("delete: %v", kv)
	}
	if err := (KeyValues{{Key: "x", Value: []byte("{")}}).Validate("parameter"); err == nil {
		t.Error("invalid JSON value accepted")
	}
	if err := (KeyValues{{Key: "x", Value: []byte("1")}, {Key: "x", Value: []byte("2")}}).Validate("parameter"); err == nil {
		t.Error("duplicate key accepted")
	}
}

func TestLimitsValidate(t *testing.T) {
	sys := DefaultLimits()
	ok := DefaultActionLimits()
	if err := ok.Validate(sys); err != nil {
		t.Fatal(err)
	}
	bad := []Limits{
		{Timeout: 99, Memory: 256, Logs: 10, Concurrency: 1},
		{Timeout: 300001, Memory: 256, Logs: 10, Concurrency: 1},
		{Timeout: 1000, Memory: 127, Logs: 10, Concurrency: 1},
		{Timeout: 1000, Memory: 256, Logs: 11, Concurrency: 1},
		{Timeout: 1000, Memory: 256, Logs: 10, Concurrency: 0},
	}
	for _, l := range bad {
		if err := l.Validate(sys); err == nil || KindOf(err) != KindInvalid {
			t.Errorf("%+v accepted: %v", l, err)
		}
	}
}

func TestByteSize(t *testing.T) {
	for n, want := range map[int]string{1 << 20: "1 MB", 512 << 10: "512 KB", 10: "10 B", 1<<20 + 1: "1048577 B"} {
		if got := ByteSize(n); got != want {
			t.Errorf("ByteSize(%d) = %s, want %s", n, got, want)
		}
	}
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"hello", "a b", "", " x", "a@b", strings.Repeat("z", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateName("x", s) != nil {
			return
		}
		// Accepted names never carry a path separator or surrounding space.
		if strings.ContainsAny(s, "/\t\n") || strings.HasPrefix(s, " ") || strings.HasSuffix(s, " ") || len(s) == 0 {
			t.Fatalf("accepted bad name %q", s)
		}
	})
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"a", "/ns/a", "/ns/p/a", "p/a", "/_/a", "//", "/a/b/c/d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s, "me")
		if err != nil {
			return
		}
		// A parsed path renders to a string that parses back to itself.
		q, err := ParsePath(p.String(), "other")
		if err != nil || q != p {
			t.Fatalf("round trip of %q: %+v -> %q -> %+v, %v", s, p, p.String(), q, err)
		}
	})
}

func TestActivationIDFor(t *testing.T) {
	now := time.UnixMilli(1_764_000_000_123)
	seen := map[string]bool{}
	for _, name := range []string{"hello", "pkg/hello", "a", "", strings.Repeat("n", 256)} {
		id := NewActivationIDFor(now, name)
		if err := ValidateActivationID(id); err != nil {
			t.Fatalf("%q: %v", id, err)
		}
		if ts, ok := ActivationIDTime(id); !ok || !ts.Equal(now) {
			t.Errorf("%s: time %v, want %v", id, ts, now)
		}
		if tag, ok := ActivationIDTag(id); !ok || tag != ActivationTag(name) {
			t.Errorf("%s: tag %04x, want %04x", id, tag, ActivationTag(name))
		}
		if seen[id] {
			t.Errorf("id %s twice", id)
		}
		seen[id] = true
	}
	if NewActivationIDFor(now, "x") == NewActivationIDFor(now, "x") {
		t.Error("two ids of one name in one ms are equal")
	}
	if ActivationTag("hello") == ActivationTag("hellp") {
		t.Error("tags of neighbouring names collide")
	}
}
