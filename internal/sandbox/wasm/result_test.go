package wasm

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gust-faas/gust/internal/gust"
)

func TestResultOf(t *testing.T) {
	tests := []struct {
		name   string
		out    string
		size   int // 0: len(out)
		limit  int
		status gust.Status
		result string
	}{
		{"Object", `{"a":1}`, 0, 100, gust.StatusSuccess, `{"a":1}`},
		{"Array", ` [1,2] `, 0, 100, gust.StatusSuccess, `[1,2]`},
		{"TrailingNewline", "{\"a\":1}\n", 0, 100, gust.StatusSuccess, `{"a":1}`},
		{"Empty", "", 0, 100, gust.StatusSuccess, `{}`},
		{"WhiteSpace", " \n\t", 0, 100, gust.StatusSuccess, `{}`},
		{"Error", `{"error":"x"}`, 0, 100, gust.StatusApplicationError, `{"error":"x"}`},
		{"ErrorNotFirst", `{"a":{"error":1},"b":[{"error":2}],"error":null}`, 0, 100, gust.StatusApplicationError, `{"a":{"error":1},"b":[{"error":2}],"error":null}`},
		{"NestedErrorOnly", `{"a":{"error":1},"b":"\"error\""}`, 0, 100, gust.StatusSuccess, `{"a":{"error":1},"b":"\"error\""}`},
		{"CapitalError", `{"Error":"x"}`, 0, 100, gust.StatusSuccess, `{"Error":"x"}`},
		{"ErrorInArray", `[{"error":"x"}]`, 0, 100, gust.StatusSuccess, `[{"error":"x"}]`},
		{"String", `"hi"`, 0, 100, gust.StatusDeveloperError, `{"error":"The action did not produce a valid JSON response: \"hi\""}`},
		{"Number", `42`, 0, 100, gust.StatusDeveloperError, `{"error":"The action did not produce a valid JSON response: 42"}`},
		{"Broken", `{"a":`, 0, 100, gust.StatusDeveloperError, `{"error":"The action did not produce a valid JSON response: {\"a\":"}`},
		{"TwoObjects", `{}{}`, 0, 100, gust.StatusDeveloperError, `{"error":"The action did not produce a valid JSON response: {}{}"}`},
		{"AtLimit", `{"a":1}`, 0, 7, gust.StatusSuccess, `{"a":1}`},
		{"OverLimit", `{"a":1`, 9, 7, gust.StatusApplicationError, `{"error":"The action produced a response that exceeded the allowed length: 9 > 7 bytes."}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			size := tc.size
			if size == 0 {
				size = len(tc.out)
			}
			status, result := resultOf([]byte(tc.out), size, tc.limit)
			if status != tc.status || !sameJSON(result, tc.result) {
				t.Errorf("got %v %s, want %v %s", status, result, tc.status, tc.result)
			}
			if trimmed := trimSpace(result); len(trimmed) != len(result) {
				t.Errorf("result %q has surrounding white space", result)
			}
		})
	}
	t.Run("LongOutputQuoted", func(t *testing.T) {
		_, result := resultOf([]byte(strings.Repeat("z", 500)), 500, 1000)
		var m struct{ Error string }
		if err := json.Unmarshal(result, &m); err != nil || !strings.HasSuffix(m.Error, ": "+strings.Repeat("z", 100)) {
			t.Errorf("got %s, want the first 100 bytes quoted", result)
		}
	})
}

// sameJSON compares documents by value: gust.ErrorResult escapes '>'.
func sameJSON(got []byte, want string) bool {
	var g, w any
	if json.Unmarshal(got, &g) != nil || json.Unmarshal([]byte(want), &w) != nil {
		return false
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	return string(gb) == string(wb)
}

func TestHasTopLevelKey(t *testing.T) {
	tests := []struct {
		obj  string
		want bool
	}{
		{`{}`, false},
		{`{"error":1}`, true},
		{` { "error" : 1 } `[1:], true},
		{`{"a":"}","error":true}`, true},
		{`{"a":"\\","error":true}`, true},
		{`{"a":[1,{"b":"]"}],"c":{"d":{}},"error":false}`, true},
		{`{"a":-1.5e3,"b":true,"c":null,"d":"x"}`, false},
		{`{"\u0065rror":1}`, true},
		{`{"errors":1}`, false},
		{`{"err":1}`, false},
		{`{"x":{"error":1}}`, false},
	}
	for _, tc := range tests {
		if got := hasTopLevelKey([]byte(tc.obj), "error"); got != tc.want {
			t.Errorf("hasTopLevelKey(%s) = %v, want %v", tc.obj, got, tc.want)
		}
	}
}

// FuzzHasTopLevelKey checks the scanner against encoding/json on any valid
// object: results come from untrusted guests.
func FuzzHasTopLevelKey(f *testing.F) {
	for _, s := range []string{`{}`, `{"error":1}`, `{"a":{"error":1}}`, `{"a":"\"error\"","error":[]}`, `{"\u0065rror":1}`, `{"a":[{},[]],"b":"\\"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var m map[string]json.RawMessage
		if !json.Valid([]byte(s)) || json.Unmarshal([]byte(s), &m) != nil || m == nil {
			return
		}
		if strings.ContainsRune(s, '\uFFFD') || !isValidUTF8Keys(m) {
			return // encoding/json rewrites invalid UTF-8 in keys; the scanner compares bytes
		}
		_, want := m["error"]
		if got := hasTopLevelKey(trimSpace([]byte(s)), "error"); got != want {
			t.Errorf("hasTopLevelKey(%s) = %v, encoding/json says %v", s, got, want)
		}
	})
}

func isValidUTF8Keys(m map[string]json.RawMessage) bool {
	for k := range m {
		if strings.ToValidUTF8(k, "") != k {
			return false
		}
	}
	return true
}

func TestAppendEnvelope(t *testing.T) {
	env := map[string]string{"__OW_ACTIVATION_ID": "abc", "Q": "a\"b\\c\n\x01\u2028é\xff"}
	b := appendEnvelope(nil, json.RawMessage(`{"name":"x"}`), env)
	var got struct {
		Value map[string]string `json:"value"`
		Env   map[string]string `json:"env"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if got.Value["name"] != "x" || got.Env["__OW_ACTIVATION_ID"] != "abc" || got.Env["Q"] != "a\"b\\c\n\x01\u2028é\uFFFD" {
		t.Errorf("round trip: %+v", got)
	}
	if b := appendEnvelope(nil, nil, nil); string(b) != `{"value":{},"env":{}}` {
		t.Errorf("empty envelope %s", b)
	}
}

func TestCapped(t *testing.T) {
	c := &capped{limit: 5}
	for _, s := range []string{"ab", "cdef", "gh"} {
		if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if string(c.buf) != "abcde" || c.n != 8 {
		t.Errorf("kept %q of %d bytes, want abcde of 8", c.buf, c.n)
	}
}
