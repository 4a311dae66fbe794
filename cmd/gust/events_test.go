package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
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

// TestFeedTriggerCommands runs the commands of the review end to end
// against a real node: a feed trigger with a rule, a binding of
// /whisk.system/alarms used by a relative feed name, a sequence, a
// trigger update that must keep the feed, delete and create again.
func TestFeedTriggerCommands(t *testing.T) {
	isolate(t)
	node := gusttest.Start(t)
	hello := filepath.Join(t.TempDir(), "hello.wasm")
	if err := os.WriteFile(hello, wasmtest.Build(t, "hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	gust := func(args ...string) (string, error) {
		t.Helper()
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"--apihost", node.URL, "--auth", node.Auth}, args...), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	must := func(want string, args ...string) string {
		t.Helper()
		out, err := gust(args...)
		if err != nil {
			t.Fatalf("gust %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if !strings.Contains(out, want) {
			t.Fatalf("gust %s: output %q does not contain %q", strings.Join(args, " "), out, want)
		}
		return out
	}
	ctx := context.Background()
	registration := func(trigger string) (minutes string, ok bool) {
		t.Helper()
		rec, err := node.Feeds.Store().Get(ctx, "guest", trigger)
		if err != nil {
			return "", false
		}
		var cfg struct{ Minutes json.Number }
		_ = json.Unmarshal(rec.Config, &cfg)
		return cfg.Minutes.String(), true
	}
	for _, name := range []string{"action", "a", "b"} {
		must("ok: created action "+name, "action", "create", name, hello)
	}

	must("ok: created trigger t", "trigger", "create", "t", "--feed", "/whisk.system/alarms/interval", "-p", "minutes", "1")
	must("ok: created rule r", "rule", "create", "r", "t", "action")
	must("ok: bound package mybinding", "package", "bind", "/whisk.system/alarms", "mybinding", "-p", "minutes", "2")
	must("ok: created action s", "action", "create", "s", "--sequence", "a,b")
	must("Hello, ", "action", "invoke", "s", "-r", "-p", "name", "seq")

	// A relative feed name is the caller's: the binding's parameters apply.
	must("ok: created trigger t2", "trigger", "create", "t2", "--feed", "mybinding/interval")
	out := must("feed /_/mybinding/interval:", "trigger", "get", "t2")
	if !strings.Contains(out, `"minutes": 2`) {
		t.Errorf("the binding's parameter: %s", out)
	}

	// An update keeps the feed annotation, so delete tells the feed.
	for _, trigger := range []string{"t", "t2"} {
		must("ok: updated trigger "+trigger, "trigger", "update", trigger, "-a", "x", "1")
		out := must(`"key": "x"`, "trigger", "get", trigger)
		if !strings.Contains(out, `"key": "feed"`) {
			t.Errorf("trigger update dropped the feed annotation of %s: %s", trigger, out)
		}
		must("ok: deleted trigger "+trigger, "trigger", "delete", trigger)
		if _, ok := registration(trigger); ok {
			t.Errorf("the feed of %s outlived the trigger", trigger)
		}
	}
	must("ok: created trigger t", "trigger", "create", "t", "--feed", "/whisk.system/alarms/interval", "-p", "minutes", "1")
	if m, ok := registration("t"); !ok || m != "1" {
		t.Errorf("the feed of the re-created trigger: %q %v", m, ok)
	}

	// Deleted through the REST API, which does not tell the feed: the
	// leftover registration does not block creating the trigger again.
	resp := node.Do(t, "DELETE", "/api/v1/namespaces/_/triggers/t", nil)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("REST delete: %d", resp.StatusCode)
	}
	must("ok: created trigger t", "trigger", "create", "t", "--feed", "/whisk.system/alarms/interval", "-p", "minutes", "3")
	if m, ok := registration("t"); !ok || m != "3" {
		t.Errorf("the feed after a REST delete: %q %v", m, ok)
	}
	// A second feed on the live trigger is still refused.
	out, err := gust("trigger", "create", "t", "--feed", "/whisk.system/alarms/interval", "-p", "minutes", "4")
	if err == nil {
		t.Errorf("a second trigger t: %s", out)
	}
	if m, _ := registration("t"); m != "3" {
		t.Errorf("the live feed was replaced: minutes %q", m)
	}
	must("ok: deleted trigger t", "trigger", "delete", "t")
}

// TestUpEventListeners checks the settings of the listeners for devices
// and services: flag, env, off by default.
func TestUpEventListeners(t *testing.T) {
	for _, c := range []struct {
		name       string
		args       []string
		env        map[string]string
		mqtt, nats string
	}{
		{"off", nil, nil, "", ""},
		{"flags", []string{"--nats-addr", "0.0.0.0:4222", "--mqtt-addr", "0.0.0.0:1883"}, nil, "0.0.0.0:1883", "0.0.0.0:4222"},
		{"env", nil, map[string]string{"GUST_NATS_ADDR": "127.0.0.1:0", "GUST_MQTT_ADDR": "127.0.0.1:1883"}, "127.0.0.1:1883", "127.0.0.1:0"},
		{"flag over env", []string{"--nats-addr", "127.0.0.1:4223"}, map[string]string{"GUST_NATS_ADDR": "127.0.0.1:4222"}, "", "127.0.0.1:4223"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("GUST_NATS_ADDR", "")
			t.Setenv("GUST_MQTT_ADDR", "")
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			s, err := parseUp(c.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if s.mqttAddr != c.mqtt || s.natsAddr != c.nats {
				t.Errorf("mqtt %q nats %q, want %q %q", s.mqttAddr, s.natsAddr, c.mqtt, c.nats)
			}
		})
	}
}
