package e2e

import (
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/openwhisk-client-go/whisk"
)

// TestActivations lists and reads activation records through
// openwhisk-client-go and raw HTTP.
func TestActivations(t *testing.T) {
	e := start(t)
	e.putAction("alpha", "hello", nil)
	e.putAction("beta", "noop", nil)
	var alphaIDs []string // oldest first
	for i := range 3 {
		r := e.invoke("alpha", map[string]any{"name": "n" + strconv.Itoa(i)})
		want(t, r, http.StatusOK)
		alphaIDs = append(alphaIDs, r.object(t)["activationId"].(string))
	}
	for range 2 {
		want(t, e.invoke("beta", nil), http.StatusOK)
	}
	acts := e.wsk.Activations

	list := func(t *testing.T, opt *whisk.ActivationListOptions) []whisk.Activation {
		t.Helper()
		l, resp, err := acts.List(opt)
		if err != nil {
			t.Fatalf("list %+v: %v", opt, err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("list status %d", resp.StatusCode)
		}
		return l
	}
	ids := func(l []whisk.Activation) []string {
		var out []string
		for _, a := range l {
			out = append(out, a.ActivationID)
		}
		return out
	}

	all := list(t, &whisk.ActivationListOptions{})
	if len(all) != 5 {
		t.Fatalf("list has %d activations, want 5", len(all))
	}
	if !slices.IsSortedFunc(all, func(a, b whisk.Activation) int { return int(b.Start - a.Start) }) {
		t.Errorf("list is not newest first: %v", ids(all))
	}

	t.Run("Summary", func(t *testing.T) {
		r := e.do("GET", "/api/v1/namespaces/_/activations?limit=1", nil)
		want(t, r, http.StatusOK)
		var l []map[string]any
		r.decode(t, &l)
		if len(l) != 1 {
			t.Fatalf("limit=1 gave %d entries", len(l))
		}
		s := l[0]
		for _, k := range []string{"namespace", "name", "version", "publish", "annotations", "activationId", "start", "end", "duration", "statusCode"} {
			if _, ok := s[k]; !ok {
				t.Errorf("summary lacks %q: %v", k, keys(s))
			}
		}
		for _, k := range []string{"response", "logs"} {
			if _, ok := s[k]; ok {
				t.Errorf("summary carries %q (only docs=true does)", k)
			}
		}
		if s["statusCode"] != 0.0 {
			t.Errorf("summary statusCode = %v, want 0", s["statusCode"])
		}
	})

	t.Run("Name", func(t *testing.T) {
		l := list(t, &whisk.ActivationListOptions{Name: "alpha"})
		got := ids(l)
		wantIDs := slices.Clone(alphaIDs)
		slices.Reverse(wantIDs)
		if !slices.Equal(got, wantIDs) {
			t.Errorf("name=alpha = %v, want %v", got, wantIDs)
		}
		if l := list(t, &whisk.ActivationListOptions{Name: "nothing"}); len(l) != 0 {
			t.Errorf("name=nothing gave %d", len(l))
		}
	})

	t.Run("LimitSkip", func(t *testing.T) {
		got := ids(list(t, &whisk.ActivationListOptions{Limit: 2, Skip: 1}))
		if w := ids(all)[1:3]; !slices.Equal(got, w) {
			t.Errorf("limit=2 skip=1 = %v, want %v", got, w)
		}
		if l := list(t, &whisk.ActivationListOptions{Skip: 5}); len(l) != 0 {
			t.Errorf("skip past the end gave %d", len(l))
		}
	})

	t.Run("SinceUpto", func(t *testing.T) {
		// The window is inclusive on start: bound it by the starts of
		// real records and compare with a filter of the full list.
		lo, hi := all[3].Start, all[1].Start
		var wantIDs []string
		for _, a := range all {
			if a.Start >= lo && a.Start <= hi {
				wantIDs = append(wantIDs, a.ActivationID)
			}
		}
		got := ids(list(t, &whisk.ActivationListOptions{Since: lo, Upto: hi}))
		if !slices.Equal(got, wantIDs) {
			t.Errorf("since=%d upto=%d = %v, want %v", lo, hi, got, wantIDs)
		}
		if l := list(t, &whisk.ActivationListOptions{Since: all[0].Start + 1}); len(l) != 0 {
			t.Errorf("since after the newest gave %d", len(l))
		}
		if l := list(t, &whisk.ActivationListOptions{Upto: all[4].Start - 1}); len(l) != 0 {
			t.Errorf("upto before the oldest gave %d", len(l))
		}
	})

	t.Run("Docs", func(t *testing.T) {
		l := list(t, &whisk.ActivationListOptions{Docs: true, Name: "alpha", Limit: 1})
		if len(l) != 1 || l[0].ActivationID != alphaIDs[2] {
			t.Fatalf("docs list = %v", ids(l))
		}
		if l[0].Response.Status != "success" || !l[0].Response.Success || len(l[0].Logs) != 1 {
			t.Errorf("docs=true entry lacks the full record: %+v", l[0])
		}
	})

	t.Run("Count", func(t *testing.T) {
		c, _, err := acts.Count(&whisk.ActivationCountOptions{})
		if err != nil || c.Activations != 5 {
			t.Errorf("count = %+v, %v; want 5", c, err)
		}
		c, _, err = acts.Count(&whisk.ActivationCountOptions{Name: "beta"})
		if err != nil || c.Activations != 2 {
			t.Errorf("count name=beta = %+v, %v; want 2", c, err)
		}
		r := e.do("GET", "/api/v1/namespaces/_/activations?count=true&name=alpha", nil)
		want(t, r, http.StatusOK)
		var m map[string]int
		r.decode(t, &m)
		if !reflect.DeepEqual(m, map[string]int{"activations": 3}) {
			t.Errorf("count body = %s, want {\"activations\":3}", r.body)
		}
		r = e.do("GET", "/api/v1/namespaces/_/activations?count=true&since="+strconv.FormatInt(all[1].Start, 10), nil)
		want(t, r, http.StatusOK)
		m = nil
		r.decode(t, &m)
		n := 0
		for _, a := range all {
			if a.Start >= all[1].Start {
				n++
			}
		}
		if m["activations"] != n {
			t.Errorf("count since = %s, want %d", r.body, n)
		}
		wantError(t, e.do("GET", "/api/v1/namespaces/_/activations?count=true&docs=true", nil),
			http.StatusBadRequest, "The parameter 'docs' is not permitted with 'count'.")
	})

	t.Run("GetLogsResult", func(t *testing.T) {
		id := alphaIDs[1]
		a, _, err := acts.Get(id)
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if a.ActivationID != id || a.Name != "alpha" || a.Namespace != "guest" || a.Response.Status != "success" {
			t.Errorf("get = %+v", a)
		}
		if a.End < a.Start || a.Duration != a.End-a.Start {
			t.Errorf("start %d end %d duration %d are inconsistent", a.Start, a.End, a.Duration)
		}
		logs, _, err := acts.Logs(id)
		if err != nil {
			t.Fatalf("logs: %v", err)
		}
		if len(logs.Logs) != 1 || !strings.HasSuffix(logs.Logs[0], " stderr: hello: greeting n1") {
			t.Errorf("logs = %q", logs.Logs)
		}
		// Log lines: a timestamp left-justified to 30 characters, a space, the stream.
		if l := logs.Logs[0]; len(l) < 31 || l[30] != ' ' || !strings.HasPrefix(l[31:], "stderr: ") {
			t.Errorf("log line %q is not in OpenWhisk's format", l)
		}
		r := e.do("GET", "/api/v1/namespaces/_/activations/"+id+"/logs", nil)
		want(t, r, http.StatusOK)
		if m := r.object(t); len(m) != 1 || m["logs"] == nil {
			t.Errorf("/logs body = %s, want only logs", r.body)
		}
		res, _, err := acts.Result(id)
		if err != nil {
			t.Fatalf("result: %v", err)
		}
		if res.Status != "success" || !res.Success || field(res.Result, "greeting") != "Hello, n1!" {
			t.Errorf("result = %+v", res)
		}
		r = e.do("GET", "/api/v1/namespaces/_/activations/"+id+"/result", nil)
		want(t, r, http.StatusOK)
		m := r.object(t)
		if len(m) != 4 || m["result"] == nil || m["success"] != true || m["status"] != "success" || m["size"] == nil {
			t.Errorf("/result body = %s, want result, success, status, size", r.body)
		}
		// Unknown activations and sub-resources.
		missing := strings.Repeat("0", 32)
		wantError(t, e.do("GET", "/api/v1/namespaces/_/activations/"+missing, nil), http.StatusNotFound, "The requested resource does not exist.")
		wantError(t, e.do("GET", "/api/v1/namespaces/_/activations/"+missing+"/logs", nil), http.StatusNotFound)
		wantError(t, e.do("GET", "/api/v1/namespaces/_/activations/"+id+"/other", nil), http.StatusNotFound)
	})
}

// TestActivationsReadYourWrites: a blocking invoke has returned, so its
// activation must be in every list and count from then on, even while the
// record is still on its way to the stream.
func TestActivationsReadYourWrites(t *testing.T) {
	e := start(t)
	e.putAction("noop", "noop", nil)
	var ids []string // newest first
	for round := 1; round <= 40; round++ {
		r := e.invoke("noop", nil)
		want(t, r, http.StatusOK)
		ids = append([]string{r.object(t)["activationId"].(string)}, ids...)

		l := e.do("GET", "/api/v1/namespaces/_/activations?name=noop&limit=0", nil)
		want(t, l, http.StatusOK)
		var got []struct {
			ActivationID string `json:"activationId"`
		}
		l.decode(t, &got)
		var gotIDs []string
		for _, g := range got {
			gotIDs = append(gotIDs, g.ActivationID)
		}
		if !slices.Equal(gotIDs, ids) {
			t.Fatalf("round %d: list = %v\nwant %v", round, gotIDs, ids)
		}
		if round%4 == 0 {
			// Paging over records of which some are still being written.
			p := e.do("GET", "/api/v1/namespaces/_/activations?name=noop&limit=2&skip=1", nil)
			var page []struct {
				ActivationID string `json:"activationId"`
			}
			p.decode(t, &page)
			if len(page) != 2 || page[0].ActivationID != ids[1] || page[1].ActivationID != ids[2] {
				t.Fatalf("round %d: limit=2 skip=1 = %s, want %v", round, p.body, ids[1:3])
			}
		}
		c := e.do("GET", "/api/v1/namespaces/_/activations?count=true", nil)
		var n map[string]int
		c.decode(t, &n)
		if n["activations"] != round {
			t.Fatalf("round %d: count = %s", round, c.body)
		}
	}
}
