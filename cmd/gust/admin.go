package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
)

// adminCommands manage namespaces and their limits. They need the
// administrator's credential: `gust up` saves it as DATA_DIR/admin.auth.
func adminCommands() []*cliCommand {
	limitFlags := []cliFlag{
		{long: "invocations-per-minute", kind: flagInt, arg: "N", help: "invocations the namespace may start per minute (0: unlimited)"},
		{long: "concurrent-invocations", kind: flagInt, arg: "N", help: "activations the namespace may have in flight (0: unlimited)"},
		{long: "fires-per-minute", kind: flagInt, arg: "N", help: "trigger fires per minute (0: unlimited)"},
	}
	return []*cliCommand{
		{group: "admin", name: "namespaces", summary: "list every namespace", run: runAdminList},
		{group: "admin", name: "create", args: "NAMESPACE", minArgs: 1, maxArgs: 1, summary: "create a namespace and print its credential", run: runAdminCreate},
		{group: "admin", name: "delete", args: "NAMESPACE", minArgs: 1, maxArgs: 1, summary: "revoke a namespace's credential", run: runAdminDelete},
		{group: "admin", name: "limits", args: "NAMESPACE", minArgs: 1, maxArgs: 1, flags: limitFlags,
			summary: "show a namespace's limits, or set its throttles with the flags (unset flags use the system's values)", run: runAdminLimits},
	}
}

func runAdminList(ctx context.Context, c *cliCtx) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	list, err := cl.WithBody(&raw).AdminNamespaces(ctx)
	if err != nil {
		return fmt.Errorf("Unable to list namespaces: %w", err)
	}
	if c.jsonOut() {
		return printJSON(c.stdout, raw)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "namespace\trole\tlimit overrides")
	for _, n := range list {
		role := "user"
		if n.Admin {
			role = "admin"
		}
		lim := string(n.Limits)
		if lim == "" {
			lim = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", n.Namespace, role, lim)
	}
	return tw.Flush()
}

func runAdminCreate(ctx context.Context, c *cliCtx) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	info, err := cl.WithBody(&raw).AdminCreateNamespace(ctx, c.args.pos[0])
	if err != nil {
		return fmt.Errorf("Unable to create namespace %s: %w", c.args.pos[0], err)
	}
	if c.jsonOut() {
		return printJSON(c.stdout, raw)
	}
	fmt.Fprintf(c.stdout, "ok: created namespace %s\nauth: %s\n", info.Namespace, info.Auth)
	return nil
}

func runAdminDelete(ctx context.Context, c *cliCtx) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	if err := cl.AdminDeleteNamespace(ctx, c.args.pos[0]); err != nil {
		return fmt.Errorf("Unable to delete namespace %s: %w", c.args.pos[0], err)
	}
	fmt.Fprintf(c.stdout, "ok: deleted namespace %s\n", c.args.pos[0])
	return nil
}

func runAdminLimits(ctx context.Context, c *cliCtx) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	ns := c.args.pos[0]
	overrides := map[string]int{}
	for flag, key := range map[string]string{"invocations-per-minute": "invocationsPerMinute", "concurrent-invocations": "concurrentInvocations", "fires-per-minute": "firesPerMinute"} {
		if c.args.has(flag) {
			overrides[key] = c.args.int(flag, 0)
		}
	}
	var out json.RawMessage
	if len(overrides) > 0 {
		out, err = cl.AdminSetLimits(ctx, ns, overrides)
	} else {
		out, err = cl.AdminLimits(ctx, ns)
	}
	if err != nil {
		return fmt.Errorf("Unable to get or set the limits of %s: %w", ns, err)
	}
	return printJSON(c.stdout, out)
}
