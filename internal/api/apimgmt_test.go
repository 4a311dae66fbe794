package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/apache/openwhisk-client-go/whisk"

	"github.com/gust-faas/gust/internal/store"
)

// wskAPI drives the apimgmt entry points with openwhisk-client-go's Apis
// service, with the options wsk sends (§7).
type wskAPI struct {
	*whisk.Client
	opts whisk.ApiOptions
}

func newWskAPI(t *testing.T, n *webNode) *wskAPI {
	t.Helper()
	return newWskAPIAs(t, n, n.Auth)
}

// newWskAPIAs is newWskAPI with the credentials auth ("uuid:key").
func newWskAPIAs(t *testing.T, n *webNode, auth string) *wskAPI {
	t.Helper()
	c, err := whisk.NewClient(http.DefaultClient, &whisk.Config{Host: n.URL, AuthToken: auth, Namespace: "_"})
	if err != nil {
		t.Fatal(err)
	}
	uuid, _, _ := strings.Cut(auth, ":")
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
			{"OPTIONS", "/api/guest/hello/world", 200}, // a preflight, answered by the platform
			{"OPTIONS", "/api/guest/hello/nothere", 404},
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

// createAPIRaw calls createApi as auth with an apidoc, for the status and
// body of refusals.
func createAPIRaw(n *webNode, auth, respType string, apidoc any) webResp {
	n.t.Helper()
	body, _ := json.Marshal(map[string]any{"apidoc": apidoc})
	return n.send("POST", "/api/v1/web/whisk.system/apimgmt/createApi.http?responsetype="+respType, bytes.NewReader(body),
		map[string]string{"Authorization": basicAuth(auth), "Content-Type": "application/json"})
}

// routeDoc is the apidoc of `wsk api create BASE REL VERB /ACTIONNS/ACTION`.
func routeDoc(base, rel, verb, actionNS, action string) map[string]any {
	return map[string]any{"namespace": "_", "gatewayBasePath": base, "gatewayPath": rel, "gatewayMethod": verb,
		"action": map[string]any{"name": action, "namespace": actionNS, "backendMethod": verb,
			"backendUrl": "http://x/api/v1/web/" + actionNS + "/default/" + action + ".http", "authkey": "k:k"}}
}

// swaggerDoc1 is a whole API with one operation, GET base+rel, served by
// the action x (its x-openwhisk).
func swaggerDoc1(base, rel string, x map[string]string) map[string]any {
	sw, _ := json.Marshal(map[string]any{"swagger": "2.0", "basePath": base, "info": map[string]any{"title": base, "version": "1.0.0"},
		"paths": map[string]any{rel: map[string]any{"get": map[string]any{"operationId": "op", "x-openwhisk": x,
			"responses": map[string]any{"default": map[string]any{"description": "ok"}}}}}})
	return map[string]any{"namespace": "_", "swagger": string(sw)}
}

// TestAPIRouteTargets: a route runs its action as the route's namespace,
// so it may only name what that namespace may invoke (its own actions and
// those of published packages), and the route owner vouches for callers
// only with its own actions: a shared action's require-whisk-auth holds.
func TestAPIRouteTargets(t *testing.T) {
	n := startWebNode(t)
	other := n.namespace("other")
	n.put(n.Auth, "/api/v1/namespaces/_/packages/p", map[string]any{}) // private
	n.action("p/echo", nil, map[string]any{"require-whisk-auth": "s3cret"})
	n.action("loose", nil, map[string]any{"require-whisk-auth": "s3cret"})
	n.put(n.Auth, "/api/v1/namespaces/_/packages/pub", map[string]any{"publish": true})
	n.action("pub/echo", nil, map[string]any{"require-whisk-auth": "s3cret"})
	n.put(other, "/api/v1/namespaces/_/packages/mine", map[string]any{"binding": map[string]any{"namespace": "guest", "name": "pub"}})
	n.actionAs(other, "own", nil, map[string]any{"require-whisk-auth": "k"})

	const forbidden = "API creation failure: namespace 'other' may not serve the action '%s': " +
		"an API may only serve its namespace's own actions and those of published packages."
	refused := []struct {
		name   string
		apidoc map[string]any
		action string
	}{
		{"another namespace's private package", routeDoc("/x", "/y", "GET", "guest", "p/echo"), "/guest/p/echo"},
		{"fully qualified name", routeDoc("/x", "/y", "GET", "_", "/guest/p/echo"), "/guest/p/echo"},
		{"another namespace's action outside packages", routeDoc("/x", "/y", "GET", "guest", "loose"), "/guest/loose"},
		{"a missing package of another namespace", routeDoc("/x", "/y", "GET", "guest", "nopkg/echo"), "/guest/nopkg/echo"},
		{"swagger", swaggerDoc1("/x", "/y", map[string]string{"namespace": "guest", "package": "p", "action": "echo", "url": "u.json"}), "/guest/p/echo"},
	}
	for _, tt := range refused {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			r := createAPIRaw(n, other, "json", tt.apidoc)
			if want := strings.Replace(forbidden, "%s", tt.action, 1); r.status != 403 || r.errorText() != want {
				t.Errorf("got %d %s, want 403 %q", r.status, r.body, want)
			}
		})
	}
	if got := newWskAPIAs(t, n, other).list(t, ""); len(got.Apis) != 0 {
		t.Errorf("refused routes were stored: %+v", got.Apis)
	}

	// What other may invoke it may serve.
	for _, doc := range []map[string]any{
		routeDoc("/s", "/shared", "GET", "guest", "pub/echo"),
		routeDoc("/s", "/bound", "GET", "_", "mine/echo"),
		routeDoc("/s", "/own", "GET", "_", "own"),
		routeDoc("/s", "/later", "GET", "_", "notyet"), // missing: 404 until it exists
	} {
		if r := createAPIRaw(n, other, "json", doc); r.status != 200 {
			t.Fatalf("create %v: %d %s", doc["gatewayPath"], r.status, r.body)
		}
	}
	secret := map[string]string{"X-Require-Whisk-Auth": "s3cret"}
	served := []struct {
		name, path string
		header     map[string]string
		status     int
	}{
		{"a shared action's secret is asked", "/api/other/s/shared", nil, 401},
		{"a shared action's secret given", "/api/other/s/shared", secret, 200},
		{"through a binding, the secret is asked", "/api/other/s/bound", nil, 401},
		{"through a binding, the secret given", "/api/other/s/bound", secret, 200},
		{"the owner vouches for its own action", "/api/other/s/own", nil, 200},
		{"a missing action", "/api/other/s/later", nil, 404},
	}
	for _, tt := range served {
		t.Run(tt.name, func(t *testing.T) {
			r := n.send("GET", tt.path, nil, tt.header)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if r.status == 200 {
				if act := n.activation(t, other, r.header.Get("X-Gust-Activation-Id")); act.Namespace != "other" {
					t.Errorf("activation in %s, want other", act.Namespace)
				}
			}
		})
	}

	// A route stored before creation checked its target (or written by
	// hand) still cannot reach another namespace's private action.
	legacy := &store.API{Namespace: "other", BasePath: "/legacy", Name: "/legacy", Routes: []store.Route{
		{RelPath: "/y", Verb: "GET", Action: "/guest/p/echo", ResponseType: "json"},
		{RelPath: "/z", Verb: "GET", Action: "/guest/loose", ResponseType: "json"},
	}}
	if _, err := n.Routes.Put(context.Background(), legacy, 0); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/other/legacy/y", "/api/other/legacy/z"} {
		if r := n.send("GET", path, nil, nil); r.status != 404 {
			t.Errorf("GET %s: %d %s, want 404", path, r.status, r.body)
		}
	}
	// Unpublishing cuts a route to a shared action off.
	n.put(n.Auth, "/api/v1/namespaces/_/packages/pub?overwrite=true", map[string]any{"publish": false})
	if r := n.send("GET", "/api/other/s/shared", nil, secret); r.status != 404 {
		t.Errorf("route to an unpublished package: %d %s", r.status, r.body)
	}
}

