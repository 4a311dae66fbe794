package e2e

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apache/openwhisk-client-go/whisk"
)

var activationIDRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

// checkActivation checks the extended activation JSON of a finished run of
// guest/name: identity fields, the response in OpenWhisk's extended form
// and the invoker's annotations.
func checkActivation(t testing.TB, act map[string]any, name, status string) {
	t.Helper()
	id, _ := act["activationId"].(string)
	if !activationIDRe.MatchString(id) {
		t.Errorf("activationId %q is not 32 lowercase hex characters", id)
	}
	if act["namespace"] != "guest" || act["name"] != name || act["subject"] != "guest" {
		t.Errorf("activation namespace/name/subject = %v/%v/%v, want guest/%s/guest", act["namespace"], act["name"], act["subject"], name)
	}
	for _, k := range []string{"start", "end", "duration", "version", "publish", "logs", "annotations", "response"} {
		if _, ok := act[k]; !ok {
			t.Errorf("activation lacks %q: %v", k, keys(act))
		}
	}
	resp, _ := act["response"].(map[string]any)
	if resp["status"] != status || resp["success"] != (status == "success") {
		t.Errorf("response status/success = %v/%v, want %q/%v", resp["status"], resp["success"], status, status == "success")
	}
	if _, ok := resp["statusCode"]; ok {
		t.Errorf("extended response carries statusCode: %v", resp)
	}
	if _, ok := resp["result"].(map[string]any); !ok {
		t.Errorf("response.result = %v, want an object", resp["result"])
	}
	if size, ok := num(resp["size"]); !ok || size <= 0 {
		t.Errorf("response.size = %v, want the result's length", resp["size"])
	}
	if lim, _ := annotation(t, act, "limits"); field(lim, "timeout") == nil || field(lim, "memory") == nil || field(lim, "logs") == nil {
		t.Errorf("annotation limits = %v, want timeout, memory, logs", lim)
	}
	if path, _ := annotation(t, act, "path"); path != "guest/"+name {
		t.Errorf("annotation path = %v, want guest/%s", path, name)
	}
	if kind, _ := annotation(t, act, "kind"); kind != "wasm" {
		t.Errorf("annotation kind = %v, want wasm", kind)
	}
	if wt, ok := annotation(t, act, "waitTime"); !ok {
		t.Errorf("no waitTime annotation")
	} else if n, ok := num(wt); !ok || n < 0 {
		t.Errorf("waitTime = %v, want a number ≥ 0", wt)
	}
}

