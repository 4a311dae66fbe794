package store

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gust-faas/gust/internal/broker"
	"github.com/gust-faas/gust/internal/gust"
)

func startBroker(t testing.TB, dir string) *broker.Broker {
	t.Helper()
	b, err := broker.Start(context.Background(), broker.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func TestTokenRoundTrip(t *testing.T) {
	for _, s := range []string{"hello", "a b", "x.y", "pkg/act", "a=b", "=41", "ü", ""} {
		tok := token(s)
		if strings.ContainsAny(tok, ". */>") {
			t.Errorf("token(%q) = %q holds a subject metacharacter", s, tok)
		}
		if got := untoken(tok); got != s {
			t.Errorf("untoken(token(%q)) = %q", s, got)
		}
	}
}

func FuzzToken(f *testing.F) {
	for _, s := range []string{"hello", "a b", "x.y", "a=b", "*", ">"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok := token(s)
		for i := 0; i < len(tok); i++ {
			if !plain(tok[i]) && tok[i] != '=' {
				t.Fatalf("token(%q) = %q has byte %q", s, tok, tok[i])
			}
		}
		if untoken(tok) != s {
			t.Fatalf("round trip of %q failed: %q", s, untoken(tok))
		}
	})
}

func TestEntityKeys(t *testing.T) {
	for _, p := range []gust.Path{{Namespace: "ns", Name: "a b"}, {Namespace: "ns", Package: "p.q", Name: "x@y"}} {
		got, ok := pathOfKey(entityKey(p))
		if !ok || got != p {
			t.Errorf("pathOfKey(entityKey(%+v)) = %+v", p, got)
		}
	}
}

func record(t testing.TB, typ string, a *gust.Action) *Record {
	t.Helper()
	raw, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return &Record{Type: typ, Doc: raw, Updated: a.Updated}
}

func TestEntities(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := startBroker(t, dir)
	e, err := OpenEntities(ctx, b.JS, 1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	p := gust.Path{Namespace: "guest", Name: "hello world"}
	a := &gust.Action{Namespace: "guest", Name: p.Name, Version: "0.0.1", Updated: 1}
	rec, err := e.Put(ctx, p, record(t, TypeAction, a), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Put(ctx, p, record(t, TypeAction, a), 0); gust.KindOf(err) != gust.KindConflict || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second create: %v", err)
	}
	if _, err := e.Put(ctx, p, record(t, TypeTrigger, a), 0); gust.KindOf(err) != gust.KindConflict || !strings.Contains(err.Error(), "not in this collection") {
		t.Fatalf("create in other collection: %v", err)
	}
	if _, err := e.GetType(p, TypeTrigger); gust.KindOf(err) != gust.KindConflict {
		t.Fatalf("GetType other collection: %v", err)
	}
	got, err := e.GetType(p, TypeAction)
	if err != nil {
		t.Fatal(err)
	}
	ga, err := got.Action()
	if err != nil || ga.Name != "hello world" {
		t.Fatalf("decoded %+v %v", ga, err)
	}
	a.Version = "0.0.2"
	if _, err := e.Put(ctx, p, record(t, TypeAction, a), rec.Revision+7); gust.KindOf(err) != gust.KindConflict {
		t.Fatalf("update with a stale revision: %v", err)
	}
	rec2, err := e.Put(ctx, p, record(t, TypeAction, a), rec.Revision)
	if err != nil {
		t.Fatal(err)
	}
	// Packaged action and list ordering.
	pp := gust.Path{Namespace: "guest", Package: "pkg", Name: "inner"}
	if _, err := e.Put(ctx, pp, record(t, TypeAction, &gust.Action{Namespace: "guest/pkg", Name: "inner", Updated: 5}), 0); err != nil {
		t.Fatal(err)
	}
	if n := len(e.List("guest", TypeAction, "", false)); n != 1 {
		t.Errorf("top-level list has %d", n)
	}
	all := e.List("guest", TypeAction, "", true)
	if len(all) != 2 || all[0].Path != pp {
		t.Errorf("namespace-wide list: %+v", all)
	}
	if n := len(e.List("other", TypeAction, "", true)); n != 0 {
		t.Errorf("other namespace sees %d", n)
	}
	if err := e.Delete(ctx, p, rec.Revision); gust.KindOf(err) != gust.KindConflict {
		t.Fatalf("delete with stale revision: %v", err)
	}
	if err := e.Delete(ctx, p, rec2.Revision); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Get(p); gust.KindOf(err) != gust.KindNotFound {
		t.Fatalf("get after delete: %v", err)
	}

	// A second reader (as after a restart) sees the same state through its watch.
	e2, err := OpenEntities(ctx, b.JS, 1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	if _, err := e2.Get(pp); err != nil {
		t.Errorf("reloaded cache misses %v: %v", pp, err)
	}
	if _, err := e2.Get(p); gust.KindOf(err) != gust.KindNotFound {
		t.Errorf("reloaded cache has deleted entity: %v", err)
	}
}

func TestLargeCode(t *testing.T) {
	ctx := context.Background()
	b := startBroker(t, t.TempDir())
	e, err := OpenEntities(ctx, b.JS, 1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	small := "print(1)"
	if ref, err := e.StoreCode(ctx, small); err != nil || ref != "" {
		t.Fatalf("small code moved out: %q %v", ref, err)
	}
	big := strings.Repeat("x", inlineCodeMax+1)
	ref, err := e.StoreCode(ctx, big)
	if err != nil || ref == "" {
		t.Fatalf("big code: %q %v", ref, err)
	}
	got, err := e.LoadCode(ctx, ref)
	if err != nil || got != big {
		t.Fatalf("LoadCode: %d bytes, %v", len(got), err)
	}

	// Code no record refers to goes once it is old enough; code a record
	// refers to stays.
	kept := strings.Repeat("y", inlineCodeMax+1)
	keptRef, err := e.StoreCode(ctx, kept)
	if err != nil {
		t.Fatal(err)
	}
	a := &gust.Action{Namespace: "guest", Name: "big"}
	rec := record(t, TypeAction, a)
	rec.CodeRef = keptRef
	if _, err := e.Put(ctx, gust.Path{Namespace: "guest", Name: "big"}, rec, 0); err != nil {
		t.Fatal(err)
	}
	if n, err := e.CollectCode(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("young code collected: %d, %v", n, err)
	}
	if n, err := e.CollectCode(ctx, 0); err != nil || n != 1 {
		t.Fatalf("collected %d objects, want the unreferenced one: %v", n, err)
	}
	if _, err := e.LoadCode(ctx, ref); err == nil {
		t.Error("unreferenced code still there")
	}
	if got, err := e.LoadCode(ctx, keptRef); err != nil || got != kept {
		t.Errorf("referenced code gone: %v", err)
	}
}

func TestKeys(t *testing.T) {
	ctx := context.Background()
	b := startBroker(t, t.TempDir())
	k, err := OpenKeys(ctx, b.JS, 1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	id, err := k.Ensure(ctx, "guest", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ParseAuth(id.Auth()); err != nil {
		t.Fatalf("generated credential %q: %v", id.Auth(), err)
	}
	again, err := k.Ensure(ctx, "guest", "")
	if err != nil || again.Auth() != id.Auth() {
		t.Fatalf("Ensure without auth changed the key: %v", err)
	}
	if got, ok := k.Authenticate(id.UUID, id.Key); !ok || got.Namespace != "guest" {
		t.Fatal("valid key refused")
	}
	if _, ok := k.Authenticate(id.UUID, strings.Repeat("x", 64)); ok {
		t.Fatal("wrong key accepted")
	}
	fixed := "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP"
	if _, err := k.Ensure(ctx, "guest", fixed); err != nil {
		t.Fatal(err)
	}
	if _, ok := k.Authenticate(id.UUID, id.Key); ok {
		t.Fatal("replaced key still accepted")
	}
	if _, err := k.Ensure(ctx, "other", fixed); err == nil {
		t.Fatal("one UUID given to two namespaces")
	}
	for _, bad := range []string{"nocolon", "u:short", ":" + strings.Repeat("k", 64)} {
		if _, err := k.Ensure(ctx, "x", bad); err == nil {
			t.Errorf("bad credential %q accepted", bad)
		}
	}
}

func newActivation(ns, name string, start time.Time) *gust.Activation {
	return &gust.Activation{
		Namespace: ns, Name: name, Subject: ns, ActivationID: gust.NewActivationID(start),
		Start: start.UnixMilli(), End: start.UnixMilli() + 1, Duration: 1,
		Response: gust.Response{StatusCode: gust.StatusSuccess, Result: json.RawMessage(`{"ok":true}`)},
		Logs:     []string{}, Version: "0.0.1",
		Annotations: gust.KeyValues{}.Set("path", ns+"/"+name),
	}
}

func TestActivations(t *testing.T) {
	ctx := context.Background()
	b := startBroker(t, t.TempDir())
	st, err := OpenActivations(ctx, b.Conn, b.JS, ActivationsConfig{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-10 * time.Minute)
	var ids []string
	// 300 records: "hot" every other, "cold" every 50th, the rest "warm"; a second namespace interleaved.
	for i := 0; i < 300; i++ {
		name := "warm"
		switch {
		case i%50 == 0:
			name = "cold"
		case i%2 == 0:
			name = "hot"
		}
		act := newActivation("guest", name, base.Add(time.Duration(i)*time.Second))
		done := make(chan error, 1)
		if err := st.Put(act, done); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		ids = append(ids, act.ActivationID)
		if err := st.Put(newActivation("other", "hot", base.Add(time.Duration(i)*time.Second)), nil); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := st.Get(ctx, "guest", ids[7])
	if err != nil || !strings.Contains(string(raw), ids[7]) {
		t.Fatalf("Get: %s %v", raw, err)
	}
	if _, err := st.Get(ctx, "other", ids[7]); gust.KindOf(err) != gust.KindNotFound {
		t.Fatalf("Get from another namespace: %v", err)
	}

	tests := []struct {
		name string
		opt  ListOptions
		want []int // indexes into ids, newest first
	}{
		{"newest 3", ListOptions{Limit: 3}, []int{299, 298, 297}},
		{"skip 2", ListOptions{Skip: 2, Limit: 2}, []int{297, 296}},
		{"cold", ListOptions{Name: "cold", Limit: 10}, []int{250, 200, 150, 100, 50, 0}},
		{"cold skip", ListOptions{Name: "cold", Skip: 5, Limit: 10}, []int{0}},
		{"hot", ListOptions{Name: "hot", Limit: 2}, []int{298, 296}},
		{"since", ListOptions{Since: base.Add(297 * time.Second).UnixMilli(), Limit: 30}, []int{299, 298, 297}},
		{"upto", ListOptions{Upto: base.Add(1 * time.Second).UnixMilli(), Limit: 30}, []int{1, 0}},
		{"window", ListOptions{Name: "cold", Since: base.Add(100 * time.Second).UnixMilli(), Upto: base.Add(200 * time.Second).UnixMilli(), Limit: 30}, []int{200, 150, 100}},
		{"none", ListOptions{Name: "missing", Limit: 30}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := st.List(ctx, "guest", tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs, wantIDs []string
			for _, g := range got {
				gotIDs = append(gotIDs, g.Act.ActivationID)
			}
			for _, i := range tt.want {
				wantIDs = append(wantIDs, ids[i])
			}
			if fmt.Sprint(gotIDs) != fmt.Sprint(wantIDs) {
				t.Errorf("got %d %v\nwant %d %v", len(gotIDs), gotIDs, len(wantIDs), wantIDs)
			}
		})
	}
	if n, err := st.Count(ctx, "guest", ListOptions{Name: "cold"}); err != nil || n != 6 {
		t.Errorf("Count(cold) = %d, %v", n, err)
	}
	st.Close()
	// Every queued record was written before Close returned.
	st2, err := OpenActivations(ctx, b.Conn, b.JS, ActivationsConfig{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if n, err := st2.Count(ctx, "other", ListOptions{}); err != nil || n != 300 {
		t.Errorf("Count(other) = %d, %v", n, err)
	}
}

// TestHugeLogsFitTheRecord: a record whose logs exceed the largest message
// the server takes is stored with its first lines and a note, not lost;
// and the writer is not held up by it.
func TestHugeLogsFitTheRecord(t *testing.T) {
	ctx := context.Background()
	b := startBroker(t, t.TempDir())
	st, err := OpenActivations(ctx, b.Conn, b.JS, ActivationsConfig{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	act := newActivation("guest", "chatty", time.Now())
	line := "2026-12-02T10:00:00.000000000Z stdout: " + strings.Repeat("x", 960)
	for range 10_000 { // ~10 MB, the largest log limit
		act.Logs = append(act.Logs, line)
	}
	done := make(chan error, 1)
	start := time.Now()
	if err := st.Put(act, done); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("stored in %v: %v", time.Since(start), err)
	}
	raw, err := st.Get(ctx, "guest", act.ActivationID)
	if err != nil {
		t.Fatal(err)
	}
	if st.maxRec != 8<<20-64<<10 {
		t.Errorf("record limit %d from the server's max_payload %d", st.maxRec, b.Conn.MaxPayload())
	}
	if len(raw) > st.maxRec {
		t.Errorf("record of %d bytes, above %d", len(raw), st.maxRec)
	}
	var got gust.Activation
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	n := len(got.Logs)
	if n < 7000 || n >= len(act.Logs) || got.Logs[0] != line || got.Logs[n-2] != line {
		t.Fatalf("kept %d of %d lines; first %q", n, len(act.Logs), got.Logs[0][:40])
	}
	if note := got.Logs[n-1]; !strings.Contains(note, "Logs were truncated to fit the activation record") || !strings.Contains(note, fmt.Sprintf("(%d of 10000 lines kept)", n-1)) {
		t.Errorf("last line %q", note)
	}
	// The writer goes on with the next records at once.
	next := newActivation("guest", "quiet", time.Now())
	if err := st.Put(next, done); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestGetByTaggedID: records whose ids carry their name's tag are found by
// exact subject through the names the entity cache knows (actions in and
// out of packages, triggers, deleted ones too), others by the wildcard, and
// never across namespaces.
func TestGetByTaggedID(t *testing.T) {
	ctx := context.Background()
	b := startBroker(t, t.TempDir())
	log := slog.New(slog.DiscardHandler)
	ents, err := OpenEntities(ctx, b.JS, 1, log)
	if err != nil {
		t.Fatal(err)
	}
	defer ents.Close()
	st, err := OpenActivations(ctx, b.Conn, b.JS, ActivationsConfig{}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.SetRecordNamer(ents)

	for _, e := range []struct {
		typ  string
		path gust.Path
	}{
		{TypeAction, gust.Path{Namespace: "guest", Name: "hello"}},
		{TypeAction, gust.Path{Namespace: "guest", Package: "tools", Name: "hello"}},
		{TypeTrigger, gust.Path{Namespace: "guest", Name: "tick"}},
		{TypePackage, gust.Path{Namespace: "guest", Name: "tools"}},
		{TypeAction, gust.Path{Namespace: "other", Name: "hello"}},
	} {
		a := &gust.Action{Namespace: e.path.EntityNamespace(), Name: e.path.Name, Updated: 1}
		if _, err := ents.Put(ctx, e.path, record(t, e.typ, a), 0); err != nil {
			t.Fatal(err)
		}
	}
	gone := gust.Path{Namespace: "guest", Name: "gone"}
	rec, err := ents.Put(ctx, gone, record(t, TypeAction, &gust.Action{Namespace: "guest", Name: "gone"}), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := ents.Delete(ctx, gone, rec.Revision); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ns, name string
		want     bool
	}{
		{"guest", "hello", true}, {"guest", "tools/hello", true}, {"guest", "tick", true}, {"guest", "gone", true},
		{"guest", "tools", false}, {"guest", "nobody", false}, {"other", "hello", true}, {"other", "tick", false},
	} {
		names := ents.RecordNames(tt.ns, gust.ActivationTag(tt.name))
		if got := slices.Contains(names, tt.name); got != tt.want {
			t.Errorf("RecordNames(%s, tag of %q) = %q: has it %v, want %v", tt.ns, tt.name, names, got, tt.want)
		}
	}

	put := func(ns, name, id string) {
		t.Helper()
		act := newActivation(ns, name, time.Now())
		act.ActivationID = id
		done := make(chan error, 1)
		if err := st.Put(act, done); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	tagged := gust.NewActivationIDFor(now, "tools/hello")
	put("guest", "tools/hello", tagged)
	untagged := gust.NewActivationID(now) // e.g. a derived id: found by the wildcard
	put("guest", "nobody", untagged)
	elsewhere := gust.NewActivationIDFor(now, "hello")
	put("other", "hello", elsewhere)
	for _, tt := range []struct {
		ns, id string
		found  bool
	}{
		{"guest", tagged, true}, {"guest", untagged, true}, {"other", elsewhere, true},
		{"guest", elsewhere, false}, {"other", tagged, false}, {"guest", gust.NewActivationIDFor(now, "hello"), false},
	} {
		raw, err := st.Get(ctx, tt.ns, tt.id)
		switch {
		case tt.found && (err != nil || !strings.Contains(string(raw), tt.id)):
			t.Errorf("Get(%s, %s) = %.60s, %v", tt.ns, tt.id, raw, err)
		case !tt.found && gust.KindOf(err) != gust.KindNotFound:
			t.Errorf("Get(%s, %s) = %.60s, %v; want not found", tt.ns, tt.id, raw, err)
		}
	}
}

// TestCollectCodeRace: an action that comes to refer to stored code after
// CollectCode found the code old and unreferenced keeps it, whether the
// action's write lands after CollectCode listed the code or just before
// it removes it.
func TestCollectCodeRace(t *testing.T) {
	ctx := context.Background()
	b := startBroker(t, t.TempDir())
	e, err := OpenEntities(ctx, b.JS, 1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	codes := map[string]string{} // by ref
	for _, c := range []string{"y", "z"} {
		code := strings.Repeat(c, inlineCodeMax+1)
		ref, err := e.StoreCode(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		codes[ref] = code
	}
	// The codes' actions were deleted: nothing refers to them. As
	// CollectCode is about to remove the first, an action is created with
	// each code (StoreCode, then the record): the first one's lands just
	// before its removal, the other's after it was listed.
	var raced []string
	e.beforeRemove = func(name string) {
		raced = append(raced, name)
		if len(raced) > 1 {
			return
		}
		i := 0
		for ref, code := range codes {
			if got, err := e.StoreCode(ctx, code); err != nil || got != ref {
				t.Fatalf("store code again: %q %v", got, err)
			}
			p := gust.Path{Namespace: "guest", Name: fmt.Sprintf("again%d", i)}
			i++
			rec := record(t, TypeAction, &gust.Action{Namespace: p.Namespace, Name: p.Name})
			rec.CodeRef = ref
			if _, err := e.Put(ctx, p, rec, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, err := e.CollectCode(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(raced) != 1 {
		t.Errorf("CollectCode came to remove %v, want only the first of two objects: the other was stored again", raced)
	}
	if n != 0 {
		t.Errorf("CollectCode reports %d removed, want 0", n)
	}
	for ref, code := range codes {
		if got, err := e.LoadCode(ctx, ref); err != nil || got != code {
			t.Errorf("code an action refers to was removed: %v", err)
		}
	}

	// Once the actions are gone the code goes, chunks and all.
	e.beforeRemove = nil
	for i := range 2 {
		p := gust.Path{Namespace: "guest", Name: fmt.Sprintf("again%d", i)}
		rec, err := e.Get(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Delete(ctx, p, rec.Revision); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := e.CollectCode(ctx, 0); err != nil || n != 2 {
		t.Fatalf("collected %d, %v; want the two now unreferenced objects", n, err)
	}
	for ref := range codes {
		if _, err := e.LoadCode(ctx, ref); err == nil {
			t.Error("unreferenced code still there")
		}
	}
	st, err := b.JS.Stream(ctx, "OBJ_code")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter("$O.code.C.>"))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.State.Subjects) != 0 {
		t.Errorf("chunks left behind: %v", info.State.Subjects)
	}
}

// TestFitRecordLimits: the record fits whatever limit the server's
// max_payload sets (an external server's is 1 MB by default), keeping the
// first lines and a note.
func TestFitRecordLimits(t *testing.T) {
	act := newActivation("guest", "chatty", time.Now())
	for i := range 3000 {
		act.Logs = append(act.Logs, fmt.Sprintf("2026-12-02T10:00:00.000000000Z stdout: line %d %s", i, strings.Repeat("y", 500)))
	}
	full, err := json.Marshal(act)
	if err != nil {
		t.Fatal(err)
	}
	for _, payload := range []int64{1 << 20, 256 << 10, 64 << 10} {
		max := recordLimit(payload)
		data, err := fitRecord(act, len(full), max)
		if err != nil {
			t.Fatalf("max_payload %d: %v", payload, err)
		}
		var got gust.Activation
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		n := len(got.Logs)
		if len(data) > max || int64(max) >= payload || n < 2 || got.Logs[0] != act.Logs[0] || !strings.Contains(got.Logs[n-1], "Logs were truncated") {
			t.Errorf("max_payload %d: record of %d bytes (limit %d), %d lines, last %q", payload, len(data), max, n, got.Logs[n-1])
		}
	}
}

// TestResultFits checks the max_payload check of OpenActivations: the
// embedded server's 8 MB holds a 1 MB result, an external server's
// default 1 MB does not.
func TestResultFits(t *testing.T) {
	for _, c := range []struct {
		payload int64
		result  int
		want    bool
	}{{8 << 20, 1 << 20, true}, {1 << 20, 1 << 20, false}, {1 << 20, 512 << 10, true}, {2 << 20, 2 << 20, false}} {
		if got := resultFits(c.payload, c.result); got != c.want {
			t.Errorf("max_payload %d, result %d: fits %v, want %v", c.payload, c.result, got, c.want)
		}
	}
}
