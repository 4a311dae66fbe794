package store

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gust"
)

func TestRoutes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := startBroker(t, dir)
	rs, err := OpenRoutes(ctx, b.JS, 1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()

	api := &API{Namespace: "guest", BasePath: "/hello", Name: "/hello",
		Routes: []Route{{RelPath: "/books/{id}", Verb: "GET", Action: "/guest/books", ResponseType: "http"}}}
	stored, err := rs.Put(ctx, api, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Put(ctx, api, 0); gust.KindOf(err) != gust.KindConflict {
		t.Errorf("second create: %v, want a conflict", err)
	}
	got, ok := rs.Get("guest", "/hello")
	if !ok || got.Revision != stored.Revision || len(got.Routes) != 1 || got.Routes[0].Action != "/guest/books" {
		t.Fatalf("Get = %+v %v", got, ok)
	}
	if _, ok := rs.Get("other", "/hello"); ok {
		t.Error("an API is visible from another namespace")
	}
	if _, err := rs.Put(ctx, &API{Namespace: "guest", BasePath: "/a b.c"}, 0); err != nil {
		t.Fatal(err) // base paths are escaped into the key
	}
	if _, err := rs.Put(ctx, &API{Namespace: "guest2", BasePath: "/x"}, 0); err != nil {
		t.Fatal(err)
	}
	if l := rs.List("guest"); len(l) != 2 || l[0].BasePath != "/a b.c" || l[1].BasePath != "/hello" {
		t.Errorf("List = %+v", l)
	}

	next := *got
	next.Routes = append(next.Routes, Route{RelPath: "/x", Verb: "POST", Action: "/guest/x", ResponseType: "json"})
	if _, err := rs.Put(ctx, &next, got.Revision+100); gust.KindOf(err) != gust.KindConflict {
		t.Errorf("update at a stale revision: %v, want a conflict", err)
	}
	updated, err := rs.Put(ctx, &next, got.Revision)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Delete(ctx, "guest", "/a b.c", 1); gust.KindOf(err) != gust.KindConflict {
		t.Errorf("delete at a stale revision: %v", err)
	}

	// Another reader (another API node) sees the writes through its watch.
	rs2, err := OpenRoutes(ctx, b.JS, 1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer rs2.Close()
	if got, ok := rs2.Get("guest", "/hello"); !ok || len(got.Routes) != 2 || got.Revision != updated.Revision {
		t.Fatalf("second reader: %+v %v", got, ok)
	}
	if err := rs.Delete(ctx, "guest", "/hello", updated.Revision); err != nil {
		t.Fatal(err)
	}
	if _, ok := rs.Get("guest", "/hello"); ok {
		t.Error("deleted API still there")
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, ok := rs2.Get("guest", "/hello"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second reader still sees the deleted API")
		}
	}
	if _, err := rs.Put(ctx, api, 0); err != nil {
		t.Errorf("create after delete: %v", err)
	}
}
