package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

const (
	testSpace  = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502" // the UUID part of testAuth
	apimgmt    = "/api/v1/web/whisk.system/apimgmt/"
	tokenSpace = "accesstoken=DUMMY+TOKEN"
)

// apiAnswer is a createApi answer (and a getApi value) as Gust sends it.
func apiAnswer(host string) string {
	return `{"namespace":"guest","gwApiUrl":"` + host + `/api/guest/hello","gwApiActivated":true,"tenantId":"guest",
	"apidoc":{"swagger":"2.0","info":{"title":"Hello","version":"1.0.0"},"basePath":"/hello",
	 "paths":{
	  "/world":{"get":{"operationId":"get_/world","x-openwhisk":{"namespace":"guest","package":"","action":"hello","url":"u"},"responses":{"default":{"description":"Default response"}}},
	            "post":{"operationId":"post_/world","x-openwhisk":{"namespace":"guest","package":"tools","action":"echo","url":"u"},"responses":{}}},
	  "/books/{id}":{"parameters":[{"name":"id","in":"path"}],"delete":{"operationId":"x","responses":{}}}}}}`
}

func TestCreateAPI(t *testing.T) {
	f, c := newFake(t, reply{})
	f.set(reply{body: apiAnswer(f.srv.URL)})
	api, err := c.CreateAPI(context.Background(), APIRoute{BasePath: "/hello", RelPath: "/world", Verb: "get", Action: "hello", ResponseType: "json"})
	if err != nil {
		t.Fatal(err)
	}
	if api.GatewayURL != f.srv.URL+"/api/guest/hello" || !api.Activated || api.Namespace != "guest" {
		t.Errorf("api = %+v", api)
	}
	r := f.only(t)
	r.check(t, "POST", apimgmt+"createApi.http", tokenSpace+"&responsetype=json&spaceguid="+testSpace)
	r.checkBody(t, `{"apidoc":{"namespace":"_","gatewayBasePath":"/hello","gatewayPath":"/world","gatewayMethod":"GET",
		"id":"API:_:/hello","action":{"name":"hello","namespace":"_","backendMethod":"GET",
		"backendUrl":"`+f.srv.URL+`/api/v1/web/_/default/hello.http","authkey":"`+testAuth+`"}}}`)
}

func TestCreateAPIOptionalFields(t *testing.T) {
	f, c := newFake(t, reply{body: `{}`})
	_, err := c.CreateAPI(context.Background(), APIRoute{BasePath: "/shop", RelPath: "/books/{id}/{id}/x", Verb: "PUT",
		Action: "/guest/tools/books", APIName: "Book shop", SecureKey: json.RawMessage(`"s3cret"`)})
	if err != nil {
		t.Fatal(err)
	}
	r := f.only(t)
	r.check(t, "POST", apimgmt+"createApi.http", tokenSpace+"&responsetype=json&spaceguid="+testSpace) // json by default
	r.checkBody(t, `{"apidoc":{"namespace":"_","apiName":"Book shop","gatewayBasePath":"/shop","gatewayPath":"/books/{id}/{id}/x",
		"gatewayMethod":"PUT","id":"API:_:/shop",
		"action":{"name":"tools/books","namespace":"guest","backendMethod":"PUT",
		  "backendUrl":"`+f.srv.URL+`/api/v1/web/guest/tools/books.http","authkey":"`+testAuth+`","secureKey":"s3cret"},
		"pathParameters":[{"name":"id","in":"path","description":"Default description for 'id'","required":true,"type":"string"}]}}`)

	if _, err := c.CreateAPI(context.Background(), APIRoute{BasePath: "/x", RelPath: "/y", Verb: "GET", Action: "/a/b/c/d"}); err == nil {
		t.Error("CreateAPI with an invalid action name succeeded")
	}
}

func TestCreateAPIFromSwagger(t *testing.T) {
	f, c := newFake(t, reply{body: `{}`})
	swagger := `{"swagger":"2.0","basePath":"/x","info":{"title":"X","version":"1"},"paths":{}}`
	if _, err := c.CreateAPIFromSwagger(context.Background(), []byte(swagger), "http"); err != nil {
		t.Fatal(err)
	}
	r := f.only(t)
	r.check(t, "POST", apimgmt+"createApi.http", tokenSpace+"&responsetype=http&spaceguid="+testSpace)
	// As wsk: the document travels as a JSON string.
	body, _ := json.Marshal(map[string]any{"apidoc": map[string]any{"namespace": "_", "swagger": swagger}})
	r.checkBody(t, string(body))

	if _, err := c.CreateAPIFromSwagger(context.Background(), []byte("{nope"), ""); err == nil {
		t.Error("invalid JSON accepted")
	}
}

