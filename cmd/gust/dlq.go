package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"
)

func dlqCommands() []*cliCommand {
	return []*cliCommand{
		{group: "dlq", name: "list", summary: "list non-blocking invocations that failed every attempt", run: runDLQList},
		{group: "dlq", name: "redrive", args: "ACTIVATION_ID", minArgs: 1, maxArgs: 1,
			summary: "queue a dead letter again (it gets a new activation id)", run: runDLQRedrive},
		{group: "dlq", name: "discard", args: "ACTIVATION_ID", minArgs: 1, maxArgs: 1,
			summary: "delete a dead letter", run: runDLQDiscard},
	}
}

func runDLQList(ctx context.Context, c *cliCtx) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	list, err := cl.WithBody(&raw).DeadLetters(ctx)
	if err != nil {
		return fmt.Errorf("Unable to list dead letters: %w", err)
	}
	if c.jsonOut() {
		return printJSON(c.stdout, raw)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "failed\tactivation id\taction\tattempts\treason")
	for _, d := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", time.UnixMilli(d.Failed).Format("2006-01-02 15:04:05"), d.ActivationID, d.Action, d.Attempts, d.Reason)
	}
	return tw.Flush()
}

func runDLQRedrive(ctx context.Context, c *cliCtx) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	id := c.args.pos[0]
	newID, err := cl.Redrive(ctx, id)
	if err != nil {
		return fmt.Errorf("Unable to redrive %s: %w", id, err)
	}
	fmt.Fprintf(c.stdout, "ok: queued %s again with id %s\n", id, newID)
	return nil
}

func runDLQDiscard(ctx context.Context, c *cliCtx) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	id := c.args.pos[0]
	if err := cl.DiscardDeadLetter(ctx, id); err != nil {
		return fmt.Errorf("Unable to discard %s: %w", id, err)
	}
	fmt.Fprintf(c.stdout, "ok: discarded %s\n", id)
	return nil
}
