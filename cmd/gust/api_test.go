package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gust-faas/gust/internal/gusttest"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
)

const (
	apimgmtPath = "/api/v1/web/whisk.system/apimgmt/"
	apiQuery    = "accesstoken=DUMMY+TOKEN"
	apiSpace    = "spaceguid=23bc46b1-71f6-4ed5-8c54-816aa4f8c502"
	webAction   = `{"namespace":"guest","name":"hello","annotations":[{"key":"web-export","value":true},{"key":"require-whisk-auth","value":"s3cret"}]}`
)

// fakeAPIValue is a createApi answer, and a getApi value, as Gust sends it.
func fakeAPIValue(host string) string {
	return `{"namespace":"guest","gwApiUrl":"` + host + `/api/guest/hello","gwApiActivated":true,"tenantId":"guest",
	"apidoc":{"swagger":"2.0","info":{"title":"Greetings","version":"1.0.0"},"basePath":"/hello",
	 "paths":{"/world":{
	   "get":{"operationId":"get_/world","x-openwhisk":{"namespace":"guest","package":"","action":"hello","url":"u"},"responses":{}},
	   "post":{"operationId":"post_/world","x-openwhisk":{"namespace":"guest","package":"tools","action":"echo","url":"u"},"responses":{}}}}}}`
}

func TestAPICreate(t *testing.T) {
	f := startFake(t, false, func(r seen, _ int) answer {
		if r.method == "GET" {
			return answer{status: 200, body: webAction}
		}
		return answer{status: 200, body: fakeAPIValue(os.Getenv("GUST_APIHOST"))}
	})
	host := os.Getenv("GUST_APIHOST")
	out, _, err := runCmd(t, "api", "create", "/hello", "/world", "get", "hello", "--response-type", "HTTP", "-n", "Greetings")
	if err != nil {
		t.Fatal(err)
	}
	if want := "ok: created API /hello/world GET for action /_/hello\n" + host + "/api/guest/hello/world\n"; out != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
	reqs := f.requests()
	if len(reqs) != 2 || reqs[0].method != "GET" || reqs[0].path != "/api/v1/namespaces/_/actions/hello" || reqs[0].query != "code=false" {
		t.Fatalf("requests = %+v", reqs)
	}
	r := f.last(t, "POST", apimgmtPath+"createApi.http", apiQuery+"&responsetype=http&"+apiSpace)
	sameJSON(t, r.body, `{"apidoc":{"namespace":"_","apiName":"Greetings","gatewayBasePath":"/hello","gatewayPath":"/world",
		"gatewayMethod":"GET","id":"API:_:/hello","action":{"name":"hello","namespace":"_","backendMethod":"GET",
		"backendUrl":"`+host+`/api/v1/web/_/default/hello.http","authkey":"`+testAuth+`","secureKey":"s3cret"}}}`)

	// BASE may be left out, as with wsk: the API is at "/".
	if _, _, err := runCmd(t, "api", "create", "/world", "post", "hello"); err != nil {
		t.Fatal(err)
	}
	r = f.last(t, "POST", apimgmtPath+"createApi.http", apiQuery+"&responsetype=json&"+apiSpace)
	if !strings.Contains(r.body, `"gatewayBasePath":"/"`) || !strings.Contains(r.body, `"id":"API:_:/"`) {
		t.Errorf("body = %s", r.body)
	}

	out, _, err = runCmd(t, "api", "create", "/hello", "/world", "GET", "hello", "--json")
	if err != nil || out != indent(fakeAPIValue(host)) {
		t.Errorf("--json = %q, %v", out, err)
	}
}