func TestListGetDeleteAPIs(t *testing.T) {
	f, c := newFake(t, reply{})
	list := reply{body: `{"apis":[{"id":"API:guest:/hello","key":"API:guest:/hello","value":` + apiAnswer(f.srv.URL) + `}]}`}
	f.set(list)
	ctx := context.Background()

	items, err := c.ListAPIs(ctx, ListOptions{Limit: 30})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].ID != "API:guest:/hello" || items[0].Value.GatewayURL != f.srv.URL+"/api/guest/hello" {
		t.Fatalf("items = %+v", items)
	}
	f.only(t).check(t, "GET", apimgmt+"getApi.http", tokenSpace+"&limit=30&skip=0&spaceguid="+testSpace)

	ops, err := items[0].Value.Operations()
	if err != nil {
		t.Fatal(err)
	}
	base := f.srv.URL + "/api/guest/hello"
	want := []APIOperation{
		{BasePath: "/hello", RelPath: "/books/{id}", Verb: "DELETE", APIName: "Hello", URL: base + "/books/{id}"},
		{BasePath: "/hello", RelPath: "/world", Verb: "GET", APIName: "Hello", Action: "/guest/hello", URL: base + "/world"},
		{BasePath: "/hello", RelPath: "/world", Verb: "POST", APIName: "Hello", Action: "/guest/tools/echo", URL: base + "/world"},
	}
	if len(ops) != len(want) {
		t.Fatalf("operations = %+v", ops)
	}
	for i := range want {
		if ops[i] != want[i] {
			t.Errorf("operation %d = %+v, want %+v", i, ops[i], want[i])
		}
	}

	f.set(list)
	if _, err := c.GetAPI(ctx, "/hello", "/world", "get"); err != nil {
		t.Fatal(err)
	}
	f.only(t).check(t, "GET", apimgmt+"getApi.http", tokenSpace+"&basepath=%2Fhello&operation=GET&relpath=%2Fworld&spaceguid="+testSpace)

	f.set(reply{body: `{}`})
	if err := c.DeleteAPI(ctx, "/hello", "", ""); err != nil {
		t.Fatal(err)
	}
	f.only(t).check(t, "DELETE", apimgmt+"deleteApi.http", tokenSpace+"&basepath=%2Fhello&spaceguid="+testSpace)
	f.set(reply{body: `{}`})
	if err := c.DeleteAPI(ctx, "/hello", "/world", "post"); err != nil {
		t.Fatal(err)
	}
	f.only(t).check(t, "DELETE", apimgmt+"deleteApi.http", tokenSpace+"&basepath=%2Fhello&operation=POST&relpath=%2Fworld&spaceguid="+testSpace)
	if err := c.DeleteAPI(ctx, "/hello", "", "GET"); err == nil {
		t.Error("DeleteAPI with a verb and no path succeeded")
	}
}

func TestGetAPIWithoutDoc(t *testing.T) {
	_, c := newFake(t, reply{body: `{"apis":[{"id":"API:guest:/x","key":"API:guest:/x","value":{"gwApiUrl":"u"}}]}`})
	if _, err := c.GetAPI(context.Background(), "/x", "", ""); err == nil || !strings.Contains(err.Error(), "apidoc") {
		t.Errorf("err = %v, want one about the missing apidoc", err)
	}
}

func TestAPIErrors(t *testing.T) {
	// The management actions fail with 502 {"error"}: the message is the error.
	f, c := newFake(t, reply{status: http.StatusBadGateway, body: `{"error":"API deletion failure: API '/nope' does not exist."}`})
	err := c.DeleteAPI(context.Background(), "/nope", "", "")
	var ge *GatewayError
	if !errors.As(err, &ge) || err.Error() != "API deletion failure: API '/nope' does not exist." || ge.Status != 502 {
		t.Errorf("err = %#v", err)
	}
	// Platform errors keep their code; a proxy's 502 page is no gateway message.
	f.set(reply{status: http.StatusUnauthorized, body: `{"error":"The supplied authentication is invalid.","code":"tx1"}`})
	_, err = c.ListAPIs(context.Background(), ListOptions{})
	var pe *Error
	if !errors.As(err, &pe) || pe.Status != 401 || pe.Code != "tx1" {
		t.Errorf("err = %#v", err)
	}
	f.set(reply{status: http.StatusBadGateway, body: `<html>Bad Gateway</html>`})
	_, err = c.CreateAPI(context.Background(), APIRoute{BasePath: "/a", RelPath: "/b", Verb: "GET", Action: "c"})
	if !errors.As(err, &pe) || pe.Status != 502 || errors.As(err, &ge) {
		t.Errorf("err = %#v", err)
	}
}

func TestWebActionURL(t *testing.T) {
	c, err := New(Config{APIHost: "https://gw.example/gust/"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ns, name, want string }{
		{"guest", "hello", "https://gw.example/gust/api/v1/web/guest/default/hello"},
		{"guest/tools", "echo", "https://gw.example/gust/api/v1/web/guest/tools/echo"},
		{"my ns/my pkg", "a b", "https://gw.example/gust/api/v1/web/my%20ns/my%20pkg/a%20b"},
	} {
		if got := c.WebActionURL(tc.ns, tc.name); got != tc.want {
			t.Errorf("WebActionURL(%q, %q) = %s, want %s", tc.ns, tc.name, got, tc.want)
		}
	}
}

// set forgets the requests seen so far and answers r from now on.
func (f *fakeAPI) set(r reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs, f.reply = nil, r
}
