package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/gust-faas/gust/internal/client"
	"github.com/gust-faas/gust/internal/gust"
)

// cliLocation is the time zone of printed dates; tests set UTC.
var cliLocation = time.Local

// printJSON writes a JSON document indented, with a final newline. Text
// that is not JSON is written as it is rather than lost.
func printJSON(w io.Writer, raw []byte) error {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		b.Reset()
		b.Write(bytes.TrimSpace(raw))
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// runGetOne gets the entity the first argument names, with get, and
// prints it as wsk does: "ok: got <what> <name>" and the JSON document,
// or the document alone with --json.
func runGetOne(ctx context.Context, c *cliCtx, what string, get func(context.Context, *client.Client, string) error) error {
	name := c.args.pos[0]
	cl, err := c.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := get(ctx, cl.WithBody(&raw), name); err != nil {
		return fmt.Errorf("Unable to get %s '%s': %w", what, name, err)
	}
	if !c.jsonOut() {
		fmt.Fprintf(c.stdout, "ok: got %s %s\n", what, name)
	}
	return printJSON(c.stdout, raw)
}

// runDeleteOne deletes the entity the first argument names, with del, and
// prints "ok: deleted <what> <name>", or the server's answer with --json.
func runDeleteOne(ctx context.Context, c *cliCtx, what string, del func(context.Context, *client.Client, string) error) error {
	name := c.args.pos[0]
	cl, err := c.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := del(ctx, cl.WithBody(&raw), name); err != nil {
		return fmt.Errorf("Unable to delete %s '%s': %w", what, name, err)
	}
	if c.jsonOut() {
		return printJSON(c.stdout, raw)
	}
	fmt.Fprintf(c.stdout, "ok: deleted %s %s\n", what, name)
	return nil
}

// runListRows lists entities with list (--limit and --skip apply) and
// prints them as wsk does: a heading, then the tab-aligned row of each;
// or the JSON document with --json.
func runListRows[T any](ctx context.Context, c *cliCtx, heading string, list func(context.Context, *client.Client, client.ListOptions) ([]T, error), row func(*client.Client, *T) string) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	items, err := list(ctx, cl.WithBody(&raw), client.ListOptions{Limit: c.args.int("limit", 30), Skip: c.args.int("skip", 0)})
	if err != nil {
		return fmt.Errorf("Unable to list %s: %w", heading, err)
	}
	if c.jsonOut() {
		return printJSON(c.stdout, raw)
	}
	fmt.Fprintln(c.stdout, heading)
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 3, ' ', 0)
	for i := range items {
		fmt.Fprintln(tw, row(cl, &items[i]))
	}
	return tw.Flush()
}

// actionKind returns an action's runtime kind. List summaries have no
// exec.kind; the server records it in the "exec" annotation.
func actionKind(a *gust.Action) string {
	if a.Exec.Kind != "" {
		return a.Exec.Kind
	}
	if v, ok := a.Annotations.Get("exec"); ok {
		var s string
		if json.Unmarshal(v, &s) == nil && s != "" {
			return s
		}
	}
	return "-"
}

// printActionList writes the table wsk prints for `action list`.
func printActionList(w io.Writer, actions []gust.Action) error {
	fmt.Fprintln(w, "actions")
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	for i := range actions {
		a := &actions[i]
		fmt.Fprintf(tw, "/%s/%s\t%s\t%s\n", a.Namespace, a.Name, shared(a.Publish), actionKind(a))
	}
	return tw.Flush()
}

// annotationString returns a string annotation, or "".
func annotationString(kv gust.KeyValues, key string) string {
	var s string
	if v, ok := kv.Get(key); ok {
		_ = json.Unmarshal(v, &s) // not a string: treat as absent
	}
	return s
}

// activationStart says how the instance that ran an activation came to be:
// the invoker records initTime only when it had to initialise one.
func activationStart(a *gust.Activation) string {
	kind := annotationString(a.Annotations, "kind")
	if kind == "sequence" || kind == "" {
		return "--" // a sequence or trigger runs no instance of its own
	}
	if _, cold := a.Annotations.Get("initTime"); cold {
		return "cold"
	}
	return "warm"
}

// activationEntity names the entity of an activation as "ns/[pkg/]name:version".
func activationEntity(a *gust.Activation) string {
	path := annotationString(a.Annotations, "path")
	if path == "" {
		path = a.Namespace + "/" + a.Name
	}
	if a.Version != "" {
		path += ":" + a.Version
	}
	return path
}

// printActivationList writes the table of `activation list`, newest first
// as the server sends it.
func printActivationList(w io.Writer, acts []client.ListedActivation, loc *time.Location) error {
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	fmt.Fprintln(tw, "Datetime\tActivation ID\tKind\tStart\tDuration\tStatus\tEntity")
	for i := range acts {
		a := &acts[i]
		kind := annotationString(a.Annotations, "kind")
		if kind == "" {
			kind = "-"
		}
		duration := "-"
		if a.End != 0 || a.Duration != 0 {
			duration = strconv.FormatInt(a.Duration, 10) + "ms"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			time.UnixMilli(a.Start).In(loc).Format(time.DateTime), a.ActivationID, kind,
			activationStart(&a.Activation), duration, a.Status(), activationEntity(&a.Activation))
	}
	return tw.Flush()
}

// printPolled writes one activation seen by `activation poll`.
func printPolled(w io.Writer, a *client.ListedActivation) {
	fmt.Fprintf(w, "\nActivation: '%s' (%s) %s\n", a.Name, a.ActivationID, a.Status())
	for _, l := range a.Logs {
		fmt.Fprintf(w, "    %s\n", l)
	}
	if len(a.Response.Result) > 0 {
		fmt.Fprintf(w, "    result: %s\n", a.Response.Result)
	}
}