func TestAPICreateErrors(t *testing.T) {
	f := startFake(t, false, func(r seen, _ int) answer {
		switch {
		case strings.HasSuffix(r.path, "/plain"):
			return answer{status: 200, body: `{"namespace":"guest","name":"plain","annotations":[{"key":"web-export","value":false}]}`}
		case strings.HasSuffix(r.path, "/missing"):
			return answer{status: 404, body: `{"error":"The requested resource does not exist.","code":"c1"}`}
		case r.method == "GET":
			return answer{status: 200, body: webAction}
		}
		return answer{status: 502, body: `{"error":"API creation failure: path '/{__ow_x}' is not valid: '__ow_x' is a reserved parameter."}`}
	})
	_, _, err := runCmd(t, "api", "create", "/hello", "/world", "get", "plain")
	if err == nil || err.Error() != "Unable to create API: action 'plain' is not a web action; make it one with 'gust action update plain --web true'" || exitCode(err) != 1 {
		t.Errorf("not a web action: err = %v", err)
	}
	_, _, err = runCmd(t, "api", "create", "/hello", "/world", "get", "missing")
	if err == nil || !strings.Contains(err.Error(), "unable to get action 'missing': The requested resource does not exist. (code c1)") {
		t.Errorf("missing action: err = %v", err)
	}
	for _, r := range f.requests() {
		if r.method == "POST" {
			t.Errorf("createApi called for an action that cannot serve: %+v", r)
		}
	}
	// As wsk: path parameters need the http response type, refused before
	// anything is sent.
	for _, args := range [][]string{
		{"api", "create", "/hello", "/books/{id}", "get", "hello"},
		{"api", "create", "/hello", "/books/{id}", "get", "hello", "--response-type", "json"},
		{"api", "create", "/books/{id}/x", "put", "hello", "--response-type", "text"},
	} {
		_, _, err = runCmd(t, args...)
		if err == nil || err.Error() != "A response type of 'http' is required when using path parameters." || exitCode(err) != 2 {
			t.Errorf("%q: err = %v (exit %d)", args, err, exitCode(err))
		}
	}
	for _, r := range f.requests() {
		if r.method == "POST" {
			t.Errorf("createApi called for path parameters without --response-type http: %+v", r)
		}
	}
	// The management action's own failure is shown as it is, without HTTP noise.
	_, _, err = runCmd(t, "api", "create", "/hello", "/{__ow_x}", "get", "hello", "--response-type", "http")
	if err == nil || err.Error() != "Unable to create API: API creation failure: path '/{__ow_x}' is not valid: '__ow_x' is a reserved parameter." {
		t.Errorf("gateway failure: err = %v", err)
	}

	for _, args := range [][]string{
		{"api", "create"},
		{"api", "create", "/hello", "/world"},
		{"api", "create", "/hello", "world", "get", "hello"},
		{"api", "create", "hello", "/world", "get", "hello"},
		{"api", "create", "/{id}", "/world", "get", "hello"},
		{"api", "create", "/hello", "/world", "fetch", "hello"},
		{"api", "create", "/hello", "/world", "get", "hello", "--response-type", "xml"},
		{"api", "create", "/hello", "/world", "get", "hello", "-c", "api.json"},
		{"api", "create", "/a", "/b", "get", "hello", "extra"},
		{"api", "list", "/hello", "world"},
		{"api", "list", "/hello", "/world", "fetch"},
		{"api", "delete"},
		{"api", "delete", "/hello", "/world", "fetch"},
		{"api", "get", "/a", "/b"},
	} {
		if _, _, err := runCmd(t, args...); exitCode(err) != 2 {
			t.Errorf("%q: err = %v (exit %d), want a usage error", args, err, exitCode(err))
		}
	}
}

