package activation_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/app"
	"github.com/gust-faas/gust/internal/gusttest"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
)

// doAs sends a request with the credential auth ("uuid:key").
func doAs(t *testing.T, auth, method, url, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	u, k, _ := strings.Cut(auth, ":")
	req.SetBasicAuth(u, k)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type queuedRecord struct {
	Start, End  int64
	Response    struct{ Status string }
	Annotations []struct {
		Key   string
		Value json.RawMessage
	}
}

// waitRecord polls for the record of a queued activation.
func waitRecord(t *testing.T, auth, url, id string) queuedRecord {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		code, body := doAs(t, auth, "GET", url+"/api/v1/namespaces/_/activations/"+id, "")
		var rec queuedRecord
		if code == http.StatusOK && json.Unmarshal(body, &rec) == nil {
			return rec
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("activation %s was not recorded", id)
	return queuedRecord{}
}

// TestThrottledNamespaceDoesNotStarveQueue: a namespace waiting at its
// concurrency limit holds no queue worker, so with two workers and four
// queued calls of a namespace limited to one at a time, another
// namespace's call queued behind them runs at once, not after them. The
// throttled calls still all run, one at a time, each on its first delivery.
func TestThrottledNamespaceDoesNotStarveQueue(t *testing.T) {
	n := gusttest.Start(t, func(c *app.Config) { c.AsyncWorkers = 2 })
	admin := n.Admin.Auth()
	base := n.URL + "/api/v1/admin/namespaces/team"
	code, body := doAs(t, admin, "PUT", base, "")
	var team struct{ Auth string }
	if json.Unmarshal(body, &team); code != http.StatusOK || team.Auth == "" {
		t.Fatalf("create namespace: %d %s", code, body)
	}
	if code, body := doAs(t, admin, "PUT", base+"/limits", `{"concurrentInvocations":1}`); code != http.StatusOK {
		t.Fatalf("set limits: %d %s", code, body)
	}
	nap := `{"exec":{"kind":"wasm","code":"` + base64.StdEncoding.EncodeToString(wasmtest.Build(t, "goreactor")) + `"}}`
	for _, auth := range []string{team.Auth, n.Auth} {
		if code, body := doAs(t, auth, "PUT", n.URL+"/api/v1/namespaces/_/actions/nap", nap); code != http.StatusOK {
			t.Fatalf("create action: %d %s", code, body)
		}
	}
	// The limit must be in force where the worker reads it before the
	// burst, or the team's calls would run together.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := doAs(t, team.Auth, "GET", n.URL+"/api/v1/namespaces/_/limits", "")
		if code == http.StatusOK && strings.Contains(string(body), `"concurrentInvocations":1,`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("team limits: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}

	invoke := func(auth, params string) string {
		t.Helper()
		code, body := doAs(t, auth, "POST", n.URL+"/api/v1/namespaces/_/actions/nap", params)
		var acc struct{ ActivationID string }
		if json.Unmarshal(body, &acc); code != http.StatusAccepted || acc.ActivationID == "" {
			t.Fatalf("queue call: %d %s", code, body)
		}
		return acc.ActivationID
	}
	var teamIDs []string
	for range 4 {
		teamIDs = append(teamIDs, invoke(team.Auth, `{"sleep_ms":1000}`))
	}
	guestID := invoke(n.Auth, `{"sleep_ms":1}`)

	guest := waitRecord(t, n.Auth, n.URL, guestID)
	if guest.Response.Status != "success" {
		t.Fatalf("guest call: %q", guest.Response.Status)
	}
	var recs []queuedRecord
	for _, id := range teamIDs {
		rec := waitRecord(t, team.Auth, n.URL, id)
		if rec.Response.Status != "success" {
			t.Errorf("team call %s: %q", id, rec.Response.Status)
		}
		for _, a := range rec.Annotations {
			if a.Key == "attempts" {
				t.Errorf("team call %s was delivered %s times: waiting at the limit counted as a delivery", id, a.Value)
			}
		}
		recs = append(recs, rec)
	}
	firstEnd := recs[0].End
	for i, r := range recs {
		firstEnd = min(firstEnd, r.End)
		for _, o := range recs[i+1:] {
			if r.Start < o.End && o.Start < r.End {
				t.Errorf("team calls overlapped with a limit of 1: %d-%d and %d-%d", r.Start, r.End, o.Start, o.End)
			}
		}
	}
	if guest.Start >= firstEnd {
		t.Errorf("the guest call started %d ms after the first team call ended: the throttled namespace held the workers", guest.Start-firstEnd)
	}
}
