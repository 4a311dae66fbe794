package api

import (
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gust-faas/gust/internal/gust"
)

func FuzzParseWebPath(f *testing.F) {
	for _, s := range []string{
		"guest/default/hello", "guest/default/hello.json", "guest/pkg/hello.text/a/b", "guest/default/hello.http/",
		"guest/default/.json", "guest/default/a%2Fb", "guest/default/%zz", "guest//x", "a/b", "", "/", "ns/default/x.svg.json",
		"guest/default/hello world.html/x%20y", "_/default/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := parseWebPath(s)
		if err != nil {
			if gust.KindOf(err) != gust.KindNotFound {
				t.Fatalf("parseWebPath(%q): error of kind %v", s, gust.KindOf(err))
			}
			return
		}
		if gust.ValidateName("namespace", tg.Namespace) != nil || gust.ValidateName("action", tg.Action) != nil ||
			tg.Package != "" && (gust.ValidateName("package", tg.Package) != nil || tg.Package == "default") {
			t.Fatalf("parseWebPath(%q) = %+v: invalid names accepted", s, tg)
		}
		if !slices.Contains(webExts, tg.Ext) {
			t.Fatalf("parseWebPath(%q): extension %q", s, tg.Ext)
		}
		if tg.Rest != "" && !strings.HasPrefix(tg.Rest, "/") || !strings.HasSuffix(s, tg.Rest) {
			t.Fatalf("parseWebPath(%q): rest %q", s, tg.Rest)
		}
	})
}

func FuzzRenderWeb(f *testing.F) {
	for _, s := range []string{
		`{"statusCode":201,"headers":{"X-A":"1","n":5,"b":true,"c":["a","b"]},"body":"<b>x</b>"}`,
		`{"statusCode":"404","body":{"a":1}}`, `{"statusCode":200.5}`, `{"statusCode":1e3}`, `{"statusCode":-1}`,
		`{"headers":{"Content-Type":"image/png"},"body":"iVBORw0KGgo="}`, `{"headers":{"content-type":"application/json"},"body":"eyJ4IjoxfQ=="}`,
		`{"headers":{"Content-Type":"bogus"},"body":"x"}`, `{"headers":{"Content-Type":"application/x+json"},"body":[1]}`,
		`{"headers":"x"}`, `{"headers":{"X":null}}`, `{"headers":{"X":{"a":1}}}`, `{"headers":{"bad name":"1"}}`, `{"body":""}`, `{"body":null}`,
		`[1,2]`, `"str"`, `1`, `null`, `{}`, `{"html":"<p/>"}`, `{"svg":"<svg/>"}`, `{"text":3}`, `{"body":{"a":[1]}}`, ``, `{`,
		`{"headers":{"Set-Cookie":[["a"],"b"]}}`, `{"statusCode":"+200","body":"x"}`, `{"headers":{"X":"a\r\nb"}}`,
		`{"body":null,"text":"x"}`, `{"body":null,"html":"<p/>"}`, `{"body":"","statusCode":200}`, `{"body":null,"statusCode":"201"}`,
	} {
		for ext := range uint8(len(webExts)) {
			f.Add(ext, []byte(s), ext%2 == 0)
		}
	}
	f.Fuzz(func(t *testing.T, ext uint8, result []byte, projected bool) {
		e := webExts[int(ext)%len(webExts)]
		wr, err := renderWeb(e, result, projected)
		if err != nil {
			if k := gust.KindOf(err); k != gust.KindInvalid && k != gust.KindNotFound {
				t.Fatalf("renderWeb(%s, %q): error of kind %v (%v): every result must give a 4xx", e, result, k, err)
			}
			return
		}
		if wr.status < 200 || wr.status > 599 {
			t.Fatalf("renderWeb(%s, %q): status %d", e, result, wr.status)
		}
		for k, vs := range wr.header {
			if !validHeaderName(k) || k != http.CanonicalHeaderKey(k) {
				t.Fatalf("renderWeb(%s, %q): header name %q", e, result, k)
			}
			for _, v := range vs {
				if !validHeaderValue(v) {
					t.Fatalf("renderWeb(%s, %q): header %s value %q", e, result, k, v)
				}
			}
		}
		if e == ".json" && !json.Valid(wr.body) {
			t.Fatalf("renderWeb(.json, %q): body %q is not JSON", result, wr.body)
		}
	})
}