// TestInvoke runs actions through openwhisk-client-go and checks what each
// kind of outcome looks like on the wire.
func TestInvoke(t *testing.T) {
	e := start(t)
	for name, fx := range map[string]string{
		"hello": "hello", "apperror": "error", "crash": "crash", "notjson": "notjson", "exit": "exit", "reactor": "creactor",
	} {
		if _, _, err := e.wsk.Actions.Insert(wasmAction(t, name, fx), false); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}

	t.Run("Blocking", func(t *testing.T) {
		res, resp, err := e.wsk.Actions.Invoke("hello", map[string]any{"name": "Gust"}, true, false)
		if err != nil {
			t.Fatalf("invoke: %v", err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200", resp.StatusCode)
		}
		act := res.(map[string]any)
		checkActivation(t, act, "hello", "success")
		if got := field(act, "response", "result", "greeting"); got != "Hello, Gust!" {
			t.Errorf("result greeting = %v", got)
		}
		if size := field(act, "response", "size"); size != json.Number("27") {
			t.Errorf("response.size = %v, want 27 = len(%q)", size, `{"greeting":"Hello, Gust!"}`)
		}
		if hdr := resp.Header.Get("x-openwhisk-activation-id"); hdr != act["activationId"] {
			t.Errorf("x-openwhisk-activation-id %q, body activationId %v", hdr, act["activationId"])
		}
		if _, ok := annotation(t, act, "initTime"); !ok {
			t.Errorf("a command runs in a fresh instance, so initTime must be set: %v", act["annotations"])
		}
		if to, _ := annotation(t, act, "timeout"); to != false {
			t.Errorf("annotation timeout = %v, want false", to)
		}
		logs, _ := act["logs"].([]any)
		if len(logs) != 1 || !strings.HasSuffix(logs[0].(string), " stderr: hello: greeting Gust") {
			t.Errorf("logs = %q, want one stderr line", logs)
		}
	})

	t.Run("ResultOnly", func(t *testing.T) {
		res, resp, err := e.wsk.Actions.Invoke("hello", map[string]any{"name": "R"}, true, true)
		if err != nil {
			t.Fatalf("invoke: %v", err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("x-openwhisk-activation-id") == "" {
			t.Errorf("status %d, activation header %q", resp.StatusCode, resp.Header.Get("x-openwhisk-activation-id"))
		}
		m := res.(map[string]any)
		if len(m) != 1 || m["greeting"] != "Hello, R!" {
			t.Errorf("result=true body = %v, want only the result", m)
		}
	})

	t.Run("NonBlocking", func(t *testing.T) {
		res, resp, err := e.wsk.Actions.Invoke("hello", map[string]any{"name": "later"}, false, false)
		if err != nil {
			t.Fatalf("invoke: %v", err)
		}
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d, want 202", resp.StatusCode)
		}
		m := res.(map[string]any)
		id, _ := m["activationId"].(string)
		if len(m) != 1 || !activationIDRe.MatchString(id) {
			t.Fatalf("202 body = %v, want only an activationId", m)
		}
		if hdr := resp.Header.Get("x-openwhisk-activation-id"); hdr != id {
			t.Errorf("x-openwhisk-activation-id %q, body %q", hdr, id)
		}
		var act *whisk.Activation
		eventually(t, 20*time.Second, "non-blocking activation recorded", func() bool {
			a, resp, err := e.wsk.Activations.Get(id)
			if err != nil {
				if resp != nil && resp.StatusCode == http.StatusNotFound {
					return false
				}
				t.Fatalf("get activation: %v", err)
			}
			act = a
			return true
		})
		if act.ActivationID != id || act.Name != "hello" || act.Response.Status != "success" || !act.Response.Success {
			t.Errorf("activation = %+v", act)
		}
		if g := field(act.Response.Result, "greeting"); g != "Hello, later!" {
			t.Errorf("result = %v", act.Response.Result)
		}
	})

	t.Run("OutlivesWait", func(t *testing.T) {
		// A blocking call that outlives its wait gets 202 with the id; the
		// run goes on and is recorded when it ends.
		e.putAction("sleepy", "sleep", map[string]any{"limits": map[string]any{"timeout": 300}})
		r := e.do("POST", actionsPath+"sleepy?blocking=true&timeout=20", nil)
		want(t, r, http.StatusAccepted)
		m := r.object(t)
		id, _ := m["activationId"].(string)
		if len(m) != 1 || !activationIDRe.MatchString(id) || r.header.Get("x-openwhisk-activation-id") != id {
			t.Fatalf("202 = %s, header %q", r.body, r.header.Get("x-openwhisk-activation-id"))
		}
		rec := e.waitActivation(id)
		checkActivation(t, rec, "sleepy", "action developer error")
		if to, _ := annotation(t, rec, "timeout"); to != true {
			t.Errorf("annotation timeout = %v", to)
		}
	})

	t.Run("ApplicationError", func(t *testing.T) {
		res, resp, err := e.wsk.Actions.Invoke("apperror", nil, true, false)
		var we *whisk.WskError
		if !asWsk(err, &we) || !we.ApplicationError {
			t.Fatalf("err = %v, want an application error", err)
		}
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("status %d, want 502", resp.StatusCode)
		}
		if !strings.Contains(err.Error(), "boom") {
			t.Errorf("client error %q does not carry the action's error", err)
		}
		act := res.(map[string]any)
		checkActivation(t, act, "apperror", "application error")
		if r := field(act, "response", "result", "error"); r != "boom" {
			t.Errorf("result.error = %v", r)
		}
		// With result=true the body is the {"error":…} result, still 502.
		r := e.do("POST", "/api/v1/namespaces/_/actions/apperror?blocking=true&result=true", nil)
		want(t, r, http.StatusBadGateway)
		if m := r.object(t); len(m) != 1 || m["error"] != "boom" {
			t.Errorf("result=true body = %s", r.body)
		}
		if r.header.Get("x-openwhisk-activation-id") == "" {
			t.Errorf("no x-openwhisk-activation-id on a failed invoke")
		}
	})

	t.Run("DeveloperError", func(t *testing.T) {
		for _, name := range []string{"crash", "notjson", "exit"} {
			t.Run(name, func(t *testing.T) {
				r := e.invoke(name, nil)
				want(t, r, http.StatusBadGateway)
				act := r.object(t)
				checkActivation(t, act, name, "action developer error")
				if msg, _ := field(act, "response", "result", "error").(string); msg == "" {
					t.Errorf("result has no error text: %v", act["response"])
				}
				// The client reads a 502 activation as an application
				// failure of the action, not as a platform error.
				_, _, err := e.wsk.Actions.Invoke(name, nil, true, false)
				var we *whisk.WskError
				if !asWsk(err, &we) || !we.ApplicationError {
					t.Errorf("client error = %v, want an action failure", err)
				}
			})
		}
	})

	t.Run("WarmStart", func(t *testing.T) {
		// A reactor keeps its instance: the first call after create
		// starts it (initTime), the next reuses it (no initTime).
		first := e.invoke("reactor", nil)
		want(t, first, http.StatusOK)
		if _, ok := annotation(t, first.object(t), "initTime"); !ok {
			t.Errorf("cold start without initTime: %s", first.body)
		}
		second := e.invoke("reactor", nil)
		want(t, second, http.StatusOK)
		act := second.object(t)
		if _, ok := annotation(t, act, "initTime"); ok {
			t.Errorf("warm start with initTime: %s", second.body)
		}
		if c, _ := num(field(act, "response", "result", "count")); c != 2 {
			t.Errorf("second call count = %v, want 2 (the same instance)", c)
		}
	})
}

func asWsk(err error, we **whisk.WskError) bool {
	if err == nil {
		return false
	}
	w, ok := err.(*whisk.WskError)
	*we = w
	return ok
}
