package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gust-faas/gust/internal/client"
	"github.com/gust-faas/gust/internal/gust"
)

var (
	flagParam     = cliFlag{long: "param", short: "p", kind: flagPair, arg: "KEY VALUE", help: "parameter; VALUE is JSON if it parses, else a string (repeatable)"}
	flagParamFile = cliFlag{long: "param-file", short: "P", kind: flagString, arg: "FILE", help: "parameters from a JSON object in FILE (repeatable; -p wins)"}
)

func actionCommands() []*cliCommand {
	put := []cliFlag{
		{long: "kind", kind: flagString, arg: "KIND", help: "runtime kind (wasm, python:3, nodejs:20, …); inferred from .wasm, .py, .js"},
		{long: "main", kind: flagString, arg: "NAME", help: "entry point of the code (default main)"},
		flagParam, flagParamFile, flagAnnotation, flagAnnotationFile,
		{long: "memory", short: "m", kind: flagInt, arg: "MB", help: "memory limit"},
		{long: "timeout", short: "t", kind: flagInt, arg: "MS", help: "time limit of one run"},
		{long: "logsize", short: "l", kind: flagInt, arg: "MB", help: "log size limit"},
		{long: "concurrency", short: "c", kind: flagInt, arg: "N", help: "activations one instance may run at once (nodejs:20)"},
		{long: "web", kind: flagString, arg: "true|false|raw", help: "make the action a web action (raw: the raw HTTP request)"},
		{long: "sequence", kind: flagString, arg: "A,B,…", help: "make the action a sequence of these actions, instead of code from FILE"},
	}
	return []*cliCommand{
		{group: "action", name: "create", args: "NAME [FILE]", minArgs: 1, maxArgs: 2, flags: put,
			summary: "create an action from FILE (binary files such as .wasm and .zip are sent base64-encoded), or a sequence with --sequence",
			run:     func(ctx context.Context, c *cliCtx) error { return runActionPut(ctx, c, false) }},
		{group: "action", name: "update", args: "NAME [FILE]", minArgs: 1, maxArgs: 2, flags: put,
			summary: "update an action, or create it; what is not given keeps its value",
			run:     func(ctx context.Context, c *cliCtx) error { return runActionPut(ctx, c, true) }},
		{group: "action", name: "get", args: "NAME", minArgs: 1, maxArgs: 1, summary: "show an action",
			flags: []cliFlag{
				{long: "code", kind: flagBool, help: "include the code"},
				{long: "url", short: "r", kind: flagBool, help: "show only the action's web URL"},
			},
			run: runActionGet},
		{group: "action", name: "list", summary: "list actions, newest first",
			flags: []cliFlag{
				flagListLimit, flagListSkip,
				{long: "count", kind: flagBool, help: "show only how many there are"},
			},
			run: runActionList},
		{group: "action", name: "delete", args: "NAME", minArgs: 1, maxArgs: 1, summary: "delete an action", run: runActionDelete},
		{group: "action", name: "invoke", args: "NAME", minArgs: 1, maxArgs: 1,
			summary: "run an action; without --blocking, print the activation id and return",
			flags: []cliFlag{
				flagParam, flagParamFile,
				{long: "blocking", short: "b", kind: flagBool, help: "wait for the result and print the activation"},
				{long: "result", short: "r", kind: flagBool, help: "wait and print only the result (implies --blocking)"},
				{long: "timeout", kind: flagInt, arg: "MS", help: "with -b or -r: how long the server waits for the result (max 60000)"},
			},
			run: runActionInvoke},
	}
}

// inferKind picks the runtime kind from the file name, as wsk does.
func inferKind(file string) (string, error) {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".wasm":
		return "wasm", nil
	case ".py":
		return "python:default", nil
	case ".js":
		return "nodejs:default", nil
	case ".zip":
		return "", usagef("cannot infer the kind of %s: a zip archive needs --kind", file)
	}
	return "", usagef("cannot infer the kind of %s: use --kind", file)
}

// isBinaryCode reports whether code must travel base64-encoded. Archives
// and wasm modules always do; other files do when they are not text, which
// catches executables. The executable bit is not used: a Python script may
// well have it and must still go as text, or the runtime would take it
// for a zip.
func isBinaryCode(file string, code []byte) bool {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".wasm", ".zip", ".jar":
		return true
	}
	return bytes.IndexByte(code, 0) >= 0 || !utf8.Valid(code)
}

// readExec reads FILE into an exec.
func readExec(file, kind, main string) (*gust.Exec, error) {
	if kind == "" {
		var err error
		if kind, err = inferKind(file); err != nil {
			return nil, err
		}
	}
	code, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	exec := &gust.Exec{Kind: kind, Main: main}
	if isBinaryCode(file, code) {
		exec.Code, exec.Binary = base64.StdEncoding.EncodeToString(code), true
	} else {
		exec.Code = string(code)
	}
	return exec, nil
}

// webAnnotations returns the annotations wsk sets for --web.
func webAnnotations(v string) (gust.KeyValues, error) {
	var export, raw bool
	switch strings.ToLower(v) {
	case "true", "yes":
		export = true
	case "raw":
		export, raw = true, true
	case "false", "no":
	default:
		return nil, usagef("invalid value %q for --web: want true, false or raw", v)
	}
	// final protects a web action's parameters from being overridden by the
	// query of a web request.
	return gust.KeyValues{}.Set("web-export", export).Set("raw-http", raw).Set("final", export), nil
}

