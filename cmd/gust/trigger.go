package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/gust-faas/gust/internal/client"
	"github.com/gust-faas/gust/internal/gust"
)

var (
	flagAnnotation     = cliFlag{long: "annotation", short: "a", kind: flagPair, arg: "KEY VALUE", help: "annotation; VALUE as for -p (repeatable)"}
	flagAnnotationFile = cliFlag{long: "annotation-file", short: "A", kind: flagString, arg: "FILE", help: "annotations from a JSON object in FILE (repeatable)"}
	flagListLimit      = cliFlag{long: "limit", short: "l", kind: flagInt, arg: "N", help: "show at most N (default 30, 0 for the server's maximum)"}
	flagListSkip       = cliFlag{long: "skip", short: "s", kind: flagInt, arg: "N", help: "skip the first N"}
)

// paramFlags are the parameter and annotation flags of every entity's
// create and update.
func paramFlags() []cliFlag {
	return []cliFlag{flagParam, flagParamFile, flagAnnotation, flagAnnotationFile}
}

func triggerCommands() []*cliCommand {
	put := append(paramFlags(),
		cliFlag{long: "feed", short: "f", kind: flagString, arg: "ACTION", help: "feed that fires the trigger, e.g. /whisk.system/alarms/alarm; -p parameters go to the feed"})
	return []*cliCommand{
		{group: "trigger", name: "create", args: "NAME", minArgs: 1, maxArgs: 1, flags: put,
			summary: "create a trigger, with a feed that fires it (--feed)",
			run:     func(ctx context.Context, c *cliCtx) error { return runTriggerPut(ctx, c, false) }},
		{group: "trigger", name: "update", args: "NAME", minArgs: 1, maxArgs: 1, flags: paramFlags(),
			summary: "update a trigger; a feed trigger passes -p parameters to its feed",
			run:     func(ctx context.Context, c *cliCtx) error { return runTriggerPut(ctx, c, true) }},
		{group: "trigger", name: "get", args: "NAME", minArgs: 1, maxArgs: 1, summary: "show a trigger (and its feed's state)", run: runTriggerGet},
		{group: "trigger", name: "list", summary: "list triggers, newest first", flags: []cliFlag{flagListLimit, flagListSkip}, run: runTriggerList},
		{group: "trigger", name: "delete", args: "NAME", minArgs: 1, maxArgs: 1, summary: "delete a trigger and its feed", run: runTriggerDelete},
		{group: "trigger", name: "fire", args: "NAME", minArgs: 1, maxArgs: 1, flags: []cliFlag{flagParam, flagParamFile},
			summary: "fire a trigger: its active rules run their actions", run: runTriggerFire},
	}
}

// feedOf returns the feed annotation of a trigger, or "".
func feedOf(t *gust.Trigger) string { return annotationString(t.Annotations, "feed") }

// invokeFeed runs a feed action with a lifecycle event, as wsk does: a
// blocking invoke with the caller's key, the trigger's name and the
// parameters. It returns the feed's result.
func invokeFeed(ctx context.Context, c *cliCtx, cl *client.Client, feed, event, trigger string, params gust.KeyValues) (json.RawMessage, error) {
	s, err := loadSettings(c.args)
	if err != nil {
		return nil, err
	}
	args := params.Object(false)
	for k, v := range map[string]string{"authKey": s.Auth, "lifecycleEvent": event, "triggerName": qualified(trigger)} {
		args[k], _ = json.Marshal(v)
	}
	body, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	status, out, _, err := cl.Invoke(ctx, feed, body, client.InvokeOpts{Blocking: true, Result: true})
	if err != nil {
		return nil, err
	}
	if status >= 300 {
		return nil, errors.New(failureText(status, out))
	}
	return out, nil
}

