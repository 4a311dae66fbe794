package gust

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// referenceJSON is the activation encoding as encoding/json writes it from
// the struct tags: the oracle the hand-written encoder must match.
func referenceJSON(a Activation) ([]byte, error) {
	type response struct {
		Status  string          `json:"status"`
		Success bool            `json:"success"`
		Result  json.RawMessage `json:"result"`
		Size    int             `json:"size"`
	}
	type keyValue struct {
		Key   string          `json:"key"`
		Value json.RawMessage `json:"value"`
		Init  bool            `json:"init,omitempty"`
	}
	type record struct {
		Namespace    string     `json:"namespace"`
		Name         string     `json:"name"`
		Subject      string     `json:"subject"`
		ActivationID string     `json:"activationId"`
		Start        int64      `json:"start"`
		End          *int64     `json:"end,omitempty"`
		Duration     *int64     `json:"duration,omitempty"`
		Cause        string     `json:"cause,omitempty"`
		Response     response   `json:"response"`
		Logs         []string   `json:"logs"`
		Version      string     `json:"version"`
		Publish      bool       `json:"publish"`
		Annotations  []keyValue `json:"annotations"`
	}
	result := a.Response.Result
	if len(result) == 0 {
		result = json.RawMessage("{}")
	}
	r := record{Namespace: a.Namespace, Name: a.Name, Subject: a.Subject, ActivationID: a.ActivationID, Start: a.Start,
		Cause: a.Cause, Logs: a.Logs, Version: a.Version, Publish: a.Publish,
		Response: response{a.Response.StatusCode.String(), a.Response.StatusCode == StatusSuccess, result, len(result)}}
	if a.End != 0 {
		r.End, r.Duration = &a.End, &a.Duration
	}
	if a.Annotations != nil {
		r.Annotations = []keyValue{}
		for _, kv := range a.Annotations {
			r.Annotations = append(r.Annotations, keyValue{kv.Key, kv.Value, kv.Init})
		}
	}
	return json.Marshal(r)
}

func sampleActivation() Activation {
	return Activation{
		Namespace: "guest", Name: "hello", Subject: "guest", ActivationID: "0123456789abcdef0123456789abcdef",
		Start: 1764000000000, End: 1764000000005, Duration: 5, Cause: "",
		Response: Response{StatusCode: StatusSuccess, Result: json.RawMessage(`{"greeting":"Hello"}`)},
		Logs:     []string{"2026-12-02T10:00:00.000Z stdout: hi"}, Version: "0.0.1",
		Annotations: KeyValues{}.Set("limits", DefaultActionLimits()).Set("path", "guest/hello").Set("kind", "wasm").
			Set("timeout", false).Set("waitTime", 3).Set("initTime", 1),
	}
}

func TestActivationJSONMatches(t *testing.T) {
	cases := map[string]func(a *Activation){
		"typical":                  func(a *Activation) {},
		"trigger, no end":          func(a *Activation) { a.End, a.Duration, a.Cause = 0, 0, "" },
		"cause":                    func(a *Activation) { a.Cause = "fedcba9876543210fedcba9876543210" },
		"nil logs and annotations": func(a *Activation) { a.Logs, a.Annotations = nil, nil },
		"empty result":             func(a *Activation) { a.Response = Response{StatusCode: StatusDeveloperError} },
		"indented result":          func(a *Activation) { a.Response.Result = json.RawMessage("{\n  \"a\": [1, 2],\n  \"b\": \"x y\"\n}") },
		"html and separators":      func(a *Activation) { a.Response.Result = json.RawMessage(`{"h":"<b>&</b>","ls":"a` + "\u2028" + `b"}`) },
		"escapes in strings": func(a *Activation) {
			a.Name = "a\"b\\c<d>&e\u2029"
			a.Logs = []string{"tab\there\nnewline \x01 \x7f é 日本", "bad utf8 \xff\xfe"}
		},
		"init annotation": func(a *Activation) {
			a.Annotations = append(a.Annotations, KeyValue{Key: "k", Value: json.RawMessage(`"v"`), Init: true})
		},
		"nil value":    func(a *Activation) { a.Annotations = append(a.Annotations, KeyValue{Key: "nil"}) },
		"array result": func(a *Activation) { a.Response.Result = json.RawMessage(` [1,{"a":null}] `) },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			a := sampleActivation()
			change(&a)
			want, err := referenceJSON(a)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
	a := sampleActivation()
	a.Response.Result = json.RawMessage(`{"broken":`)
	if _, err := json.Marshal(a); err == nil {
		t.Error("an invalid result encoded without error")
	}
}

// FuzzActivationJSON holds the hand-written encoder to encoding/json's
// bytes for any names, logs and raw results.
func FuzzActivationJSON(f *testing.F) {
	f.Add("hello", "log line", `{"a":1}`, int64(5))
	f.Add("a<b>", "\xff\u2028", " [ 1 , 2 ] ", int64(0))
	f.Add("", "", "", int64(-1))
	f.Fuzz(func(t *testing.T, name, logLine, result string, end int64) {
		a := sampleActivation()
		a.Name, a.Logs, a.End = name, []string{logLine, strings.ToUpper(logLine)}, end
		a.Response.Result = json.RawMessage(result)
		a.Annotations = a.Annotations.Set("free", json.RawMessage(result))
		want, werr := referenceJSON(a)
		got, gerr := json.Marshal(a)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("errors differ: reference %v, ours %v", werr, gerr)
		}
		if werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("got\n%q\nwant\n%q", got, want)
		}
	})
}

func BenchmarkActivationAppendJSON(b *testing.B) {
	a := sampleActivation()
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			var err error
			if buf, err = a.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reflection", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := referenceJSON(a); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzAppendJSONString checks that any Go string encodes to exactly what
// encoding/json produces for it (the sandboxes build their request
// envelopes with it too).
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "\"\\/\b\f\n\r\t", "\x00\x1f\x7f", "é🌍", "\xff\xfe", "a\xc3", "<&>\u2028\u2029"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := AppendJSONString(nil, s)
		want, _ := json.Marshal(s)
		if string(b) != string(want) {
			t.Fatalf("AppendJSONString(%q) = %s, encoding/json gives %s", s, b, want)
		}
	})
}
