package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/apache/openwhisk-client-go/whisk"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/gusttest"
)

func TestTriggerAndRuleCRUD(t *testing.T) {
	n := gusttest.Start(t)
	wsk := evWsk(t, n, n.Auth, "_")
	evPutWasm(t, wsk, "echo", "echo")

	tr, _, err := wsk.Triggers.Insert(&whisk.Trigger{Name: "t", Parameters: whisk.KeyValueArr{evKV("a", 1)}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Namespace != "guest" || tr.Version != "0.0.1" || tr.Parameters.GetValue("a") == nil {
		t.Errorf("created trigger: %+v", tr)
	}
	if _, _, err := wsk.Triggers.Insert(&whisk.Trigger{Name: "t"}, false); err == nil {
		t.Error("second create without overwrite succeeded")
	}
	r := evCall(t, n, n.Auth, "PUT", "/api/v1/namespaces/_/triggers/t?overwrite=true", `{"publish":true}`)
	if m := r.object(t); m["version"] != "0.0.2" || m["publish"] != true || len(m["parameters"].([]any)) != 1 || m["limits"] == nil {
		t.Errorf("update: %s", r)
	}
	evExpect(t, evCall(t, n, n.Auth, "PUT", "/api/v1/namespaces/_/triggers/echo", `{}`), http.StatusConflict, gust.MsgOtherColl)
	evExpect(t, evCall(t, n, n.Auth, "PUT", "/api/v1/namespaces/_/triggers/f", `{"annotations":[{"key":"feed","value":"not a path"}]}`), http.StatusBadRequest, "Feed name is not valid")

	// Rules: names on input, {path, name} objects out.
	evExpect(t, evCall(t, n, n.Auth, "PUT", "/api/v1/namespaces/_/rules/r", `{"trigger":"/_/nope","action":"/_/echo"}`),
		http.StatusBadRequest, "trigger /guest/nope does not exist")
	evExpect(t, evCall(t, n, n.Auth, "PUT", "/api/v1/namespaces/_/rules/r", `{"trigger":"/_/t","action":"nope"}`),
		http.StatusBadRequest, "action /guest/nope does not exist")
	// An object's name is one entity name: no package rides in it, even
	// to an action that exists ({"path":"guest/pkg","name":"echo"} names it).
	evExpect(t, evCall(t, n, n.Auth, "PUT", "/api/v1/namespaces/_/packages/pkg", `{}`), http.StatusOK, "")
	evPutWasm(t, wsk, "pkg/echo", "echo")
	r = evCall(t, n, n.Auth, "PUT", "/api/v1/namespaces/_/rules/r", `{"trigger":"/_/t","action":{"path":"guest","name":"pkg/echo"}}`)
	if evExpect(t, r, http.StatusBadRequest, ""); !strings.Contains(r.errorText(t), `"pkg/echo" is not a valid entity name`) {
		t.Errorf("name with a package: %s", r)
	}
	rule, _, err := wsk.Rules.Insert(&whisk.Rule{Name: "r", Trigger: "/_/t", Action: "/_/echo"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if rule.Status != "active" || !sameRef(rule.Trigger, "guest", "t") || !sameRef(rule.Action, "guest", "echo") {
		t.Errorf("created rule: %+v", rule)
	}
	tr, _, err = wsk.Triggers.Get("t")
	if err != nil {
		t.Fatal(err)
	}
	entry, _ := tr.Rules["guest/r"].(map[string]any)
	if entry["status"] != "active" || !sameRef(entry["action"], "guest", "echo") {
		t.Errorf("trigger's rules map: %v", tr.Rules)
	}
	r = evCall(t, n, n.Auth, "GET", "/api/v1/namespaces/_/rules", nil)
	if strings.Contains(string(r.body), `"status"`) || !strings.Contains(string(r.body), `"trigger":{"path":"guest","name":"t"}`) {
		t.Errorf("rule list: %s", r)
	}

	// Disable, enable, and a bad state.
	if _, _, err := wsk.Rules.SetState("r", "inactive"); err != nil {
		t.Fatal(err)
	}
	if rule, _, _ = wsk.Rules.Get("r"); rule.Status != "inactive" {
		t.Errorf("status after disable: %s", rule.Status)
	}
	evExpect(t, evCall(t, n, n.Auth, "POST", "/api/v1/namespaces/_/rules/r", `{"status":"inactive"}`), http.StatusOK, "")
	evExpect(t, evCall(t, n, n.Auth, "POST", "/api/v1/namespaces/_/rules/r", `{"status":"sleeping"}`), http.StatusBadRequest, "")
	if _, _, err := wsk.Rules.SetState("r", "active"); err != nil {
		t.Fatal(err)
	}
	if rule, _, _ = wsk.Rules.Get("r"); rule.Status != "active" {
		t.Errorf("status after enable: %s", rule.Status)
	}

	// Deleting the trigger leaves the rule, inactive; deleting the rule
	// works in any state.
	if _, _, err := wsk.Triggers.Delete("t"); err != nil {
		t.Fatal(err)
	}
	if rule, _, err = wsk.Rules.Get("r"); err != nil || rule.Status != "inactive" {
		t.Errorf("rule of a deleted trigger: %+v %v", rule, err)
	}
	r = evCall(t, n, n.Auth, "DELETE", "/api/v1/namespaces/_/rules/r", nil)
	evExpect(t, r, http.StatusOK, "")
	if r.object(t)["name"] != "r" {
		t.Errorf("delete answered %s", r)
	}
	evExpect(t, evCall(t, n, n.Auth, "GET", "/api/v1/namespaces/_/rules/r", nil), http.StatusNotFound, gust.MsgNotFound)
}

func sameRef(v any, path, name string) bool {
	m, ok := v.(map[string]any)
	return ok && m["path"] == path && m["name"] == name
}

func TestTriggerFire(t *testing.T) {
	n := gusttest.Start(t)
	wsk := evWsk(t, n, n.Auth, "_")
	evPutWasm(t, wsk, "echo", "echo", evKV("own", "action"))
	evPutWasm(t, wsk, "inc", "inc")
	if _, _, err := wsk.Triggers.Insert(&whisk.Trigger{Name: "t", Parameters: whisk.KeyValueArr{evKV("a", "trigger"), evKV("b", "trigger")}}, false); err != nil {
		t.Fatal(err)
	}
	// No rule: 204 and no record.
	r := evCall(t, n, n.Auth, "POST", "/api/v1/namespaces/_/triggers/t", `{}`)
	evExpect(t, r, http.StatusNoContent, "")
	for _, rule := range []whisk.Rule{{Name: "r1", Trigger: "t", Action: "echo"}, {Name: "r2", Trigger: "/guest/t", Action: "/_/inc"}} {
		if _, _, err := wsk.Rules.Insert(&rule, false); err != nil {
			t.Fatal(err)
		}
	}

	r = evCall(t, n, n.Auth, "POST", "/api/v1/namespaces/_/triggers/t", `{"b":"event","n":41}`, "X-Event-Source", "test")
	evExpect(t, r, http.StatusAccepted, "")
	id, _ := r.object(t)["activationId"].(string)
	if id == "" || r.header.Get("X-Openwhisk-Activation-Id") != id {
		t.Fatalf("fire answered %s (header %q)", r, r.header.Get("X-Openwhisk-Activation-Id"))
	}
	// The trigger activation: no end, no duration, one JSON string per rule.
	raw := evCall(t, n, n.Auth, "GET", "/api/v1/namespaces/_/activations/"+id, nil)
	evExpect(t, raw, http.StatusOK, "")
	if m := raw.object(t); m["end"] != nil || m["duration"] != nil || m["name"] != "t" || m["namespace"] != "guest" {
		t.Errorf("trigger activation: %s", raw)
	}
	act := evActivation(t, n, n.Auth, id)
	if string(act.Response.Result) != `{"b":"event","n":41}` || len(act.Logs) != 2 {
		t.Fatalf("trigger activation result %s logs %v", act.Response.Result, act.Logs)
	}
	started := map[string]string{}
	for _, line := range act.Logs {
		var l struct {
			StatusCode   int    `json:"statusCode"`
			Success      bool   `json:"success"`
			ActivationID string `json:"activationId"`
			Rule, Action string
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil || l.StatusCode != 0 || !l.Success || l.ActivationID == "" {
			t.Fatalf("rule log line %q: %v", line, err)
		}
		started[l.Rule+" "+l.Action] = l.ActivationID
	}
	echoID, incID := started["guest/r1 guest/echo"], started["guest/r2 guest/inc"]
	if echoID == "" || incID == "" {
		t.Fatalf("rule log lines: %v", act.Logs)
	}
	// The rules' actions: trigger parameters under the event, the fire's
	// headers (without credentials), the trigger activation as cause.
	echo := evActivation(t, n, n.Auth, echoID)
	got := evResult(t, echo)
	headers, _ := got["__ow_headers"].(map[string]any)
	if got["a"] != "trigger" || got["b"] != "event" || got["own"] != "action" || headers["x-event-source"] != "test" || headers["authorization"] != nil {
		t.Errorf("rule action input: %s", echo.Response.Result)
	}
	if echo.Cause != id || evAnnotation(echo, "causedBy") != "" {
		t.Errorf("rule action cause %q causedBy %s", echo.Cause, evAnnotation(echo, "causedBy"))
	}
	if inc := evActivation(t, n, n.Auth, incID); evResult(t, inc)["n"] != 42.0 {
		t.Errorf("inc by rule: %s", inc.Response.Result)
	}

	// The client's fire works and a disabled rule does not run.
	if _, _, err := wsk.Rules.SetState("r2", "inactive"); err != nil {
		t.Fatal(err)
	}
	r = evCall(t, n, n.Auth, "POST", "/api/v1/namespaces/_/triggers/t", nil)
	evExpect(t, r, http.StatusAccepted, "")
	if act := evActivation(t, n, n.Auth, r.object(t)["activationId"].(string)); len(act.Logs) != 1 || string(act.Response.Result) != "{}" {
		t.Errorf("fire with one active rule: logs %v result %s", act.Logs, act.Response.Result)
	}
	if _, _, err := wsk.Triggers.Fire("t", map[string]any{"x": 1}); err != nil {
		t.Errorf("client fire: %v", err)
	}
	evExpect(t, evCall(t, n, n.Auth, "POST", "/api/v1/namespaces/_/triggers/t", `[1]`), http.StatusBadRequest, "")
	evExpect(t, evCall(t, n, n.Auth, "POST", "/api/v1/namespaces/_/triggers/nope", `{}`), http.StatusNotFound, "")

	// A rule whose action is gone: the trigger activation says why.
	if _, err := wsk.Actions.Delete("echo"); err != nil {
		t.Fatal(err)
	}
	r = evCall(t, n, n.Auth, "POST", "/api/v1/namespaces/_/triggers/t", `{}`)
	evExpect(t, r, http.StatusAccepted, "")
	act = evActivation(t, n, n.Auth, r.object(t)["activationId"].(string))
	if len(act.Logs) != 1 || !strings.Contains(act.Logs[0], `"statusCode":1,"success":false,"error":"The requested resource does not exist."`) {
		t.Errorf("fire with a missing action: %v", act.Logs)
	}
}

func TestTriggerThrottleAndNamespaces(t *testing.T) {
	lim := gusttest.TestLimits()
	lim.FiresPerMinute = 2
	n := gusttest.Start(t, gusttest.WithLimits(lim))
	wsk := evWsk(t, n, n.Auth, "_")
	other := evNamespace(t, n, "other")
	if _, _, err := wsk.Triggers.Insert(&whisk.Trigger{Name: "t"}, false); err != nil {
		t.Fatal(err)
	}
	// Throttled fires: OpenWhisk's 429 text. Fires without an active rule
	// count too, as in OpenWhisk (the throttle comes first).
	var last evReply
	for i := 0; i < 3; i++ {
		last = evCall(t, n, n.Auth, "POST", "/api/v1/namespaces/_/triggers/t", `{}`)
	}
	if last.status != http.StatusTooManyRequests || !strings.HasPrefix(last.errorText(t), "Too many requests in the last minute (count: 2, allowed: 2).") {
		t.Errorf("third fire of a minute: %s", last)
	}

	// Triggers and rules never cross namespaces; a rule may start a shared
	// action of another namespace.
	evExpect(t, evCall(t, n, other, "GET", "/api/v1/namespaces/guest/triggers/t", nil), http.StatusForbidden, "")
	evExpect(t, evCall(t, n, other, "POST", "/api/v1/namespaces/guest/triggers/t", `{}`), http.StatusForbidden, "")
	evExpect(t, evCall(t, n, other, "GET", "/api/v1/namespaces/guest/rules", nil), http.StatusForbidden, "")
	evExpect(t, evCall(t, n, other, "PUT", "/api/v1/namespaces/_/triggers/mine", `{}`), http.StatusOK, "")
	evExpect(t, evCall(t, n, other, "PUT", "/api/v1/namespaces/_/rules/r", `{"trigger":"/guest/t","action":"/guest/x"}`), http.StatusForbidden, "")
	if _, _, err := wsk.Packages.Insert(&whisk.Package{Name: "shared", Publish: ptr(true)}, false); err != nil {
		t.Fatal(err)
	}
	evPutWasm(t, wsk, "shared/echo", "echo")
	evPutWasm(t, wsk, "private", "echo")
	evExpect(t, evCall(t, n, other, "PUT", "/api/v1/namespaces/_/rules/r", `{"trigger":"mine","action":"/guest/private"}`), http.StatusForbidden, "")
	r := evCall(t, n, other, "PUT", "/api/v1/namespaces/_/rules/r", `{"trigger":"mine","action":"/guest/shared/echo"}`)
	evExpect(t, r, http.StatusOK, "")
	if !sameRef(r.object(t)["action"], "guest/shared", "echo") {
		t.Errorf("rule to a shared action: %s", r)
	}
	r = evCall(t, n, other, "POST", "/api/v1/namespaces/_/triggers/mine", `{"hello":"world"}`)
	evExpect(t, r, http.StatusAccepted, "")
	act := evActivation(t, n, other, r.object(t)["activationId"].(string))
	var l struct{ ActivationID string }
	if len(act.Logs) != 1 || json.Unmarshal([]byte(act.Logs[0]), &l) != nil {
		t.Fatalf("logs %v", act.Logs)
	}
	echo := evActivation(t, n, other, l.ActivationID)
	if echo.Namespace != "other" || evResult(t, echo)["hello"] != "world" {
		t.Errorf("shared action run by another namespace's rule: %s %s", echo.Namespace, echo.Response.Result)
	}
}
