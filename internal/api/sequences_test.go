package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/apache/openwhisk-client-go/whisk"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/gusttest"
)

// putSequence creates (or with overwrite updates) a sequence through the
// client; it returns the raw answer for error checks.
func putSequence(t *testing.T, n *gusttest.Node, name string, overwrite bool, components ...string) evReply {
	t.Helper()
	q := ""
	if overwrite {
		q = "?overwrite=true"
	}
	return evCall(t, n, n.Auth, "PUT", "/api/v1/namespaces/_/actions/"+name+q,
		map[string]any{"exec": map[string]any{"kind": "sequence", "components": components}})
}

func TestSequenceRuns(t *testing.T) {
	n := gusttest.Start(t)
	wsk := evWsk(t, n, n.Auth, "_")
	evPutWasm(t, wsk, "inc", "inc")
	a, _, err := wsk.Actions.Insert(&whisk.Action{Name: "s", Exec: &whisk.Exec{Kind: "sequence", Components: []string{"/_/inc", "inc", "/guest/inc"}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Exec.Components, []string{"/guest/inc", "/guest/inc", "/guest/inc"}) {
		t.Errorf("components not resolved: %v", a.Exec.Components)
	}
	if v, ok := a.Parameters.GetValue("_actions").([]any); !ok || len(v) != 3 {
		t.Errorf("_actions parameter: %v", a.Parameters)
	}

	act := evInvoke(t, n, n.Auth, "_", "s", map[string]any{"n": 1})
	if got := evResult(t, act)["n"]; got != 4.0 {
		t.Fatalf("result n = %v, want 4: %s", got, act.Response.Result)
	}
	if len(act.Logs) != 3 {
		t.Fatalf("sequence logs = %v, want 3 component ids", act.Logs)
	}
	if evAnnotation(act, "kind") != `"sequence"` || evAnnotation(act, "topmost") != "true" ||
		evAnnotation(act, "path") != `"guest/s"` || evAnnotation(act, "limits") == "" || evAnnotation(act, "waitTime") == "" {
		t.Errorf("sequence annotations: %v", act.Annotations)
	}
	var sum int64
	for _, id := range act.Logs {
		c := evActivation(t, n, n.Auth, id)
		sum += c.Duration
		if c.Cause != act.ActivationID || evAnnotation(c, "causedBy") != `"sequence"` || evAnnotation(c, "path") != `"guest/inc"` {
			t.Errorf("component %s: cause %q causedBy %s path %s", id, c.Cause, evAnnotation(c, "causedBy"), evAnnotation(c, "path"))
		}
	}
	if act.Duration != sum {
		t.Errorf("sequence duration %d, want the components' sum %d", act.Duration, sum)
	}

	// Non-blocking: the queue worker runs sequences too.
	r := evCall(t, n, n.Auth, "POST", "/api/v1/namespaces/_/actions/s", map[string]any{"n": 10})
	evExpect(t, r, http.StatusAccepted, "")
	queued := evActivation(t, n, n.Auth, r.object(t)["activationId"].(string))
	if evResult(t, queued)["n"] != 13.0 || len(queued.Logs) != 3 {
		t.Errorf("queued sequence: %s logs %v", queued.Response.Result, queued.Logs)
	}

	// Nested: the inner sequence is one step of the outer one.
	if r := putSequence(t, n, "outer", false, "s", "inc"); r.status != http.StatusOK {
		t.Fatal(r)
	}
	outer := evInvoke(t, n, n.Auth, "_", "outer", map[string]any{"n": 0})
	if evResult(t, outer)["n"] != 4.0 || len(outer.Logs) != 2 {
		t.Fatalf("nested: %s logs %v", outer.Response.Result, outer.Logs)
	}
	inner := evActivation(t, n, n.Auth, outer.Logs[0])
	if inner.Cause != outer.ActivationID || evAnnotation(inner, "topmost") != "false" ||
		evAnnotation(inner, "causedBy") != `"sequence"` || len(inner.Logs) != 3 {
		t.Errorf("inner sequence: cause %q annotations %v logs %v", inner.Cause, inner.Annotations, inner.Logs)
	}
	if c := evActivation(t, n, n.Auth, inner.Logs[0]); c.Cause != inner.ActivationID {
		t.Errorf("inner component's cause = %q, want the inner sequence %s", c.Cause, inner.ActivationID)
	}

	// Sequences live in packages and run through bindings too.
	if _, _, err := wsk.Packages.Insert(&whisk.Package{Name: "p", Parameters: whisk.KeyValueArr{evKV("n", 100)}}, false); err != nil {
		t.Fatal(err)
	}
	if r := putSequence(t, n, "p/s", false, "/_/inc", "/_/inc"); r.status != http.StatusOK {
		t.Fatal(r)
	}
	if _, _, err := wsk.Packages.Insert(&whisk.BindingPackage{Name: "b", Binding: whisk.Binding{Namespace: "_", Name: "p"}, Parameters: whisk.KeyValueArr{evKV("n", 200)}}, false); err != nil {
		t.Fatal(err)
	}
	act = evInvoke(t, n, n.Auth, "_", "b/s", nil)
	if evResult(t, act)["n"] != 202.0 || evAnnotation(act, "binding") != `"guest/b"` {
		t.Errorf("sequence through a binding: %s %v", act.Response.Result, act.Annotations)
	}
}

func TestSequenceErrors(t *testing.T) {
	lim := gusttest.TestLimits()
	lim.SequenceMaxLength = 3
	n := gusttest.Start(t, gusttest.WithLimits(lim))
	wsk := evWsk(t, n, n.Auth, "_")
	evPutWasm(t, wsk, "inc", "inc")
	evPutWasm(t, wsk, "fail", "error")
	evPutWasm(t, wsk, "doomed", "inc")

	evExpect(t, putSequence(t, n, "x", false), http.StatusBadRequest, "No component specified for the sequence.")
	evExpect(t, putSequence(t, n, "x", false, "inc", "nope"), http.StatusBadRequest, "Sequence component does not exist.")
	evExpect(t, putSequence(t, n, "x", false, "inc", "inc", "inc", "inc"), http.StatusBadRequest, "Too many actions in the sequence.")
	evExpect(t, putSequence(t, n, "s1", false, "inc", "inc"), http.StatusOK, "")
	evExpect(t, putSequence(t, n, "x", false, "s1", "inc", "inc"), http.StatusBadRequest, "Too many actions in the sequence.")
	evExpect(t, putSequence(t, n, "s1", true, "s1"), http.StatusBadRequest, "Sequence may not refer to itself.")
	evExpect(t, putSequence(t, n, "s2", false, "s1"), http.StatusOK, "")
	evExpect(t, putSequence(t, n, "s1", true, "s2"), http.StatusBadRequest, "Sequence may not refer to itself.")
	evExpect(t, putSequence(t, n, "x", false, "/other/inc"), http.StatusForbidden, "")

	// A failing component ends the chain; its error is the result.
	evExpect(t, putSequence(t, n, "broken", false, "inc", "fail", "inc"), http.StatusOK, "")
	r := evCall(t, n, n.Auth, "POST", "/api/v1/namespaces/_/actions/broken?blocking=true", `{"n":1}`)
	evExpect(t, r, http.StatusBadGateway, "")
	var act gust.Activation
	if err := json.Unmarshal(r.body, &act); err != nil {
		t.Fatal(err)
	}
	if act.Response.StatusCode != gust.StatusApplicationError || string(act.Response.Result) != `{"error":"boom"}` || len(act.Logs) != 2 {
		t.Errorf("failed sequence: %s %s logs %v", act.Response.StatusCode, act.Response.Result, act.Logs)
	}

	// A component deleted after the sequence was made.
	evExpect(t, putSequence(t, n, "orphan", false, "inc", "doomed"), http.StatusOK, "")
	if _, err := wsk.Actions.Delete("doomed"); err != nil {
		t.Fatal(err)
	}
	gone := evInvoke(t, n, n.Auth, "_", "orphan", nil)
	if gone.Response.StatusCode != gust.StatusApplicationError || string(gone.Response.Result) != `{"error":"Sequence component does not exist."}` || len(gone.Logs) != 1 {
		t.Errorf("missing component: %s %s logs %v", gone.Response.StatusCode, gone.Response.Result, gone.Logs)
	}
}
