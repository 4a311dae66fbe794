package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

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
