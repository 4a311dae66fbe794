package invoker

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/keepalive"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
)

// TestInitEnvRefused: an init parameter that cannot be an environment
// variable (stored before the API refused it) fails the call as the
// developer's error naming it, not as the platform's; a good one is the
// instance's environment.
func TestInitEnvRefused(t *testing.T) {
	inv := budgetInvoker(t, 2048, keepalive.Fixed{KeepAlive: time.Hour}, nil)
	code := wasmtest.Build(t, "env")
	run := func(name string, init gust.KeyValue) *gust.Activation {
		t.Helper()
		init.Init = true
		a := &gust.Action{Namespace: "guest", Name: name, Version: "0.0.1", Exec: gust.Exec{Kind: "wasm"},
			Limits: gust.DefaultActionLimits(), Parameters: gust.KeyValues{init}}
		return inv.Run(context.Background(), &Job{ActivationID: gust.NewActivationID(time.Now()), Namespace: "guest",
			Action: a, Digest: "d-env", Code: func(context.Context) ([]byte, error) { return code, nil },
			Params: json.RawMessage(`{"var":"TOKEN"}`)})
	}
	for _, tc := range []struct {
		name string
		kv   gust.KeyValue
		want string
	}{
		{"eq", gust.KeyValue{Key: "A=B", Value: json.RawMessage(`"x"`)}, `"A=B"`},
		{"nulkey", gust.KeyValue{Key: "A\x00B", Value: json.RawMessage(`"x"`)}, `"A\x00B"`}, // as %q writes it
		{"nulvalue", gust.KeyValue{Key: "TOKEN", Value: json.RawMessage(`"a\u0000b"`)}, `"TOKEN"`},
	} {
		act := run(tc.name, tc.kv)
		var res struct{ Error string }
		_ = json.Unmarshal(act.Response.Result, &res)
		if act.Response.StatusCode != gust.StatusDeveloperError || !strings.Contains(res.Error, "init parameter "+tc.want) {
			t.Errorf("%s: status %v result %s, want a developer error naming %s", tc.name, act.Response.StatusCode, act.Response.Result, tc.want)
		}
	}
	act := run("good", gust.KeyValue{Key: "TOKEN", Value: json.RawMessage(`"s3cret"`)})
	if act.Response.StatusCode != gust.StatusSuccess || !strings.Contains(string(act.Response.Result), "s3cret") {
		t.Errorf("good init parameter: %v %s", act.Response.StatusCode, act.Response.Result)
	}
}
