package gust

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzNameRef holds NameRef's decoding of a rule's trigger or action, as a
// client sends it, to its two forms: a JSON string is the name as it is;
// an object {path, name} is "/path/name" (or name when path is empty),
// its name one entity name (no "/"), and a name that parses round-trips through both forms back to the
// same path. Anything else is an error (decodeJSON answers 400).
func FuzzNameRef(f *testing.F) {
	for _, s := range []string{
		`"/guest/t"`, `"t"`, `"/_/pkg/a"`, `"pkg/a"`, `""`, `null`, `{"path":"guest","name":"t"}`,
		`{"path":"/guest/pkg","name":"a"}`, `{"name":"a"}`, `{"path":"guest"}`, `{}`, `{"path":1}`,
		`{"path":"guest","name":"pkg/a"}`, `[]`, `1`, `{`, `"\u002fguest/t"`, `{"path":"_","name":"t","extra":[1]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var n NameRef
		err := n.UnmarshalJSON(b)
		var s string
		if json.Unmarshal(b, &s) == nil {
			if err != nil || string(n) != s {
				t.Fatalf("string %s: got %q, %v", b, n, err)
			}
			return
		}
		var r EntityRef
		if json.Unmarshal(b, &r) != nil {
			if err == nil {
				t.Fatalf("%s: neither a string nor an object, decoded as %q", b, n)
			}
			return
		}
		if strings.Contains(r.Name, "/") {
			if err == nil {
				t.Fatalf("object %s: name with a slash decoded as %q", b, n)
			}
			return
		}
		if err != nil {
			t.Fatalf("object %s: %v", b, err)
		}
		p, perr := ParsePath(string(n), "guest")
		if perr != nil {
			return // refused downstream with 400
		}
		if p.Name != r.Name {
			t.Fatalf("object %s decoded as %q: %+v", b, n, p)
		}
		for _, form := range []any{RefOf(p), p.String()} {
			enc, _ := json.Marshal(form)
			var back NameRef
			if err := json.Unmarshal(enc, &back); err != nil {
				t.Fatalf("%s: round trip of %s: %v", b, enc, err)
			}
			q, err := ParsePath(string(back), "guest")
			if err != nil || q != p {
				t.Fatalf("%s: %+v round-trips through %s as %+v, %v", b, p, enc, q, err)
			}
		}
	})
}
