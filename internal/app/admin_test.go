package app_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gust-faas/gust/internal/gusttest"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
)

func doAs(t *testing.T, auth, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if auth != "" {
		u, k, _ := strings.Cut(auth, ":")
		req.SetBasicAuth(u, k)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAdminNamespacesAndLimits(t *testing.T) {
	n := gusttest.Start(t)
	admin := n.Admin.Auth()
	base := n.URL + "/api/v1/admin/namespaces"

	code, body := doAs(t, admin, "PUT", base+"/team", "")
	var created struct{ Namespace, Auth string }
	json.Unmarshal([]byte(body), &created)
	if code != 200 || created.Namespace != "team" || created.Auth == "" {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, _ := doAs(t, admin, "PUT", base+"/team", ""); code != http.StatusConflict {
		t.Errorf("create twice: %d", code)
	}
	if code, _ := doAs(t, admin, "PUT", base+"/-bad", ""); code != http.StatusBadRequest {
		t.Errorf("bad name: %d", code)
	}
	team := created.Auth
	if code, body := doAs(t, team, "GET", n.URL+"/api/v1/namespaces", ""); code != 200 || body != `["team"]` {
		t.Fatalf("team namespaces: %d %s", code, body)
	}
	// Only the administrator reaches these routes.
	for _, who := range []string{n.Auth, team} {
		if code, _ := doAs(t, who, "GET", base, ""); code != http.StatusForbidden {
			t.Errorf("non-admin list: %d", code)
		}
	}
	if code, _ := doAs(t, "", "GET", base, ""); code != http.StatusUnauthorized {
		t.Errorf("anonymous list: %d", code)
	}

	// Limits: an override shows in the namespace's /limits and throttles it.
	if code, body := doAs(t, admin, "PUT", base+"/team/limits", `{"invocationsPerMinute":2}`); code != 200 || !strings.Contains(body, `"invocationsPerMinute":2`) {
		t.Fatalf("set limits: %d %s", code, body)
	}
	if code, _ := doAs(t, admin, "PUT", base+"/team/limits", `{"firesPerMinute":-1}`); code != http.StatusBadRequest {
		t.Errorf("negative limit: %d", code)
	}
	if code, body := doAs(t, team, "GET", n.URL+"/api/v1/namespaces/_/limits", ""); code != 200 || !strings.Contains(body, `"invocationsPerMinute":2`) {
		t.Fatalf("team limits: %d %s", code, body)
	}
	if _, body := doAs(t, n.Auth, "GET", n.URL+"/api/v1/namespaces/_/limits", ""); strings.Contains(body, `"invocationsPerMinute":2,`) {
		t.Fatalf("guest got team's limits: %s", body)
	}
	codeB64 := b64(wasmtest.Build(t, "noop"))
	if code, body := doAs(t, team, "PUT", n.URL+"/api/v1/namespaces/_/actions/a", `{"exec":{"kind":"wasm","code":"`+codeB64+`"}}`); code != 200 {
		t.Fatalf("team create: %d %s", code, body)
	}
	for i := range 2 {
		if code, body := doAs(t, team, "POST", n.URL+"/api/v1/namespaces/_/actions/a?blocking=true", ""); code != 200 {
			t.Fatalf("invoke %d: %d %s", i, code, body)
		}
	}
	code, body = doAs(t, team, "POST", n.URL+"/api/v1/namespaces/_/actions/a?blocking=true", "")
	if code != http.StatusTooManyRequests || !strings.Contains(body, "Too many requests in the last minute (count: 2, allowed: 2).") {
		t.Fatalf("third invoke: %d %s", code, body)
	}

	// Deleting a namespace revokes its key.
	if code, _ := doAs(t, admin, "DELETE", base+"/team", ""); code != 200 {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := doAs(t, team, "GET", n.URL+"/api/v1/namespaces", ""); code != http.StatusUnauthorized {
		t.Errorf("deleted namespace's key: %d", code)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
