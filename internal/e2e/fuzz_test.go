package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// tinyWasm is the smallest WASI command: an empty _start. It compiles in
// microseconds, so fuzzing PUTs with valid code stays fast.
var tinyWasm = base64.StdEncoding.EncodeToString([]byte{
	0, 'a', 's', 'm', 1, 0, 0, 0, // magic, version
	1, 4, 1, 0x60, 0, 0, // type section: func () -> ()
	3, 2, 1, 0, // function section: func 0 has type 0
	7, 10, 1, 6, '_', 's', 't', 'a', 'r', 't', 0, 0, // export "_start" = func 0
	10, 4, 1, 2, 0, 0x0b, // code section: no locals, end
})

// fuzzEnv starts one node for a fuzz target. It returns the node, for
// set-up outside the fuzz function, and a view of it for one fuzz input,
// whose helpers report to that input's t (the fuzz function may not call
// f's Fatal).
func fuzzEnv(f *testing.F) (*env, func(t *testing.T) *env) {
	e := start(f)
	return e, func(t *testing.T) *env { return &env{t: t, node: e.node, wsk: e.wsk} }
}

// FuzzActionPut sends arbitrary bodies to PUT …/actions/{name}, creating
// and updating. The server must never fail with 500, must answer errors in
// OpenWhisk's shape, and must store nothing when it refuses a body.
func FuzzActionPut(f *testing.F) {
	code := `"code":"` + tinyWasm + `"`
	for _, s := range []string{
		`{"exec":{"kind":"wasm",` + code + `}}`,
		`{"exec":{"kind":"wasm:default",` + code + `,"main":"run"},"parameters":[{"key":"a","value":1}],"annotations":[{"key":"x","value":{"y":[1,2]}}]}`,
		`{"exec":{"kind":"wasm",` + code + `},"limits":{"timeout":1000,"memory":128,"logs":0,"concurrency":1}}`,
		`{"exec":{"kind":"wasm",` + code + `},"version":"1.2.3","publish":true,"delAnnotations":["exec","provide-api-key"]}`,
		`{"exec":{"kind":"wasm",` + code + `},"parameters":[{"key":"p","value":null,"init":true}]}`,
		`{"annotations":[{"key":"web-export","value":true}]}`,
		`{"parameters":[]}`,
		`{"limits":{"memory":5000}}`,
		`{"limits":{"timeout":99999999999999999999}}`,
		`{"limits":{"memory":null,"timeout":-1}}`,
		`{"exec":null}`,
		`{"exec":{"kind":"wasm","code":null}}`,
		`{"exec":{"kind":"wasm","code":"AAAA"}}`,
		`{"exec":{"kind":"wasm","code":"not base64"}}`,
		`{"exec":{"kind":"sequence","components":["/_/x"]}}`,
		`{"exec":{"kind":"cobol:9","code":"x"}}`,
		`{"exec":{"kind":"","code":""}}`,
		`{"parameters":[{"key":"","value":1}]}`,
		`{"parameters":[{"key":"a"}]}`,
		`{"parameters":[{"key":"a","value":1},{"key":"a","value":2}]}`,
		`{"parameters":{"a":1}}`,
		`{"annotations":[{"key":"maxRetries","value":-1}]}`,
		`{"annotations":[{"key":"maxEventAge","value":"x"}]}`,
		`{"version":"x.y.z"}`,
		`{"publish":"yes"}`,
		`{"delAnnotations":"exec"}`,
		`{"name":"other","namespace":"elsewhere","env":[]}`,
		`{}`, `[]`, `null`, `""`, `{`, ``, "\x00", `{"exec":{"kind":"wasm",` + code + `}} {}`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	_, node := fuzzEnv(f)
	var seq atomic.Int64
	f.Fuzz(func(t *testing.T, body []byte, overwrite bool) {
		e := node(t)
		// Create under a fresh name.
		name := "f" + strconv.FormatInt(seq.Add(1), 10)
		path := actionsPath + name + "?overwrite=" + strconv.FormatBool(overwrite)
		r := e.do("PUT", path, body)
		checkPut(t, e, name, r, nil)

		// Update an existing action.
		if !overwrite {
			return
		}
		base := "base"
		if g := e.do("GET", actionsPath+base, nil); g.status == http.StatusNotFound {
			e.putAction(base, "noop", nil)
		}
		before := e.do("GET", actionsPath+base+"?code=false", nil)
		want(t, before, http.StatusOK)
		r = e.do("PUT", actionsPath+base+"?overwrite=true", body)
		checkPut(t, e, base, r, before.body)
	})
}

// checkPut checks the answer r to a PUT of action name. before is the
// action before the PUT (?code=false), nil when it did not exist.
func checkPut(t *testing.T, e *env, name string, r reply, before []byte) {
	t.Helper()
	switch r.status {
	case http.StatusOK:
		a := r.object(t)
		if a["name"] != name || a["namespace"] != "guest" || field(a, "exec", "kind") != "wasm" {
			t.Fatalf("PUT %s answered %s", name, r.body)
		}
		g := e.do("GET", actionsPath+name+"?code=false", nil)
		want(t, g, http.StatusOK)
		if got := g.object(t); got["version"] != a["version"] || got["updated"] != a["updated"] {
			t.Fatalf("PUT %s answered %s but stored %s", name, r.body, g.body)
		}
		if before == nil {
			want(t, e.do("DELETE", actionsPath+name, nil), http.StatusOK)
		}
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		wantError(t, r, r.status)
		g := e.do("GET", actionsPath+name+"?code=false", nil)
		if before == nil {
			wantError(t, g, http.StatusNotFound)
		} else if want(t, g, http.StatusOK); !bytes.Equal(g.body, before) {
			t.Fatalf("refused PUT changed %s:\nbefore %s\nafter  %s", name, before, g.body)
		}
	default:
		t.Fatalf("PUT %s: %s", name, r)
	}
}

// FuzzInvokeBody sends arbitrary bodies to a blocking invoke: an empty body
// or a JSON object runs the action, anything else is a 400, never a 500.
func FuzzInvokeBody(f *testing.F) {
	for _, s := range []string{
		``, ` `, `{}`, `{"a":1}`, `{"a":{"b":[1,2,{"c":null}]}}`, ` {"x":"\u00e9"} `, `{"a":1,"a":2}`,
		`[]`, `[1]`, `null`, `true`, `1`, `"s"`, `{`, `{"a":}`, `{}{}`, `{} x`, "{\"a\":\"\xff\"}", "\x00",
	} {
		f.Add([]byte(s))
	}
	base, node := fuzzEnv(f)
	want(f, base.do("PUT", actionsPath+"tiny", `{"exec":{"kind":"wasm","code":"`+tinyWasm+`"}}`), http.StatusOK)
	f.Fuzz(func(t *testing.T, body []byte) {
		e := node(t)
		r := e.do("POST", actionsPath+"tiny?blocking=true", body)
		trimmed := bytes.TrimSpace(body)
		ok := len(trimmed) == 0 || trimmed[0] == '{' && json.Valid(trimmed)
		switch {
		case ok && r.status == http.StatusOK:
			if field(r.object(t), "response", "status") != "success" {
				t.Fatalf("invoke with %q: %s", body, r.body)
			}
		case !ok && r.status == http.StatusBadRequest:
			wantError(t, r, http.StatusBadRequest)
		default:
			t.Fatalf("invoke with %q (a JSON object: %v): %s", body, ok, r)
		}
	})
}

// FuzzAuthorization sends arbitrary Authorization headers: only the
// node's credential, in Basic form, is let in; everything else is a 401.
func FuzzAuthorization(f *testing.F) {
	base, node := fuzzEnv(f)
	auth := base.node.Auth
	b64 := base64.StdEncoding.EncodeToString([]byte(auth))
	uuid, key, _ := strings.Cut(auth, ":")
	for _, s := range []string{
		"Basic " + b64, "basic " + b64, "BASIC  " + b64 + " ", "Basic " + b64 + "=", "Basic " + b64[:len(b64)-1],
		"Basic", "Basic ", "", " ", "Bearer " + b64, "Basic ====", "Basic Og==",
		"Basic " + base64.StdEncoding.EncodeToString([]byte(uuid+":"+key+"x")),
		"Basic " + base64.StdEncoding.EncodeToString([]byte(uuid+":")),
		"Basic " + base64.StdEncoding.EncodeToString([]byte(":"+key)),
		"Basic " + base64.RawStdEncoding.EncodeToString([]byte(auth)),
		"Basic " + base64.URLEncoding.EncodeToString([]byte(auth)),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		for i := 0; i < len(header); i++ {
			if c := header[i]; c < ' ' && c != '\t' || c == 0x7f {
				return // not a header value net/http sends
			}
		}
		e := node(t)
		r := request(t, e.node.URL, "", "GET", "/api/v1/namespaces", nil, "Authorization", header)
		switch r.status {
		case http.StatusOK:
			scheme, payload, _ := strings.Cut(strings.Trim(header, " \t"), " ")
			raw, err := base64.StdEncoding.DecodeString(strings.Trim(payload, " \t"))
			if !strings.EqualFold(scheme, "Basic") || err != nil || string(raw) != auth {
				t.Fatalf("Authorization %q let in", header)
			}
		case http.StatusUnauthorized:
			wantError(t, r, http.StatusUnauthorized)
			if r.header.Get("WWW-Authenticate") == "" {
				t.Fatalf("401 without a challenge")
			}
		default:
			t.Fatalf("Authorization %q: %s", header, r)
		}
	})
}