// TestAPIRouteCORS: routes answer preflights and carry CORS headers as
// OpenWhisk's gateway does for its APIs (cors enabled), unless the action
// answers OPTIONS itself (web-custom-options).
func TestAPIRouteCORS(t *testing.T) {
	n := startWebNode(t)
	n.result("hello", map[string]any{"greeting": "hi"}, nil)
	n.result("bad", "not an object", nil)
	n.action("custom", nil, map[string]any{"web-custom-options": true})
	w := newWskAPI(t, n)
	w.create(t, n, "/c", "/hello", "GET", "hello", "json")
	w.create(t, n, "/c", "/hello", "PUT", "hello", "json")
	w.create(t, n, "/c", "/bad", "GET", "bad", "json")
	w.create(t, n, "/c", "/custom", "GET", "custom", "http")
	w.create(t, n, "/c", "/opt", "OPTIONS", "custom", "http")
	w.create(t, n, "/c", "/opt", "POST", "hello", "json")

	cors := map[string]string{
		"Access-Control-Allow-Origin":  "*",
		"Access-Control-Allow-Methods": "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH",
		"Access-Control-Allow-Headers": "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent",
	}
	none := map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": "", "Access-Control-Allow-Headers": ""}
	tests := []struct {
		name, method, path string
		header             map[string]string
		status             int
		cors               map[string]string // expected CORS headers ("" for absent)
		ranAction          bool
	}{
		{name: "preflight", method: "OPTIONS", path: "/api/guest/c/hello", status: 200, cors: cors},
		{name: "preflight naming a verb", method: "OPTIONS", path: "/api/guest/c/hello", status: 200, cors: cors,
			header: map[string]string{"Access-Control-Request-Method": "PUT"}},
		{name: "preflight asking for headers", method: "OPTIONS", path: "/api/guest/c/hello", status: 200,
			header: map[string]string{"Access-Control-Request-Headers": "X-Foo, Content-Type"},
			cors:   map[string]string{"Access-Control-Allow-Headers": "X-Foo, Content-Type", "Access-Control-Allow-Origin": "*"}},
		{name: "preflight for a verb without a route", method: "OPTIONS", path: "/api/guest/c/hello", status: 200, cors: cors,
			header: map[string]string{"Access-Control-Request-Method": "DELETE"}},
		{name: "preflight of a missing path", method: "OPTIONS", path: "/api/guest/c/nothere", status: 404, cors: cors},
		{name: "response", method: "GET", path: "/api/guest/c/hello", status: 200, cors: cors, ranAction: true},
		{name: "error", method: "GET", path: "/api/guest/c/bad", status: 400, cors: cors, ranAction: true},
		{name: "other verb", method: "DELETE", path: "/api/guest/c/hello", status: 405, cors: cors},
		{name: "missing path", method: "GET", path: "/api/guest/c/nothere", status: 404, cors: cors},
		{name: "custom options: the action answers the preflight of its verb", method: "OPTIONS", path: "/api/guest/c/custom",
			header: map[string]string{"Access-Control-Request-Method": "GET"}, status: 200, cors: none, ranAction: true},
		{name: "custom options: its own OPTIONS route", method: "OPTIONS", path: "/api/guest/c/opt", status: 200, cors: none, ranAction: true},
		{name: "custom options: its responses", method: "GET", path: "/api/guest/c/custom", status: 200, cors: none, ranAction: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := n.send(tt.method, tt.path, nil, tt.header)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			for k, v := range tt.cors {
				if got := r.header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if ran := r.header.Get("X-Gust-Activation-Id") != ""; ran != tt.ranAction {
				t.Errorf("action ran: %v, want %v", ran, tt.ranAction)
			}
			if tt.ranAction && tt.method == "OPTIONS" && r.json(t)["__ow_method"] != "options" {
				t.Errorf("the action did not see the OPTIONS request: %s", r.body)
			}
		})
	}
}

