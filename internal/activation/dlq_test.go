package activation_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gusttest"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
)

func createAction(t *testing.T, n *gusttest.Node, name string, code []byte, annotations string) {
	t.Helper()
	body := fmt.Sprintf(`{"exec":{"kind":"wasm","code":%q},"annotations":%s}`, base64.StdEncoding.EncodeToString(code), annotations)
	resp := n.Do(t, "PUT", "/api/v1/namespaces/_/actions/"+name, strings.NewReader(body))
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		t.Fatalf("create %s: %d %s", name, resp.StatusCode, b.String())
	}
}

func decode(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// A non-blocking invocation that keeps failing is retried maxRetries times,
// recorded once, then kept as a dead letter that can be redriven or discarded.
func TestRetriesAndDeadLetters(t *testing.T) {
	n := gusttest.Start(t)
	createAction(t, n, "crash", wasmtest.Build(t, "crash"), `[{"key":"maxRetries","value":1}]`)

	resp := n.Do(t, "POST", "/api/v1/namespaces/_/actions/crash", strings.NewReader(`{"x":1}`))
	var accepted struct{ ActivationID string }
	decode(t, resp, &accepted)
	if resp.StatusCode != http.StatusAccepted || accepted.ActivationID == "" {
		t.Fatalf("invoke: %d %+v", resp.StatusCode, accepted)
	}

	var dead []struct {
		ActivationID string
		Action       string
		Reason       string
		Attempts     int
		Params       json.RawMessage
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(dead) == 0 && time.Now().Before(deadline) {
		decode(t, n.Do(t, "GET", "/api/v1/namespaces/_/dlq", nil), &dead)
		if len(dead) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if len(dead) != 1 {
		t.Fatalf("dead letters: %+v", dead)
	}
	d := dead[0]
	if d.ActivationID != accepted.ActivationID || d.Attempts != 2 || d.Action != "/guest/crash" || string(d.Params) != `{"x":1}` || !strings.Contains(d.Reason, "action developer error") {
		t.Errorf("dead letter: %+v", d)
	}
	// The last attempt is recorded, with its attempt count.
	var act struct {
		Response    struct{ Status string }
		Annotations []struct {
			Key   string
			Value json.RawMessage
		}
	}
	decode(t, n.Do(t, "GET", "/api/v1/namespaces/_/activations/"+accepted.ActivationID, nil), &act)
	if act.Response.Status != "action developer error" {
		t.Errorf("record status %q", act.Response.Status)
	}
	attempts := ""
	for _, a := range act.Annotations {
		if a.Key == "attempts" {
			attempts = string(a.Value)
		}
	}
	if attempts != "2" {
		t.Errorf("attempts annotation %q, want 2", attempts)
	}

	// Redrive queues it again under a new id and removes the dead letter;
	// with maxRetries 1 it fails twice more and comes back.
	resp = n.Do(t, "POST", "/api/v1/namespaces/_/dlq/"+d.ActivationID, nil)
	var redriven struct{ ActivationID string }
	decode(t, resp, &redriven)
	if resp.StatusCode != http.StatusAccepted || redriven.ActivationID == d.ActivationID {
		t.Fatalf("redrive: %d %+v", resp.StatusCode, redriven)
	}
	dead = nil
	deadline = time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		decode(t, n.Do(t, "GET", "/api/v1/namespaces/_/dlq", nil), &dead)
		if len(dead) == 1 && dead[0].ActivationID == redriven.ActivationID {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(dead) != 1 || dead[0].ActivationID != redriven.ActivationID {
		t.Fatalf("after redrive: %+v", dead)
	}
	resp = n.Do(t, "DELETE", "/api/v1/namespaces/_/dlq/"+redriven.ActivationID, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("discard: %d", resp.StatusCode)
	}
	resp = n.Do(t, "DELETE", "/api/v1/namespaces/_/dlq/"+redriven.ActivationID, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("discard twice: %d", resp.StatusCode)
	}
}

func TestRetryAnnotationsValidated(t *testing.T) {
	n := gusttest.Start(t)
	code := base64.StdEncoding.EncodeToString(wasmtest.Build(t, "noop"))
	for _, ann := range []string{`[{"key":"maxRetries","value":11}]`, `[{"key":"maxRetries","value":"x"}]`, `[{"key":"maxEventAge","value":5}]`} {
		resp := n.Do(t, "PUT", "/api/v1/namespaces/_/actions/a", strings.NewReader(fmt.Sprintf(`{"exec":{"kind":"wasm","code":%q},"annotations":%s}`, code, ann)))
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("annotations %s: status %d, want 400", ann, resp.StatusCode)
		}
	}
}
