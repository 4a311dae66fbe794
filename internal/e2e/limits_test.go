package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestActionLimits: the wasm sandbox enforces an action's limits, and the
// API reports each violation as OpenWhisk does.
func TestActionLimits(t *testing.T) {
	e := start(t)
	e.putAction("loop", "loop", map[string]any{"limits": map[string]any{"timeout": 200}})
	e.putAction("membomb", "membomb", map[string]any{"limits": map[string]any{"memory": 128}})
	e.putAction("quiet", "logs", map[string]any{"limits": map[string]any{"logs": 0}})
	e.putAction("chatty", "logs", map[string]any{"limits": map[string]any{"logs": 1}})
	e.putAction("big", "bigresult", nil)

	t.Run("timeout", func(t *testing.T) {
		r := e.invoke("loop", nil)
		want(t, r, http.StatusBadGateway)
		act := r.object(t)
		checkActivation(t, act, "loop", "action developer error")
		if msg, _ := field(act, "response", "result", "error").(string); msg != "The action exceeded its time limits of 200 milliseconds (timeout of 200 ms exceeded)." {
			t.Errorf("error = %q", msg)
		}
		if to, _ := annotation(t, act, "timeout"); to != true {
			t.Errorf("annotation timeout = %v, want true", to)
		}
		if lim, _ := annotation(t, act, "limits"); field(lim, "timeout") != 200.0 {
			t.Errorf("annotation limits = %v", lim)
		}
	})

	t.Run("memory", func(t *testing.T) {
		r := e.invoke("membomb", nil)
		want(t, r, http.StatusBadGateway)
		act := r.object(t)
		checkActivation(t, act, "membomb", "action developer error")
		if msg, _ := field(act, "response", "result", "error").(string); msg != "The action exhausted its memory and was aborted (memory limit of 128 MB exceeded)." {
			t.Errorf("error = %q", msg)
		}
		if lim, _ := annotation(t, act, "limits"); field(lim, "memory") != 128.0 {
			t.Errorf("annotation limits = %v", lim)
		}
	})

	t.Run("logs", func(t *testing.T) {
		r := e.invoke("quiet", nil)
		want(t, r, http.StatusOK)
		act := r.object(t)
		logs, _ := act["logs"].([]any)
		if len(logs) == 0 {
			t.Fatalf("no log lines")
		}
		last, _ := logs[len(logs)-1].(string)
		if !strings.HasSuffix(last, "Logs were truncated because the total bytes size exceeds the limit of 0 bytes.") {
			t.Errorf("last log line %q does not say the logs were truncated", last)
		}
		if len(logs) != 1 {
			t.Errorf("%d log lines with a limit of 0 bytes, want only the truncation line", len(logs))
		}
		if field(act, "response", "result", "lines") != 1000.0 {
			t.Errorf("truncated logs changed the result: %v", act["response"])
		}
		r = e.invoke("chatty", nil)
		want(t, r, http.StatusOK)
		logs, _ = r.object(t)["logs"].([]any)
		if len(logs) != 1000 || !strings.HasSuffix(logs[999].(string), "stderr: log line 999") {
			t.Errorf("1 MB of logs kept %d lines, want all 1000", len(logs))
		}
	})

	t.Run("result size", func(t *testing.T) {
		r := e.invoke("big", nil)
		want(t, r, http.StatusBadGateway)
		act := r.object(t)
		checkActivation(t, act, "big", "application error")
		msg, _ := field(act, "response", "result", "error").(string)
		if !strings.Contains(msg, "The action produced a response that exceeded the allowed length: ") || !strings.Contains(msg, "> 1048576 bytes") {
			t.Errorf("error = %q", msg)
		}
		if len(r.body) > 64<<10 {
			t.Errorf("the oversized result came back (%d bytes)", len(r.body))
		}
	})
}
