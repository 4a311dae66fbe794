package e2e

import (
	"net/http"
	"testing"

	"github.com/gust-faas/gust/internal/sandbox/process"
	"github.com/gust-faas/gust/internal/sandbox/sandboxtest"
)

// TestInitParameters: parameters marked "init": true are not arguments of
// a call but the environment of the action's instances, as in OpenWhisk;
// changing them gives new instances.
func TestInitParameters(t *testing.T) {
	e := start(t)
	initParams := func(v string) []map[string]any {
		return []map[string]any{{"key": "API_TOKEN", "value": v, "init": true}, {"key": "plain", "value": 1}}
	}
	result := func(name string, params map[string]any) map[string]any {
		t.Helper()
		r := e.do("POST", "/api/v1/namespaces/_/actions/"+name+"?blocking=true&result=true", params)
		want(t, r, http.StatusOK)
		return r.object(t)
	}

	want(t, e.do("PUT", "/api/v1/namespaces/_/actions/wenv", map[string]any{
		"exec": wasmExec(t, "env"), "parameters": initParams("s3cret")}), http.StatusOK)
	if got := result("wenv", map[string]any{"var": "API_TOKEN"}); got["value"] != "s3cret" {
		t.Errorf("wasm: API_TOKEN = %v, want the init parameter", got["value"])
	}
	want(t, e.do("PUT", "/api/v1/namespaces/_/actions/wenv?overwrite=true", map[string]any{"parameters": initParams("rotated")}), http.StatusOK)
	if got := result("wenv", map[string]any{"var": "API_TOKEN"}); got["value"] != "rotated" {
		t.Errorf("wasm after the update: API_TOKEN = %v", got["value"])
	}

	if !e.node.Invoker.Supports(process.KindPython) {
		sandboxtest.Unavailable(t, "python:3 cannot run here")
	}
	code := "import os\ndef main(args):\n    return {'token': os.environ.get('API_TOKEN'), 'args': sorted(args)}\n"
	want(t, e.do("PUT", "/api/v1/namespaces/_/actions/penv", map[string]any{
		"exec": map[string]any{"kind": "python:3", "code": code}, "parameters": initParams("s3cret")}), http.StatusOK)
	got := result("penv", map[string]any{"x": 1})
	if got["token"] != "s3cret" {
		t.Errorf("python: API_TOKEN = %v", got["token"])
	}
	if args, _ := got["args"].([]any); len(args) != 2 || args[0] != "plain" || args[1] != "x" {
		t.Errorf("python: arguments %v, want plain and x (not the init parameter)", got["args"])
	}
}
