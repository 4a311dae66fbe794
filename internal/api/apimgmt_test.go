package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/apache/openwhisk-client-go/whisk"
)

// wskAPI drives the apimgmt entry points with openwhisk-client-go's Apis
// service, with the options wsk sends (§7).
type wskAPI struct {
	*whisk.Client
	opts whisk.ApiOptions
}

func newWskAPI(t *testing.T, n *webNode) *wskAPI {
	t.Helper()
	c, err := whisk.NewClient(http.DefaultClient, &whisk.Config{Host: n.URL, AuthToken: n.Auth, Namespace: "_"})
	if err != nil {
		t.Fatal(err)
	}
	uuid, _, _ := strings.Cut(n.Auth, ":")
	return &wskAPI{Client: c, opts: whisk.ApiOptions{SpaceGuid: uuid, AccessToken: "DUMMY TOKEN"}}
}

// create is `wsk api create BASE REL VERB ACTION --response-type TYPE`.
func (w *wskAPI) create(t *testing.T, n *webNode, base, rel, verb, action, respType string) *whisk.ApiCreateResponse {
	t.Helper()
	doc := &whisk.Api{
		Namespace: "_", GatewayBasePath: base, GatewayRelPath: rel, GatewayMethod: verb, Id: "API:_:" + base,
		Action: &whisk.ApiAction{Name: action, Namespace: "_", BackendMethod: verb,
			BackendUrl: n.URL + "/api/v1/web/_/default/" + action + ".http", Auth: n.Auth},
	}
	opts := whisk.ApiCreateRequestOptions(w.opts)
	opts.ResponseType = respType
	resp, _, err := w.Apis.Insert(&whisk.ApiCreateRequest{ApiDoc: doc}, &opts, whisk.DoNotOverwrite)
	if err != nil {
		t.Fatalf("api create %s %s %s %s: %v", base, rel, verb, action, err)
	}
	return resp
}

func (w *wskAPI) list(t *testing.T, base string) *whisk.ApiListResponse {
	t.Helper()
	opts := &whisk.ApiListRequestOptions{ApiOptions: w.opts, Limit: 30}
	opts.ApiBasePath = base
	resp, _, err := w.Apis.List(opts)
	if err != nil {
		t.Fatalf("api list: %v", err)
	}
	return resp
}