func runActionPut(ctx context.Context, c *cliCtx, update bool) error {
	a := c.args
	name := a.pos[0]
	var body client.ActionPut
	var err error
	switch {
	case a.has("sequence"):
		if len(a.pos) == 2 || a.has("kind") || a.has("main") {
			return usagef("--sequence takes the place of FILE, --kind and --main")
		}
		body.Exec = sequenceExec(a.str("sequence"))
	case len(a.pos) == 2:
		if body.Exec, err = readExec(a.pos[1], a.str("kind"), a.str("main")); err != nil {
			return err
		}
	case !update:
		return usagef("usage: gust action create NAME FILE [flags], or gust action create NAME --sequence A,B")
	case a.has("kind") || a.has("main"):
		return usagef("--kind and --main need the code: gust action update NAME FILE --kind KIND")
	}
	if body.Parameters, err = buildParams(a.strs("param-file"), a.pairs("param")); err != nil {
		return err
	}
	if body.Annotations, err = buildParams(a.strs("annotation-file"), a.pairs("annotation")); err != nil {
		return err
	}
	webExport := false
	if a.has("web") {
		web, err := webAnnotations(a.str("web"))
		if err != nil {
			return err
		}
		body.Annotations = body.Annotations.Merge(web)
		webExport = web.IsTrue("web-export")
	}
	var limits gust.LimitsPatch
	for _, l := range []struct {
		flag string
		dst  **int
	}{{"memory", &limits.Memory}, {"timeout", &limits.Timeout}, {"logsize", &limits.Logs}, {"concurrency", &limits.Concurrency}} {
		if a.has(l.flag) {
			v := a.int(l.flag, 0)
			*l.dst = &v
		}
	}
	if limits != (gust.LimitsPatch{}) {
		body.Limits = &limits
	}

	verb, done := "create", "created"
	if update {
		verb, done = "update", "updated"
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	act, err := cl.WithBody(&raw).PutAction(ctx, name, body, update)
	if err != nil {
		return fmt.Errorf("Unable to %s action '%s': %w", verb, name, err)
	}
	if c.jsonOut() {
		return printJSON(c.stdout, raw)
	}
	fmt.Fprintf(c.stdout, "ok: %s action %s\n", done, name)
	if webExport {
		fmt.Fprintln(c.stdout, cl.WebActionURL(act.Namespace, act.Name))
	}
	return nil
}

func runActionGet(ctx context.Context, c *cliCtx) error {
	name := c.args.pos[0]
	cl, err := c.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	act, err := cl.WithBody(&raw).GetAction(ctx, name, c.args.bool("code"))
	if err != nil {
		return fmt.Errorf("Unable to get action '%s': %w", name, err)
	}
	if c.args.bool("url") {
		// The URL of the namespace the server reports, not "_".
		fmt.Fprintln(c.stdout, cl.WebActionURL(act.Namespace, act.Name))
		return nil
	}
	if !c.jsonOut() {
		fmt.Fprintf(c.stdout, "ok: got action %s\n", name)
	}
	return printJSON(c.stdout, raw)
}

func runActionList(ctx context.Context, c *cliCtx) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	cl = cl.WithBody(&raw)
	if c.args.bool("count") {
		n, err := cl.CountActions(ctx)
		if err != nil {
			return fmt.Errorf("Unable to count actions: %w", err)
		}
		if c.jsonOut() {
			return printJSON(c.stdout, raw)
		}
		fmt.Fprintln(c.stdout, n)
		return nil
	}
	actions, err := cl.ListActions(ctx, client.ListOptions{Limit: c.args.int("limit", 30), Skip: c.args.int("skip", 0)})
	if err != nil {
		return fmt.Errorf("Unable to list actions: %w", err)
	}
	if c.jsonOut() {
		return printJSON(c.stdout, raw)
	}
	return printActionList(c.stdout, actions)
}

func runActionDelete(ctx context.Context, c *cliCtx) error {
	return runDeleteOne(ctx, c, "action", func(ctx context.Context, cl *client.Client, name string) error {
		return cl.DeleteAction(ctx, name)
	})
}

func runActionInvoke(ctx context.Context, c *cliCtx) error {
	a := c.args
	name := a.pos[0]
	kv, err := buildParams(a.strs("param-file"), a.pairs("param"))
	if err != nil {
		return err
	}
	params, err := paramsObject(kv)
	if err != nil {
		return err
	}
	opts := client.InvokeOpts{Blocking: a.bool("blocking") || a.bool("result"), Result: a.bool("result")}
	if a.has("timeout") {
		opts.Timeout = time.Duration(a.int("timeout", 0)) * time.Millisecond
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	status, body, id, err := cl.Invoke(ctx, name, params, opts)
	if err != nil {
		return fmt.Errorf("Unable to invoke action '%s': %w", name, err)
	}
	switch {
	case status == http.StatusAccepted && opts.Blocking && !c.jsonOut():
		fmt.Fprintf(c.stdout, "ok: invoked %s, but the request has not yet finished, with id %s\n", name, id)
		return nil
	case c.jsonOut() || opts.Result:
		if err := printJSON(c.stdout, body); err != nil {
			return err
		}
	default:
		fmt.Fprintf(c.stdout, "ok: invoked %s with id %s\n", name, id)
		if opts.Blocking {
			if err := printJSON(c.stdout, body); err != nil {
				return err
			}
		}
	}
	if status >= 300 {
		// The outcome is printed; the exit code tells scripts it failed.
		return fmt.Errorf("action '%s' failed: %s (activation %s)", name, failureText(status, body), id)
	}
	return nil
}

// failureText says why a blocking run failed: the activation's status,
// else the HTTP status.
func failureText(status int, body []byte) string {
	var v struct {
		Response *gust.Response `json:"response"`
		Error    any            `json:"error"`
	}
	if json.Unmarshal(body, &v) == nil {
		if v.Response != nil {
			return v.Response.StatusCode.String()
		}
		if s, ok := v.Error.(string); ok {
			return s
		}
	}
	return strconv.Itoa(status) + " " + http.StatusText(status)
}