// TestAPIPathParamsNeedHTTP: a route with path parameters must answer with
// .http, as wsk requires (it refuses before calling createApi; the server
// refuses too, for clients that do not).
func TestAPIPathParamsNeedHTTP(t *testing.T) {
	n := startWebNode(t)
	n.action("books", nil, nil)
	const msg = "A response type of 'http' is required when using path parameters."
	for _, tt := range []struct {
		name, respType string
		apidoc         map[string]any
		want           string // error text; "" for created
	}{
		{"json", "json", routeDoc("/b", "/books/{id}", "GET", "_", "books"), "API creation failure: " + msg},
		{"text", "text", routeDoc("/b", "/books/{id}/x", "GET", "_", "books"), "API creation failure: " + msg},
		{"http", "http", routeDoc("/b", "/books/{id}", "GET", "_", "books"), ""},
		{"json without parameters", "json", routeDoc("/b", "/books", "GET", "_", "books"), ""},
		{"swagger json", "http", swaggerDoc1("/d", "/x/{id}", map[string]string{"namespace": "_", "action": "books", "url": "http://x/api/v1/web/_/default/books.json"}),
			"API creation failure: operation GET /x/{id}: " + msg},
		{"swagger http", "json", swaggerDoc1("/d", "/x/{id}", map[string]string{"namespace": "_", "action": "books", "url": "http://x/api/v1/web/_/default/books.http"}), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := createAPIRaw(n, n.Auth, tt.respType, tt.apidoc)
			if tt.want == "" {
				if r.status != 200 {
					t.Errorf("got %d %s", r.status, r.body)
				}
				return
			}
			var e struct {
				Error string `json:"error"`
			}
			if json.Unmarshal(r.body, &e); r.status != 502 || e.Error != tt.want {
				t.Errorf("got %d %s, want 502 %q", r.status, r.body, tt.want)
			}
		})
	}
}
