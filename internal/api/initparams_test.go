package api_test

import (
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/gust-faas/gust/internal/gusttest"
)

// TestInitParameterRefused: an init parameter becomes an environment
// variable of the action's instances, so a key with '=' or NUL, or a value
// with NUL, is refused with 400 naming it, at create and at update, rather
// than failing every call later.
func TestInitParameterRefused(t *testing.T) {
	n := gusttest.Start(t)
	exec := map[string]any{"kind": "wasm", "code": base64.StdEncoding.EncodeToString(evFixture(t, "echo"))}
	init := func(key string, value any) []map[string]any {
		return []map[string]any{{"key": "ok", "value": 1}, {"key": key, "value": value, "init": true}}
	}
	const malformed = "The request content was malformed:\nThe init parameter "
	const keyMsg = " cannot be an environment variable of the action's instances: its key must not contain '=' or NUL."
	const valueMsg = " cannot be an environment variable of the action's instances: its value must not contain NUL."
	for _, tc := range []struct {
		key   string
		value any
		want  string
	}{
		{"A=B", "x", malformed + `"A=B"` + keyMsg},
		{"A\x00B", "x", malformed + `"A\x00B"` + keyMsg},
		{"TOKEN", "a\x00b", malformed + `"TOKEN"` + valueMsg},
	} {
		r := evCall(t, n, n.Auth, "PUT", "/api/v1/namespaces/_/actions/bad", map[string]any{"exec": exec, "parameters": init(tc.key, tc.value)})
		evExpect(t, r, http.StatusBadRequest, tc.want)
	}
	// The same key and value as plain parameters are arguments, not
	// environment: accepted.
	r := evCall(t, n, n.Auth, "PUT", "/api/v1/namespaces/_/actions/good", map[string]any{"exec": exec,
		"parameters": []map[string]any{{"key": "A=B", "value": "a\x00b"}, {"key": "TOKEN", "value": "s3cret", "init": true}}})
	evExpect(t, r, http.StatusOK, "")
	r = evCall(t, n, n.Auth, "PUT", "/api/v1/namespaces/_/actions/good?overwrite=true", map[string]any{"parameters": init("A=B", "x")})
	evExpect(t, r, http.StatusBadRequest, malformed+`"A=B"`+keyMsg)
	// Package parameters reach the action's instances as well.
	r = evCall(t, n, n.Auth, "PUT", "/api/v1/namespaces/_/packages/p", map[string]any{"parameters": init("A=B", "x")})
	evExpect(t, r, http.StatusBadRequest, malformed+`"A=B"`+keyMsg)
}