func runTriggerPut(ctx context.Context, c *cliCtx, update bool) error {
	a := c.args
	name := a.pos[0]
	params, err := buildParams(a.strs("param-file"), a.pairs("param"))
	if err != nil {
		return err
	}
	annotations, err := buildParams(a.strs("annotation-file"), a.pairs("annotation"))
	if err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	verb, done := "create", "created"
	if update {
		verb, done = "update", "updated"
	}
	feed := a.str("feed")
	if feed != "" {
		// As wsk: a relative feed name is the caller's ("mybinding/alarm"
		// is "/_/mybinding/alarm"); the server takes only qualified ones.
		feed = qualified(feed)
	}
	if update {
		// Read first, as wsk does: a feed trigger's parameters belong to
		// its feed, and its feed annotation must survive the update.
		if t, err := cl.GetTrigger(ctx, name); err == nil {
			feed = feedOf(t)
		}
	}
	body := client.EntityPut{Annotations: annotations}
	if feed == "" {
		body.Parameters = params
	} else if !update || len(annotations) > 0 {
		// Annotations sent replace the trigger's: without the feed's, a
		// later delete would not know to tell the feed.
		body.Annotations = annotations.Merge(gust.KeyValues{}.Set("feed", feed))
	}
	var raw json.RawMessage
	if _, err := cl.WithBody(&raw).PutTrigger(ctx, name, body, update); err != nil {
		return fmt.Errorf("Unable to %s trigger '%s': %w", verb, name, err)
	}
	if feed != "" && (!update || len(params) > 0) {
		event := "CREATE"
		if update {
			event = "UPDATE"
		}
		if _, err := invokeFeed(ctx, c, cl, feed, event, name, params); err != nil {
			if !update {
				// As wsk: a trigger whose feed refused it is not left behind.
				_ = cl.DeleteTrigger(ctx, name)
			}
			return fmt.Errorf("Unable to %s trigger '%s': the feed %s failed: %w", verb, name, feed, err)
		}
	}
	if c.jsonOut() {
		return printJSON(c.stdout, raw)
	}
	fmt.Fprintf(c.stdout, "ok: %s trigger %s\n", done, name)
	return nil
}

func runTriggerGet(ctx context.Context, c *cliCtx) error {
	name := c.args.pos[0]
	cl, err := c.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	t, err := cl.WithBody(&raw).GetTrigger(ctx, name)
	if err != nil {
		return fmt.Errorf("Unable to get trigger '%s': %w", name, err)
	}
	if c.jsonOut() {
		return printJSON(c.stdout, raw)
	}
	fmt.Fprintf(c.stdout, "ok: got trigger %s\n", name)
	if err := printJSON(c.stdout, raw); err != nil {
		return err
	}
	if feed := feedOf(t); feed != "" {
		state, err := invokeFeed(ctx, c, cl, feed, "READ", name, nil)
		if err != nil {
			return fmt.Errorf("Unable to read the feed %s of trigger '%s': %w", feed, name, err)
		}
		fmt.Fprintf(c.stdout, "feed %s:\n", feed)
		return printJSON(c.stdout, state)
	}
	return nil
}

func runTriggerList(ctx context.Context, c *cliCtx) error {
	return runListRows(ctx, c, "triggers", func(ctx context.Context, cl *client.Client, o client.ListOptions) ([]gust.Trigger, error) {
		return cl.ListTriggers(ctx, o)
	}, func(_ *client.Client, t *gust.Trigger) string {
		return fmt.Sprintf("/%s/%s\t%s", t.Namespace, t.Name, shared(t.Publish))
	})
}

func shared(publish bool) string {
	if publish {
		return "shared"
	}
	return "private"
}

func runTriggerDelete(ctx context.Context, c *cliCtx) error {
	return runDeleteOne(ctx, c, "trigger", func(ctx context.Context, cl *client.Client, name string) error {
		// As wsk: the feed is told first, so it stops firing. Any trigger
		// with a feed annotation gets its feed's DELETE (deleting a feed
		// that is already gone succeeds).
		if t, err := cl.GetTrigger(ctx, name); err == nil {
			if feed := feedOf(t); feed != "" {
				if _, err := invokeFeed(ctx, c, cl, feed, "DELETE", name, nil); err != nil {
					fmt.Fprintf(c.stderr, "warning: the feed %s of trigger '%s' failed to delete: %v\n", feed, name, err)
				}
			}
		}
		return cl.DeleteTrigger(ctx, name)
	})
}

func runTriggerFire(ctx context.Context, c *cliCtx) error {
	name := c.args.pos[0]
	kv, err := buildParams(c.args.strs("param-file"), c.args.pairs("param"))
	if err != nil {
		return err
	}
	params, err := paramsObject(kv)
	if err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	id, err := cl.WithBody(&raw).FireTrigger(ctx, name, params)
	if err != nil {
		return fmt.Errorf("Unable to fire trigger '%s': %w", name, err)
	}
	return printFired(c.stdout, c.jsonOut(), name, id, raw)
}

func printFired(w io.Writer, jsonOut bool, name, id string, raw json.RawMessage) error {
	switch {
	case jsonOut && id != "":
		return printJSON(w, raw)
	case jsonOut:
		return printJSON(w, []byte("{}"))
	case id == "":
		fmt.Fprintf(w, "ok: triggered %s; no rule is active, nothing ran\n", qualified(name))
	default:
		fmt.Fprintf(w, "ok: triggered %s with id %s\n", qualified(name), id)
	}
	return nil
}