// FuzzWebParams holds webParams, a web request's parameters, to what
// reference/openwhisk.md §6 says: the input is a JSON object whose __ow_*
// fields are the platform's (a request cannot set them, nor a bound
// parameter of a final action); without raw-http the query's last values,
// overlaid by a JSON object's or a form's fields, are parameters, any other
// body is __ow_body (base64 when binary); with raw-http the query and body
// arrive as they were. A request refused is a 400 (KindInvalid).
func FuzzWebParams(f *testing.F) {
	f.Add(uint8(0), "a=1&b=2&a=3", "application/json", []byte(`{"b":{"x":[1, 2]},"c":null}`), false, false)
	f.Add(uint8(1), "", "application/json", []byte(` [1,"<&>"] `), false, false)
	f.Add(uint8(1), "x=1", "application/x-www-form-urlencoded", []byte("x=2&y=%20&y=3"), false, false)
	f.Add(uint8(2), "", "text/plain; charset=utf-8", []byte("héllo"), false, false)
	f.Add(uint8(2), "", "", []byte("\x00\xff"), false, false)
	f.Add(uint8(3), "", "image/png", []byte("\x89PNG"), true, false)
	f.Add(uint8(4), "q=%zz&r", "application/json", []byte(`{"a":1}`), true, false)
	f.Add(uint8(0), "__ow_method=get", "", []byte{}, false, false)
	f.Add(uint8(0), "", "application/json", []byte(`{"\u005f_ow_user":"root"}`), false, false)
	f.Add(uint8(0), "bound=1", "", []byte{}, false, true)
	f.Add(uint8(0), "", "application/vnd.x+json", []byte(`{"bound":2}`), false, true)
	f.Add(uint8(0), "", "application/json", []byte(`{"a":`), false, false)
	f.Add(uint8(0), "", "application/x-www-form-urlencoded", []byte("a=%zz"), false, false)
	f.Add(uint8(0), "", "application/json", []byte("  "), false, false)
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}
	f.Fuzz(func(t *testing.T, m uint8, query, ctype string, body []byte, raw, final bool) {
		method := methods[int(m)%len(methods)]
		r := &http.Request{Method: method, URL: &url.URL{Path: "/x", RawQuery: query}, Header: http.Header{}, Host: "example.com"}
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		a := &gust.Action{Annotations: gust.KeyValues{}.Set("raw-http", raw).Set("final", final)}
		bound := gust.KeyValues{}.Set("bound", 1)
		call := webCall{ext: ".http", path: "/rest"}
		out, err := webParams(r, body, a, bound, nil, call)
		if err != nil {
			if gust.KindOf(err) != gust.KindInvalid {
				t.Fatalf("error of kind %v: %v", gust.KindOf(err), err)
			}
			return
		}
		var in map[string]any
		if err := json.Unmarshal(out, &in); err != nil {
			t.Fatalf("parameters are not a JSON object: %v: %s", err, out)
		}
		headers, _ := in["__ow_headers"].(map[string]any)
		if in["__ow_method"] != strings.ToLower(method) || in["__ow_path"] != "/rest" || headers["host"] != "example.com" {
			t.Fatalf("platform fields overridden: %s", out)
		}
		if _, ok := in["__ow_user"]; ok {
			t.Fatalf("__ow_user set for an anonymous request: %s", out)
		}
		mt, params, _ := mime.ParseMediaType(ctype)
		binary := binaryMedia(mt, params, ctype == "")
		owBody, hasBody := in["__ow_body"]
		if raw {
			if in["__ow_query"] != query && utf8.ValidString(query) {
				t.Fatalf("__ow_query %q, want %q", in["__ow_query"], query)
			}
			var want string
			switch {
			case len(body) == 0:
			case mt == "application/json" || binary:
				want = base64.StdEncoding.EncodeToString(body)
			case utf8.Valid(body):
				want = string(body)
			default:
				return // text that is not UTF-8 cannot be a JSON string as it is
			}
			if owBody != want {
				t.Fatalf("__ow_body %q, want %q", owBody, want)
			}
			return
		}
		if _, ok := in["__ow_query"]; ok {
			t.Fatalf("__ow_query without raw-http: %s", out)
		}
		// The parameters a request should give: the query's last values,
		// then a JSON object's or a form's fields.
		want := map[string]any{}
		for k, vs := range r.URL.Query() {
			want[k] = vs[len(vs)-1]
		}
		var wantBody any
		switch {
		case len(body) == 0:
		case jsonMedia(mt):
			var v any
			if json.Unmarshal(body, &v) != nil {
				t.Fatalf("malformed JSON body accepted: %q", body)
			}
			if obj, ok := v.(map[string]any); ok {
				for k, fv := range obj {
					want[k] = fv
				}
			} else {
				wantBody = v
			}
		case mt == "application/x-www-form-urlencoded":
			form, err := url.ParseQuery(string(body))
			if err != nil {
				t.Fatalf("malformed form accepted: %q", body)
			}
			for k, vs := range form {
				want[k] = vs[len(vs)-1]
			}
		case binary:
			wantBody = base64.StdEncoding.EncodeToString(body)
		default:
			wantBody = string(body)
		}
		for k, v := range want {
			if isReserved(k) || final && k == "bound" {
				t.Fatalf("request parameter %q accepted: %s", k, out)
			}
			if !utf8.ValidString(k) {
				continue // encoded with U+FFFD, as any JSON encoder must
			}
			if s, ok := v.(string); ok && !utf8.ValidString(s) {
				continue
			}
			if !reflect.DeepEqual(in[k], v) {
				t.Fatalf("parameter %q = %#v, want %#v: %s", k, in[k], v, out)
			}
		}
		if wantBody != nil {
			if s, ok := wantBody.(string); !ok || utf8.ValidString(s) {
				if !reflect.DeepEqual(owBody, wantBody) {
					t.Fatalf("__ow_body %#v, want %#v", owBody, wantBody)
				}
			}
		} else if hasBody {
			t.Fatalf("__ow_body %#v for a body of parameters", owBody)
		}
	})
}
