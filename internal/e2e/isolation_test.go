package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestNamespaceIsolation: a second namespace with its own key sees and
// touches nothing of guest's.
func TestNamespaceIsolation(t *testing.T) {
	e := start(t)
	e.putAction("secret", "hello", nil)
	inv := e.invoke("secret", map[string]any{"name": "guest"})
	want(t, inv, http.StatusOK)
	guestAct := inv.object(t)["activationId"].(string)

	other, err := e.node.Keys.Ensure(t.Context(), "other", "")
	if err != nil {
		t.Fatalf("create namespace other: %v", err)
	}
	if other.Auth() == e.node.Auth {
		t.Fatal("other got guest's credential")
	}
	o := &env{t: t, node: e.node, wsk: newWhisk(t, e.node.URL, other.Auth())}
	as := func(method, path string, body any) reply {
		t.Helper()
		return request(t, e.node.URL, other.Auth(), method, path, body)
	}

	if l, _, err := o.wsk.Actions.List("", nil); err != nil || len(l) != 0 {
		t.Errorf("other lists %d actions (%v), want none", len(l), err)
	}
	if l, _, err := o.wsk.Activations.List(nil); err != nil || len(l) != 0 {
		t.Errorf("other lists %d activations (%v), want none", len(l), err)
	}
	ns := as("GET", "/api/v1/namespaces", nil)
	if want(t, ns, http.StatusOK); strings.TrimSpace(string(ns.body)) != `["other"]` {
		t.Errorf("other's namespaces = %s", ns.body)
	}

	forbidden := []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/v1/namespaces/guest/actions", nil},
		{"GET", "/api/v1/namespaces/guest/actions/secret", nil},
		{"GET", "/api/v1/namespaces/guest/actions/missing", nil},
		{"PUT", "/api/v1/namespaces/guest/actions/secret?overwrite=true", map[string]any{"exec": wasmExec(t, "noop")}},
		{"PUT", "/api/v1/namespaces/guest/actions/new", map[string]any{"exec": wasmExec(t, "noop")}},
		{"DELETE", "/api/v1/namespaces/guest/actions/secret", nil},
		{"POST", "/api/v1/namespaces/guest/actions/secret?blocking=true", nil},
		{"POST", "/api/v1/namespaces/guest/actions/secret", nil},
		{"GET", "/api/v1/namespaces/guest/activations", nil},
		{"GET", "/api/v1/namespaces/guest/activations/" + guestAct, nil},
		{"GET", "/api/v1/namespaces/guest/activations/" + guestAct + "/logs", nil},
		{"GET", "/api/v1/namespaces/guest/activations/" + guestAct + "/result", nil},
		{"GET", "/api/v1/namespaces/guest/limits", nil},
	}
	for _, f := range forbidden {
		t.Run(f.method+" "+f.path, func(t *testing.T) {
			wantError(t, as(f.method, f.path, f.body), http.StatusForbidden, "The supplied authentication is not authorized to access")
		})
	}
	for _, part := range []string{"", "/logs", "/result"} {
		wantError(t, as("GET", "/api/v1/namespaces/_/activations/"+guestAct+part, nil), http.StatusNotFound, msgNotFound)
	}
	if _, _, err := o.wsk.Activations.Get(guestAct); err == nil {
		t.Errorf("other read guest's activation through the client")
	} else if status, _ := wskError(t, err); status != http.StatusNotFound {
		t.Errorf("client get of guest's activation: status %d, want 404", status)
	}

	// other's own action of the same name is its own.
	if _, _, err := o.wsk.Actions.Insert(wasmAction(t, "secret", "noop"), false); err != nil {
		t.Fatalf("other creates secret: %v", err)
	}
	r := as("POST", "/api/v1/namespaces/_/actions/secret?blocking=true", nil)
	want(t, r, http.StatusOK)
	otherAct := r.object(t)
	if otherAct["namespace"] != "other" || otherAct["subject"] != "other" {
		t.Errorf("other's activation belongs to %v/%v", otherAct["namespace"], otherAct["subject"])
	}
	if p, _ := annotation(t, otherAct, "path"); p != "other/secret" {
		t.Errorf("other's activation path %v", p)
	}
	if field(otherAct, "response", "result", "greeting") != nil {
		t.Errorf("other ran guest's code: %v", otherAct["response"])
	}
	// guest still has its own, unchanged, and sees only its activation.
	g := e.invoke("secret", nil)
	if want(t, g, http.StatusOK); field(g.object(t), "response", "result", "greeting") != "Hello, stranger!" {
		t.Errorf("guest's action changed: %s", g.body)
	}
	wantError(t, e.do("GET", "/api/v1/namespaces/_/activations/"+otherAct["activationId"].(string), nil), http.StatusNotFound)
	var guestList []map[string]any
	e.do("GET", "/api/v1/namespaces/_/activations?limit=0", nil).decode(t, &guestList)
	for _, a := range guestList {
		if a["namespace"] != "guest" {
			t.Errorf("guest's list shows %v", a)
		}
	}
	if len(guestList) != 2 {
		t.Errorf("guest lists %d activations, want 2", len(guestList))
	}
	c := as("GET", "/api/v1/namespaces/_/activations?count=true", nil)
	if want(t, c, http.StatusOK); strings.TrimSpace(string(c.body)) != `{"activations":1}` {
		t.Errorf("other's count = %s", c.body)
	}

	// A removed namespace's key stops working.
	if err := e.node.Keys.Remove(t.Context(), "other"); err != nil {
		t.Fatal(err)
	}
	wantError(t, as("GET", "/api/v1/namespaces/_/actions", nil), http.StatusUnauthorized, msgBadAuth)
}
