package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/apache/openwhisk-client-go/whisk"
)

func wasmAction(t testing.TB, name, fixtureName string) *whisk.Action {
	code := fixture(t, fixtureName)
	return &whisk.Action{Name: name, Exec: &whisk.Exec{Kind: "wasm", Code: &code}}
}

// annotationMap flattens a client key-value list.
func annotationMap(kv whisk.KeyValueArr) map[string]any {
	m := make(map[string]any, len(kv))
	for _, e := range kv {
		m[e.Key] = e.Value
	}
	return m
}

// TestActionLifecycle drives create, update, get, list and delete through
// openwhisk-client-go.
func TestActionLifecycle(t *testing.T) {
	e := start(t)
	acts := e.wsk.Actions

	// Create.
	in := wasmAction(t, "hello", "hello")
	in.Parameters = whisk.KeyValueArr{{Key: "name", Value: "param"}, {Key: "extra", Value: 1}}
	in.Annotations = whisk.KeyValueArr{{Key: "a", Value: "one"}}
	timeout := 5000
	in.Limits = &whisk.Limits{Timeout: &timeout}
	got, resp, err := acts.Insert(in, false)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create status %d", resp.StatusCode)
	}
	if got.Namespace != "guest" || got.Name != "hello" || got.Version != "0.0.1" {
		t.Errorf("created %s/%s version %s, want guest/hello 0.0.1", got.Namespace, got.Name, got.Version)
	}
	if got.Exec == nil || got.Exec.Kind != "wasm" || got.Exec.Binary == nil || !*got.Exec.Binary {
		t.Errorf("created exec = %+v, want kind wasm, binary true", got.Exec)
	}
	if got.Limits == nil || *got.Limits.Timeout != 5000 || *got.Limits.Memory != 256 || *got.Limits.Logsize != 10 || *got.Limits.Concurrency != 1 {
		t.Errorf("created limits = %+v, want timeout 5000 (given), memory 256, logs 10, concurrency 1", got.Limits)
	}
	wantAnn := map[string]any{"a": "one", "exec": "wasm", "provide-api-key": false}
	if a := annotationMap(got.Annotations); !reflect.DeepEqual(a, wantAnn) {
		t.Errorf("created annotations = %v, want %v", a, wantAnn)
	}

	// A second create of the same name is a conflict and changes nothing.
	again := wasmAction(t, "hello", "noop")
	_, _, err = acts.Insert(again, false)
	if status, msg := wskError(t, err); status != http.StatusConflict || msg != "resource already exists" {
		t.Errorf("second create: %d %q, want 409 resource already exists", status, msg)
	}

	// Update: only annotations given; parameters, limits and code stay,
	// annotations merge and the version's patch number goes up.
	up := &whisk.Action{Name: "hello", Annotations: whisk.KeyValueArr{{Key: "b", Value: 2.0}, {Key: "a", Value: "uno"}}}
	got, _, err = acts.Insert(up, true)
	if err != nil {
		t.Fatalf("update annotations: %v", err)
	}
	if got.Version != "0.0.2" {
		t.Errorf("version after update = %s, want 0.0.2", got.Version)
	}
	wantAnn = map[string]any{"a": "uno", "b": json.Number("2"), "exec": "wasm", "provide-api-key": false}
	if a := annotationMap(got.Annotations); !reflect.DeepEqual(a, wantAnn) {
		t.Errorf("annotations after update = %v, want %v", a, wantAnn)
	}
	if len(got.Parameters) != 2 || *got.Limits.Timeout != 5000 {
		t.Errorf("update without parameters/limits changed them: %v %+v", got.Parameters, got.Limits)
	}

	// Update with parameters replaces them; delAnnotations removes keys.
	up = &whisk.Action{Name: "hello", Parameters: whisk.KeyValueArr{{Key: "name", Value: "new"}}, DelAnnotations: []string{"b"}}
	got, _, err = acts.Insert(up, true)
	if err != nil {
		t.Fatalf("update parameters: %v", err)
	}
	if got.Version != "0.0.3" {
		t.Errorf("version after second update = %s, want 0.0.3", got.Version)
	}
	if len(got.Parameters) != 1 || got.Parameters[0].Key != "name" || got.Parameters[0].Value != "new" {
		t.Errorf("parameters after update = %v, want only name=new", got.Parameters)
	}
	if _, ok := annotationMap(got.Annotations)["b"]; ok {
		t.Errorf("delAnnotations b left it: %v", got.Annotations)
	}
	if res := e.invoke("hello", nil); res.status != http.StatusOK || field(res.object(t), "response", "result", "greeting") != "Hello, new!" {
		t.Errorf("invoke after update: %s, want the new parameter", res)
	}

	// Get with and without code.
	full, _, err := acts.Get("hello", true)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if full.Exec.Code == nil || *full.Exec.Code != fixture(t, "hello") {
		t.Errorf("get with code: the code is not what was stored")
	}
	noCode, _, err := acts.Get("hello", false)
	if err != nil {
		t.Fatalf("get code=false: %v", err)
	}
	if noCode.Exec.Code != nil || noCode.Exec.Kind != "wasm" || noCode.Exec.Binary == nil || !*noCode.Exec.Binary {
		t.Errorf("get code=false: exec = %+v, want kind and binary without code", noCode.Exec)
	}
	raw := e.do("GET", "/api/v1/namespaces/_/actions/hello?code=false", nil)
	want(t, raw, http.StatusOK)
	obj := raw.object(t)
	exec := obj["exec"].(map[string]any)
	if _, ok := exec["code"]; ok {
		t.Errorf("?code=false returned exec.code")
	}
	for _, k := range []string{"namespace", "name", "exec", "parameters", "limits", "version", "publish", "annotations", "updated"} {
		if _, ok := obj[k]; !ok {
			t.Errorf("action JSON lacks %q: %v", k, keys(obj))
		}
	}

	// List, paging and count.
	for _, n := range []string{"a1", "a2", "a3", "a4"} {
		if _, _, err := acts.Insert(wasmAction(t, n, "noop"), false); err != nil {
			t.Fatalf("create %s: %v", n, err)
		}
	}
	all, _, err := acts.List("", &whisk.ActionListOptions{})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	var names []string
	for _, a := range all {
		names = append(names, a.Name)
		if a.Namespace != "guest" || a.Exec == nil || a.Exec.Binary == nil || a.Exec.Code != nil || a.Limits == nil {
			t.Errorf("list entry %+v: want namespace, exec{binary} without code, limits", a)
		}
	}
	if len(names) != 5 || names[0] == "hello" {
		t.Fatalf("list = %v, want 5 actions newest first (hello, updated first, not first)", names)
	}
	page, _, err := acts.List("", &whisk.ActionListOptions{Limit: 2, Skip: 1})
	if err != nil {
		t.Fatalf("list limit 2 skip 1: %v", err)
	}
	var pageNames []string
	for _, a := range page {
		pageNames = append(pageNames, a.Name)
	}
	if !slices.Equal(pageNames, names[1:3]) {
		t.Errorf("list limit=2 skip=1 = %v, want %v", pageNames, names[1:3])
	}
	cnt := e.do("GET", "/api/v1/namespaces/_/actions?count=true", nil)
	want(t, cnt, http.StatusOK)
	var count map[string]int
	cnt.decode(t, &count)
	if !reflect.DeepEqual(count, map[string]int{"actions": 5}) {
		t.Errorf("count = %s, want {\"actions\":5}", cnt.body)
	}

	// Delete returns the entity; then it is gone.
	del := e.do("DELETE", "/api/v1/namespaces/_/actions/a1", nil)
	want(t, del, http.StatusOK)
	if d := del.object(t); d["name"] != "a1" || d["namespace"] != "guest" || d["version"] != "0.0.1" {
		t.Errorf("delete returned %s, want the deleted action", del.body)
	}
	if _, err := acts.Delete("a2"); err != nil {
		t.Fatalf("client delete: %v", err)
	}
	for _, n := range []string{"a1", "a2"} {
		_, _, err := acts.Get(n, false)
		if status, _ := wskError(t, err); status != http.StatusNotFound {
			t.Errorf("get %s after delete: status %d, want 404", n, status)
		}
		wantError(t, e.do("DELETE", "/api/v1/namespaces/_/actions/"+n, nil), http.StatusNotFound, "The requested resource does not exist.")
	}
	if all, _, _ := acts.List("", nil); len(all) != 3 {
		t.Errorf("list after deletes has %d actions, want 3", len(all))
	}
}

