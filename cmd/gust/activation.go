package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gust-faas/gust/internal/client"
)

// pollInterval is the pause between two requests of `activation poll`;
// wsk uses the same. Tests shorten it.
var pollInterval = 2 * time.Second

func activationCommands() []*cliCommand {
	return []*cliCommand{
		{group: "activation", name: "list", args: "[NAME]", maxArgs: 1,
			summary: "list activations, newest first, of all actions or of NAME ([PKG/]ACTION)",
			flags: []cliFlag{
				flagListLimit, flagListSkip,
				{long: "since", kind: flagInt, arg: "MS", help: "only activations started at or after MS (epoch milliseconds)"},
				{long: "upto", kind: flagInt, arg: "MS", help: "only activations started at or before MS (epoch milliseconds)"},
			},
			run: runActivationList},
		{group: "activation", name: "get", args: "ID", minArgs: 1, maxArgs: 1, summary: "show an activation record", run: runActivationGet},
		{group: "activation", name: "logs", args: "ID", minArgs: 1, maxArgs: 1, summary: "show the logs of an activation", run: runActivationLogs},
		{group: "activation", name: "result", args: "ID", minArgs: 1, maxArgs: 1, summary: "show the result of an activation", run: runActivationResult},
		{group: "activation", name: "poll", args: "[NAME]", maxArgs: 1,
			summary: "print new activations, of all actions or of NAME, as they arrive (Ctrl-C stops)",
			flags:   []cliFlag{{long: "exit", kind: flagInt, arg: "SECONDS", help: "stop after SECONDS"}},
			run:     runActivationPoll},
	}
}

func runActivationList(ctx context.Context, c *cliCtx) error {
	a := c.args
	opts := client.ActivationListOptions{Limit: a.int("limit", 30), Skip: a.int("skip", 0)}
	if len(a.pos) == 1 {
		opts.Name = a.pos[0]
	}
	if a.has("since") {
		opts.Since = time.UnixMilli(int64(a.int("since", 0)))
	}
	if a.has("upto") {
		opts.Upto = time.UnixMilli(int64(a.int("upto", 0)))
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	acts, err := cl.WithBody(&raw).ListActivations(ctx, opts)
	if err != nil {
		return fmt.Errorf("Unable to list activations: %w", err)
	}
	if c.jsonOut() {
		return printJSON(c.stdout, raw)
	}
	return printActivationList(c.stdout, acts, cliLocation)
}

func runActivationGet(ctx context.Context, c *cliCtx) error {
	return runGetOne(ctx, c, "activation", func(ctx context.Context, cl *client.Client, id string) error {
		_, err := cl.GetActivation(ctx, id)
		return err
	})
}

func runActivationLogs(ctx context.Context, c *cliCtx) error {
	id := c.args.pos[0]
	cl, err := c.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	logs, err := cl.WithBody(&raw).ActivationLogs(ctx, id)
	if err != nil {
		return fmt.Errorf("Unable to get the logs of activation '%s': %w", id, err)
	}
	if c.jsonOut() {
		return printJSON(c.stdout, raw)
	}
	for _, l := range logs {
		fmt.Fprintln(c.stdout, l)
	}
	return nil
}

func runActivationResult(ctx context.Context, c *cliCtx) error {
	id := c.args.pos[0]
	cl, err := c.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	resp, err := cl.WithBody(&raw).ActivationResult(ctx, id)
	if err != nil {
		return fmt.Errorf("Unable to get the result of activation '%s': %w", id, err)
	}
	if c.jsonOut() {
		return printJSON(c.stdout, raw)
	}
	return printJSON(c.stdout, resp.Result)
}

// runActivationPoll prints activations recorded after it starts, oldest
// first, until the context ends (Ctrl-C) or --exit seconds have passed.
func runActivationPoll(ctx context.Context, c *cliCtx) error {
	opts := client.ActivationListOptions{Limit: 0, Docs: true} // 0: as many as the server allows
	if len(c.args.pos) == 1 {
		opts.Name = c.args.pos[0]
	}
	if c.args.has("exit") {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(c.args.int("exit", 0))*time.Second)
		defer cancel()
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stderr, "Polling for activations; press Ctrl-C to stop.")

	// Start from the newest record the server has rather than from the local
	// clock, which may disagree with the server's.
	seen := map[string]int64{} // activation id → start, for ids at the since boundary
	latest, err := cl.ListActivations(ctx, client.ActivationListOptions{Name: opts.Name, Limit: 1})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("Unable to poll activations: %w", err)
	}
	if len(latest) > 0 {
		opts.Since = time.UnixMilli(latest[0].Start)
		seen[latest[0].ActivationID] = latest[0].Start
	}
	for {
		var raw json.RawMessage
		acts, err := cl.WithBody(&raw).ListActivations(ctx, opts)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			// A long poll outlives server restarts and network hiccups: say so and go on.
			fmt.Fprintf(c.stderr, "warning: polling activations: %v\n", err)
		default:
			if err := printNewActivations(c, acts, raw, seen, opts.Since.UnixMilli()); err != nil {
				return err
			}
			// since is inclusive, so records started in the same millisecond
			// as the newest one are listed again: keep only their ids.
			var newest int64
			for _, start := range seen {
				newest = max(newest, start)
			}
			for id, start := range seen {
				if start < newest {
					delete(seen, id)
				}
			}
			if newest > 0 {
				opts.Since = time.UnixMilli(newest)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pollInterval):
		}
	}
}

// printNewActivations prints, oldest first, the activations not yet in
// seen and not older than since, and adds them to seen. With --json each is
// one line of the JSON the server sent.
func printNewActivations(c *cliCtx, acts []client.ListedActivation, raw json.RawMessage, seen map[string]int64, since int64) error {
	var docs []json.RawMessage
	if c.jsonOut() {
		if err := json.Unmarshal(raw, &docs); err != nil || len(docs) != len(acts) {
			return fmt.Errorf("Unable to poll activations: unexpected list: %v", err)
		}
	}
	for i := len(acts) - 1; i >= 0; i-- { // the server lists newest first
		a := &acts[i]
		if _, ok := seen[a.ActivationID]; ok || a.Start < since {
			continue // printed already, or the server ignored since
		}
		seen[a.ActivationID] = a.Start
		if c.jsonOut() {
			var line bytes.Buffer
			if err := json.Compact(&line, docs[i]); err != nil {
				return err
			}
			line.WriteByte('\n')
			if _, err := c.stdout.Write(line.Bytes()); err != nil {
				return err
			}
			continue
		}
		printPolled(c.stdout, a)
	}
	return nil
}
