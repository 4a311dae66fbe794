package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/openwhisk-client-go/whisk"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/gusttest"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
)

// These helpers serve the tests of packages, sequences, triggers and
// rules: a real node (gusttest), Apache's openwhisk-client-go where it has
// a evCall, raw HTTP for status codes and bodies.

// fixture returns a wasm module: one of wasmtest's, or a C file of
// testdata (echo, inc).
func evFixture(t testing.TB, name string) []byte {
	t.Helper()
	switch name {
	case "echo", "inc":
		return wasmtest.BuildC(t, filepath.Join("testdata", name+".c"), false)
	}
	return wasmtest.Build(t, name)
}

// wskFor returns an openwhisk-client-go client for auth in namespace ns
// ("_" for the credential's own).
func evWsk(t testing.TB, n *gusttest.Node, auth, ns string) *whisk.Client {
	t.Helper()
	c, err := whisk.NewClient(&http.Client{Timeout: time.Minute}, &whisk.Config{
		Host: n.URL, AuthToken: auth, Namespace: ns, Insecure: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// putWasm creates the action name (may be "pkg/name") from a fixture.
func evPutWasm(t testing.TB, wsk *whisk.Client, name, fix string, params ...whisk.KeyValue) {
	t.Helper()
	code := base64.StdEncoding.EncodeToString(evFixture(t, fix))
	a := &whisk.Action{Name: name, Exec: &whisk.Exec{Kind: "wasm", Code: &code}, Parameters: params}
	if _, _, err := wsk.Actions.Insert(a, false); err != nil {
		t.Fatalf("create action %s: %v", name, err)
	}
}

// otherNamespace creates namespace ns and returns its credential.
func evNamespace(t testing.TB, n *gusttest.Node, ns string) string {
	t.Helper()
	id, err := n.Keys.Ensure(context.Background(), ns, "")
	if err != nil {
		t.Fatal(err)
	}
	return id.Auth()
}

// evReply is a raw HTTP answer.
type evReply struct {
	status int
	header http.Header
	body   []byte
}

func (r evReply) String() string { return http.StatusText(r.status) + " " + string(r.body) }

// object decodes the body as a JSON object.
func (r evReply) object(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("not a JSON object (%v): %s", err, r)
	}
	return m
}

// errorText returns the "error" of an error body.
func (r evReply) errorText(t testing.TB) string {
	t.Helper()
	s, _ := r.object(t)["error"].(string)
	return s
}

// call sends method path (relative to the node) with auth and a body: nil,
// a string sent as is, or a value sent as JSON. hdr are name, value pairs.
func evCall(t testing.TB, n *gusttest.Node, auth, method, path string, body any, hdr ...string) evReply {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, n.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		uuid, key, _ := strings.Cut(auth, ":")
		req.SetBasicAuth(uuid, key)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return evReply{status: resp.StatusCode, header: resp.Header, body: data}
}

// expect fails the test unless r has status and, when msg is not empty,
// that error text.
func evExpect(t testing.TB, r evReply, status int, msg string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r)
	}
	if msg != "" {
		if got := r.errorText(t); got != msg {
			t.Fatalf("error %q, want %q", got, msg)
		}
	}
}

// invoke runs name blocking as auth and returns the activation.
func evInvoke(t testing.TB, n *gusttest.Node, auth, ns, name string, params any) *gust.Activation {
	t.Helper()
	r := evCall(t, n, auth, "POST", "/api/v1/namespaces/"+ns+"/actions/"+name+"?blocking=true", params)
	if r.status != http.StatusOK && r.status != http.StatusBadGateway {
		t.Fatalf("invoke %s: %s", name, r)
	}
	var act gust.Activation
	if err := json.Unmarshal(r.body, &act); err != nil {
		t.Fatalf("invoke %s: %v: %s", name, err, r)
	}
	return &act
}

// result decodes an activation's result.
func evResult(t testing.TB, act *gust.Activation) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(act.Response.Result, &m); err != nil {
		t.Fatalf("result of %s is not an object: %s", act.ActivationID, act.Response.Result)
	}
	return m
}

// annotation returns an activation's annotation as JSON text.
func evAnnotation(act *gust.Activation, key string) string {
	v, _ := act.Annotations.Get(key)
	return string(v)
}

// getActivation reads a record of ns by id, waiting for it to be stored.
func evActivation(t testing.TB, n *gusttest.Node, auth, id string) *gust.Activation {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := evCall(t, n, auth, "GET", "/api/v1/namespaces/_/activations/"+id, nil)
		if r.status == http.StatusOK {
			var act gust.Activation
			if err := json.Unmarshal(r.body, &act); err != nil {
				t.Fatal(err)
			}
			return &act
		}
		if time.Now().After(deadline) {
			t.Fatalf("activation %s: %s", id, r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func evKV(key string, value any) whisk.KeyValue { return whisk.KeyValue{Key: key, Value: value} }