// TestEntityNames: every character a name may hold survives the URL, the
// store's keys and the activation subjects.
func TestEntityNames(t *testing.T) {
	e := start(t)
	names := []string{
		"plain", "with space", "a@b.c", "amp&dash-x", "_under", "9lives", "dots.and.more", "MiXeD",
		strings.Repeat("n", 256),
	}
	for _, name := range names {
		t.Run(name[:min(len(name), 20)], func(t *testing.T) {
			p := actionsPath + url.PathEscape(name)
			r := e.do("PUT", p, map[string]any{"exec": wasmExec(t, "hello")})
			want(t, r, http.StatusOK)
			if got := r.object(t)["name"]; got != name {
				t.Fatalf("created %q, want %q", got, name)
			}
			want(t, e.do("GET", p, nil), http.StatusOK)
			inv := e.do("POST", p+"?blocking=true", map[string]any{"name": "n"})
			want(t, inv, http.StatusOK)
			act := inv.object(t)
			if act["name"] != name {
				t.Errorf("activation name %v", act["name"])
			}
			if path, _ := annotation(t, act, "path"); path != "guest/"+name {
				t.Errorf("activation path %v", path)
			}
			l := listActivations(t, e, "&name="+url.QueryEscape(name))
			if len(l) != 1 || l[0]["activationId"] != act["activationId"] {
				t.Errorf("name=%q lists %d activations, want its one", name, len(l))
			}
			c := e.do("GET", "/api/v1/namespaces/_/activations?count=true&name="+url.QueryEscape(name), nil)
			if strings.TrimSpace(string(c.body)) != `{"activations":1}` {
				t.Errorf("count name=%q: %s", name, c.body)
			}
			want(t, e.do("GET", "/api/v1/namespaces/_/activations/"+act["activationId"].(string), nil), http.StatusOK)
		})
	}
	var listed []string
	for _, a := range listActions(t, e) {
		listed = append(listed, a["name"].(string))
	}
	slices.Sort(listed)
	if wantNames := slices.Sorted(slices.Values(names)); !slices.Equal(listed, wantNames) {
		t.Errorf("listed %q, want %q", listed, wantNames)
	}
	for _, name := range names {
		want(t, e.do("DELETE", actionsPath+url.PathEscape(name), nil), http.StatusOK)
		wantError(t, e.do("GET", actionsPath+url.PathEscape(name), nil), http.StatusNotFound)
	}
}

func listActions(t *testing.T, e *env) []map[string]any {
	t.Helper()
	r := e.do("GET", "/api/v1/namespaces/_/actions?limit=0", nil)
	want(t, r, http.StatusOK)
	var l []map[string]any
	r.decode(t, &l)
	return l
}
