package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"text/tabwriter"
)

// runRuntimes lists the kinds the node can run, with their interpreters,
// and why a kind cannot run when it cannot.
func runRuntimes(ctx context.Context, c *cliCtx) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	info, err := cl.WithBody(&raw).Info(ctx)
	if err != nil {
		return fmt.Errorf("Unable to get the runtimes: %w", err)
	}
	if c.jsonOut() {
		return printJSON(c.stdout, raw)
	}
	fams := make([]string, 0, len(info.Runtimes))
	for f := range info.Runtimes {
		fams = append(fams, f)
	}
	sort.Strings(fams)
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "kind\tavailable\tinterpreter")
	for _, f := range fams {
		for _, rt := range info.Runtimes[f] {
			avail := "yes"
			if !rt.Available {
				avail = "no: " + rt.Reason
			}
			if rt.Default {
				avail += " (default)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", rt.Kind, avail, rt.Interpreter)
		}
	}
	return tw.Flush()
}