func TestAPICreateFromFile(t *testing.T) {
	f := startFake(t, false, func(seen, int) answer {
		return answer{status: 200, body: fakeAPIValue(os.Getenv("GUST_APIHOST"))}
	})
	dir := t.TempDir()
	swagger := `{"swagger":"2.0","basePath":"/hello","info":{"title":"Greetings","version":"1.0.0"},"paths":{"/world":{"get":{"x-openwhisk":{"namespace":"guest","action":"hello"}}}}}`
	file := filepath.Join(dir, "api.json")
	os.WriteFile(file, []byte(swagger), 0o644)
	out, _, err := runCmd(t, "api", "create", "-c", file, "--response-type", "text")
	if err != nil {
		t.Fatal(err)
	}
	host := os.Getenv("GUST_APIHOST")
	want := "ok: created API /hello/world GET for action /guest/hello\n" + host + "/api/guest/hello/world\n" +
		"ok: created API /hello/world POST for action /guest/tools/echo\n" + host + "/api/guest/hello/world\n"
	if out != want {
		t.Errorf("stdout =\n%s\nwant\n%s", out, want)
	}
	r := f.last(t, "POST", apimgmtPath+"createApi.http", apiQuery+"&responsetype=text&"+apiSpace)
	body, _ := json.Marshal(map[string]any{"apidoc": map[string]any{"namespace": "_", "swagger": swagger}})
	sameJSON(t, r.body, string(body))

	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"swagger":"2.0","paths":{}}`), 0o644)
	yaml := filepath.Join(dir, "api.yaml")
	os.WriteFile(yaml, []byte("swagger: '2.0'\n"), 0o644)
	for _, tc := range []struct{ file, want string }{
		{bad, "is invalid (missing basePath, info, paths, or swagger fields)"},
		{yaml, "only JSON Swagger documents are supported"},
		{filepath.Join(dir, "none.json"), "no such file"},
	} {
		if _, _, err := runCmd(t, "api", "create", "--config-file", tc.file); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.file, err, tc.want)
		}
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestAPIListGetDelete(t *testing.T) {
	f := startFake(t, false, func(r seen, _ int) answer {
		switch {
		case strings.Contains(r.query, "basepath=%2Fnope"):
			return answer{status: 502, body: `{"error":"API deletion failure: API '/nope' does not exist."}`}
		case strings.Contains(r.query, "basepath=%2Fempty"):
			return answer{status: 200, body: `{"apis":[]}`}
		case r.method == "GET":
			return answer{status: 200, body: `{"apis":[{"id":"API:guest:/hello","key":"API:guest:/hello","value":` + fakeAPIValue(os.Getenv("GUST_APIHOST")) + `}]}`}
		}
		return answer{status: 200, body: `{}`}
	})
	host := os.Getenv("GUST_APIHOST")
	out, _, err := runCmd(t, "api", "list")
	if err != nil {
		t.Fatal(err)
	}
	want := "ok: APIs\n" +
		"Action              Verb   API Name    URL\n" +
		"/guest/hello        get    Greetings   " + host + "/api/guest/hello/world\n" +
		"/guest/tools/echo   post   Greetings   " + host + "/api/guest/hello/world\n"
	if out != want {
		t.Errorf("list =\n%s\nwant\n%s", out, want)
	}
	f.last(t, "GET", apimgmtPath+"getApi.http", apiQuery+"&limit=30&skip=0&"+apiSpace)

	out, _, err = runCmd(t, "api", "list", "/hello", "/world", "post")
	if err != nil || strings.Count(out, "\n") != 3 || !strings.Contains(out, "/guest/tools/echo") {
		t.Errorf("list /hello /world post = %q, %v", out, err)
	}
	f.last(t, "GET", apimgmtPath+"getApi.http", apiQuery+"&basepath=%2Fhello&operation=POST&relpath=%2Fworld&"+apiSpace)

	out, _, err = runCmd(t, "api", "get", "/hello")
	if err != nil || !strings.HasPrefix(out, "{\n  \"swagger\": \"2.0\",") || !strings.Contains(out, `"basePath": "/hello"`) {
		t.Errorf("get = %q, %v", out, err)
	}
	f.last(t, "GET", apimgmtPath+"getApi.http", apiQuery+"&basepath=%2Fhello&"+apiSpace)
	out, _, err = runCmd(t, "api", "get", "/hello", "--full")
	if err != nil || !strings.Contains(out, `"gwApiUrl": "`+host+`/api/guest/hello"`) {
		t.Errorf("get --full = %q, %v", out, err)
	}
	if _, _, err = runCmd(t, "api", "get", "/empty"); err == nil || err.Error() != "API does not exist for basepath /empty" {
		t.Errorf("get of no API: err = %v", err)
	}

	for _, tc := range []struct {
		args        []string
		query, want string
	}{
		{[]string{"/hello"}, "&basepath=%2Fhello&", "ok: deleted API /hello\n"},
		{[]string{"/hello", "/world"}, "&basepath=%2Fhello&relpath=%2Fworld&", "ok: deleted /world from /hello\n"},
		{[]string{"/hello", "/world", "get"}, "&basepath=%2Fhello&operation=GET&relpath=%2Fworld&", "ok: deleted /world GET from /hello\n"},
	} {
		out, _, err := runCmd(t, append([]string{"api", "delete"}, tc.args...)...)
		if err != nil || out != tc.want {
			t.Errorf("delete %q = %q, %v; want %q", tc.args, out, err, tc.want)
		}
		f.last(t, "DELETE", apimgmtPath+"deleteApi.http", apiQuery+tc.query+apiSpace)
	}
	_, _, err = runCmd(t, "api", "delete", "/nope")
	if err == nil || err.Error() != "Unable to delete API: API deletion failure: API '/nope' does not exist." || exitCode(err) != 1 {
		t.Errorf("delete of no API: err = %v", err)
	}
}

func TestActionGetURL(t *testing.T) {
	f := startFake(t, false, ok(`{"namespace":"guest/my tools","name":"echo","annotations":[]}`))
	out, _, err := runCmd(t, "action", "get", "my tools/echo", "--url")
	if want := os.Getenv("GUST_APIHOST") + "/api/v1/web/guest/my%20tools/echo\n"; err != nil || out != want {
		t.Errorf("get --url = %q, %v; want %q", out, err, want)
	}
	f.last(t, "GET", "/api/v1/namespaces/_/actions/my%20tools/echo", "code=false")

	// --web false makes no web action: no URL.
	file := filepath.Join(t.TempDir(), "echo.py")
	os.WriteFile(file, []byte("def main(a): return a\n"), 0o644)
	out, _, err = runCmd(t, "action", "update", "echo", file, "--web", "false")
	if err != nil || out != "ok: updated action echo\n" {
		t.Errorf("update --web false = %q, %v", out, err)
	}
	out, _, err = runCmd(t, "action", "update", "echo", "--web", "raw")
	if want := "ok: updated action echo\n" + os.Getenv("GUST_APIHOST") + "/api/v1/web/guest/my%20tools/echo\n"; err != nil || out != want {
		t.Errorf("update --web raw = %q, %v; want %q", out, err, want)
	}
}

// TestAPIEndToEnd drives a real node: web actions and API routes made with
// the CLI answer plain HTTP requests at the URLs the CLI prints.
func TestAPIEndToEnd(t *testing.T) {
	isolate(t)
	node := gusttest.Start(t)
	dir := t.TempDir()
	for _, name := range []string{"hello", "webecho"} {
		if err := os.WriteFile(filepath.Join(dir, name+".wasm"), wasmtest.Build(t, name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gust := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"--apihost", node.URL, "--auth", node.Auth}, args...), &out, &errOut)
		if err != nil {
			t.Fatalf("gust %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
		}
		return out.String()
	}
	gustErr := func(args ...string) error {
		t.Helper()
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"--apihost", node.URL, "--auth", node.Auth}, args...), &out, &errOut)
		if err == nil {
			t.Fatalf("gust %s succeeded: %s", strings.Join(args, " "), out.String())
		}
		return err
	}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// A web action prints its URL, which answers anyone.
	out := gust("action", "create", "echo", filepath.Join(dir, "webecho.wasm"), "--web", "true")
	echoURL := node.URL + "/api/v1/web/guest/default/echo"
	if out != "ok: created action echo\n"+echoURL+"\n" {
		t.Fatalf("action create --web true = %q", out)
	}
	if got := gust("action", "get", "echo", "--url"); got != echoURL+"\n" {
		t.Errorf("action get --url = %q", got)
	}
	status, body := get(echoURL + "?name=Jane")
	var echoed map[string]any
	if err := json.Unmarshal([]byte(body), &echoed); status != 200 || err != nil || echoed["name"] != "Jane" || echoed["__ow_method"] != "get" {
		t.Errorf("GET %s = %d %s", echoURL, status, body)
	}

	// A route needs a web action.
	gust("action", "create", "hello", filepath.Join(dir, "hello.wasm"))
	err := gustErr("api", "create", "/hello", "/world", "get", "hello", "--response-type", "json")
	if !strings.Contains(err.Error(), "'gust action update hello --web true'") {
		t.Errorf("route to a plain action: err = %v", err)
	}
	gust("action", "update", "hello", "--web", "true")

	out = gust("api", "create", "/hello", "/world", "get", "hello", "--response-type", "json")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	routeURL := node.URL + "/api/guest/hello/world"
	if len(lines) != 2 || lines[0] != "ok: created API /hello/world GET for action /_/hello" || lines[1] != routeURL {
		t.Fatalf("api create = %q", out)
	}
	status, body = get(lines[1] + "?name=Jane")
	if status != 200 || !strings.Contains(body, `"greeting":"Hello, Jane!"`) && !strings.Contains(body, `"greeting": "Hello, Jane!"`) {
		t.Errorf("GET %s = %d %s", lines[1], status, body)
	}
	gust("api", "create", "/hello", "/echo/{who}", "post", "echo", "--response-type", "http", "-n", "Greetings")

	out = gust("api", "list")
	for _, want := range []string{"ok: APIs\n", "Action", "/guest/hello ", "/guest/echo ", " get ", " post ", routeURL + "\n", node.URL + "/api/guest/hello/echo/{who}\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("api list lacks %q:\n%s", want, out)
		}
	}
	out = gust("api", "list", "/hello", "/world")
	if strings.Contains(out, "echo") || !strings.Contains(out, routeURL) {
		t.Errorf("api list /hello /world =\n%s", out)
	}

	var doc struct {
		Swagger  string                               `json:"swagger"`
		BasePath string                               `json:"basePath"`
		Paths    map[string]map[string]map[string]any `json:"paths"`
	}
	out = gust("api", "get", "/hello")
	if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.Swagger != "2.0" || doc.BasePath != "/hello" ||
		doc.Paths["/world"]["get"] == nil || doc.Paths["/echo/{who}"]["post"] == nil {
		t.Errorf("api get = %s (%v)", out, err)
	}

	// The path parameter reaches the action.
	resp, err := http.Post(node.URL+"/api/guest/hello/echo/Jane", "application/json", strings.NewReader(`{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	echoed = nil
	if err := json.Unmarshal(b, &echoed); resp.StatusCode != 200 || err != nil || echoed["who"] != "Jane" || echoed["n"] != 1.0 {
		t.Errorf("POST echo route = %d %s", resp.StatusCode, b)
	}

	if out := gust("api", "delete", "/hello", "/echo/{who}", "post"); out != "ok: deleted /echo/{who} POST from /hello\n" {
		t.Errorf("api delete route = %q", out)
	}
	if status, _ := get(routeURL); status != 200 {
		t.Errorf("GET %s after deleting another route = %d", routeURL, status)
	}
	if out := gust("api", "delete", "/hello"); out != "ok: deleted API /hello\n" {
		t.Errorf("api delete = %q", out)
	}
	if status, _ := get(routeURL); status != 404 {
		t.Errorf("GET %s after delete = %d, want 404", routeURL, status)
	}
	if out := gust("api", "list"); out != "ok: APIs\nAction   Verb   API Name   URL\n" {
		t.Errorf("api list after delete = %q", out)
	}
	err = gustErr("api", "delete", "/hello")
	if err.Error() != "Unable to delete API: API deletion failure: API '/hello' does not exist." {
		t.Errorf("second delete: err = %v", err)
	}
	if err := gustErr("api", "get", "/hello"); err.Error() != "API does not exist for basepath /hello" {
		t.Errorf("get after delete: err = %v", err)
	}
}
