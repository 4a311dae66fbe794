package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/apache/openwhisk-client-go/whisk"

	"github.com/gust-faas/gust/internal/gusttest"
)

// ruleRuns waits until action has run for the fire marked want (the
// witness), then returns the marks of every fire the action ran for.
func ruleRuns(t *testing.T, n *gusttest.Node, action, want string) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := evCall(t, n, n.Auth, "GET", "/api/v1/namespaces/_/activations?docs=true&limit=200&name="+action, nil)
		evExpect(t, r, http.StatusOK, "")
		var acts []struct {
			Response struct {
				Result struct {
					Seq string `json:"seq"`
				} `json:"result"`
			} `json:"response"`
		}
		if err := json.Unmarshal(r.body, &acts); err != nil {
			t.Fatalf("activations of %s: %v: %s", action, err, r)
		}
		var seqs []string
		for _, a := range acts {
			seqs = append(seqs, a.Response.Result.Seq)
		}
		if slices.Contains(seqs, want) {
			slices.Sort(seqs)
			return seqs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never ran for fire %q; ran for %v", action, want, seqs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fire fires trigger tr with the mark seq and returns the status.
func fire(t *testing.T, n *gusttest.Node, tr, seq string) int {
	t.Helper()
	return evCall(t, n, n.Auth, "POST", "/api/v1/namespaces/_/triggers/"+tr, map[string]string{"seq": seq}).status
}

// TestRuleStateAndUpdate: a disabled rule starts nothing when its trigger
// fires, an enabled one does again; a rule updated to another action or
// trigger starts only the new action, on the new trigger only.
func TestRuleStateAndUpdate(t *testing.T) {
	n := gusttest.Start(t)
	wsk := evWsk(t, n, n.Auth, "_")
	evPutWasm(t, wsk, "a1", "echo")
	evPutWasm(t, wsk, "a2", "echo")
	for _, name := range []string{"t1", "t2"} {
		if _, _, err := wsk.Triggers.Insert(&whisk.Trigger{Name: name}, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := wsk.Rules.Insert(&whisk.Rule{Name: "r", Trigger: "t1", Action: "a1"}, false); err != nil {
		t.Fatal(err)
	}

	// Disabled: the fire starts nothing (no active rule: 204). Enabled
	// again: the next fire runs a1, and a1 never ran for the first.
	evExpect(t, evCall(t, n, n.Auth, "POST", "/api/v1/namespaces/_/rules/r", `{"status":"inactive"}`), http.StatusOK, "")
	if got := fire(t, n, "t1", "while-inactive"); got != http.StatusNoContent {
		t.Errorf("fire with the rule disabled: status %d, want 204", got)
	}
	evExpect(t, evCall(t, n, n.Auth, "POST", "/api/v1/namespaces/_/rules/r", `{"status":"active"}`), http.StatusOK, "")
	if got := fire(t, n, "t1", "active"); got != http.StatusAccepted {
		t.Fatalf("fire with the rule enabled: status %d", got)
	}
	if got := ruleRuns(t, n, "a1", "active"); !slices.Equal(got, []string{"active"}) {
		t.Errorf("a1 ran for %v, want [active] only", got)
	}

	// Updated to action a2: a fire of t1 starts a2, not a1.
	r := evCall(t, n, n.Auth, "PUT", "/api/v1/namespaces/_/rules/r?overwrite=true", `{"trigger":"t1","action":"a2"}`)
	evExpect(t, r, http.StatusOK, "")
	if !sameRef(r.object(t)["action"], "guest", "a2") {
		t.Errorf("updated rule: %s", r)
	}
	if got := fire(t, n, "t1", "to-a2"); got != http.StatusAccepted {
		t.Fatalf("fire after the action changed: status %d", got)
	}
	if got := ruleRuns(t, n, "a2", "to-a2"); !slices.Equal(got, []string{"to-a2"}) {
		t.Errorf("a2 ran for %v, want [to-a2]", got)
	}

	// Updated to trigger t2: t1 has no rule left (204), t2 starts a2.
	evExpect(t, evCall(t, n, n.Auth, "PUT", "/api/v1/namespaces/_/rules/r?overwrite=true", `{"trigger":"t2","action":"a2"}`), http.StatusOK, "")
	if tr, _, err := wsk.Triggers.Get("t1"); err != nil || len(tr.Rules) != 0 {
		t.Errorf("t1 keeps rules %v after the rule moved (%v)", tr.Rules, err)
	}
	if got := fire(t, n, "t1", "old-trigger"); got != http.StatusNoContent {
		t.Errorf("fire of the old trigger: status %d, want 204", got)
	}
	if got := fire(t, n, "t2", "new-trigger"); got != http.StatusAccepted {
		t.Fatalf("fire of the new trigger: status %d", got)
	}
	if got := ruleRuns(t, n, "a2", "new-trigger"); !slices.Equal(got, []string{"new-trigger", "to-a2"}) {
		t.Errorf("a2 ran for %v, want [new-trigger to-a2]", got)
	}
	// a1 ran for none of the fires after the update. Its witness is a
	// fire after them, through a new rule to a1: had an earlier one
	// started a1, that run would have been queued before this one's.
	if _, _, err := wsk.Rules.Insert(&whisk.Rule{Name: "r1", Trigger: "t1", Action: "a1"}, false); err != nil {
		t.Fatal(err)
	}
	if got := fire(t, n, "t1", "a1-witness"); got != http.StatusAccepted {
		t.Fatalf("fire of the witness: status %d", got)
	}
	if got := ruleRuns(t, n, "a1", "a1-witness"); !slices.Equal(got, []string{"a1-witness", "active"}) {
		t.Errorf("a1 ran for %v, want [a1-witness active]: it ran after the rule left it", got)
	}
}
