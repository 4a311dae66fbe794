package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gust-faas/gust/internal/gusttest"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
)

// TestEventCommandsEndToEnd drives packages, sequences, triggers, feeds and
// rules through the CLI against a real node.
func TestEventCommandsEndToEnd(t *testing.T) {
	isolate(t)
	node := gusttest.Start(t)
	dir := t.TempDir()
	hello := filepath.Join(dir, "hello.wasm")
	if err := os.WriteFile(hello, wasmtest.Build(t, "hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	gust := func(args ...string) (string, error) {
		t.Helper()
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"--apihost", node.URL, "--auth", node.Auth}, args...), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := gust(args...)
		if err != nil {
			t.Fatalf("gust %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	expect := func(out, want string) {
		t.Helper()
		if !strings.Contains(out, want) {
			t.Errorf("output %q does not contain %q", out, want)
		}
	}

	// Packages: default parameters, bindings, sharing, forced delete.
	expect(must("package", "create", "p", "-p", "name", "package", "--shared", "yes"), "ok: created package p")
	must("action", "create", "p/hello", hello)
	expect(must("action", "invoke", "p/hello", "-r"), "Hello, package!")
	expect(must("package", "bind", "/guest/p", "b", "-p", "name", "binding"), "ok: bound package b")
	expect(must("action", "invoke", "b/hello", "-r"), "Hello, binding!")
	expect(must("package", "get", "b"), `"name": "hello"`)
	expect(must("package", "list"), "binding of /guest/p")
	if out, err := gust("package", "delete", "p"); err == nil || !strings.Contains(out+err.Error(), "Package not empty (contains 1 entities)") {
		t.Errorf("delete of a full package: %v %s", err, out)
	}
	expect(must("package", "delete", "b"), "ok: deleted package b")

	// Sequences.
	must("action", "create", "hello", hello)
	expect(must("action", "create", "twice", "--sequence", "hello,p/hello"), "ok: created action twice")
	expect(must("action", "invoke", "twice", "-r", "-p", "name", "x"), "Hello, package!")
	expect(must("action", "get", "twice"), `"/guest/p/hello"`)
	expect(must("package", "delete", "p", "--force"), "ok: deleted package p")

	// Triggers and rules.
	expect(must("trigger", "create", "t", "-p", "name", "trigger"), "ok: created trigger t")
	expect(must("rule", "create", "r", "t", "hello"), "ok: created rule r")
	expect(must("rule", "list"), "active")
	expect(must("rule", "disable", "r"), "ok: disabled rule r")
	expect(must("rule", "get", "r"), `"status": "inactive"`)
	expect(must("trigger", "fire", "t"), "no rule is active")
	must("rule", "enable", "r")
	expect(must("trigger", "fire", "t", "-p", "name", "fired"), "ok: triggered /_/t with id ")
	expect(must("trigger", "list"), "/guest/t")
	expect(must("rule", "delete", "r"), "ok: deleted rule r")
	expect(must("trigger", "delete", "t"), "ok: deleted trigger t")

	// Feeds: the CLI drives the feed's lifecycle as wsk does.
	expect(must("trigger", "create", "every", "--feed", "/whisk.system/alarms/alarm", "-p", "cron", "0 9 * * *"), "ok: created trigger every")
	out := must("trigger", "get", "every")
	expect(out, "feed /whisk.system/alarms/alarm:")
	expect(out, `"cron": "0 9 * * *"`)
	expect(must("trigger", "update", "every", "-p", "cron", "0 10 * * *"), "ok: updated trigger every")
	expect(must("trigger", "get", "every"), `"cron": "0 10 * * *"`)
	expect(must("trigger", "delete", "every"), "ok: deleted trigger every")
	if _, err := node.Feeds.Store().Get(context.Background(), "guest", "every"); err == nil {
		t.Error("the feed outlived its trigger")
	}
	out, err := gust("trigger", "create", "bad", "--feed", "/whisk.system/alarms/alarm")
	if err == nil || !strings.Contains(err.Error(), "alarms trigger feed is missing the cron parameter") {
		t.Errorf("a feed that refuses: %v %s", err, out)
	}
	if _, err := gust("trigger", "get", "bad"); err == nil {
		t.Error("the trigger of a refused feed was left behind")
	}
}