func TestAPIRoutes(t *testing.T) {
	n := startWebNode(t)
	n.action("hello", map[string]any{"result": map[string]any{"greeting": "hi"}}, nil)
	n.action("books", nil, nil) // echoes its input
	n.action("secured", nil, map[string]any{"require-whisk-auth": "k"})
	w := newWskAPI(t, n)

	created := w.create(t, n, "/hello", "/world", "GET", "hello", "json")
	if want := n.URL + "/api/guest/hello"; created.BaseUrl != want {
		t.Errorf("gwApiUrl = %q, want %q", created.BaseUrl, want)
	}
	if !created.Activated || created.Swagger == nil || created.Swagger.BasePath != "/hello" {
		t.Fatalf("create response: %+v", created)
	}
	op := created.Swagger.Paths["/world"].Get
	if op == nil || op.XOpenWhisk == nil || op.XOpenWhisk.Namespace != "guest" || op.XOpenWhisk.ActionName != "hello" ||
		op.XOpenWhisk.ApiUrl != n.URL+"/api/v1/web/guest/default/hello.json" || op.OperationId == "" {
		t.Fatalf("operation: %+v %+v", op, op.XOpenWhisk)
	}
	w.create(t, n, "/hello", "/books/{id}", "GET", "books", "http")
	w.create(t, n, "/hello", "/books/{id}", "PUT", "books", "http")
	w.create(t, n, "/hello/", "/books/new", "GET", "hello", "json") // literal beats {id}
	w.create(t, n, "/other", "/s", "POST", "secured", "json")

	t.Run("serve json", func(t *testing.T) {
		r := n.send("GET", "/api/guest/hello/world", nil, nil)
		if r.status != 200 || string(r.body) != `{"greeting":"hi"}` || r.header.Get("X-Gust-Activation-Id") == "" {
			t.Errorf("GET /hello/world: %d %s %v", r.status, r.body, r.header)
		}
	})
	t.Run("path parameters", func(t *testing.T) {
		got := n.echoed("PUT", "/api/guest/hello/books/42?q=1", strings.NewReader(`{"title":"T"}`), map[string]string{"Content-Type": "application/json"})
		if got["id"] != "42" || got["q"] != "1" || got["title"] != "T" || got["__ow_method"] != "put" || got["__ow_path"] != "/books/42" {
			t.Errorf("action input: %v", got)
		}
	})
	t.Run("literal segment wins", func(t *testing.T) {
		if r := n.send("GET", "/api/guest/hello/books/new", nil, nil); r.status != 200 || string(r.body) != `{"greeting":"hi"}` {
			t.Errorf("GET /books/new: %d %s", r.status, r.body)
		}
	})
	t.Run("route owner vouches for the caller", func(t *testing.T) {
		if r := n.send("POST", "/api/guest/other/s", nil, nil); r.status != 200 {
			t.Errorf("secured action through its route: %d %s", r.status, r.body)
		}
	})
	t.Run("misses", func(t *testing.T) {
		for _, tt := range []struct {
			method, path string
			status       int
		}{
			{"POST", "/api/guest/hello/world", 405},
			{"GET", "/api/guest/hello/nothere", 404},
			{"GET", "/api/guest/hello/books/1/2", 404},
			{"GET", "/api/nobody/hello/world", 404},
			{"GET", "/api/guest/hello", 404},
		} {
			if r := n.send(tt.method, tt.path, nil, nil); r.status != tt.status {
				t.Errorf("%s %s: %d, want %d", tt.method, tt.path, r.status, tt.status)
			}
		}
	})

	t.Run("list and get", func(t *testing.T) {
		all := w.list(t, "")
		if len(all.Apis) != 2 {
			t.Fatalf("list: %d APIs, want 2", len(all.Apis))
		}
		one := w.list(t, "/hello")
		if len(one.Apis) != 1 {
			t.Fatalf("get /hello: %d APIs", len(one.Apis))
		}
		sw := one.Apis[0].ApiValue.Swagger
		if len(sw.Paths) != 3 || sw.Paths["/books/{id}"].Get == nil || sw.Paths["/books/{id}"].Put == nil {
			t.Errorf("paths: %v", sw.Paths)
		}
		gopts := whisk.ApiGetRequestOptions(w.opts)
		gopts.ApiBasePath = "/hello"
		got, _, err := w.Apis.Get(&whisk.ApiGetRequest{}, &gopts)
		if err != nil || len(got.Apis) != 1 || got.Apis[0].ApiValue.BaseUrl != n.URL+"/api/guest/hello" {
			t.Errorf("api get: %v %+v", err, got)
		}
		if none := w.list(t, "/nothere"); len(none.Apis) != 0 {
			t.Errorf("get of a missing base path: %+v", none)
		}
	})

	t.Run("openapi document", func(t *testing.T) {
		uuid, key, _ := strings.Cut(n.Auth, ":")
		req, _ := http.NewRequest("GET", n.URL+"/api/v1/web/whisk.system/apimgmt/getApi.http?basepath=/hello&spaceguid="+uuid, nil)
		req.SetBasicAuth(uuid, key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Apis []struct {
				Value struct {
					APIDoc map[string]any `json:"apidoc"`
				} `json:"value"`
			} `json:"apis"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || len(body.Apis) != 1 {
			t.Fatalf("getApi: %v %+v", err, body)
		}
		doc := body.Apis[0].Value.APIDoc
		check := func(path string, want any) {
			t.Helper()
			var v any = doc
			for _, k := range strings.Split(path, ".") {
				m, _ := v.(map[string]any)
				v = m[k]
			}
			if mustJSON(v) != mustJSON(want) {
				t.Errorf("%s = %s, want %s", path, mustJSON(v), mustJSON(want))
			}
		}
		check("swagger", "2.0")
		check("basePath", "/hello")
		check("info.version", "1.0.0")
		check("info.title", "/hello")
		check("x-ibm-configuration.cors.enabled", true)
		paths, _ := doc["paths"].(map[string]any)
		op := paths["/books/{id}"].(map[string]any)["get"].(map[string]any)
		if mustJSON(op["responses"]) != `{"default":{"description":"Default response"}}` ||
			mustJSON(op["parameters"]) != `[{"in":"path","name":"id","required":true,"type":"string"}]` {
			t.Errorf("operation: %s", mustJSON(op))
		}
	})

	t.Run("needs credentials", func(t *testing.T) {
		for _, op := range []string{"getApi.http", "createApi.http", "deleteApi.http"} {
			if r := n.send("GET", "/api/v1/web/whisk.system/apimgmt/"+op, nil, nil); r.status != 401 {
				t.Errorf("%s without credentials: %d", op, r.status)
			}
		}
	})

	t.Run("create errors", func(t *testing.T) {
		opts := whisk.ApiCreateRequestOptions(w.opts)
		_, _, err := w.Apis.Insert(&whisk.ApiCreateRequest{ApiDoc: &whisk.Api{Namespace: "_", GatewayBasePath: "/x"}}, &opts, false)
		if err == nil || !strings.Contains(err.Error(), "apidoc is missing the gatewayPath field") {
			t.Errorf("incomplete apidoc: %v", err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		del := func(base, rel, verb string) error {
			opts := whisk.ApiDeleteRequestOptions(w.opts)
			opts.ApiBasePath, opts.ApiRelPath, opts.ApiVerb = base, rel, verb
			_, err := w.Apis.Delete(&whisk.ApiDeleteRequest{}, &opts)
			return err
		}
		if err := del("/hello", "/world", "GET"); err != nil {
			t.Fatal(err)
		}
		if r := n.send("GET", "/api/guest/hello/world", nil, nil); r.status != 404 {
			t.Errorf("deleted route still served: %d", r.status)
		}
		if err := del("/hello", "/world", "GET"); err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("delete of a missing operation: %v", err)
		}
		if err := del("/nothere", "", ""); err == nil || !strings.Contains(err.Error(), "API '/nothere' does not exist.") {
			t.Errorf("delete of a missing API: %v", err)
		}
		if err := del("/hello", "", ""); err != nil {
			t.Fatal(err)
		}
		if got := w.list(t, "/hello"); len(got.Apis) != 0 {
			t.Errorf("deleted API still listed")
		}
		if r := n.send("GET", "/api/guest/hello/books/1", nil, nil); r.status != 404 {
			t.Errorf("deleted API still served: %d", r.status)
		}
	})

	t.Run("swagger document", func(t *testing.T) {
		sw := `{"swagger":"2.0","basePath":"/doc","info":{"title":"Doc API","version":"1.0.0"},"paths":{"/hi":{"get":{"operationId":"getHi",
			"x-openwhisk":{"namespace":"_","package":"","action":"hello","url":"http://x/api/v1/web/_/default/hello.json"},
			"responses":{"default":{"description":"ok"}}}}}}`
		opts := whisk.ApiCreateRequestOptions(w.opts)
		resp, _, err := w.Apis.Insert(&whisk.ApiCreateRequest{ApiDoc: &whisk.Api{Namespace: "_", Swagger: sw}}, &opts, false)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Swagger.Info.Title != "Doc API" || resp.BaseUrl != n.URL+"/api/guest/doc" {
			t.Errorf("create from swagger: %+v", resp)
		}
		if r := n.send("GET", "/api/guest/doc/hi", nil, nil); r.status != 200 || string(r.body) != `{"greeting":"hi"}` {
			t.Errorf("route from swagger: %d %s", r.status, r.body)
		}
	})
}
