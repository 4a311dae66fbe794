package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/apache/openwhisk-client-go/whisk"

	"github.com/gust-faas/gust/internal/gusttest"
)

func TestPackageParameterPrecedence(t *testing.T) {
	n := gusttest.Start(t)
	wsk := evWsk(t, n, n.Auth, "_")
	if _, _, err := wsk.Packages.Insert(&whisk.Package{Name: "p", Parameters: whisk.KeyValueArr{evKV("a", "pkg"), evKV("b", "pkg"), evKV("e", "pkg")}}, false); err != nil {
		t.Fatal(err)
	}
	evPutWasm(t, wsk, "p/echo", "echo", evKV("b", "action"), evKV("c", "action"))
	bind := &whisk.BindingPackage{Name: "bnd", Binding: whisk.Binding{Namespace: "_", Name: "p"},
		Parameters: whisk.KeyValueArr{evKV("a", "binding"), evKV("b", "binding"), evKV("d", "binding")}}
	if _, _, err := wsk.Packages.Insert(bind, false); err != nil {
		t.Fatal(err)
	}

	// Directly: package < action < invoke.
	act := evInvoke(t, n, n.Auth, "_", "p/echo", map[string]any{"c": "invoke"})
	got := evResult(t, act)
	want := map[string]any{"a": "pkg", "b": "action", "c": "invoke", "e": "pkg"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("direct: %s = %v, want %v (result %v)", k, got[k], v, got)
		}
	}
	if b := evAnnotation(act, "binding"); b != "" {
		t.Errorf("direct invoke has binding annotation %s", b)
	}

	// Through the binding: package < binding < action < invoke.
	act = evInvoke(t, n, n.Auth, "_", "bnd/echo", map[string]any{"c": "invoke"})
	got = evResult(t, act)
	want = map[string]any{"a": "binding", "b": "action", "c": "invoke", "d": "binding", "e": "pkg"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("binding: %s = %v, want %v (result %v)", k, got[k], v, got)
		}
	}
	if b, p := evAnnotation(act, "binding"), evAnnotation(act, "path"); b != `"guest/bnd"` || p != `"guest/p/echo"` {
		t.Errorf("binding annotations: binding=%s path=%s", b, p)
	}

	// Non-blocking through the binding: the queued invocation keeps it.
	r := evCall(t, n, n.Auth, "POST", "/api/v1/namespaces/_/actions/bnd/echo", map[string]any{})
	evExpect(t, r, http.StatusAccepted, "")
	queued := evActivation(t, n, n.Auth, r.object(t)["activationId"].(string))
	if evAnnotation(queued, "binding") != `"guest/bnd"` || evResult(t, queued)["d"] != "binding" {
		t.Errorf("queued binding invoke: %s %v", queued.Response.Result, queued.Annotations)
	}

	// GET of the action shows the parameters it inherits.
	a, _, err := wsk.Actions.Get("bnd/echo", false)
	if err != nil {
		t.Fatal(err)
	}
	if a.Namespace != "guest/p" || a.Parameters.GetValue("d") != "binding" || a.Parameters.GetValue("b") != "action" {
		t.Errorf("GET through binding: namespace %s params %v", a.Namespace, a.Parameters)
	}

	// GET of the binding: its identity, merged parameters, the target's actions.
	pkg, _, err := wsk.Packages.Get("bnd")
	if err != nil {
		t.Fatal(err)
	}
	if pkg.Binding == nil || pkg.Binding.Name != "p" || pkg.Binding.Namespace != "guest" ||
		pkg.Parameters.GetValue("a") != "binding" || pkg.Parameters.GetValue("e") != "pkg" ||
		len(pkg.Actions) != 1 || pkg.Actions[0].Name != "echo" {
		t.Errorf("GET binding: %+v", pkg)
	}
	if pkg.Annotations.GetValue("binding") == nil {
		t.Errorf("binding has no binding annotation: %v", pkg.Annotations)
	}
	// Listing the binding's actions lists the target's.
	r = evCall(t, n, n.Auth, "GET", "/api/v1/namespaces/_/actions/bnd/", nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"namespace":"guest/p","name":"echo"`) {
		t.Errorf("actions of binding: %s", r)
	}
}

func TestPackageWriteRules(t *testing.T) {
	n := gusttest.Start(t)
	wsk := evWsk(t, n, n.Auth, "_")
	put := func(name, body string, overwrite bool) evReply {
		q := ""
		if overwrite {
			q = "?overwrite=true"
		}
		return evCall(t, n, n.Auth, "PUT", "/api/v1/namespaces/_/packages/"+name+q, body)
	}
	evExpect(t, put("default", `{}`, false), http.StatusBadRequest, "Package name 'default' is reserved.")
	evExpect(t, put("p", `{"parameters":[{"key":"x","value":1}]}`, false), http.StatusOK, "")
	evExpect(t, put("p", `{}`, false), http.StatusConflict, "resource already exists")
	r := put("p", `{"publish":true}`, true)
	evExpect(t, r, http.StatusOK, "")
	if m := r.object(t); m["version"] != "0.0.2" || m["publish"] != true || len(m["parameters"].([]any)) != 1 {
		t.Errorf("update merged badly: %s", r)
	}
	evExpect(t, put("b1", `{"binding":{"namespace":"_","name":"nope"}}`, false), http.StatusBadRequest, "Binding references a package that does not exist.")
	evExpect(t, put("b1", `{"binding":{"namespace":"_","name":"p"}}`, false), http.StatusOK, "")
	evExpect(t, put("b2", `{"binding":{"namespace":"guest","name":"b1"}}`, false), http.StatusBadRequest, "Cannot bind to another package binding.")
	evExpect(t, put("p", `{"binding":{"namespace":"_","name":"b1"}}`, true), http.StatusConflict, "Resource is a package and cannot be converted into a binding.")
	// Actions live in plain packages only.
	r = evCall(t, n, n.Auth, "PUT", "/api/v1/namespaces/_/actions/b1/x", map[string]any{"exec": map[string]any{"kind": "wasm", "code": "AGFzbQEAAAA="}})
	evExpect(t, r, http.StatusBadRequest, "Operation not permitted on package binding.")
	// One key space: a package name cannot be an action's.
	evPutWasm(t, wsk, "taken", "echo")
	evExpect(t, put("taken", `{}`, false), http.StatusConflict, "Resource by this name exists but is not in this collection.")
	evExpect(t, evCall(t, n, n.Auth, "POST", "/api/v1/namespaces/_/packages/p", `{}`), http.StatusMethodNotAllowed, "")

	// The list marks bindings.
	r = evCall(t, n, n.Auth, "GET", "/api/v1/namespaces/_/packages", nil)
	if !strings.Contains(string(r.body), `"name":"b1"`) || !strings.Contains(string(r.body), `"binding":{"namespace":"guest","name":"p"}`) ||
		!strings.Contains(string(r.body), `"binding":false`) {
		t.Errorf("package list: %s", r)
	}
	if r := evCall(t, n, n.Auth, "GET", "/api/v1/namespaces/_/packages?count=true", nil); string(r.body) != `{"packages":2}` {
		t.Errorf("count: %s", r)
	}

	// Deleting a package that holds actions needs force.
	evPutWasm(t, wsk, "p/a1", "echo")
	evPutWasm(t, wsk, "p/a2", "echo")
	evExpect(t, evCall(t, n, n.Auth, "DELETE", "/api/v1/namespaces/_/packages/p", nil), http.StatusConflict,
		"Package not empty (contains 2 entities). Set force param or delete package contents.")
	r = evCall(t, n, n.Auth, "DELETE", "/api/v1/namespaces/_/packages/p?force=true", nil)
	evExpect(t, r, http.StatusOK, "")
	if r.object(t)["name"] != "p" {
		t.Errorf("delete answered %s", r)
	}
	evExpect(t, evCall(t, n, n.Auth, "GET", "/api/v1/namespaces/_/actions/p/a1", nil), http.StatusNotFound, "")
	if _, err := wsk.Packages.Delete("b1"); err != nil {
		t.Fatal(err)
	}
}

func TestPackageSharing(t *testing.T) {
	n := gusttest.Start(t)
	wsk := evWsk(t, n, n.Auth, "_")
	other := evNamespace(t, n, "other")
	if _, _, err := wsk.Packages.Insert(&whisk.Package{Name: "shared", Parameters: whisk.KeyValueArr{evKV("owner", "guest")}}, false); err != nil {
		t.Fatal(err)
	}
	evPutWasm(t, wsk, "shared/echo", "echo")
	evPutWasm(t, wsk, "private", "echo")

	// Not yet published: nothing crosses.
	evExpect(t, evCall(t, n, other, "GET", "/api/v1/namespaces/guest/packages/shared", nil), http.StatusForbidden, "")
	evExpect(t, evCall(t, n, other, "POST", "/api/v1/namespaces/guest/actions/shared/echo?blocking=true", `{}`), http.StatusForbidden, "")
	evExpect(t, evCall(t, n, other, "PUT", "/api/v1/namespaces/other/packages/mine", `{"binding":{"namespace":"guest","name":"shared"}}`), http.StatusForbidden, "")
	if r := evCall(t, n, other, "GET", "/api/v1/namespaces/guest/packages", nil); string(r.body) != "[]" {
		t.Errorf("list of another namespace shows private packages: %s", r)
	}

	if _, _, err := wsk.Packages.Insert(&whisk.Package{Name: "shared", Publish: ptr(true)}, true); err != nil {
		t.Fatal(err)
	}
	theirs := evWsk(t, n, other, "guest")
	if pkg, _, err := theirs.Packages.Get("shared"); err != nil || len(pkg.Actions) != 1 {
		t.Fatalf("get published package: %+v %v", pkg, err)
	}
	if pkgs, _, err := theirs.Packages.List(&whisk.PackageListOptions{}); err != nil || len(pkgs) != 1 || pkgs[0].Name != "shared" {
		t.Errorf("list published packages: %+v %v", pkgs, err)
	}
	act := evInvoke(t, n, other, "guest", "shared/echo", map[string]any{"x": 1})
	if act.Namespace != "other" || evAnnotation(act, "path") != `"guest/shared/echo"` || evResult(t, act)["owner"] != "guest" {
		t.Errorf("invoke of a shared action: namespace %s path %s result %s", act.Namespace, evAnnotation(act, "path"), act.Response.Result)
	}
	// Another namespace may bind to it and invoke through its binding.
	r := evCall(t, n, other, "PUT", "/api/v1/namespaces/_/packages/mine", `{"binding":{"namespace":"guest","name":"shared"},"parameters":[{"key":"who","value":"other"}]}`)
	evExpect(t, r, http.StatusOK, "")
	act = evInvoke(t, n, other, "_", "mine/echo", nil)
	if got := evResult(t, act); got["who"] != "other" || got["owner"] != "guest" || evAnnotation(act, "binding") != `"other/mine"` {
		t.Errorf("invoke through a binding to a shared package: %s %v", act.Response.Result, act.Annotations)
	}
	// Nothing else crosses: writes, private actions, namespace-wide lists,
	// triggers, activations.
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/api/v1/namespaces/guest/packages/shared?overwrite=true", `{}`},
		{"DELETE", "/api/v1/namespaces/guest/packages/shared", ""},
		{"PUT", "/api/v1/namespaces/guest/actions/shared/x", `{"exec":{"kind":"wasm","code":"AGFzbQEAAAA="}}`},
		{"DELETE", "/api/v1/namespaces/guest/actions/shared/echo", ""},
		{"GET", "/api/v1/namespaces/guest/actions/private", ""},
		{"POST", "/api/v1/namespaces/guest/actions/private?blocking=true", `{}`},
		{"GET", "/api/v1/namespaces/guest/actions", ""},
		{"GET", "/api/v1/namespaces/guest/activations", ""},
	} {
		var body any
		if c.body != "" {
			body = c.body
		}
		if r := evCall(t, n, other, c.method, c.path, body); r.status != http.StatusForbidden {
			t.Errorf("%s %s from another namespace: %s", c.method, c.path, r)
		}
	}
	// Unpublishing cuts the binding off.
	if _, _, err := wsk.Packages.Insert(&whisk.Package{Name: "shared", Publish: ptr(false)}, true); err != nil {
		t.Fatal(err)
	}
	evExpect(t, evCall(t, n, other, "POST", "/api/v1/namespaces/_/actions/mine/echo?blocking=true", `{}`), http.StatusForbidden, "")
}

func ptr[T any](v T) *T { return &v }
