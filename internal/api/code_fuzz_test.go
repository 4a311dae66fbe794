package api

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/gust-faas/gust/internal/gust"
)

// zipOf returns a zip of name → content entries, for fuzz seeds.
func zipOf(t testing.TB, entries ...string) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i := 0; i+1 < len(entries); i += 2 {
		w, err := zw.Create(entries[i])
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(entries[i+1]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// FuzzWasmFromZip: whatever zip a client uploads as a wasm action, the
// module comes back within the limit or the error is a client's (400 or
// 413), never a panic or a platform error.
func FuzzWasmFromZip(f *testing.F) {
	f.Add(zipOf(f, "m.wasm", "\x00asm\x01\x00\x00\x00"), "", 64)
	f.Add(zipOf(f, "a.wasm", "x", "b.wasm", "y"), "", 64)
	f.Add(zipOf(f, "a.wasm", "x", "b.wasm", "y"), "b.wasm", 64)
	f.Add(zipOf(f, "lib/x.wasm", strings.Repeat("z", 100)), "", 10)
	f.Add(zipOf(f, "README", "hi"), "", 64)
	f.Add([]byte("PK\x03\x04 not really"), "", 64)
	f.Add([]byte{}, "main", 0)
	f.Fuzz(func(t *testing.T, data []byte, main string, max int) {
		max = max & 0xffff
		mod, err := wasmFromZip(data, main, max)
		if err != nil {
			if k := gust.KindOf(err); k != gust.KindInvalid && k != gust.KindTooLarge {
				t.Fatalf("error of kind %v: %v", k, err)
			}
			return
		}
		if len(mod) > max {
			t.Fatalf("module of %d bytes over the limit %d", len(mod), max)
		}
	})
}

// FuzzAPIFromSwagger: a swagger document (wsk api create -c) either makes
// routes under "/" with a known verb and response type, or is refused with
// a message; it never panics. (The handler then checks each route's action,
// checkRouteTarget.)
func FuzzAPIFromSwagger(f *testing.F) {
	for _, s := range []string{
		`{"basePath":"/shop","info":{"title":"Shop"},"paths":{"/items":{"get":{"x-openwhisk":{"namespace":"_","action":"list","url":"https://h/api/v1/web/guest/default/list.json"}}}}}`,
		`{"basePath":"shop/","info":{},"paths":{"/items/{id}":{"post":{"x-openwhisk":{"package":"p","action":"get","url":"x.http"}},"parameters":[]}}}`,
		`{"basePath":"/a","info":{"title":""},"paths":{"/x/{id}":{"get":{"x-openwhisk":{"action":"a"}}}}}`,
		`{"basePath":"/a","info":{},"paths":{"/x":{"get":{}}}}`,
		`"{\"basePath\":\"/q\",\"info\":{},\"paths\":{}}"`,
		`{"paths":{}}`, `{}`, `[]`, `""`, `null`, `{`,
	} {
		f.Add([]byte(s), "guest", "json")
	}
	f.Fuzz(func(t *testing.T, raw []byte, ns, respType string) {
		if !json.Valid(raw) || gust.ValidateName("namespace", ns) != nil || !slices.Contains(apiResponseTypes, respType) {
			return // the handler has checked these before
		}
		api, msg := apiFromSwagger(raw, ns, respType)
		if api == nil {
			if msg == "" {
				t.Fatal("refused without a message")
			}
			return
		}
		if msg != "" || !strings.HasPrefix(api.BasePath, "/") || api.Namespace != ns || api.Name == "" {
			t.Fatalf("api %+v, message %q", api, msg)
		}
		for _, r := range api.Routes {
			if !strings.HasPrefix(r.RelPath, "/") || !slices.Contains(apiVerbs, r.Verb) || !slices.Contains(apiResponseTypes, r.ResponseType) {
				t.Fatalf("route %+v", r)
			}
		}
	})
}
